"""Tests for minigrad.viz.live: Live records every step's loss and probes every N steps, the
gradient norms per time step equal independent computations, training with Live is bit for bit
training without it, the figure is shown in IPython and updated in place, the saved page is
self-contained, and bad arguments are named."""

import math
import re

import numpy as np
import pytest

import minigrad as mg
from minigrad import random
from minigrad.models import RNNLM, LSTMCell
from minigrad.train import Trainer
from minigrad.viz.live import Live, grad_norms_by_time_step

pytestmark = pytest.mark.filterwarnings("error::minigrad.compile.TraceWarning")

VOCAB, T, B = 8, 6, 3


def chunk(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ids ``x`` and next tokens ``y``, both (T, B)."""
    ids = np.random.default_rng(seed).integers(0, VOCAB, (T + 1, B))
    return ids[:-1], ids[1:]


PROBE = chunk(100)


def setup(cell: str = "rnn", num_layers: int = 1, dropout: float = 0.0):
    """A small language model, its trainer (compiled step), four batches and the step."""
    mg.manual_seed(0)
    model = RNNLM(VOCAB, 6, 6, num_layers, cell, dropout)
    trainer = Trainer(model, mg.optim.Adam(model.parameters(), lr=0.01), progress=False)
    batches = [chunk(k) for k in range(4)]

    def step(batch):
        return model.loss(*batch)[0], batch[0].size

    return model, trainer, (lambda: batches), step


def test_live_records_the_loss_of_every_step_and_probes_every_n_steps():
    model, trainer, batches, step = setup()
    live = Live(every=3, probe=lambda: model.loss(*PROBE))
    trainer.fit(2, batches, step, callbacks=[live])
    trainer.fit(1, batches, step, callbacks=live)  # the step count goes on
    flat = [loss for losses in trainer.history.step_loss for loss in losses]
    assert live.steps == list(range(1, 13)) and live.losses == flat  # the same floats
    assert live.history is trainer.history
    assert list(live.grad_norms) == [3, 6, 9, 12]
    assert all(list(norms) == list(range(T)) for norms in live.grad_norms.values())
    assert all(n > 0 for norms in live.grad_norms.values() for n in norms.values())


def test_the_last_probe_is_the_gradient_reaching_each_hidden_state_as_traced():
    model, trainer, batches, step = setup("rnn", num_layers=2, dropout=0.2)
    live = Live(every=4, probe=lambda: model.loss(*PROBE))
    trainer.fit(2, batches, step, callbacks=[live])  # 8 steps: the last probe saw these weights
    with model.evaluating(), mg.enable_grad(), mg.trace_backward() as trace:
        model.loss(*PROBE)[0].backward()
    # an RNN step ends in h_t = tanh(...): the gradient into that op is dL/dh_t, all summed
    tanhs = [r for r in trace.records if r.op == "Tanh"]
    assert len(tanhs) == 2 * T  # both layers
    squares = dict.fromkeys(range(T), 0.0)
    for r in tanhs:
        squares[int(r.scope.rpartition(".t")[2])] += r.grad_in[0] ** 2
    expected = {t: math.sqrt(s) for t, s in squares.items()}
    assert live.grad_norms[8] == pytest.approx(expected, rel=1e-9)


def lstm_steps(cell: LSTMCell, xs: mg.Tensor, v: mg.Tensor):
    """Run ``cell`` over ``xs`` by hand, one name scope per step; return the loss
    sum(v * h_t over t), and each step's h_t and c_t."""
    state, hs, cs = None, [], []
    for t in range(len(xs)):
        with mg.name_scope(f"t{t}"):
            h, state = cell(xs[t], state)
        hs.append(h)
        cs.append(state[1])
    return (mg.stack(hs) * v).sum(), hs, cs


def test_grad_norms_by_time_step_is_the_gradient_of_all_a_step_hands_on():
    rng = np.random.default_rng(0)
    mg.manual_seed(0)
    cell = LSTMCell(3, 4).double()
    xs, v = mg.tensor(rng.standard_normal((5, 2, 3))), mg.tensor(rng.standard_normal((5, 2, 4)))
    norms = grad_norms_by_time_step(lstm_steps(cell, xs, v)[0])
    assert all(p.grad is None for p in cell.parameters())  # mg.grad: no .grad touched

    loss, hs, cs = lstm_steps(cell, xs, v)
    for x in hs + cs:
        x.retain_grad()
    loss.backward()
    # h_t goes to the loss and to step t + 1, c_t to step t + 1: the last c_t goes nowhere
    expected = {t: math.sqrt(np.sum(hs[t].grad.data ** 2)
                             + (np.sum(cs[t].grad.data ** 2) if t < 4 else 0.0))
                for t in range(5)}
    assert norms == pytest.approx(expected, rel=1e-12)
    assert list(norms) == [0, 1, 2, 3, 4]


def test_a_graph_without_time_steps_is_named():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"grad_norms_by_time_step: the graph behind the loss "
                                         r"has no time steps"):
        grad_norms_by_time_step((x * x).sum())


def test_training_with_live_gives_bit_identical_weights_losses_and_random_state():
    runs = []
    for watched in (False, True):
        model, trainer, batches, step = setup("lstm", num_layers=2, dropout=0.3)

        def probe(model=model):  # dropout is off in eval mode; this draw is put back
            return model.loss(*PROBE)[0] + 0 * mg.randn(1).sum()

        live = Live(every=1, probe=probe)
        trainer.fit(2, batches, step, callbacks=[live] if watched else [])
        runs.append((model.state_dict(), trainer.history.step_loss,
                     random.generator().bit_generator.state, live))
    (weights, losses, state, _), (weights_live, losses_live, state_live, live) = runs
    assert len(live.grad_norms) == 8  # the probe ran at every step
    assert losses_live == losses and state_live == state
    for name, value in weights.items():
        np.testing.assert_array_equal(weights_live[name], value)


def test_in_ipython_the_figure_is_displayed_once_then_updated_in_place(monkeypatch):
    IPython = pytest.importorskip("IPython")
    display_module = pytest.importorskip("IPython.display")
    events = []

    class Handle:
        def update(self, obj):
            events.append(("update", obj, obj.steps[-1], obj._repr_html_()))

    def display(obj, display_id=False):
        events.append(("display", obj, obj.steps[-1], display_id))
        return Handle()

    monkeypatch.setattr(display_module, "display", display)
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)  # a script: nothing shown
    model, trainer, batches, step = setup()
    quiet = Live(every=2, probe=lambda: model.loss(*PROBE))
    trainer.fit(1, batches, step, callbacks=[quiet])
    assert events == [] and len(quiet.grad_norms) == 2

    monkeypatch.setattr(IPython, "get_ipython", lambda: object())  # a running shell
    live = Live(every=2, probe=lambda: model.loss(*PROBE))
    trainer.fit(2, batches, step, callbacks=[live])
    assert [e[0] for e in events] == ["display"] + ["update"] * 5
    assert all(e[1] is live for e in events) and events[0][3] is True
    assert [e[2] for e in events] == [6, 8, 8, 10, 12, 12]  # every 2 steps, and each epoch's end
    assert all(e[3].startswith("<svg") for e in events[1:])


def test_save_writes_a_self_contained_page_with_the_numbers(tmp_path):
    model, trainer, batches, step = setup()
    live = Live(every=1, probe=lambda: model.loss(*PROBE))

    def evaluate():
        return {"valid_loss": model.loss(*PROBE)[0].item(), "accuracy": 0.5}

    trainer.fit(2, batches, step, evaluate, callbacks=[live])
    trainer.fit(4, batches, step, callbacks=[live])  # 24 steps, 24 probes
    path = tmp_path / "live.html"
    live.save(path)
    page = path.read_text(encoding="utf-8")
    assert re.search(r"https?:|//|src=|href=|url\(|@import", page) is None  # nothing fetched
    assert page.startswith("<!doctype html>") and page.count("<svg") == 1
    cells = re.findall(r"<td>([^<]*)</td>", page)
    for loss in live.losses:
        assert f"{loss:.6g}" in cells
    for value in [*live.grad_norms[24].values(), *trainer.history.metrics["valid_loss"]]:
        assert f"{value:.6g}" in cells
    assert "<th>valid_loss</th>" in page and "<th>accuracy</th>" in page
    svg = live.svg()
    # loss panel: every step, epoch means, valid_loss; gradient panel: the latest 20 probes,
    # the last one bold
    assert svg.count("<polyline") == 3 + 20 and svg.count('stroke-width="2.5"') == 2  # + key
    assert "gradient reaching each time step" in svg and "step 24" in svg


def test_without_a_probe_the_figure_has_the_loss_panel_only():
    live = Live()
    assert live.grad_norms == {} and repr(live) == "Live(every=10): no step yet"
    svg = live.svg()  # drawable before any step
    assert 'width="450"' in svg and "gradient" not in svg and svg.count("<polyline") == 1


@pytest.mark.parametrize("every", [0, -3, 1.5, True, "5"])
def test_every_must_be_an_int_of_at_least_one(every):
    with pytest.raises(ValueError, match=r"Live: every must be an int >= 1 .*; got "):
        Live(every=every)


def test_a_probe_must_be_callable_and_return_a_loss():
    with pytest.raises(TypeError, match=r"Live: probe must be a function of no arguments .*; "
                                        r"got 3"):
        Live(probe=3)
    model, trainer, batches, step = setup()
    with pytest.raises(TypeError, match=r"Live: probe\(\) must return the loss, a 0-d Tensor "
                                        r"with a graph .*; got 2.5"):
        trainer.fit(1, batches, step, callbacks=[Live(every=2, probe=lambda: 2.5)])
    assert trainer.epoch == 0
