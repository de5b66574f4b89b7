"""trace_backward: watch the engine's backward pass, op by op, with the norms of the gradients
flowing through each op."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from minigrad.autograd import Function, no_grad, observe_backward
from minigrad.ops.shape import sum_to
from minigrad.tensor import Tensor


@dataclass(frozen=True)
class TraceRecord:
    """One op as backward visited it: the norms of the gradients of its outputs (flowing in)
    and of the gradients it sent to each input (flowing out; None where none was needed)."""

    step: int
    op: str
    scope: str
    grad_in: tuple[float, ...]
    grad_out: tuple[float | None, ...]


class Trace:
    """What ``trace_backward`` recorded: ``records`` in the order the engine visited the ops."""

    def __init__(self) -> None:
        self.records: list[TraceRecord] = []
        self._norms: dict[int, tuple[weakref.ref, float]] = {}  # id -> (tensor, grad norm)
        self._leaf_grads: dict[int, tuple[weakref.ref, np.ndarray]] = {}

    def grad_norm(self, t: Tensor) -> float | None:
        """The norm of the gradient that reached ``t`` in the traced backward (None if none);
        pass ``color_by=trace.grad_norm`` to ``draw_graph`` to shade every tensor by it."""
        entry = self._norms.get(id(t))
        if entry is not None and entry[0]() is t:
            return entry[1]
        entry = self._leaf_grads.get(id(t))
        if entry is not None and entry[0]() is t:
            return norm(entry[1])
        return None

    def table(self) -> str:
        """The records as a text table, one op per line (``print(trace.table())``)."""
        def norms(vs: tuple) -> str:  # the first few of a many-output op's norms
            text = ", ".join("-" if v is None else f"{v:.4g}" for v in vs[:4])
            return text + f", ... ({len(vs)} in all)" if len(vs) > 4 else text

        rows = [("step", "op", "scope", "|grad in|", "|grad out| per input")]
        rows += [(str(r.step), r.op, r.scope, norms(r.grad_in), norms(r.grad_out))
                 for r in self.records]
        widths = [max(len(row[k]) for row in rows) for k in range(4)]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[4]
                         for row in rows)

    def _record(self, fn: Function, grads: tuple[Tensor, ...], in_grads: tuple) -> None:
        grad_in = tuple(norm(g.data) for g in grads)
        for ref, n in zip(fn.outputs, grad_in):
            if ref() is not None:
                self._norms[id(ref())] = (ref, n)
        grad_out = []
        for x, g in zip(fn.inputs, in_grads):
            if g is None or not x.requires_grad:
                grad_out.append(None)
                continue
            a = _delivered(x, g)
            grad_out.append(norm(a))
            if x.grad_fn is None:
                prev = self._leaf_grads.get(id(x))
                self._leaf_grads[id(x)] = (weakref.ref(x), a if prev is None else prev[1] + a)
        self.records.append(TraceRecord(len(self.records), fn.name, fn.scope, grad_in,
                                        tuple(grad_out)))


def norm(a: np.ndarray) -> float:
    """The 2-norm of all entries, summed in float64 so float32 gradients cannot overflow."""
    return float(np.sqrt(np.sum(np.square(a, dtype=np.float64))))


def _delivered(x: Tensor, g: Tensor) -> np.ndarray:
    """The gradient as the engine hands it to ``x``: broadcast axes summed away."""
    if g.shape == x.shape:
        return g.data
    try:
        with no_grad():
            return sum_to(g, x.shape).data
    except ValueError:  # the engine reports the bad shape right after
        return g.data


@contextmanager
def trace_backward() -> Iterator[Trace]:
    """Record every op that backward visits inside the block, in order, with gradient norms.

    ``with mg.trace_backward() as tr: loss.backward()`` then ``print(tr.table())``.
    """
    trace = Trace()
    with observe_backward(trace._record):
        yield trace
