"""Live: watch a model train in a notebook, in one figure updated in place.

    live = mg.viz.Live(every=20, probe=lambda: model.loss(x, y))
    trainer.fit(10, batches, step, callbacks=[live])
    live.save("run.html")

The figure has the loss at every step, with the epoch means of the trainer's history, and,
given a ``probe``, the norm of the gradient reaching each time step of a recurrent model: the
vanishing-gradient picture of ``examples/vanishing_gradients.py``, as training goes. Trainer
compiles its step, so the engine's backward cannot be watched op by op; the probe is an eager
forward and backward of its own, every ``every`` steps (``grad_norms_by_time_step``).

The figure is an SVG drawn here (no matplotlib needed); ``save`` writes it in a page with the
numbers in tables, and nothing that a browser would fetch.
"""

from __future__ import annotations

import html
import itertools
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from minigrad import random
from minigrad.autograd import enable_grad, forward_order, grad
from minigrad.tensor import Tensor
from minigrad.viz.graph import is_time_step
from minigrad.viz.trace import norm

_PROBE_CURVES = 20  # the figure's gradient panel: the latest probe and the 19 before it


def grad_norms_by_time_step(loss: Tensor) -> dict[int, float]:
    """The norm of the gradient of ``loss`` reaching each time step t, as ``{t: norm}``.

    A time step is the ops made under a name scope ``t0``, ``t1``, ... (each recurrent layer of
    ``minigrad.models`` enters one per step: ``rnnlm.rnn.l0.fwd.t3``). The gradient reaching
    step t is the one with respect to all that the step hands on, every tensor made inside it
    and used outside it: h_t for an RNN or a GRU, (h_t, c_t) for an LSTM, in all layers and
    directions together. ``mg.grad`` computes it, so no ``.grad`` is touched; the graph is
    freed. Steps run under ``mg.checkpoint`` are one op each, and have no time steps to see.
    """
    ops = forward_order([loss])
    step_of = {fn: _step_scope(fn.scope) for fn in ops}  # the scope "....t3" of each op, or None
    handed_on: dict[int, Tensor] = {}
    for fn in ops:
        for x in fn.inputs:
            made_in = step_of.get(x.grad_fn)
            if made_in is not None and made_in != step_of[fn]:
                handed_on[id(x)] = x
    if not handed_on:
        raise ValueError("grad_norms_by_time_step: the graph behind the loss has no time steps "
                         "(ops made under mg.name_scope('t0'), 't1', ..., as the recurrent "
                         "layers of minigrad.models make them, and not under mg.checkpoint)")
    tensors = list(handed_on.values())
    squares: dict[int, float] = {}
    for x, g in zip(tensors, grad(loss, tensors, allow_unused=True)):
        t = int(step_of[x.grad_fn].rpartition(".")[2][1:])
        squares[t] = squares.get(t, 0.0) + (0.0 if g is None else norm(g.data) ** 2)
    return {t: math.sqrt(squares[t]) for t in sorted(squares)}


def _step_scope(scope: str) -> str | None:
    """``"rnnlm.rnn.l0.fwd.t3.cell"`` -> ``"rnnlm.rnn.l0.fwd.t3"``: the scope up to its last
    time-step part; None for a scope outside every time step."""
    parts = scope.split(".")
    for k in reversed(range(len(parts))):
        if is_time_step(parts[k]):
            return ".".join(parts[:k + 1])
    return None


class Live:
    """A ``Trainer.fit`` callback that draws training in one figure, updated in place.

    It records the loss of every step (``steps``, ``losses``) and, every ``every`` steps and
    after each epoch, redraws: the loss at each step, the epoch means of the training loss and
    the metrics named ``...loss`` from the trainer's ``history``; and, with ``probe``, the norm
    of the gradient reaching each time step (``grad_norms``: training step -> {t: norm}).

    ``probe()`` returns a loss of the model (a 0-d Tensor, or a tuple whose first item is one,
    as ``RNNLM.loss`` returns), e.g. ``lambda: model.loss(x, y)`` on a fixed batch. A loss on
    every step (a language model's) sends a gradient to every step directly; a loss on the
    last step alone (``lambda: F.cross_entropy(model(x)[0][-1], y[-1])``) shows how far back
    the gradient reaches, the vanishing-gradient picture. Every ``every`` steps the probe runs
    eagerly, in eval mode (no dropout: the curves differ only by what training changed), and
    ``grad_norms_by_time_step`` reads its gradients. Training goes on exactly as without Live:
    no ``.grad`` is touched and minigrad's random generator is put back as it was, even if the
    probe draws from it.

    In IPython the figure appears below the cell at the first update and is redrawn there
    (``display(..., display_id=True)``, then ``update``): in a notebook as a picture, in a
    terminal as one line of text. Elsewhere (a script, a test) nothing is shown: Live keeps
    the numbers and ``save`` writes the page. A Live given to a second ``fit`` keeps drawing
    in its first figure; make a new one for a new cell.
    """

    def __init__(self, every: int = 10, probe: Callable[[], Any] | None = None) -> None:
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"Live: every must be an int >= 1 (the training steps between "
                             f"updates of the figure); got {every!r}")
        if probe is not None and not callable(probe):
            raise TypeError(f"Live: probe must be a function of no arguments that returns the "
                            f"model's loss (e.g. lambda: model.loss(x, y)), or None; got "
                            f"{probe!r}")
        self.every, self.probe = every, probe
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.grad_norms: dict[int, dict[int, float]] = {}
        self.history: Any = None  # the trainer's History, as of the last call
        self._handle: Any = None  # IPython's DisplayHandle, once shown

    def on_train_batch_end(self, trainer: Any, step: int, loss: float) -> None:
        """After each training step: record its loss; every ``every`` steps, probe and redraw."""
        self.steps.append(step)
        self.losses.append(loss)
        self.history = trainer.history
        if step % self.every == 0:
            if self.probe is not None:
                self.grad_norms[step] = self._run_probe(trainer.model)
            self._show()

    def __call__(self, trainer: Any) -> None:
        """After each epoch: redraw with the epoch just recorded in the history."""
        self.history = trainer.history
        self._show()

    def _run_probe(self, model: Any) -> dict[int, float]:
        """The probe's gradient norms per time step, taken in eval mode with minigrad's random
        generator put back as it was."""
        generator = random.generator()
        state = generator.bit_generator.state
        try:
            with model.evaluating(), enable_grad():
                out = self.probe()
                loss = out[0] if isinstance(out, tuple) and out else out
                if not isinstance(loss, Tensor) or loss.ndim != 0 or loss.grad_fn is None:
                    raise TypeError(f"Live: probe() must return the loss, a 0-d Tensor with a "
                                    f"graph (or a tuple whose first item is one); got {out!r}")
                return grad_norms_by_time_step(loss)
        finally:
            generator.bit_generator.state = state

    def _show(self) -> None:
        """Draw in IPython: below the cell the first time, over the same figure after that."""
        if self._handle is not None:
            self._handle.update(self)
            return
        try:
            from IPython import get_ipython  # optional: only notebooks show anything
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is not None:
            self._handle = display(self, display_id=True)

    def __repr__(self) -> str:
        if not self.steps:
            return f"Live(every={self.every}): no step yet"
        text = f"Live(every={self.every}): step {self.steps[-1]}, loss {self.losses[-1]:.4g}"
        if self.grad_norms:
            step, norms = next(reversed(self.grad_norms.items()))
            text += (f"; at step {step} the gradient reaching t={min(norms)} is "
                     f"{norms[min(norms)]:.3g}, t={max(norms)}: {norms[max(norms)]:.3g}")
        return text

    def _repr_html_(self) -> str:
        return self.svg()

    def svg(self) -> str:
        """The figure as SVG markup for an HTML page: the loss panel, and the gradient panel
        when there is a probe (the latest curve bold, earlier ones fainter the older they are)."""
        panels = [self._loss_panel()]
        if self.probe is not None:
            panels.append(self._grad_panel())
        width = _WIDTH * len(panels)
        body = "".join(_panel(*p, left=k * _WIDTH) for k, p in enumerate(panels))
        return (f'<svg width="{width}" height="{_HEIGHT}" viewBox="0 0 {width} {_HEIGHT}" '
                'style="max-width:100%;height:auto" font-family="sans-serif" font-size="12">'
                f'{body}</svg>')

    def _loss_panel(self) -> _Panel:
        """The loss at each step, and the history's epoch means (training, ``...loss``)."""
        lines = [_Line(self.steps, self.losses, "#1f77b4", 1.0, 0.45, label="each step")]
        history = self.history
        if history is not None and history.train_loss:
            ends = list(itertools.accumulate(len(losses) for losses in history.step_loss))
            lines.append(_Line(ends, history.train_loss, "#1f77b4", 2.0, dots=True,
                               label="epoch mean"))
            named = [(n, v) for n, v in history.metrics.items() if n.endswith("loss")]
            for (name, values), color in zip(named, itertools.cycle(_COLORS)):
                lines.append(_Line(ends[-len(values):], values, color, 2.0, dots=True,
                                   label=name))
        return lines, "loss", "training step", False

    def _grad_panel(self) -> _Panel:
        """The gradient norm per time step of the latest probes, older ones fainter."""
        probes = list(self.grad_norms.items())[-_PROBE_CURVES:]
        lines = [_Line(list(norms), list(norms.values()), "#6a3d9a", 1.0,
                       0.12 + 0.4 * k / len(probes), label="earlier" if k == 0 else None)
                 for k, (_, norms) in enumerate(probes[:-1])]
        if probes:
            step, norms = probes[-1]
            lines.append(_Line(list(norms), list(norms.values()), "#6a3d9a", 2.5, dots=True,
                               label=f"step {step}"))
        return lines, "gradient reaching each time step", "time step t", True

    def save(self, path: str | os.PathLike) -> None:
        """Write one self-contained HTML page: the figure (inline SVG) and tables of the
        numbers: the epochs, the gradient norms of each probe, the loss of every step."""
        parts = ["<h1>Training</h1>", f"<p>{html.escape(repr(self))}</p>", self.svg()]
        history = self.history
        if history is not None and history.train_loss:
            epochs = len(history.train_loss)  # a metric may start late: it has the last ones
            columns = [[""] * (epochs - len(v)) + v for v in history.metrics.values()]
            ends = itertools.accumulate(len(losses) for losses in history.step_loss)
            rows = [[k + 1, end, loss, *(column[k] for column in columns)]
                    for k, (end, loss) in enumerate(zip(ends, history.train_loss))]
            header = ["epoch", "last step", "train loss", *history.metrics]
            parts += ["<h2>Epochs</h2>", _table(header, rows)]
        if self.grad_norms:
            times = sorted({t for norms in self.grad_norms.values() for t in norms})
            rows = [[step] + [norms.get(t, "") for t in times]
                    for step, norms in self.grad_norms.items()]
            parts += ["<h2>Norm of the gradient reaching each time step t, per training step"
                      "</h2>", _table(["step", *(f"t={t}" for t in times)], rows)]
        parts += [f"<details><summary>The loss at every step ({len(self.steps)})</summary>",
                  _table(["step", "loss"], list(zip(self.steps, self.losses))), "</details>"]
        page = ("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>minigrad: "
                f"training</title><style>{_CSS}</style></head><body>\n"
                + "\n".join(parts) + "\n</body></html>\n")
        with open(path, "w", encoding="utf-8") as f:
            f.write(page)


_CSS = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;"
        "font-size:13px;display:block;overflow-x:auto}td,th{border:1px solid #ccc;"
        "padding:2px 6px;text-align:right}")


def _table(header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    """An HTML table; numbers in at most six significant digits."""
    def cell(v: Any) -> str:
        return f"{v:.6g}" if isinstance(v, float) else html.escape(str(v))

    head = "".join(f"<th>{cell(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


# ---------------------------------------------------------------- a small SVG line chart

_WIDTH, _HEIGHT = 450, 300  # one panel
_LEFT, _RIGHT, _TOP, _BOTTOM = 60, 20, 48, 40  # room for the title, legend and tick labels
_COLORS = ["#ff7f0e", "#2ca02c", "#d62728", "#8c564b"]


@dataclass
class _Line:
    """One curve of a panel, drawn as a polyline (with dots at its points if ``dots``)."""

    xs: Sequence[float]
    ys: Sequence[float]
    color: str
    width: float
    opacity: float = 1.0
    dots: bool = False
    label: str | None = None


_Panel = tuple[list[_Line], str, str, bool]
"""What ``_panel`` draws: the curves, the title, the x axis' label, whether y is on a log scale."""


def _panel(lines: list[_Line], title: str, xlabel: str, log: bool, left: float) -> str:
    """One panel at ``left``: title, legend, axes with ticks, curves (``log``: log10 y axis,
    where non-positive values are left out)."""
    def fy(y: float) -> float:
        return math.log10(y) if log else y

    points = [[(x, fy(y)) for x, y in zip(line.xs, line.ys)
               if math.isfinite(y) and (y > 0 or not log)] for line in lines]
    xs = [x for pts in points for x, _ in pts]
    ys = [y for pts in points for _, y in pts]
    x0, x1 = (min(xs), max(xs)) if xs else (0, 1)
    y0, y1 = (min(ys), max(ys)) if ys else (0, 1)
    if log:
        y0, y1 = math.floor(y0), max(math.ceil(y1), math.floor(y0) + 1)
        yticks = list(range(y0, y1 + 1, max(1, math.ceil((y1 - y0) / 6))))
    else:
        pad = (y1 - y0) * 0.05 or 0.5
        y0, y1 = y0 - pad, y1 + pad
        yticks = _ticks(y0, y1)
    x0, x1 = (x0, x1) if x1 > x0 else (x0 - 1, x1 + 1)
    w, h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM

    def px(x: float) -> float:
        return left + _LEFT + (x - x0) / (x1 - x0) * w

    def py(y: float) -> float:
        return _TOP + (y1 - y) / (y1 - y0) * h

    out = [f'<text x="{left + _WIDTH / 2}" y="16" text-anchor="middle" font-size="14">'
           f'{html.escape(title)}</text>',
           f'<text x="{left + _LEFT + w / 2}" y="{_HEIGHT - 6}" text-anchor="middle">'
           f'{html.escape(xlabel)}</text>',
           f'<rect x="{left + _LEFT}" y="{_TOP}" width="{w}" height="{h}" fill="none" '
           'stroke="#888"/>']
    for y in yticks:
        label = f'10<tspan dy="-6" font-size="9">{y}</tspan>' if log else f"{y:g}"
        out.append(f'<line x1="{left + _LEFT}" x2="{left + _LEFT + w}" y1="{py(y):.1f}" '
                   f'y2="{py(y):.1f}" stroke="#eee"/><text x="{left + _LEFT - 5}" '
                   f'y="{py(y) + 4:.1f}" text-anchor="end">{label}</text>')
    for x in _ticks(x0, x1, integer=True):
        out.append(f'<text x="{px(x):.1f}" y="{_TOP + h + 16}" text-anchor="middle">{x:g}'
                   '</text>')
    for line, pts in zip(lines, points):
        style = f'stroke="{line.color}" stroke-width="{line.width}" opacity="{line.opacity:.2f}"'
        xy = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        out.append(f'<polyline points="{xy}" fill="none" {style}/>')
        if line.dots:
            out += [f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{line.color}"/>'
                    for x, y in pts]
    x = left + _LEFT
    for line in lines:
        if line.label is not None:
            out.append(f'<line x1="{x}" x2="{x + 18}" y1="32" y2="32" stroke="{line.color}" '
                       f'stroke-width="{line.width}" opacity="{max(line.opacity, 0.4):.2f}"/>'
                       f'<text x="{x + 22}" y="36">{html.escape(line.label)}</text>')
            x += 32 + 7 * len(line.label)
    return "".join(out)


def _ticks(lo: float, hi: float, integer: bool = False) -> list[float]:
    """About five round values between ``lo`` and ``hi`` (1, 2 or 5 times a power of ten;
    whole numbers only with ``integer``)."""
    raw = (hi - lo) / 5
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if step * m >= raw)
    step = max(step, 1) if integer else step
    return [k * step for k in range(math.ceil(lo / step), math.floor(hi / step) + 1)]
