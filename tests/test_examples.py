"""The examples' command lines: bad values stop a run at once with argparse's message (exit code
2), before any data is loaded or any model trained; help shows each default once. No example
trains here."""

import importlib.util
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@cache
def example(name: str) -> ModuleType:
    """Import ``examples/<name>.py`` as a module (examples/ is a folder of scripts)."""
    path = ROOT / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "examples" / f"{name}.py"), *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_char_lm_help_shows_each_default_once():
    result = run_script("char_lm", "--help")
    assert result.returncode == 0 and result.stderr == ""
    text = " ".join(result.stdout.split())  # undo argparse's line wrapping
    assert "(default: None)" not in text and "(default: False)" not in text
    assert not re.search(r"\(default: [^)]*\) \(default:", text)
    for shown in ["--lr LR learning rate (default: 1e-2 Adam, 4.0 SGD)",
                  "--text TEXT UTF-8 text file to learn (default: Python's help pages, pydoc "
                  "topics)", "--epochs EPOCHS passes over the training text (default: 20)",
                  "(default: 0.5 0.8)", "--prefix PREFIX text the samples start from "
                  "(default: 'The ')"]:
        assert shown in text


@pytest.mark.parametrize(("argv", "message"), [
    (["--lr", "-1"], "argument --lr: must be a positive number; got -1"),
    (["--lr", "0"], "argument --lr: must be a positive number; got 0"),
    (["--lr", "fast"], "argument --lr: invalid float value: 'fast'"),
    (["--epochs", "0"], "argument --epochs: must be a positive integer; got 0"),
    (["--epochs", "1.5"], "argument --epochs: invalid int value: '1.5'"),
    (["--temperatures", "0"], "argument --temperatures: must be a positive number; got 0"),
    (["--temperatures", "0.5", "-1"], "argument --temperatures: must be a positive number; got -1"),
    (["--minutes", "nan"], "argument --minutes: must be a positive number; got nan"),
    (["--hidden", "0"], "argument --hidden: must be a positive integer; got 0"),
    (["--dropout", "1"], "argument --dropout: must be in [0, 1); got 1"),
    (["--clip", "-1"], "argument --clip: must be >= 0; got -1"),
    (["--prefix", ""], "--prefix must hold at least one character"),
    (["--resume"], "--resume needs --checkpoint"),
    (["--tie"], "--tie needs --embed == --hidden; got 64 and 128"),
])
def test_char_lm_rejects_bad_values_before_training(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        example("char_lm").parse_args(argv)
    assert info.value.code == 2
    assert capsys.readouterr().err.endswith(f": error: {message}\n")


def test_char_lm_defaults_are_the_readme_demo():
    args = example("char_lm").parse_args([])
    assert (args.epochs, args.minutes, args.lr, args.clip) == (20, 2.0, None, 5.0)
    assert args.temperatures == [0.5, 0.8] and args.text is None and args.prefix == "The "
    assert example("char_lm").parse_args(["--lr", "3e-3", "--clip", "0"]).lr == 3e-3


def test_a_bad_value_ends_the_script_itself_with_exit_code_2_and_no_traceback():
    result = run_script("char_lm", "--temperatures", "0")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("usage: char_lm.py")
    assert result.stderr.endswith(
        "char_lm.py: error: argument --temperatures: must be a positive number; got 0\n")


@pytest.mark.parametrize("name", ["char_lm", "tagging", "vanishing_gradients"])
def test_every_default_in_help_is_shown_once(name, capsys):
    with pytest.raises(SystemExit) as info:
        example(name).parse_args(["--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in text and "(default: False)" not in text
    assert not re.search(r"\(default: [^)]*\) \(default:", text)


@pytest.mark.parametrize(("argv", "message"), [
    (["--tag-epochs", "0"], "--tag-epochs must be positive; got 0"),
    (["--sentences", "-5"], "--sentences must be positive; got -5"),
    (["--gen-lr", "0"], "--gen-lr must be positive; got 0.0"),
])
def test_tagging_rejects_bad_values_before_training(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        example("tagging").parse_args(argv)
    assert info.value.code == 2
    assert capsys.readouterr().err.endswith(f": error: {message}\n")


@pytest.mark.parametrize(("name", "option", "path"), [
    ("vanishing_gradients", "out", "runs/vanishing_gradients.png"),
    ("dates", "plot", "runs/dates_attention.png"),
])
def test_examples_write_their_images_under_runs_by_default(name, option, path):
    assert getattr(example(name).parse_args([]), option) == Path(path)


@pytest.mark.parametrize("option", ["--steps", "--hidden"])
def test_vanishing_gradients_rejects_an_empty_sequence_or_state(option, capsys):
    with pytest.raises(SystemExit) as info:
        example("vanishing_gradients").parse_args([option, "0"])
    assert info.value.code == 2
    assert capsys.readouterr().err.endswith(f"error: {option} must be at least 1; got 0\n")


def test_char_lm_resuming_from_a_missing_checkpoint_ends_with_its_message(tmp_path):
    result = run_script("char_lm", "--chars", "3000", "--no-progress", "--resume",
                        "--checkpoint", str(tmp_path / "missing.npz"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr == (f"char_lm: cannot resume: [Errno 2] No such file or directory: "
                             f"{str(tmp_path / 'missing.npz')!r}\n")


@pytest.mark.parametrize("name", ["char_lm", "addition", "dates", "tagging", "custom_cell"])
def test_training_examples_train_compiled_unless_told_eager(name):
    parse_args = example(name).parse_args
    assert not parse_args([]).eager and parse_args(["--eager"]).eager
