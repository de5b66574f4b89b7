"""A small reusable training loop: progress bar, gradient clipping, learning-rate schedules,
evaluation and callbacks after every epoch (early stopping is one) or step (``mg.viz.Live``),
checkpoints with resume, and a plot of the curves.

    trainer = Trainer(model, optimizer, clip_norm=5.0, checkpoint="run.npz")
    history = trainer.fit(10, batches=lambda: train_data, step=step, evaluate=evaluate,
                          callbacks=[EarlyStopping("valid_loss", patience=3)])
    history.plot("curves.png")

``step(batch) -> (loss, count)`` computes the loss of one batch (``count`` is its number of
tokens or examples: an int, a NumPy number or a 0-d Tensor); the trainer does the rest of each
step::

    model.train(); loss, count = step(batch); optimizer.zero_grad(); loss.backward()
    clip_grad_norm_(model.parameters(), clip_norm)   # if clip_norm
    optimizer.step()

The step runs compiled, ``mg.compile(step)``, unless ``Trainer(..., compile=False)``: it is
traced once per batch signature (the shapes and dtypes of the batch's arrays) and replayed at
later steps, its backward too. The step sees the batch as given in both modes: its NumPy
arrays are NumPy arrays, so ``lengths.sum()`` is a NumPy integer compiled as eagerly (the
compiled step records NumPy's work on them and replays it). A step that reads a value in Python
(``int(mask.sum())``, ``.item()``), draws from ``np.random``, or changes what it reads (a
hidden state carried from batch to batch, ``self.state = h``; appending to a list) runs eagerly
after one ``TraceWarning`` that says why, so results are never wrong (see ``mg.compile`` for
what a replay cannot see).

tqdm and matplotlib are optional (the ``examples`` extra): without tqdm the progress is printed
as plain lines, and only ``History.plot`` needs matplotlib.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import minigrad as mg
from minigrad import random as mg_random
from minigrad.compile import CompiledFunction
from minigrad.nn import Module
from minigrad.nn.utils import clip_grad_norm_
from minigrad.optim import Optimizer, ReduceLROnPlateau

_WORDS = {"valid": "validation", "val": "validation", "dev": "validation", "train": "training",
          "ppl": "perplexity", "acc": "accuracy", "lr": "learning rate"}
"""Abbreviations in metric names, spelled out in plot titles."""


def _readable(name: str) -> str:
    """A metric's key as words for a plot: ``"valid_ppl"`` -> ``"validation perplexity"``
    (words joined by ``_`` are looked up in a small table of abbreviations; others are kept)."""
    return " ".join(_WORDS.get(word, word) for word in name.split("_"))


@dataclass
class History:
    """What ``Trainer.fit`` measured, one entry per epoch (``step_loss``: one list per epoch).

    ``train_loss`` is the count-weighted mean training loss of the epoch, ``metrics`` holds the
    values ``evaluate()`` returned (``{"valid_ppl": [...]}``), ``lr`` the first param group's
    learning rate during the epoch, ``epoch_seconds`` its wall time, evaluation included, and
    ``epoch_fraction`` how much of its batches it ran (1.0 unless the time limit cut it short).
    """

    train_loss: list[float] = field(default_factory=list)
    metrics: dict[str, list[float]] = field(default_factory=dict)
    epoch_seconds: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    step_loss: list[list[float]] = field(default_factory=list)
    epoch_fraction: list[float] = field(default_factory=list)

    def state_dict(self) -> dict[str, Any]:
        """The history as plain lists and dicts (what checkpoints store)."""
        return {"train_loss": list(self.train_loss), "metrics": dict(self.metrics),
                "epoch_seconds": list(self.epoch_seconds), "lr": list(self.lr),
                "step_loss": [list(losses) for losses in self.step_loss],
                "epoch_fraction": list(self.epoch_fraction)}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> History:
        """Rebuild a history from ``state_dict()``."""
        return cls(list(state["train_loss"]), {k: list(v) for k, v in state["metrics"].items()},
                   list(state["epoch_seconds"]), list(state["lr"]),
                   [list(losses) for losses in state["step_loss"]],
                   list(state.get("epoch_fraction", [1.0] * len(state["train_loss"]))))

    def plot(self, path: str | os.PathLike) -> None:
        """Save a PNG: the training loss (every step, and the epoch means), then each metric,
        against the epoch. An epoch cut short by the time limit ends at the fraction of it that
        ran; ticks fall on whole epochs; titles spell the metric names out (``valid_ppl``:
        "validation perplexity"). Needs matplotlib."""
        if not self.train_loss:
            raise ValueError("History.plot: nothing to plot (no epoch has been recorded)")
        from matplotlib.figure import Figure  # optional dependency; Figure needs no backend
        from matplotlib.ticker import MaxNLocator

        panels = 1 + len(self.metrics)
        fig = Figure(figsize=(4.5 * panels, 3.5), layout="constrained")
        axes = fig.subplots(1, panels, squeeze=False)[0]
        ends = [epoch + fraction for epoch, fraction in enumerate(self.epoch_fraction)]
        for epoch, (losses, fraction) in enumerate(zip(self.step_loss, self.epoch_fraction)):
            xs = [epoch + fraction * (i + 1) / len(losses) for i in range(len(losses))]
            axes[0].plot(xs, losses, color="tab:blue", alpha=0.35, linewidth=0.8,
                         label="each step" if epoch == 0 else None)
        axes[0].plot(ends, self.train_loss, "o-", color="tab:blue", label="epoch mean")
        axes[0].set(title="training loss", ylabel="loss")
        axes[0].legend()
        for ax, (name, values) in zip(axes[1:], self.metrics.items()):
            ax.plot(ends[-len(values):], values, "o-", color="tab:orange")
            ax.set(title=_readable(name), ylabel=_readable(name).split()[-1])
        for ax in axes:
            ax.set(xlabel="epoch", xlim=(0, max(1, math.ceil(ends[-1]))))
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
        fig.savefig(path, dpi=100)


class EarlyStopping:
    """A ``fit`` callback that stops training once ``monitor`` (a key of ``evaluate()``'s dict)
    has not improved for ``patience`` epochs in a row.

    ``mode="min"`` for a loss or a perplexity, ``"max"`` for an accuracy: an epoch improves on
    the best so far when its value is lower (higher) by more than ``min_delta``. With
    ``restore_best`` (the default) the model gets the weights of its best epoch back when this
    stops the run, so it ends as it was at its best (the history still records every epoch);
    ``best_state`` holds those weights, for a run that ends otherwise (its epochs done, or the
    time limit) and keeps its last ones. It counts the epochs it has seen: a new one (e.g.
    after ``resume``) starts afresh, and a ``fit`` called again after it stopped the run stops
    after the first epoch that does not improve.
    """

    def __init__(self, monitor: str, patience: int = 3, mode: str = "min",
                 min_delta: float = 0.0, restore_best: bool = True) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"EarlyStopping: patience must be an int >= 1; got {patience!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'min' or 'max'; got {mode!r}")
        if not min_delta >= 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0; got {min_delta}")
        self.monitor, self.patience, self.mode = monitor, patience, mode
        self.min_delta, self.restore_best = min_delta, restore_best
        self.best: float | None = None
        self.best_epoch = 0
        self.best_state: dict[str, Any] | None = None
        self.wait = 0

    def __call__(self, trainer: Trainer) -> None:
        """Look at the epoch just recorded; after ``patience`` epochs without improvement, set
        ``trainer.should_stop`` (and restore the best weights)."""
        values = trainer.history.metrics.get(self.monitor)
        if not values:
            raise KeyError(f"EarlyStopping: monitor={self.monitor!r} is not among the metrics "
                           f"evaluate() returned: {sorted(trainer.history.metrics)}")
        value = values[-1]
        gain = math.inf if self.best is None else (
            self.best - value if self.mode == "min" else value - self.best)
        if gain > self.min_delta:
            self.best, self.best_epoch, self.wait = value, trainer.epoch, 0
            if self.restore_best:
                self.best_state = trainer.model.state_dict()
            return
        self.wait += 1
        if self.wait >= self.patience:
            trainer.should_stop = True
            text = (f"early stopping: {self.monitor} has not improved for {self.wait} epochs "
                    f"(best {self.best:.4g} after epoch {self.best_epoch})")
            if self.restore_best:
                trainer.model.load_state_dict(self.best_state)
                text += f"; the model is back at its weights of epoch {self.best_epoch}"
            trainer._say(text)


Callback = Callable[["Trainer"], Any]
"""A per-epoch hook: called as ``callback(trainer)``; may set ``trainer.should_stop``. One
with an ``on_train_batch_end(trainer, step, loss)`` method is also called after every step."""


class Trainer:
    """Train ``model`` with ``optimizer``: clip gradients to ``clip_norm`` (None: no clipping),
    step ``scheduler`` once per epoch (a ``ReduceLROnPlateau`` on ``fit``'s ``monitor``
    metric), save a checkpoint to ``checkpoint`` after every epoch, and show progress.

    The step contract: ``fit(epochs, batches, step)`` calls ``step(batch) -> (loss, count)``
    on every batch. ``loss`` is the batch's mean loss, a 0-d Tensor with a graph (the trainer
    calls ``loss.backward()``, clips and steps the optimizer); ``count`` is the number of items
    that mean is over (tokens or examples, the ones not ignored): an int, a NumPy number or a
    0-d Tensor. It weighs the batch in the epoch's ``train_loss`` (the mean over items, not
    over batches) and makes the throughput (``count`` per second, in ``unit``)::

        def step(batch):
            src, tgt = batch
            return model.loss(src, tgt), mg.ne(tgt[:, 1:], pad_id).sum()  # tokens scored

    ``progress``: True shows a tqdm bar during an epoch (plain lines every ``log_every``
    steps when tqdm is not installed) and one summary line after it; ``"lines"`` shows plain
    lines instead of the bar (for logs); False prints nothing at all (``history`` records the
    same). ``log_every`` defaults to a tenth of an epoch, or 100 steps when the epoch's length
    is unknown; ``perplexity`` also shows exp(loss).

    With ``compile`` (the default) ``fit`` runs ``mg.compile(step)`` instead of ``step``: traced
    once per batch signature (shapes, dtypes), then replayed. The compiled step is kept, so a
    second ``fit`` with the same step traces nothing again (``compiled_step`` shows its
    ``traces``). A step that reads a value in Python (``.item()``), draws from ``np.random`` or
    changes what it reads (a carried hidden state, a list it appends to) runs eagerly after one
    ``TraceWarning``; ``compile=False`` runs ``step`` as given (see the module docstring).

    ``epoch`` counts the epochs trained so far, across ``fit`` calls; ``history`` holds them;
    ``should_stop``, set by a callback, ends the running ``fit`` after its epoch.

    Callbacks run after every epoch, as ``callback(trainer)``. A callback that also has a
    method ``on_train_batch_end(trainer, step, loss)`` (Lightning's and Keras's name) is
    called after every optimizer step too: ``step`` counts the steps of the whole run from 1
    (the epochs in ``history`` included, so it goes on after ``resume``) and ``loss`` is the
    step's loss as a float. ``mg.viz.Live`` is one; plain functions and ``EarlyStopping`` are
    called once per epoch only.

    Resuming (``resume``) restores the model, the optimizer, the scheduler, the history, the
    epoch count and minigrad's random generator (dropout), so training continues exactly as
    an uninterrupted run would, provided the caller's ``batches()`` yields the same batches in
    the same order for an epoch (e.g. shuffle with ``np.random.default_rng(seed + epoch)``,
    where ``epoch`` is ``trainer.epoch``, rather than one generator drawn across epochs). To
    finish a run planned for ``n`` epochs, ``fit(n - trainer.epoch, ...)`` after resuming.
    """

    def __init__(self, model: Module, optimizer: Optimizer, clip_norm: float | None = 5.0,
                 scheduler: Any = None, checkpoint: str | os.PathLike | None = None,
                 progress: bool | str = True, perplexity: bool = False, unit: str = "items",
                 log_every: int | None = None, compile: bool = True) -> None:
        if progress not in (True, False, "lines"):
            raise ValueError(f"Trainer: progress must be True (a bar), 'lines' (plain lines) or "
                             f"False (nothing printed); got {progress!r}")
        if clip_norm is not None and not clip_norm > 0:
            raise ValueError(f"Trainer: clip_norm must be positive or None; got {clip_norm}")
        if log_every is not None and log_every < 1:
            raise ValueError(f"Trainer: log_every must be >= 1 or None; got {log_every}")
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.clip_norm, self.checkpoint = clip_norm, checkpoint
        self.progress, self.perplexity, self.unit, self.log_every = (
            progress, perplexity, unit, log_every)
        self.compile = compile
        self._compiled: tuple[Callable, CompiledFunction] | None = None  # (step, its compile)
        self.epoch = 0
        self.should_stop = False
        self.history = History()

    def fit(self, epochs: int, batches: Callable[[], Iterable], step: Callable[[Any], tuple],
            evaluate: Callable[[], dict[str, float]] | None = None, monitor: str | None = None,
            time_limit: float | None = None,
            callbacks: Iterable[Callback] | Callback = ()) -> History:
        """Train ``epochs`` more epochs (0: none) and return the history.

        Each epoch runs ``step`` on every batch of ``batches()``, then ``evaluate()`` under
        ``model.evaluating()`` (its dict goes into ``history.metrics``), steps the scheduler,
        calls each of ``callbacks`` as ``callback(trainer)`` (the epoch is in ``history`` and
        counted in ``epoch`` by then) and saves the checkpoint. A callback with a method
        ``on_train_batch_end`` is also called as ``callback.on_train_batch_end(trainer, step,
        loss)`` after each optimizer step (see ``Trainer``). A callback that sets
        ``trainer.should_stop = True`` (as ``EarlyStopping`` does) ends ``fit`` after that
        epoch. The progress counts the whole run: ``fit(3)`` then ``fit(7)`` shows epochs
        1/3..3/3, then 4/10..10/10.

        With ``time_limit`` (seconds from the call), the epoch running when the limit passes
        ends after its current step; it is evaluated, recorded and counts as done, and ``fit``
        returns. No epoch starts with less than a tenth of the previous epoch's time left. The
        progress shows the time left.
        """
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 0:
            raise ValueError(f"Trainer.fit: epochs must be an int >= 0 (how many more epochs "
                             f"to train); got {epochs!r}")
        if isinstance(self.scheduler, ReduceLROnPlateau) and monitor is None:
            raise ValueError("Trainer.fit: a ReduceLROnPlateau scheduler needs monitor= (the "
                             "key of evaluate()'s dict it steps on)")
        if monitor is not None and evaluate is None:
            raise ValueError(f"Trainer.fit: monitor={monitor!r} needs an evaluate function")
        callbacks = [callbacks] if callable(callbacks) else list(callbacks)
        for callback in callbacks:
            if not callable(callback):
                raise TypeError(f"Trainer.fit: a callback must be callable as "
                                f"callback(trainer); got {callback!r}")
        step_hooks = [callback.on_train_batch_end for callback in callbacks
                      if hasattr(callback, "on_train_batch_end")]
        end = self.epoch + epochs
        deadline = None if time_limit is None else time.perf_counter() + time_limit
        self.should_stop = False
        step = self._runnable(step)
        while self.epoch < end and not self.should_stop:
            if deadline is not None and self.history.epoch_seconds and (
                    deadline - time.perf_counter() < 0.1 * self.history.epoch_seconds[-1]):
                break
            start, lr = time.perf_counter(), self.optimizer.param_groups[0]["lr"]
            losses, loss, rate, cut, fraction = self._train_epoch(batches(), step, end,
                                                                  deadline, step_hooks)
            metrics = self._evaluate_and_schedule(evaluate, monitor)
            self.epoch += 1
            self._record(losses, loss, metrics, lr, time.perf_counter() - start, rate, cut,
                         fraction, end)
            for callback in callbacks:
                callback(self)
            if self.checkpoint is not None:
                self.save(self.checkpoint)
        return self.history

    @property
    def compiled_step(self) -> CompiledFunction | None:
        """``mg.compile(step)`` of the step the last compiled ``fit`` ran (None before one, or
        with ``compile=False``); its ``traces`` are the batch signatures traced so far."""
        return None if self._compiled is None else self._compiled[1]

    def _runnable(self, step: Callable) -> Callable:
        """``step`` compiled (the same compiled object while ``fit`` gets the same step); as
        given without ``compile``."""
        if not self.compile:
            return step
        if self._compiled is None or self._compiled[0] != step:
            self._compiled = (step, mg.compile(step))
        return self._compiled[1]

    def _train_epoch(self, batches: Iterable, step: Callable, end: int, deadline: float | None,
                     step_hooks: list[Callable[[Trainer, int, float], Any]]
                     ) -> tuple[list[float], float, float, bool, float]:
        """One pass of training steps, each followed by ``step_hooks``; returns the losses of
        the steps, their count-weighted mean, the throughput (count per second), whether the
        time limit cut it short and the fraction of the epoch that ran (1.0 when that is not
        known)."""
        total = len(batches) if hasattr(batches, "__len__") else None
        done = sum(len(losses) for losses in self.history.step_loss)  # steps of earlier epochs
        bar = self._bar(batches, total, end)
        every = self.log_every or (max(1, total // 10) if total else 100)
        losses = []
        loss_sum, count_sum, start, cut = 0.0, 0, time.perf_counter(), False
        try:
            for i, batch in enumerate(bar if bar is not None else batches, 1):
                self.model.train()
                loss, count = step(batch)
                count, value = _number(count), loss.item()
                if not math.isfinite(value):  # stop before a NaN reaches the parameters
                    raise FloatingPointError(
                        f"Trainer.fit: the loss is {value} at epoch {self.epoch + 1}, step {i}; "
                        "try a lower learning rate or a smaller clip_norm"
                    )
                self.optimizer.zero_grad()
                loss.backward()
                if self.clip_norm is not None:
                    clip_grad_norm_(self.model.parameters(), self.clip_norm)
                self.optimizer.step()
                losses.append(value)
                for hook in step_hooks:
                    hook(self, done + i, value)
                loss_sum, count_sum = loss_sum + value * count, count_sum + count
                rate = count_sum / max(time.perf_counter() - start, 1e-9)
                status = self._status(loss_sum / count_sum, rate, deadline)
                if bar is not None:
                    bar.set_postfix_str(status, refresh=False)
                elif i % every == 0:
                    steps = f"{i}/{total}" if total else f"{i}"
                    self._say(f"epoch {self.epoch + 1}/{end} step {steps}: {status}")
                if deadline is not None and time.perf_counter() >= deadline:
                    cut = i != total
                    break
        finally:
            if bar is not None:
                bar.close()
        if count_sum == 0:
            raise ValueError(f"Trainer.fit: batches() gave no batch (or only empty ones) in "
                             f"epoch {self.epoch + 1}")
        if cut and total is None:  # the epoch's length is unknown: guess the last whole one's
            whole = [len(s) for s, f in zip(self.history.step_loss,
                                            self.history.epoch_fraction) if f == 1.0]
            total = whole[-1] if whole else None
        fraction = min(1.0, len(losses) / total) if cut and total else 1.0
        return losses, loss_sum / count_sum, rate, cut, fraction

    def _bar(self, batches: Iterable, total: int | None, end: int):
        """A tqdm bar over ``batches``, or None for plain lines (or none)."""
        if self.progress is not True:
            return None
        try:
            from tqdm.auto import tqdm  # optional dependency
        except ImportError:
            return None
        return tqdm(batches, total=total, desc=f"epoch {self.epoch + 1}/{end}",
                    unit="batch", leave=False, dynamic_ncols=True)

    def _status(self, loss: float, rate: float, deadline: float | None) -> str:
        """'train loss 1.2340 ppl 3.43 | after epoch 2: valid_ppl 3.9 | 12.3k tok/s | 1:35
        left': the running training loss of this epoch, the last evaluation (labelled with
        its epoch), the throughput and the time left before the time limit."""
        text = f"train loss {loss:.4f}"
        if self.perplexity:
            text += f" ppl {math.exp(min(loss, 700)):.2f}"
        if self.history.metrics:
            text += f" | after epoch {self.epoch}: " + ", ".join(
                f"{name} {values[-1]:.4g}" for name, values in self.history.metrics.items())
        text += f" | {_si(rate)} {self.unit}/s"
        if deadline is not None:
            left = max(0, round(deadline - time.perf_counter()))
            text += f" | {left // 60}:{left % 60:02d} left"
        return text

    def _evaluate_and_schedule(self, evaluate: Callable | None,
                               monitor: str | None) -> dict[str, float]:
        """Run ``evaluate()`` in eval mode without a graph, then step the scheduler."""
        metrics: dict[str, float] = {}
        if evaluate is not None:
            with self.model.evaluating():
                metrics = {k: float(v) for k, v in evaluate().items()}
        if monitor is not None and monitor not in metrics:
            raise KeyError(f"Trainer.fit: monitor={monitor!r} is not among the metrics "
                           f"evaluate() returned: {sorted(metrics)}")
        if isinstance(self.scheduler, ReduceLROnPlateau):
            self.scheduler.step(metrics[monitor])
        elif self.scheduler is not None:
            self.scheduler.step()
        return metrics

    def _record(self, losses: list[float], loss: float, metrics: dict[str, float], lr: float,
                seconds: float, rate: float, cut: bool, fraction: float, end: int) -> None:
        """Append the epoch to the history and print its summary line."""
        h = self.history
        h.train_loss.append(loss)
        h.step_loss.append(losses)
        h.lr.append(lr)
        h.epoch_seconds.append(seconds)
        h.epoch_fraction.append(fraction)
        for name, value in metrics.items():
            h.metrics.setdefault(name, []).append(value)
        text = f"epoch {self.epoch}/{end}: train loss {loss:.4f}"
        if self.perplexity:
            text += f" (ppl {math.exp(min(loss, 700)):.2f})"
        text += "".join(f" | {name} {value:.4g}" for name, value in metrics.items())
        text += f" | {seconds:.1f}s, {_si(rate)} {self.unit}/s"
        if cut:
            steps = f"{len(losses)} step" + "s" * (len(losses) > 1)
            text += f" | stopped by the time limit after {steps}"
            text += f" ({fraction:.0%} of the epoch)" if fraction < 1.0 else ""
        self._say(text)

    def _say(self, text: str) -> None:
        """Print a line of progress, unless ``progress=False``."""
        if self.progress:
            print(text, flush=True)

    def state_dict(self) -> dict[str, Any]:
        """Everything ``resume`` needs: model, optimizer (and its class name), epoch, history,
        scheduler (and its class name) and the state of minigrad's random generator."""
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "optimizer_type": type(self.optimizer).__name__,
                 "epoch": self.epoch, "history": self.history.state_dict(),
                 "rng": mg_random.generator().bit_generator.state}
        if self.scheduler is not None:
            state["scheduler"] = self.scheduler.state_dict()
            state["scheduler_type"] = type(self.scheduler).__name__
        return state

    def save(self, path: str | os.PathLike) -> None:
        """Write ``state_dict()`` to ``path`` with ``mg.save`` (atomically)."""
        mg.save(self.state_dict(), path)

    def resume(self, path: str | os.PathLike) -> Trainer:
        """Load a checkpoint written by ``save`` (model, optimizer, scheduler, history, epoch
        and random state); ``fit`` then continues where it stopped.

        All or nothing, like ``load_state_dict``: every part is checked against this trainer
        first (the model's parameter names and shapes, the optimizer's class, settings and
        state, the scheduler's class and settings), and a checkpoint that does not fit raises
        one ValueError naming every mismatch, with the model, the optimizer, the scheduler
        and the trainer left as they were.
        """
        state = mg.load(path)
        where = f"Trainer.resume: {os.fspath(path)!r}"
        missing = {"model", "optimizer", "epoch", "history", "rng"} - set(state)
        if missing:
            raise ValueError(f"{where} is not a Trainer checkpoint (missing {sorted(missing)})")
        problems = (_model_mismatches(self.model, state["model"])
                    + _optimizer_mismatches(self.optimizer, state)
                    + _scheduler_mismatches(self.scheduler, state))
        try:
            history = History.from_state_dict(state["history"])
            epoch = int(state["epoch"])
        except (KeyError, TypeError, ValueError) as err:
            problems.append(f"history or epoch: not as save writes them ({err!r})")
        try:  # on a generator of the same kind, not on minigrad's own
            type(mg_random.generator().bit_generator)().state = state["rng"]
        except (KeyError, TypeError, ValueError) as err:
            problems.append(f"random state: not a state of minigrad's generator ({err!r})")
        if problems:
            raise ValueError(f"{where} does not fit this trainer; nothing was loaded:\n  "
                             + "\n  ".join(problems))
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.history, self.epoch = history, epoch
        mg_random.generator().bit_generator.state = state["rng"]
        return self


def _model_mismatches(model: Module, saved: Any) -> list[str]:
    """What keeps ``model.load_state_dict(saved)`` from loading: missing and unexpected
    parameter names, wrong shapes, values that are not floating point."""
    if not isinstance(saved, dict):
        return [f"model: expected a state_dict (name -> array); got a {type(saved).__name__}"]
    own = dict(model.named_parameters(remove_duplicate=False))
    problems = []
    missing, unexpected = [k for k in own if k not in saved], [k for k in saved if k not in own]
    if missing:
        problems.append(f"model: parameters missing from the checkpoint: {missing}")
    if unexpected:
        problems.append(f"model: parameters this {type(model).__name__} does not have: "
                        f"{unexpected}")
    for name, p in own.items():
        if name in saved:
            array = np.asarray(saved[name])
            if array.dtype.kind != "f":
                problems.append(f"model: {name} holds {array.dtype} values, not floating point")
            elif array.shape != p.shape:
                problems.append(f"model: {name} has shape {array.shape} in the checkpoint and "
                                f"{p.shape} in this {type(model).__name__}")
    return problems


def _optimizer_mismatches(optimizer: Optimizer, state: dict[str, Any]) -> list[str]:
    """Why ``optimizer.load_state_dict(state["optimizer"])`` would fail or load another
    optimizer's state: a different class (when the checkpoint names it), other settings, or
    what the optimizer's own check finds (tried on a shallow copy, which leaves it as it is)."""
    name, saved = type(optimizer).__name__, state["optimizer"]
    kind = state.get("optimizer_type", name)
    if kind != name:
        return [f"optimizer: the checkpoint was saved with {kind}; this trainer's optimizer is "
                f"{name}. Resume with {kind}, or load only the model's weights "
                "(model.load_state_dict(mg.load(path)['model']))"]
    try:
        settings = {key for group in saved["param_groups"] for key in group} - {"params"}
    except (KeyError, TypeError) as err:
        return [f"optimizer: not the state_dict of an optimizer ({err!r})"]
    lacking = sorted(set(optimizer.defaults) - settings)  # extras (a scheduler's) may differ
    if lacking:
        return [f"optimizer: the checkpoint's param groups lack the settings {lacking} of this "
                f"{name}; they have {sorted(settings)}: it was saved by another kind of "
                "optimizer"]
    trial = copy.copy(optimizer)  # load_state_dict rebinds param_groups and state, on trial
    try:
        trial.load_state_dict(saved)
    except (KeyError, TypeError, ValueError) as err:
        return [f"optimizer: {err}"]
    return []


def _scheduler_mismatches(scheduler: Any, state: dict[str, Any]) -> list[str]:
    """Why the checkpoint's scheduler state would not fit ``scheduler``: one saved and none
    here (or the reverse), another class, missing settings, or what the scheduler's own check
    finds (tried on a shallow copy)."""
    if (scheduler is None) != ("scheduler" not in state):
        saved = "with" if "scheduler" in state else "without"
        here = "none" if scheduler is None else "one"
        return [f"scheduler: the checkpoint was saved {saved} a scheduler; this trainer has {here}"]
    if scheduler is None:
        return []
    name = type(scheduler).__name__
    kind = state.get("scheduler_type", name)
    if kind != name:
        return [f"scheduler: the checkpoint was saved with {kind}; this trainer's scheduler "
                f"is {name}"]
    lacking = sorted(set(scheduler.state_dict()) - set(state["scheduler"]))
    if lacking:
        return [f"scheduler: the checkpoint's scheduler state lacks the settings {lacking} of "
                f"this {name}: it was saved by another kind of scheduler"]
    trial = copy.copy(scheduler)  # load_state_dict updates the copy's own attributes
    try:
        trial.load_state_dict(state["scheduler"])
    except (KeyError, TypeError, ValueError) as err:
        return [f"scheduler: {err}"]
    return []


def _number(count: Any) -> float:
    """A step's ``count`` as a Python number: an int, a NumPy number or a 0-d Tensor (what a
    step returns for a count computed with tensor ops)."""
    value = np.asarray(count.data if isinstance(count, mg.Tensor) else count)
    if value.ndim != 0 or not np.issubdtype(value.dtype, np.number):
        raise TypeError(f"Trainer.fit: step must return (loss, count) with count a number or "
                        f"a 0-d Tensor (the batch's tokens or examples); got {count!r}")
    return value.item()


def _si(x: float) -> str:
    """12345.6 -> '12.3k'."""
    return f"{x / 1e3:.1f}k" if x >= 1e3 else f"{x:.0f}"
