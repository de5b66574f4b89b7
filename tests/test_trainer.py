"""Tests for minigrad.train: the step sequence, clipping, evaluation, schedulers, callbacks and
early stopping, checkpoints with an exact resume, the plot and the progress lines, and the
compiled step (the default) against the eager one.

Steps run compiled unless a test says compile=False; a TraceWarning (a step falling back to
eager) fails a test that does not expect it."""

import math
import sys

import numpy as np
import pytest

import minigrad as mg
import minigrad.train as trainer_module
from minigrad.compile import TraceWarning
from minigrad.nn import Dropout, Linear, Module
from minigrad.nn import functional as F
from minigrad.train import EarlyStopping, History, Trainer

pytestmark = pytest.mark.filterwarnings("error::minigrad.compile.TraceWarning")


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
    from a generator seeded by the trainer's epoch, as Trainer's docstring advises. A batch is
    its points and labels, so the step reads no value in Python and runs compiled."""
    x, y = points()

    def batches():
        order = np.arange(len(x))
        if shuffle:
            order = np.random.default_rng(trainer.epoch).permutation(len(x))
        return [(x[idx], y[idx]) for idx in (order[i : i + batch_size]
                                             for i in range(0, len(x), batch_size))]

    def step(batch):
        xb, yb = batch
        return F.cross_entropy(model(mg.tensor(xb)), yb), len(yb)

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
    assert history.epoch_fraction == [1.0] * 8
    assert trainer.fit(0, batches, step, evaluate) is history and trainer.epoch == 8
    trainer.fit(2, batches, step, evaluate)  # two more
    assert trainer.epoch == 10 and len(history.train_loss) == 10


def test_help_states_the_step_contract_and_what_count_means():
    doc = " ".join(Trainer.__doc__.split())  # what help(Trainer) shows first
    assert "``step(batch) -> (loss, count)``" in doc
    assert ("``count`` is the number of items that mean is over (tokens or examples, the ones "
            "not ignored): an int, a NumPy number or a 0-d Tensor. It weighs the batch in the "
            "epoch's ``train_loss``") in doc


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

    # the spy appends to a list, which a replay of a compiled step would not do
    trainer = Trainer(model, SpySGD(model.parameters(), lr=0.1), progress=False, compile=False)
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
    trainer.fit(epochs - trainer.epoch, batches, step, evaluate)  # a run of `epochs` in all
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
    assert state["history"]["epoch_fraction"] == [1.0]
    older = {k: v for k, v in state["history"].items() if k != "epoch_fraction"}
    assert History.from_state_dict(older).epoch_fraction == [1.0]  # saved before it existed
    np.testing.assert_array_equal(state["model"]["out.weight"], trainer.model.out.weight.data)
    mg.save({"model": state["model"]}, tmp_path / "weights.npz")
    with pytest.raises(ValueError, match=r"not a Trainer checkpoint \(missing \['epoch'"):
        trainer.resume(tmp_path / "weights.npz")
    no_scheduler = Trainer(trainer.model, trainer.optimizer, progress=False)
    with pytest.raises(ValueError, match="saved with a scheduler; this trainer has none"):
        no_scheduler.resume(path)
    assert no_scheduler.epoch == 0


def trainer_state(trainer: Trainer) -> dict:
    """Everything ``resume`` may change, copied: weights, optimizer and scheduler states,
    epoch, history and minigrad's random state."""
    return {"model": trainer.model.state_dict(), "optimizer": trainer.optimizer.state_dict(),
            "scheduler": None if trainer.scheduler is None else trainer.scheduler.state_dict(),
            "epoch": trainer.epoch, "history": trainer.history.state_dict(),
            "rng": mg.random.generator().bit_generator.state}


def test_resume_with_another_optimizer_raises_and_changes_nothing(tmp_path):
    path = tmp_path / "run.npz"
    train(1, checkpoint=path)  # Adam + StepLR
    mg.manual_seed(7)
    model = Net(dropout=0.3)
    sgd = mg.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    other = Trainer(model, sgd, scheduler=mg.optim.StepLR(sgd, step_size=1), progress=False)
    batches, step, _ = task(model)
    other.fit(1, batches, step)  # a trainer with a state of its own
    before = trainer_state(other)
    with pytest.raises(ValueError) as error:
        other.resume(path)
    message = str(error.value)
    assert message.startswith(f"Trainer.resume: {str(path)!r} does not fit this trainer; nothing "
                              "was loaded:\n  optimizer: the checkpoint was saved with Adam; "
                              "this trainer's optimizer is SGD. Resume with Adam")
    np.testing.assert_equal(trainer_state(other), before)
    # a checkpoint from before the optimizer's class was saved: told by its settings
    state = mg.load(path)
    del state["optimizer_type"]
    mg.save(state, tmp_path / "older.npz")
    with pytest.raises(ValueError, match=r"optimizer: the checkpoint's param groups lack the "
                                         r"settings \['dampening', 'momentum', 'nesterov'\] of "
                                         r"this SGD; they have \['amsgrad', 'betas', .*: it was "
                                         r"saved by another kind of optimizer"):
        other.resume(tmp_path / "older.npz")
    np.testing.assert_equal(trainer_state(other), before)


def test_resume_names_every_part_that_does_not_fit_and_changes_nothing(tmp_path):
    path = tmp_path / "run.npz"
    train(1, checkpoint=path)  # Net, Adam + StepLR
    model = Net()
    model.out = Linear(8, 3)  # another output layer
    adam = mg.optim.Adam(model.parameters(), lr=0.02)
    other = Trainer(model, adam, scheduler=mg.optim.ReduceLROnPlateau(adam), progress=False)
    before = trainer_state(other)
    with pytest.raises(ValueError) as error:
        other.resume(path)
    assert str(error.value).splitlines()[1:] == [
        "  model: out.weight has shape (2, 8) in the checkpoint and (3, 8) in this Net",
        "  model: out.bias has shape (2,) in the checkpoint and (3,) in this Net",
        "  optimizer: Adam.load_state_dict: state 'exp_avg' of parameter 2 has shape (2, 8); "
        "the parameter has shape (3, 8)",
        "  scheduler: the checkpoint was saved with StepLR; this trainer's scheduler is "
        "ReduceLROnPlateau",
    ]
    np.testing.assert_equal(trainer_state(other), before)
    older = mg.load(path)  # from before the classes were saved: told by the settings
    del older["optimizer_type"], older["scheduler_type"]
    mg.save(older, tmp_path / "older.npz")
    with pytest.raises(ValueError, match=r"scheduler: the checkpoint's scheduler state lacks "
                                         r"the settings \['best', 'cooldown', .*\] of this "
                                         r"ReduceLROnPlateau: it was saved by another kind"):
        other.resume(tmp_path / "older.npz")
    np.testing.assert_equal(trainer_state(other), before)
    model.out = Linear(8, 2)
    adam = mg.optim.Adam(model.parameters(), lr=0.02)
    fits = Trainer(model, adam, scheduler=mg.optim.StepLR(adam, step_size=1), progress=False)
    assert fits.resume(path).epoch == 1  # the same kinds of model, optimizer and scheduler


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    trainer = train(2)
    trainer.history.plot(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_puts_a_cut_epoch_at_its_true_fraction_ticks_whole_epochs_and_names_the_axes(
        monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    saved = []
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig",
                        lambda fig, path, **kwargs: saved.append(fig))
    history = History(train_loss=[1.0, 0.8, 0.7], epoch_seconds=[4, 4, 1], lr=[0.1] * 3,
                      metrics={"valid_ppl": [3.0, 2.5, 2.4], "acc": [0.5, 0.6, 0.7]},
                      step_loss=[[1.1, 0.9, 1.1, 0.9], [0.8] * 4, [0.7]],
                      epoch_fraction=[1.0, 1.0, 0.25])  # the time limit cut epoch 3 at 1/4
    history.plot("never-written.png")
    loss, ppl, acc = saved[0].axes
    assert [ax.get_title() for ax in saved[0].axes] == [
        "training loss", "validation perplexity", "accuracy"]
    assert [ax.get_ylabel() for ax in saved[0].axes] == ["loss", "perplexity", "accuracy"]
    assert [ax.get_xlabel() for ax in saved[0].axes] == ["epoch"] * 3
    np.testing.assert_allclose(loss.lines[0].get_xdata(), [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(loss.lines[2].get_xdata(), [2.25])  # the cut epoch's one step
    for line in (loss.lines[-1], ppl.lines[0], acc.lines[0]):  # epoch means and metrics
        np.testing.assert_allclose(line.get_xdata(), [1, 2, 2.25])
    for ax in saved[0].axes:
        ticks = ax.get_xticks()
        assert len(ticks) >= 3 and np.array_equal(ticks, np.round(ticks))


def test_plot_of_an_empty_history_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="History.plot: nothing to plot"):
        History().plot(tmp_path / "curves.png")


def without_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # as if tqdm were not installed
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)


def test_plain_progress_lines_label_the_running_loss_and_the_last_evaluation(capsys,
                                                                            monkeypatch):
    without_tqdm(monkeypatch)
    model = Net()
    batches, step, evaluate = task(model)
    for progress in ("lines", True):  # True without tqdm: plain lines too
        trainer = Trainer(model, mg.optim.SGD(model.parameters(), lr=0.1), progress=progress,
                          perplexity=True, unit="ex", log_every=2)
        trainer.fit(2, batches, step, evaluate)
        lines = capsys.readouterr().out.splitlines()
        assert [line.split(":")[0] for line in lines] == [
            "epoch 1/2 step 2/4", "epoch 1/2 step 4/4", "epoch 1/2",
            "epoch 2/2 step 2/4", "epoch 2/2 step 4/4", "epoch 2/2",
        ]
        first, loss = trainer.history.train_loss
        assert lines[1].startswith(f"epoch 1/2 step 4/4: train loss {first:.4f} ppl ")
        assert "after epoch" not in lines[1]  # nothing evaluated yet
        previous, accuracy = trainer.history.metrics["accuracy"]
        assert lines[4].startswith(f"epoch 2/2 step 4/4: train loss {loss:.4f} ppl "
                                   f"{math.exp(loss):.2f} | after epoch 1: accuracy "
                                   f"{previous:.4g} | ")
        assert lines[4].endswith(" ex/s")
        assert lines[5].startswith(f"epoch 2/2: train loss {loss:.4f} (ppl {math.exp(loss):.2f})"
                                   f" | accuracy {accuracy:.4g} | ")


def test_progress_counts_the_whole_run_across_fit_calls(capsys, monkeypatch):
    without_tqdm(monkeypatch)
    model = Net()
    batches, step, evaluate = task(model)
    trainer = Trainer(model, mg.optim.SGD(model.parameters(), lr=0.1), progress="lines",
                      log_every=4)
    trainer.fit(1, batches, step, evaluate)
    trainer.fit(2, batches, step, evaluate)
    assert [line.split(":")[0] for line in capsys.readouterr().out.splitlines()] == [
        "epoch 1/1 step 4/4", "epoch 1/1", "epoch 2/3 step 4/4", "epoch 2/3",
        "epoch 3/3 step 4/4", "epoch 3/3",
    ]
    assert trainer.epoch == 3 and len(trainer.history.train_loss) == 3


def test_progress_bar_replaces_the_step_lines_and_counts_the_whole_run(capsys):
    pytest.importorskip("tqdm")
    model = Net()
    batches, step, evaluate = task(model)
    trainer = Trainer(model, mg.optim.SGD(model.parameters(), lr=0.1), log_every=1)
    trainer.fit(1, batches, step, evaluate)
    out, err = capsys.readouterr()
    assert out.startswith("epoch 1/1: train loss ") and out.count("\n") == 1
    assert "epoch 1/1" in err  # the bar (tqdm writes to stderr)
    trainer.fit(3, batches, step, evaluate)
    out, err = capsys.readouterr()
    assert "epoch 2/4" in err and "epoch 4/4" in err and "epoch 1/3" not in err


@pytest.mark.parametrize("tqdm_installed", [True, False])
def test_progress_false_prints_nothing(tqdm_installed, capsys, monkeypatch):
    if not tqdm_installed:
        without_tqdm(monkeypatch)
    mg.manual_seed(0)
    model = Net()
    batches, step, evaluate = task(model)
    trainer = Trainer(model, mg.optim.SGD(model.parameters(), lr=0.1), progress=False,
                      perplexity=True, log_every=1)
    values = iter([1.0, 2.0, 3.0])
    history = trainer.fit(5, batches, step, lambda: {**evaluate(), "loss": next(values)},
                          callbacks=[EarlyStopping("loss", patience=2)])  # stops, restores
    assert trainer.epoch == 3 and len(history.step_loss) == 3  # trained and recorded
    assert capsys.readouterr() == ("", "")


def test_progress_must_be_true_lines_or_false():
    model = Net()
    with pytest.raises(ValueError, match=r"Trainer: progress must be True \(a bar\), 'lines' "
                                         r"\(plain lines\) or False \(nothing printed\); got "
                                         r"'bar'"):
        Trainer(model, mg.optim.SGD(model.parameters(), lr=0.1), progress="bar")


def fit_on_a_fake_clock(monkeypatch, time_limit: float, known_length: bool = True,
                        **options) -> tuple[Trainer, History]:
    """Fit a Net on ``task`` for up to 5 epochs with a clock that moves one second per step; the
    batches come as a list (``known_length``) or as an iterator. The timed step changes a
    list's contents, which a replay would not do, so it runs with compile=False."""
    clock = [0.0]
    monkeypatch.setattr(trainer_module.time, "perf_counter", lambda: clock[0])
    model = Net()
    batches, step, evaluate = task(model)

    def timed_step(batch):
        clock[0] += 1.0
        return step(batch)

    trainer = Trainer(model, mg.optim.SGD(model.parameters(), lr=0.1), progress="lines",
                      compile=False, **options)
    epoch_batches = batches if known_length else lambda: iter(batches())
    return trainer, trainer.fit(5, epoch_batches, timed_step, evaluate, time_limit=time_limit)


@pytest.mark.parametrize("limit, steps, left", [
    (0, [1], "0:00"), (8.3, [4, 4], "0:07"), (8.5, [4, 4, 1], "0:08"), (125, [4] * 5, "2:04"),
])
def test_time_limit(limit, steps, left, capsys, monkeypatch):
    # every step takes one second, so an epoch of 4 batches takes 4 seconds
    trainer, history = fit_on_a_fake_clock(monkeypatch, limit, log_every=1)
    # the limit cuts the running epoch after its step; no epoch starts with less than a tenth
    # of the last epoch's time (0.4 s) left
    assert [len(s) for s in history.step_loss] == steps and trainer.epoch == len(steps)
    assert len(history.metrics["accuracy"]) == len(steps)  # a cut epoch is still evaluated
    cut = steps[-1] < 4
    assert history.epoch_fraction == [1.0] * (len(steps) - cut) + [0.25] * cut
    out = capsys.readouterr().out
    assert out.splitlines()[0].endswith(f"items/s | {left} left")  # after the first step
    note = f"stopped by the time limit after {steps[-1]} step (25% of the epoch)"
    assert (note in out) == cut


def test_a_cut_epoch_of_unknown_length_is_measured_against_the_last_whole_one(monkeypatch):
    _, history = fit_on_a_fake_clock(monkeypatch, 5.5, known_length=False)
    assert [len(s) for s in history.step_loss] == [4, 2]
    assert history.epoch_fraction == [1.0, 0.5]


def test_a_first_epoch_of_unknown_length_cut_short_still_says_so(capsys, monkeypatch):
    _, history = fit_on_a_fake_clock(monkeypatch, 2.5, known_length=False)
    assert [len(s) for s in history.step_loss] == [3]
    assert history.epoch_fraction == [1.0]  # nothing to measure it against
    out = capsys.readouterr().out
    assert out.rstrip().endswith("stopped by the time limit after 3 steps")


def test_callbacks_run_after_each_recorded_epoch_before_the_checkpoint_and_can_stop(tmp_path):
    path = tmp_path / "run.npz"
    model = Net()
    batches, step, evaluate = task(model)
    trainer = Trainer(model, mg.optim.SGD(model.parameters(), lr=0.1), checkpoint=path,
                      progress=False)
    seen = []

    def callback(t):
        assert t is trainer and t.model.training and mg.is_grad_enabled()
        seen.append((t.epoch, len(t.history.train_loss), len(t.history.metrics["accuracy"])))
        assert mg.load(path)["epoch"] == t.epoch - 1 if t.epoch > 1 else not path.exists()
        if t.epoch == 3:
            t.should_stop = True

    trainer.fit(10, batches, step, evaluate, callbacks=[callback, lambda t: seen.append("next")])
    assert seen == [(1, 1, 1), "next", (2, 2, 2), "next", (3, 3, 3), "next"]
    assert trainer.epoch == 3 and mg.load(path)["epoch"] == 3
    trainer.fit(1, batches, step, evaluate, callbacks=callback)  # one callable; stop is reset
    assert trainer.epoch == 4 and seen[-1] == (4, 4, 4)


def run_watched(values, stopper, epochs=10):
    """Fit with ``evaluate()`` giving ``values`` in turn (as "valid_loss" and "accuracy") and
    ``stopper`` as a callback; returns the trainer and the weights after each epoch."""
    mg.manual_seed(0)
    model = Net()
    trainer = Trainer(model, mg.optim.SGD(model.parameters(), lr=0.5), progress="lines")
    batches, step, _ = task(model)
    values = iter(values)

    def evaluate():
        value = next(values)
        return {"valid_loss": value, "accuracy": value}

    weights = []
    trainer.fit(epochs, batches, step, evaluate,
                callbacks=[lambda t: weights.append(t.model.state_dict()), stopper])
    return trainer, weights


def assert_weights(model, state):
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, state[name])


def test_early_stopping_stops_after_patience_epochs_without_improvement_and_restores_the_best(
        capsys):
    stopper = EarlyStopping("valid_loss", patience=2)
    trainer, weights = run_watched([3.0, 2.0, 2.5, 2.1, 1.0, 0.5], stopper)
    assert trainer.epoch == 4 and len(trainer.history.train_loss) == 4
    assert (stopper.best, stopper.best_epoch) == (2.0, 2)
    assert_weights(trainer.model, weights[1])  # back at epoch 2
    assert ("early stopping: valid_loss has not improved for 2 epochs (best 2 after epoch 2); "
            "the model is back at its weights of epoch 2") in capsys.readouterr().out


def test_early_stopping_in_max_mode_with_min_delta_and_without_restoring():
    stopper = EarlyStopping("accuracy", patience=3, mode="max", restore_best=False)
    trainer, weights = run_watched([0.5, 0.6, 0.55, 0.7, 0.65, 0.6, 0.7, 0.9], stopper)
    assert trainer.epoch == 7 and stopper.best_epoch == 4  # equal to the best is no gain
    assert stopper.best_state is None
    assert_weights(trainer.model, weights[-1])  # the last weights stay
    stopper = EarlyStopping("valid_loss", patience=2, min_delta=0.1)
    trainer, _ = run_watched([3.0, 2.0, 1.95, 1.92, 1.0], stopper)
    assert trainer.epoch == 4 and stopper.best == 2.0


def test_early_stopping_that_never_fires_keeps_the_best_weights_at_hand():
    stopper = EarlyStopping("valid_loss", patience=2)
    trainer, weights = run_watched([3.0, 2.0, 2.5, 1.5, 1.8], stopper, epochs=5)
    assert trainer.epoch == 5 and not trainer.should_stop and stopper.best_epoch == 4
    assert_weights(trainer.model, weights[4])
    trainer.model.load_state_dict(stopper.best_state)
    assert_weights(trainer.model, weights[3])


@pytest.mark.parametrize("kwargs, match", [
    (dict(patience=0), "EarlyStopping: patience must be an int >= 1; got 0"),
    (dict(patience=1.5), "patience must be an int >= 1; got 1.5"),
    (dict(mode="avg"), "EarlyStopping: mode must be 'min' or 'max'; got 'avg'"),
    (dict(min_delta=-0.1), "EarlyStopping: min_delta must be >= 0; got -0.1"),
])
def test_early_stopping_rejects_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EarlyStopping("valid_loss", **kwargs)


def test_early_stopping_names_a_missing_metric():
    model = Net()
    batches, step, evaluate = task(model)
    trainer = Trainer(model, mg.optim.SGD(model.parameters(), lr=0.1), progress=False)
    with pytest.raises(KeyError, match=r"EarlyStopping: monitor='valid_loss' is not among the "
                                       r"metrics evaluate\(\) returned: \['accuracy'\]"):
        trainer.fit(2, batches, step, evaluate, callbacks=[EarlyStopping("valid_loss")])


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
    for epochs in (-1, 2.0, True):
        with pytest.raises(ValueError, match=r"Trainer.fit: epochs must be an int >= 0 \(how "
                                             rf"many more epochs to train\); got {epochs}"):
            trainer.fit(epochs, lambda: [None], nan_step)
    with pytest.raises(TypeError, match="a callback must be callable as callback\\(trainer\\); "
                                        "got 'stop'"):
        trainer.fit(1, lambda: [None], nan_step, callbacks=["stop"])
    assert trainer.epoch == 0


def fit_points(compile: bool, step_of=None, epochs: int = 3, batch_size: int = 16,
               dropout: float = 0.3) -> Trainer:
    """Adam on the shuffled points task from seed 0, the step compiled or not; ``step_of``
    makes another step from the model and the task's own step."""
    mg.manual_seed(0)
    model = Net(dropout)
    trainer = Trainer(model, mg.optim.Adam(model.parameters(), lr=0.02), progress=False,
                      compile=compile)
    batches, step, _ = task(model, batch_size, shuffle=True, trainer=trainer)
    trainer.fit(epochs, batches, step if step_of is None else step_of(model, step))
    return trainer


def assert_same_training(trainer: Trainer, reference: Trainer, rtol: float = 1e-5) -> None:
    """The same losses at every step and the same parameters at the end, within ``rtol``."""
    np.testing.assert_allclose(np.concatenate(trainer.history.step_loss),
                               np.concatenate(reference.history.step_loss), rtol=rtol)
    for p, q in zip(trainer.model.parameters(), reference.model.parameters()):
        np.testing.assert_allclose(p.data, q.data, rtol=rtol, atol=1e-6)


def test_a_compiled_fit_trains_as_the_eager_one_does_dropout_included():
    compiled, eager = fit_points(compile=True), fit_points(compile=False)
    assert len(compiled.compiled_step.traces) == 1 and eager.compiled_step is None
    assert sum(map(len, compiled.history.step_loss)) == 12
    assert compiled.history.train_loss[-1] < compiled.history.train_loss[0]
    assert_same_training(compiled, eager)


def test_the_step_is_traced_once_per_batch_shape_across_fit_calls():
    mg.manual_seed(0)
    model = Net()
    trainer = Trainer(model, mg.optim.SGD(model.parameters(), lr=0.1), progress=False)
    batches, step, _ = task(model, batch_size=24)  # batches of 24, 24 and 16 points
    trainer.fit(2, batches, step)
    compiled = trainer.compiled_step
    traces = compiled.traces
    assert [t.signature.split("),")[0] for t in traces] == [
        "(f32[24,2], i64[24]", "(f32[16,2], i64[16]"]
    trainer.fit(2, batches, step)
    assert trainer.compiled_step is compiled and len(compiled.traces) == 2  # nothing new
    assert all(now is then for now, then in zip(compiled.traces, traces))
    trainer.fit(1, batches, lambda batch: step(batch))  # another step: compiled anew
    assert trainer.compiled_step is not compiled and len(trainer.compiled_step.traces) == 2


def test_a_step_that_reads_a_value_trains_eagerly_after_one_warning():
    def reading(model, step):
        def step_with_item(batch):
            loss, count = step(batch)
            return loss * (1.0 if loss.item() > 0 else 2.0), count  # a value read in Python
        return step_with_item

    with pytest.warns(TraceWarning) as warned:
        compiled = fit_points(compile=True, step_of=reading)
    message = str(warned[0].message)
    assert len(warned) == 1 and "Tensor.item() reads the output of CrossEntropy" in message
    assert "test_trainer.py" in message  # the line that reads it
    assert "reading.<locals>.step_with_item eagerly for this signature" in message
    assert compiled.compiled_step.fallbacks and not compiled.compiled_step.traces
    assert_same_training(compiled, fit_points(compile=False, step_of=reading), rtol=0)


def test_a_step_that_carries_state_between_batches_gives_the_eager_losses():
    def carrying(model, step):
        carried = None

        def step_with_state(batch):  # the mean hidden state of the last batch is added
            nonlocal carried
            xb, yb = batch
            h = model.hidden(mg.tensor(xb)).tanh()
            if carried is not None:
                h = h + carried
            carried = h.detach().mean(axis=0)
            return F.cross_entropy(model.out(h), yb), len(yb)
        return step_with_state

    with pytest.warns(TraceWarning, match="sets carried while tracing") as warned:
        compiled = fit_points(compile=True, step_of=carrying, dropout=0.0)
    assert len(warned) == 1
    assert_same_training(compiled, fit_points(compile=False, step_of=carrying, dropout=0.0),
                         rtol=0)


def test_compile_false_runs_the_step_as_given_at_every_step():
    calls = []

    def counting(model, step):
        def step_counted(batch):
            calls.append(len(batch[1]))  # a list's contents: a replay would not append
            return step(batch)
        return step_counted

    trainer = fit_points(compile=False, step_of=counting, epochs=2)
    assert calls == [16] * 8 and trainer.compiled_step is None
    calls.clear()
    with pytest.warns(TraceWarning, match=r"sets calls\[0\] while tracing"):
        fit_points(compile=True, step_of=counting, epochs=2)
    assert calls == [16] * 8  # a replay would not append: the step runs eagerly instead


@pytest.mark.parametrize("compile", [True, False])
@pytest.mark.parametrize("count_of", [
    lambda yb: (mg.tensor(yb) >= 0).sum(),  # a 0-d Tensor, computed with ops
    lambda yb: np.int64(len(yb)),  # a NumPy integer
])
def test_a_count_may_be_a_0d_tensor_or_a_numpy_number(compile, count_of):
    def counted(model, step):
        def step_with_count(batch):
            return step(batch)[0], count_of(batch[1])
        return step_with_count

    trainer = fit_points(compile, step_of=counted, epochs=1, batch_size=24)
    losses = trainer.history.step_loss[0]
    assert trainer.history.train_loss[0] == pytest.approx(
        (24 * losses[0] + 24 * losses[1] + 16 * losses[2]) / 64)


@pytest.mark.parametrize("count", [mg.ones(2), "16", True])
def test_a_count_that_is_not_one_number_is_an_error_before_any_update(count):
    model = Net()
    before = model.state_dict()
    trainer = Trainer(model, mg.optim.SGD(model.parameters(), lr=0.1), progress=False)
    x, y = points(4)
    with pytest.raises(TypeError, match=r"Trainer.fit: step must return \(loss, count\) with "
                                        r"count a number or a 0-d Tensor .*; got "):
        trainer.fit(1, lambda: [(x, y)], lambda b: (F.cross_entropy(model(mg.tensor(b[0])),
                                                                   b[1]), count))
    assert_weights(model, before)


def test_a_callback_with_on_train_batch_end_is_also_called_after_every_step():
    mg.manual_seed(0)
    model = Net()
    trainer = Trainer(model, mg.optim.SGD(model.parameters(), lr=0.1), progress=False)
    batches, step, evaluate = task(model)
    events, weights = [], [model.out.bias.data.copy()]

    class Watcher:
        def on_train_batch_end(self, t, step, loss):
            assert t is trainer and type(loss) is float
            events.append((step, loss, t.epoch))
            weights.append(model.out.bias.data.copy())

        def __call__(self, t):
            events.append(("epoch", t.epoch))

    trainer.fit(2, batches, step, evaluate, callbacks=[Watcher(), lambda t: events.append("plain")])
    trainer.fit(1, batches, step, evaluate, callbacks=Watcher())  # steps are counted on
    losses = [loss for epoch in trainer.history.step_loss for loss in epoch]
    steps = [(k + 1, loss, k // 4) for k, loss in enumerate(losses)]
    assert events == (steps[:4] + [("epoch", 1), "plain"] + steps[4:8] + [("epoch", 2), "plain"]
                      + steps[8:] + [("epoch", 3)])
    # each call comes after its optimizer step: it sees new weights, the last call the final ones
    assert all(not np.array_equal(a, b) for a, b in zip(weights, weights[1:]))
    np.testing.assert_array_equal(weights[-1], model.out.bias.data)
