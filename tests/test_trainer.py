"""Tests for minigrad.train: the step sequence, clipping, evaluation, schedulers, checkpoints
with an exact resume, the plot and the plain progress lines."""

import math
import sys

import numpy as np
import pytest

import minigrad as mg
import minigrad.train as trainer_module
from minigrad.nn import Dropout, Linear, Module
from minigrad.nn import functional as F
from minigrad.train import History, Trainer


class Net(Module):
    """Linear -> tanh -> dropout -> Linear: a classifier of 2-D points."""

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.hidden, self.drop, self.out = Linear(2, 8), Dropout(dropout), Linear(8, 2)

    def forward(self, x):
        return self.out(self.drop(self.hidden(x).tanh()))


def points(n: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A linearly separable task: label 1 when x0 + x1 > 0."""
    x = np.random.default_rng(seed).normal(size=(n, 2)).astype(np.float32)
    return x, (x.sum(axis=1) > 0).astype(np.int64)


def task(model: Module, batch_size: int = 16, shuffle: bool = False, trainer=None):
    """(batches, step, evaluate) for ``points``; with ``shuffle`` each epoch's order is drawn
    from a generator seeded by the trainer's epoch, as Trainer's docstring advises."""
    x, y = points()

    def batches():
        order = np.arange(len(x))
        if shuffle:
            order = np.random.default_rng(trainer.epoch).permutation(len(x))
        return [order[i : i + batch_size] for i in range(0, len(x), batch_size)]

    def step(idx):
        return F.cross_entropy(model(mg.tensor(x[idx])), y[idx]), len(idx)

    def evaluate():
        return {"accuracy": float((model(mg.tensor(x)).data.argmax(axis=1) == y).mean())}

    return batches, step, evaluate


def test_fit_learns_and_records_history(capsys):
    mg.manual_seed(0)
    model = Net()
    trainer = Trainer(model, mg.optim.Adam(model.parameters(), lr=0.05), progress=False)
    batches, step, evaluate = task(model)
    history = trainer.fit(8, batches, step, evaluate)
    assert history is trainer.history and trainer.epoch == 8
    assert history.train_loss[-1] < 0.3 * history.train_loss[0]
    assert history.metrics["accuracy"][-1] >= 0.95
    assert set(history.metrics) == {"accuracy"} and len(history.metrics["accuracy"]) == 8
    assert len(history.epoch_seconds) == len(history.lr) == len(history.step_loss) == 8
    assert all(len(losses) == 4 for losses in history.step_loss)  # 64 points / 16 per batch
    # train_loss is the count-weighted mean of the step losses (equal counts here)
    assert history.train_loss[2] == pytest.approx(np.mean(history.step_loss[2]))
    assert trainer.fit(8, batches, step, evaluate) is history  # already done: no new epoch
    assert len(history.train_loss) == 8


def test_each_step_runs_the_documented_sequence():
    mg.manual_seed(0)
    model = Net()
    log = []

    class SpySGD(mg.optim.SGD):
        def zero_grad(self):
            log.append("zero_grad")
            super().zero_grad()

        def step(self, closure=None):
            assert all(p.grad is not None for p in model.parameters()), "backward came first"
            log.append("step")
            return super().step(closure)

    batches, step, evaluate = task(model)

    def spy_step(idx):
        assert model.training and mg.is_grad_enabled()
        log.append("loss")
        return step(idx)

    def spy_evaluate():
        assert not model.training and not mg.is_grad_enabled()
        log.append("evaluate")
        model.train()  # evaluate may leave the model in any mode: the next step resets it
        return evaluate()

    trainer = Trainer(model, SpySGD(model.parameters(), lr=0.1), progress=False)
    trainer.fit(2, batches, spy_step, spy_evaluate)
    epoch = ["loss", "zero_grad", "step"] * 4 + ["evaluate"]
    assert log == epoch * 2
    assert model.training


@pytest.mark.parametrize("clip_norm", [1e-3, None])
def test_gradients_are_clipped_to_clip_norm(clip_norm):
    mg.manual_seed(0)
    model = Net()
    x, y = points(16)
    loss = F.cross_entropy(model(mg.tensor(x)), y)
    loss.backward()
    grad_norm = math.sqrt(sum(float((p.grad.data**2).sum()) for p in model.parameters()))
    before = [p.data.copy() for p in model.parameters()]
    trainer = Trainer(model, mg.optim.SGD(model.parameters(), lr=1.0), clip_norm=clip_norm,
                      progress=False)
    trainer.fit(1, lambda: [None], lambda _: (F.cross_entropy(model(mg.tensor(x)), y), 16))
    moved = math.sqrt(sum(float(((p.data - b) ** 2).sum())
                          for p, b in zip(model.parameters(), before)))
    # one SGD step with lr 1 moves the parameters by exactly the (clipped) gradient
    expected = grad_norm if clip_norm is None else clip_norm
    assert grad_norm > 100 * 1e-3
    assert moved == pytest.approx(expected, rel=1e-4)


def test_reduce_lr_on_plateau_steps_on_the_monitored_metric():
    def run(monitor):
        mg.manual_seed(0)
        model = Net()
        opt = mg.optim.SGD(model.parameters(), lr=1.0)
        sched = mg.optim.ReduceLROnPlateau(opt, factor=0.5, patience=0)
        trainer = Trainer(model, opt, scheduler=sched, progress=False)
        batches, step, _ = task(model)
        values = iter([3.0, 2.0, 1.0, 0.5])
        trainer.fit(4, batches, step, lambda: {"flat": 1.0, "falling": next(values)}, monitor)
        return trainer.history.lr, opt.param_groups[0]["lr"]

    assert run("flat") == ([1.0, 1.0, 0.5, 0.25], 0.125)  # every epoch after the first is bad
    assert run("falling") == ([1.0] * 4, 1.0)


def test_step_lr_steps_once_per_epoch():
    model = Net()
    opt = mg.optim.SGD(model.parameters(), lr=1.0)
    trainer = Trainer(model, opt, scheduler=mg.optim.StepLR(opt, step_size=2, gamma=0.1),
                      progress=False)
    batches, step, _ = task(model)
    trainer.fit(4, batches, step)
    assert trainer.history.lr == pytest.approx([1.0, 1.0, 0.1, 0.1])
    assert trainer.history.metrics == {}


def test_monitor_errors():
    model = Net()
    opt = mg.optim.SGD(model.parameters(), lr=1.0)
    batches, step, evaluate = task(model)
    plateau = Trainer(model, opt, scheduler=mg.optim.ReduceLROnPlateau(opt), progress=False)
    with pytest.raises(ValueError, match="ReduceLROnPlateau scheduler needs monitor="):
        plateau.fit(1, batches, step, evaluate)
    with pytest.raises(KeyError, match=r"monitor='loss' is not among .*\['accuracy'\]"):
        plateau.fit(1, batches, step, evaluate, monitor="loss")
    with pytest.raises(ValueError, match="monitor='accuracy' needs an evaluate function"):
        Trainer(model, opt, progress=False).fit(1, batches, step, monitor="accuracy")


def train(epochs: int, checkpoint=None, resume_from=None, init_seed: int = 0) -> Trainer:
    """Adam + StepLR + dropout on a shuffled task, optionally resumed from a checkpoint."""
    mg.manual_seed(init_seed)
    model = Net(dropout=0.3)
    opt = mg.optim.Adam(model.parameters(), lr=0.02)
    trainer = Trainer(model, opt, scheduler=mg.optim.StepLR(opt, step_size=1, gamma=0.7),
                      checkpoint=checkpoint, progress=False)
    if resume_from is not None:
        trainer.resume(resume_from)
    batches, step, evaluate = task(model, shuffle=True, trainer=trainer)
    trainer.fit(epochs, batches, step, evaluate)
    return trainer


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path):
    path = tmp_path / "run.npz"
    full = train(4)
    first = train(2, checkpoint=path)
    assert first.history.train_loss == full.history.train_loss[:2]
    mg.manual_seed(123)  # the generator moves on between the runs; resume must restore it
    resumed = train(4, resume_from=path, init_seed=99)
    assert resumed.epoch == 4
    h, g = resumed.history, full.history
    assert (h.train_loss, h.step_loss, h.metrics, h.lr) == (
        g.train_loss, g.step_loss, g.metrics, g.lr)  # bit for bit, dropout and shuffling too
    for p, q in zip(resumed.model.parameters(), full.model.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    assert resumed.optimizer.param_groups[0]["lr"] == full.optimizer.param_groups[0]["lr"]


def test_checkpoint_holds_the_documented_keys_and_resume_checks_it(tmp_path):
    path = tmp_path / "run.npz"
    trainer = train(1, checkpoint=path)
    state = mg.load(path)
    assert {"model", "optimizer", "epoch", "history", "scheduler"} <= set(state)
    assert state["epoch"] == 1
    assert state["history"]["train_loss"] == trainer.history.train_loss
    np.testing.assert_array_equal(state["model"]["out.weight"], trainer.model.out.weight.data)
    mg.save({"model": state["model"]}, tmp_path / "weights.npz")
    with pytest.raises(ValueError, match=r"not a Trainer checkpoint \(missing \['epoch'"):
        trainer.resume(tmp_path / "weights.npz")
    no_scheduler = Trainer(trainer.model, trainer.optimizer, progress=False)
    with pytest.raises(ValueError, match="saved with a scheduler; this trainer has none"):
        no_scheduler.resume(path)
    assert no_scheduler.epoch == 0


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    trainer = train(2)
    trainer.history.plot(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_of_an_empty_history_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="History.plot: nothing to plot"):
        History().plot(tmp_path / "curves.png")


def test_plain_progress_lines(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # as if tqdm were not installed
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    model = Net()
    batches, step, evaluate = task(model)
    for progress in (False, True):
        trainer = Trainer(model, mg.optim.SGD(model.parameters(), lr=0.1), progress=progress,
                          perplexity=True, unit="ex", log_every=2)
        trainer.fit(2, batches, step, evaluate)
        lines = capsys.readouterr().out.splitlines()
        assert [line.split(":")[0] for line in lines] == [
            "epoch 1/2 step 2/4", "epoch 1/2 step 4/4", "epoch 1",
            "epoch 2/2 step 2/4", "epoch 2/2 step 4/4", "epoch 2",
        ]
        loss = trainer.history.train_loss[1]
        assert lines[4].startswith(f"epoch 2/2 step 4/4: loss {loss:.4f} ppl "
                                   f"{math.exp(loss):.2f} accuracy ")
        assert lines[4].endswith(" ex/s")
        accuracy = trainer.history.metrics["accuracy"][1]
        assert lines[5].startswith(f"epoch 2: train loss {loss:.4f} (ppl {math.exp(loss):.2f})"
                                   f" | accuracy {accuracy:.4g} | ")


def test_progress_bar_replaces_the_step_lines(capsys):
    pytest.importorskip("tqdm")
    model = Net()
    batches, step, evaluate = task(model)
    trainer = Trainer(model, mg.optim.SGD(model.parameters(), lr=0.1), log_every=1)
    trainer.fit(1, batches, step, evaluate)
    out, err = capsys.readouterr()
    assert out.startswith("epoch 1: train loss ") and out.count("\n") == 1
    assert "epoch 1/1" in err  # the bar (tqdm writes to stderr)


@pytest.mark.parametrize("limit, steps", [(0, [1]), (8.3, [4, 4]), (8.5, [4, 4, 1])])
def test_time_limit(limit, steps, capsys, monkeypatch):
    # A fake clock: every step takes one second, so an epoch of 4 batches takes 4 seconds.
    clock = [0.0]
    monkeypatch.setattr(trainer_module.time, "perf_counter", lambda: clock[0])
    model = Net()
    batches, step, evaluate = task(model)

    def timed_step(idx):
        clock[0] += 1.0
        return step(idx)

    trainer = Trainer(model, mg.optim.SGD(model.parameters(), lr=0.1), progress=False)
    history = trainer.fit(5, batches, timed_step, evaluate, time_limit=limit)
    # the limit cuts the running epoch after its step; no epoch starts with less than a tenth
    # of the last epoch's time (0.4 s) left
    assert [len(s) for s in history.step_loss] == steps and trainer.epoch == len(steps)
    assert len(history.metrics["accuracy"]) == len(steps)  # a cut epoch is still evaluated
    cut = steps[-1] < 4
    note = f"stopped by the time limit after {steps[-1]} step"
    assert (note in capsys.readouterr().out) == cut


def test_bad_losses_and_arguments():
    model = Net()
    opt = mg.optim.SGD(model.parameters(), lr=0.1)
    trainer = Trainer(model, opt, progress=False)
    before = model.state_dict()
    x, _ = points(4)

    def nan_step(_):
        return model(mg.tensor(x)).sum() * float("nan"), 4

    with pytest.raises(FloatingPointError, match="the loss is nan at epoch 1, step 1"):
        trainer.fit(1, lambda: [None], nan_step)
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(array, before[name])  # stopped before the update
    with pytest.raises(ValueError, match="batches\\(\\) gave no batch"):
        trainer.fit(1, lambda: [], lambda _: None)
    assert trainer.epoch == 0 and trainer.history.train_loss == []
    with pytest.raises(ValueError, match="clip_norm must be positive or None; got 0"):
        Trainer(model, opt, clip_norm=0)
    with pytest.raises(ValueError, match="log_every must be >= 1"):
        Trainer(model, opt, log_every=0)
