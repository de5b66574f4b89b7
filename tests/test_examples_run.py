"""Every example runs end to end, as a reader runs it (``python examples/NAME.py ...``), with
arguments small enough for a few seconds each, and prints what its docstring says it prints:
gradchecks that pass, perplexities and accuracies that are numbers in range, answers checked
against the data, compiled and eager training that agree. Files go to tmp_path.

PNGs need matplotlib (the `examples` extra): without it the runs skip writing them (dates.py,
which always draws, skips). render_graphs.py needs Graphviz's `dot`, and skips without it."""

from __future__ import annotations

import datetime
import importlib.util
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
# The examples import this checkout's minigrad, whatever else is installed.
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
    "MPLBACKEND": "Agg", "PYTHONIOENCODING": "utf-8"}
HAVE_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
needs_matplotlib = pytest.mark.skipif(
    not HAVE_MATPLOTLIB, reason="the example draws a PNG, which needs matplotlib (the "
    "`examples` extra: pip install -e '.[examples]')")
F = r"[-+]?\d+(?:\.\d*)?(?:e[-+]?\d+)?"  # a printed number


def run(name: str, *args: str | Path, cwd: Path) -> str:
    """Run ``examples/<name>.py`` with ``args`` from ``cwd``; return its stdout."""
    result = subprocess.run([sys.executable, str(ROOT / "examples" / f"{name}.py"),
                             *map(str, args)], capture_output=True, encoding="utf-8",
                            cwd=cwd, env=ENV, timeout=300)
    assert result.returncode == 0, f"{name}.py {' '.join(map(str, args))} failed:\n" \
                                   f"{result.stderr[-3000:]}"
    return result.stdout


def numbers(pattern: str, text: str) -> list[float]:
    """Every match of ``pattern`` (one group: a number) in ``text``, as floats."""
    return [float(x) for x in re.findall(pattern, text, re.MULTILINE)]


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 2000, path


def test_engine_demo_prints_a_gradient_that_gradcheck_confirms(tmp_path):
    out = run("engine_demo", cwd=tmp_path)
    (loss,) = numbers(rf"^loss = ({F})$", out)
    dw = np.array(numbers(rf"({F})", out[out.index("dloss/dw =") + 10:out.index("dloss/db")]))
    db = np.array(numbers(rf"({F})", out[out.index("dloss/db =") + 10:].splitlines()[0]))
    assert dw.shape == (12,) and db.shape == (3,) and abs(loss) <= 3  # sum of 3 cubes of tanh
    # loss = Σ_i tanh(w_i·x + b_i)³: dL/db_i = 3 t²(1 − t²) in [0, 3/4], dL/dw_ij = dL/db_i x_j
    assert np.all((db >= 0) & (db <= 0.75))
    i = np.argmax(db)
    np.testing.assert_allclose(dw.reshape(3, 4), np.outer(db, dw.reshape(3, 4)[i] / db[i]),
                               rtol=0.02, atol=3e-4)
    assert out.splitlines()[-1] == "gradcheck: True, gradgradcheck: True"


def custom_cell_run(out: str) -> dict:
    """The losses and the accuracy of each of custom_cell's two trainings."""
    runs = {}
    for line in out.splitlines():
        if m := re.match(r"(bidirectional|forward only) Recurrent\(FusedMGU, 4, 16\), batch 32, "
                         r"(compiled|eager):$", line):
            name = m.group(1)
            runs[name] = {"mode": m.group(2), "loss": [], "accuracy": None}
        elif m := re.match(rf"  step +\d+  loss ({F})$", line):
            runs[name]["loss"].append(float(m.group(1)))
        elif m := re.match(rf"  accuracy on 1000 new sequences: ({F})% \(", line):
            runs[name]["accuracy"] = float(m.group(1))
    return runs


def test_custom_cell_checks_its_cell_and_learns_the_task_only_with_the_future(tmp_path):
    compiled = run("custom_cell", "--steps", "40", cwd=tmp_path)
    eager = run("custom_cell", "--steps", "40", "--eager", cwd=tmp_path)
    for out, mode in ((compiled, "compiled"), (eager, "eager")):
        (difference,) = numbers(rf"max \|difference\| = ({F})$", out)
        assert difference < 1e-12  # the plain and the fused cell compute the same function
        assert "stack w.r.t. x, h0 and all its parameters: passed" in out
        runs = custom_cell_run(out)
        assert list(runs) == ["bidirectional", "forward only"]
        for r in runs.values():
            assert r["mode"] == mode and len(r["loss"]) == 7  # step 1 and every 40 // 6
            assert abs(r["loss"][0] - math.log(4)) < 0.1  # starts at chance, 4 tokens
            assert 0 <= r["accuracy"] <= 100
        # the token 3 steps ahead: the reverse direction has seen it, a forward one cannot
        assert runs["bidirectional"]["accuracy"] > 45
        assert runs["forward only"]["accuracy"] < 35
        assert runs["bidirectional"]["loss"][-1] < runs["bidirectional"]["loss"][0] - 0.1
    for c, e in zip(custom_cell_run(compiled).values(), custom_cell_run(eager).values()):
        np.testing.assert_allclose(c["loss"], e["loss"], atol=2e-3)
        assert abs(c["accuracy"] - e["accuracy"]) <= 1


ADDITION = ["--epochs", "1", "--batch", "1024", "--hidden", "8", "--embed", "4", "--no-progress"]


def test_addition_trains_two_variants_and_prints_answers_checked_against_the_sums(tmp_path):
    plot = ["--plot", tmp_path / "addition.png"] if HAVE_MATPLOTLIB else []
    out = run("addition", *ADDITION, "--variants", "baseline", "peeky", *plot, cwd=tmp_path)
    assert out.startswith("addition: 45,000 training and 5,000 held-out questions")
    assert "; compiled training step" in out.splitlines()[0]
    assert re.search(r"^== baseline: [\d,]+ parameters$", out, re.MULTILINE)
    assert re.search(r"^== reversed\+peeky: [\d,]+ parameters$", out, re.MULTILINE)
    table = out[out.index("held-out exact-match accuracy\n"):].splitlines()
    assert table[1].split() == ["epoch", "baseline", "reversed+peeky"]
    assert table[2].split()[0] == "1" and table[3].split()[0] == "s/epoch"
    accuracies = [float(cell.rstrip("%")) for cell in table[2].split()[1:]]
    assert len(accuracies) == 2 and all(0 <= a <= 100 for a in accuracies)
    answers = re.findall(r"^ +(\d+)\+(\d+) = (\S*) +(?:ok|\(wrong: (\d+)\))$", out, re.MULTILINE)
    assert len(answers) == 8, out
    for a, b, answer, wrong in answers:  # the expected answer is the sum; "ok" only if it is
        assert (wrong or answer) == str(int(a) + int(b)) and answer != wrong
    if plot:
        assert f"curves saved to {tmp_path / 'addition.png'}" in out
        assert_png(tmp_path / "addition.png")
    eager = run("addition", *ADDITION, "--variants", "baseline", "--eager", cwd=tmp_path)
    assert "; eager training step" in eager.splitlines()[0]
    loss = rf"^epoch 1/1: train loss ({F}) \|"
    assert numbers(loss, eager) == pytest.approx(numbers(loss, out)[:1], abs=2e-3)


@needs_matplotlib
@pytest.mark.parametrize("eager", [False, True])
def test_dates_prints_its_accuracy_and_answers_and_draws_the_attention(tmp_path, eager):
    plot = tmp_path / "maps" / "attention.png"
    out = run("dates", "--epochs", "1", "--batch", "1024", "--hidden", "8", "--embed", "4",
              "--examples", "2", "--no-progress", "--plot", plot, *["--eager"] * eager,
              cwd=tmp_path)
    assert out.startswith("dates: 18,000 training and 2,000 held-out dates")
    assert f"; {'eager' if eager else 'compiled'} training step" in out.splitlines()[0]
    ((epoch, loss, accuracy, _),) = re.findall(rf"^ +(\d+) +({F}) +({F})% +({F})$", out,
                                               re.MULTILINE)
    assert epoch == "1" and 0 < float(loss) < 10 and 0 <= float(accuracy) <= 100
    (train_loss,) = numbers(rf"^epoch 1/1: train loss ({F}) \|", out)
    assert float(loss) == pytest.approx(train_loss, abs=1e-4)
    answers = re.findall(r"^ +(\S.*) -> (.*) (?:ok|\(wrong: (.*)\))$", out, re.MULTILINE)
    assert len(answers) == 2, out
    for source, answer, wrong in answers:
        want = datetime.date.fromisoformat(wrong or answer)  # the target is an ISO date
        assert str(want.year) in source or f"{want.year % 100:02d}" in source
        assert answer != wrong
    assert f"attention heat maps saved to {plot}" in out
    assert_png(plot)


def test_tagging_prints_three_tables_of_accuracies_and_samples_from_their_bags(tmp_path):
    small = ["--sentences", "200", "--embed", "4", "--hidden", "4", "--gen-hidden", "8",
             "--batch", "200", "--tag-epochs", "1", "--cls-epochs", "1", "--gen-epochs", "1",
             "--no-progress"]
    plots = tmp_path / "curves"
    out = run("tagging", *small, *(["--plot", plots] if HAVE_MATPLOTLIB else []), cwd=tmp_path)
    (bound,) = numbers(rf"^expect is ({F}) per-token accuracy", out)
    assert 0.5 < bound < 1
    assert out.count("compiled training step") == 8 and "eager training step" not in out

    def tables(text: str) -> dict[str, float]:
        rows = re.findall(r"^  ((?:tagger|classifier) (?:uni|bi)LSTM(?: x\d|, last|, mean)) +"
                          rf"({F}) +({F}) +\d+s", text, re.MULTILINE)
        assert all(per_epoch == final for _, per_epoch, final in rows)  # one epoch
        return {name: float(final) for name, _, final in rows}

    accuracy = tables(out)
    assert list(accuracy) == ["tagger uniLSTM x1", "tagger biLSTM x1", "tagger biLSTM x2",
                              "classifier uniLSTM, last", "classifier uniLSTM, mean",
                              "classifier biLSTM, last", "classifier biLSTM, mean"]
    assert all(0 <= a <= 1 for a in accuracy.values())
    errors = re.findall(r" (\d+) of (\d+) on intensifiers$", out, re.MULTILINE)
    assert len(errors) == 3 and all(int(a) <= int(b) for a, b in errors)
    (same_bag,) = numbers(rf"^  1 -> N .* same bag ({F})$", out)
    assert 0 <= same_bag <= 1
    for shape in ("N -> 1", "N -> N"):
        (best,) = numbers(rf"^  {shape} .* accuracy ({F})$", out)
        assert best == max(a for name, a in accuracy.items()
                           if name.startswith("tagger" if shape == "N -> N" else "classifier"))
    samples = re.findall(r"^  bag    : (.*)\n  wrote  : .*\n  source : (.*)$", out, re.MULTILINE)
    assert len(samples) == 4
    assert all(bag.split() == sorted(source.split()) for bag, source in samples)
    if HAVE_MATPLOTLIB:
        pngs = sorted(plots.iterdir())
        assert len(pngs) == 8 and "tagger_biLSTM_x2.png" in {p.name for p in pngs}
        for png in pngs:
            assert_png(png)
    eager = run("tagging", *small, "--eager", cwd=tmp_path)
    assert eager.count("eager training step") == 8
    for name, a in tables(eager).items():
        assert a == pytest.approx(accuracy[name], abs=0.02), name


def test_vanishing_gradients_prints_norms_that_shrink_and_grow_as_sigma_to_the_t(tmp_path):
    steps, png = 8, tmp_path / "plots" / "gradients.png"
    out = run("vanishing_gradients", "--steps", steps, "--hidden", "4", "--out", png,
              cwd=tmp_path)
    header = out.splitlines()[1]
    columns = ["RNN σ=0.8", "RNN σ=1.2", "RNN σ=1.2, clip/step 1", "LSTM", "LSTM f-bias 3", "GRU"]
    assert re.split(r"\s{2,}", header.strip()) == ["t", *columns]
    rows = {int(t): dict(zip(columns, map(float, rest.split())))
            for t, rest in re.findall(rf"^ +(\d+)((?: +{F}){{6}})$", out, re.MULTILINE)}
    assert sorted(rows) == [1, 3, 8]
    assert all(v == 1 for v in rows[steps].values())  # ‖∂L/∂h_T‖ = ‖v‖ = 1
    assert rows[1]["RNN σ=0.8"] == pytest.approx(0.8 ** (steps - 1), rel=0.01)
    assert rows[1]["RNN σ=1.2"] == pytest.approx(1.2 ** (steps - 1), rel=0.01)
    assert all(row["RNN σ=1.2, clip/step 1"] <= 1 for row in rows.values())
    assert rows[1]["LSTM f-bias 3"] > rows[1]["LSTM"]  # an open forget gate keeps it alive
    clipped = re.search(rf"clip_grad_norm_ after backward: parameter gradient norm ({F}) -> "
                        rf"({F}), cosine with the true gradient ({F})\.$", out, re.MULTILINE)
    before, after, cosine = map(float, clipped.groups())
    assert before > 1 and after == 1 and cosine == 1  # rescaled to norm 1, direction kept
    (hook_cosine,) = numbers(rf"at every step: .*cosine with the true gradient ({F})\.$", out)
    assert hook_cosine < 1
    if HAVE_MATPLOTLIB:
        assert out.endswith(f"plot saved to {png}\n")
        assert_png(png)
    else:
        assert "matplotlib is not installed" in out


CHAR_LM = ["--chars", "20000", "--embed", "8", "--hidden", "16", "--batch", "16", "--bptt", "32",
           "--sample-length", "30", "--no-progress"]
EPOCH = rf"^epoch (\d+)/\d+: train loss ({F}) \(ppl {F}\) \| valid_ppl ({F}) \|"


def char_lm_summary(out: str) -> list[float]:
    """From char_lm's last line, after 2 epochs of 36 steps: the first and last training loss,
    the first and last validation perplexity, the best, and it in bits per character."""
    m = re.search(rf"^summary: 2 epochs \(72 steps\) \| train loss ({F}) -> ({F}) \| validation "
                  rf"perplexity ({F}) -> ({F}) \(best ({F}), ({F}) bits/char\) \| \d+s in all\n\Z",
                  out, re.MULTILINE)
    assert m, out[-500:]
    return [float(x) for x in m.groups()]


def test_char_lm_perplexity_falls_and_compiled_eager_and_resumed_training_agree(tmp_path):
    plot = ["--plot", tmp_path / "curves.png"] if HAVE_MATPLOTLIB else []
    out = run("char_lm", *CHAR_LM, "--epochs", "2", *plot, cwd=tmp_path)
    assert out.startswith("text: 18,000 training and 2,000 validation characters, 90 symbols; "
                          "36 chunks of (32, 16) per epoch\n")
    assert "; compiled training step" in out.splitlines()[1]
    epochs = re.findall(EPOCH, out, re.MULTILINE)
    assert [e for e, _, _ in epochs] == ["1", "2"]
    ppl = [float(p) for _, _, p in epochs]
    assert 1 < ppl[1] < ppl[0] < 90  # below a uniform guess over the 90 symbols, and falling
    for temperature in ("0.5", "0.8"):
        sample = out.split(f"--- sample at temperature {temperature} ---\n")[1]
        assert sample.startswith("The ") and len(sample.split("\n\n")[0]) > 4
    first, last, ppl0, ppl1, best, bits = summary = char_lm_summary(out)
    assert [first, last] == pytest.approx([float(loss) for _, loss, _ in epochs], abs=6e-4)
    assert last < first and (ppl0, ppl1, best) == (ppl[0], ppl[1], min(ppl))
    assert bits == pytest.approx(math.log2(best), abs=0.01)
    if plot:
        assert_png(tmp_path / "curves.png")

    # the same first epoch eager, saved; then resumed for the second: the same perplexities
    checkpoint = tmp_path / "lm.npz"
    eager = run("char_lm", *CHAR_LM, "--epochs", "1", "--eager", "--checkpoint", checkpoint,
                cwd=tmp_path)
    assert "; eager training step" in eager.splitlines()[1]
    ((_, _, ppl_eager),) = re.findall(EPOCH, eager, re.MULTILINE)
    assert float(ppl_eager) == pytest.approx(ppl[0], abs=0.02)
    resumed = run("char_lm", *CHAR_LM, "--epochs", "2", "--eager", "--checkpoint", checkpoint,
                  "--resume", cwd=tmp_path)
    assert f"resumed from {checkpoint} after epoch 1\n" in resumed
    ((epoch, _, ppl_resumed),) = re.findall(EPOCH, resumed, re.MULTILINE)
    assert epoch == "2" and float(ppl_resumed) == pytest.approx(ppl[1], abs=0.02)
    # the summary covers the whole run, the epoch before the checkpoint included
    assert char_lm_summary(resumed) == pytest.approx(summary, abs=0.02)


@pytest.mark.skipif(shutil.which("dot") is None, reason="rendering needs Graphviz's `dot`, "
                    "which is not on PATH (apt-get install graphviz)")
def test_render_graphs_writes_all_eight_drawings_as_svg(tmp_path):
    names = ["lstm_cell", "gru_cell", "lstm_collapsed", "rnn_grad_norm", "neuron_backward",
             "compiled_lstm", "neuron_jvp", "neuron_hvp"]
    out = run("render_graphs", "--out", tmp_path / "graphs", cwd=tmp_path)
    assert out.splitlines() == [f"wrote {tmp_path / 'graphs' / name}.svg" for name in names]
    for name in names:
        svg = (tmp_path / "graphs" / f"{name}.svg").read_text()
        assert svg.lstrip().startswith("<?xml") and svg.count('class="node"') >= 10, name
