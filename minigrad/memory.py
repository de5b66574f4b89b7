"""What backward keeps in memory, and checkpointing to keep less of it.

A graph holds, for each op, what its backward will read: the inputs it reads and the arrays its
``forward`` saved. Backpropagation through time keeps every step's until backward, so memory
grows with the sequence. ``checkpoint`` trades that memory for time: its forward runs a function
without recording and keeps only the function's inputs; backward runs the function again,
recording, and backpropagates through that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from minigrad import random
from minigrad.autograd import (
    DualLevel,
    Function,
    dual_level,
    enable_grad,
    forward_order,
    grad,
    is_grad_enabled,
    no_grad,
)
from minigrad.tensor import Tensor
from minigrad.viz.graph import check_roots, is_time_step, size_text

_ENGINE_APPLY = Function.__dict__["apply"].__func__


class Checkpoint(Function):
    """checkpoint: y = function(*args), computed before the node without recording, so that
    the node keeps only the tensors the function read (``x``); dx = the backward of function,
    run again with recording from the same inputs and random state; ẏ = the jvp of function,
    run again in forward mode"""

    def __init__(self, function: Callable[..., Any], args: tuple, kwargs: dict,
                 results: tuple[np.ndarray, ...], state: dict | None) -> None:
        self.results = results
        self.save_for_backward(function, args, kwargs, state)  # freed after backward

    def forward(self, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        results, self.results = self.results, None  # the outputs hold them, not the node
        return results

    def rerun(self) -> tuple[Tensor, ...]:
        """The function run again, from the random state the first run started from."""
        function, args, kwargs, state = self.saved
        with _random_state(state):
            return _tensors(function(*args, **kwargs), "checkpoint")

    def backward(self, *grad_outputs: Tensor | None) -> tuple[Tensor | None, ...]:
        inputs = self.inputs
        # The tensors the function reads act as leaves while it runs again, so that the
        # gradient stops at them: this node hands it on to what made them, the engine's way.
        cut = [(x, x.grad_fn) for x in inputs if x.grad_fn is not None]
        for x, _ in cut:
            x.grad_fn = None
        try:
            with enable_grad(), _reads(_same_reads(inputs)):
                outputs = self.rerun()
            wanted = [(y, g) for y, g in zip(outputs, grad_outputs)
                      if g is not None and y.requires_grad]
            if not wanted:
                return (None,) * len(inputs)
            found = grad([y for y, _ in wanted], list(inputs), [g for _, g in wanted],
                         create_graph=is_grad_enabled(), allow_unused=True)
        finally:
            for x, producer in cut:
                x.grad_fn = producer
        return tuple(found)

    def jvp(self, *tangents: Tensor | None) -> tuple[Tensor | None, ...]:
        level = DualLevel()
        for x, t in zip(self.inputs, tangents):
            if t is not None:
                level.set(x, t)
        with dual_level(level):
            outputs = self.rerun()
        return tuple(level.tangent(y) for y in outputs)


def _same_reads(inputs: tuple[Tensor, ...]) -> Callable[[Tensor], None]:
    """For ``_reads`` while the function runs again: raise at a leaf that requires grad and
    that the first run did not read. Its gradient would be lost, and its values may differ (a
    module's parameters swapped by ``functional_call`` during forward are back by backward)."""
    known = {id(x) for x in inputs}  # (cut: leaves while the function runs again)

    def see(x: Tensor) -> None:
        if x.grad_fn is None and id(x) not in known:
            raise RuntimeError(
                f"mg.checkpoint: running the function again for backward, it read a tensor "
                f"of shape {x.shape} that requires grad and that the first run did not read "
                "(in forward). Both runs must read the same tensors: a module called "
                "through mg.func.functional_call has its own parameters back by the time "
                "backward runs, so checkpoint inside the call, or do not checkpoint")

    return see


@contextmanager
def _random_state(state: dict | None) -> Iterator[None]:
    """minigrad's generator at ``state`` (None: as it is), then back where it was."""
    if state is None:
        yield
        return
    generator = random.generator()
    now = generator.bit_generator.state
    generator.bit_generator.state = state
    try:
        yield
    finally:
        generator.bit_generator.state = now


@contextmanager
def _reads(see: Callable[[Tensor], None]) -> Iterator[None]:
    """While open, each op shows ``see`` every tensor it reads that requires grad."""
    previous = Function.__dict__["apply"]
    apply = previous.__func__

    def seeing(op: type, /, *xs: Any, **options: Any) -> Any:
        for x in xs:
            if getattr(x, "requires_grad", False):
                see(x)
        return apply(op, *xs, **options)

    seeing.checkpoint_reads = True  # (a checkpoint inside may run: it is not a tracer)
    Function.apply = classmethod(seeing)
    try:
        yield
    finally:
        Function.apply = previous


def _tensors(result: Any, who: str) -> tuple[Tensor, ...]:
    if isinstance(result, Tensor):
        return (result,)
    if isinstance(result, tuple) and result and all(isinstance(y, Tensor) for y in result):
        return result
    raise TypeError(f"{who}: the function must return a tensor or a tuple of tensors; got "
                    f"{type(result).__name__}")


def checkpoint(function: Callable[..., Any], *args: Any, use_reentrant: bool | None = None,
               preserve_rng_state: bool = True, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)`` without keeping its activations for backward, as
    ``torch.utils.checkpoint.checkpoint`` (non-reentrant): forward runs it without recording
    and keeps only what it read; backward runs it again, recording, and backpropagates through
    that, so gradients equal plain backward's. With ``preserve_rng_state`` the second run draws
    the same random numbers (the same dropout masks). ``function`` returns a tensor or a tuple
    of tensors. Gradients reach every tensor it reads that requires grad, arguments or not;
    ``create_graph=True`` works (second derivatives), and checkpoints nest.

    Inside ``mg.compile`` or ``mg.func.vmap`` it raises: both trace the ops a function applies,
    and a checkpoint's forward is a result computed outside the op that records it.
    ``use_reentrant`` may be False or None (PyTorch asks for it); True raises.
    """
    if use_reentrant:
        raise ValueError("mg.checkpoint: only the non-reentrant variant is here "
                         "(use_reentrant=False, PyTorch's recommendation); got True")
    if not is_grad_enabled():  # (so also inside another checkpoint's forward)
        return function(*args, **kwargs)
    current = Function.__dict__["apply"].__func__
    if current is not _ENGINE_APPLY and not getattr(current, "checkpoint_reads", False):
        raise RuntimeError("mg.checkpoint inside a function that mg.compile or mg.func.vmap "
                           "traces: call it outside, or leave the memory to the compiler")
    state = random.generator().bit_generator.state if preserve_rng_state else None
    found: dict[int, Tensor] = {}
    with no_grad(), _reads(lambda x: found.setdefault(id(x), x)):
        result = function(*args, **kwargs)
    outputs = _tensors(result, "checkpoint")
    for y in outputs:  # a tensor returned as it is, without an op reading it
        if y.requires_grad:
            found.setdefault(id(y), y)
    if not found:  # nothing it read requires grad: nothing to recompute
        return result
    ys = Checkpoint.apply(*found.values(), function=function, args=args, kwargs=kwargs,
                          results=tuple(y.data for y in outputs), state=state)
    ys = tuple(y if y.dtype.kind in "fc" else Tensor._wrap(y.data) for y in ys)  # no gradient
    return ys[0] if isinstance(result, Tensor) else ys


# -- what a graph keeps -------------------------------------------------------------------------


@dataclass(frozen=True)
class Kept:
    """One op of a graph and what it keeps for backward: ``arrays`` (its inputs' arrays, which
    the node holds, and what its forward saved), of which ``bytes`` were not counted at an op
    before it (an array shared by several ops, or a view of one, counts once: at the first)."""

    op: str
    scope: str
    arrays: int
    bytes: int


class MemoryReport:
    """What a graph keeps for backward, op by op (``records``, in forward order), with totals:
    ``total`` bytes of activations (the arrays of the non-leaf tensors it holds, and what ops
    saved), ``leaves`` bytes of the leaves it holds (parameters, inputs, constants), and the
    activations by module (``by_module``: the op's name scope without its time step) and by
    time step (``by_step``: the ``t<k>`` part of the scope; ``-`` for none)."""

    def __init__(self, records: list[Kept], leaves: int, kept: dict[Function, int]) -> None:
        self.records, self.leaves, self._kept = records, leaves, kept
        self.total = sum(r.bytes for r in records)
        self.by_module: dict[str, int] = {}
        self.by_step: dict[str, int] = {}
        for r in records:
            parts = r.scope.split(".") if r.scope else []
            step = next((p for p in parts if is_time_step(p)), "-")
            module = ".".join(p for p in parts if not is_time_step(p)) or "-"
            self.by_module[module] = self.by_module.get(module, 0) + r.bytes
            self.by_step[step] = self.by_step.get(step, 0) + r.bytes

    def saved_bytes(self, fn: Function) -> int | None:
        """The bytes counted at op ``fn`` (None for an op not in the graph)."""
        return self._kept.get(fn)

    def table(self, by: str = "op") -> str:
        """The report as text: one row per op (``by="op"``), module or time step, then the
        totals (``print(report.table("module"))``)."""
        if by == "op":
            rows = [("op", "scope", "arrays", "bytes")]
            rows += [(r.op, r.scope or "-", str(r.arrays), size_text(r.bytes))
                     for r in self.records]
        elif by in ("module", "step"):
            totals = self.by_module if by == "module" else self.by_step
            rows = [(by, "bytes")] + [(k, size_text(v)) for k, v in totals.items()]
        else:
            raise ValueError(f"memory_report.table: by must be 'op', 'module' or 'step'; got "
                             f"{by!r}")
        widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
        lines = ["  ".join(c.rjust(w) if k and c[:1].isdigit() else c.ljust(w)
                           for k, (c, w) in enumerate(zip(row, widths))).rstrip()
                 for row in rows]
        lines.append(f"activations kept: {size_text(self.total)} in {len(self.records)} ops; "
                     f"leaves held (parameters, inputs, constants): {size_text(self.leaves)}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"<MemoryReport: {size_text(self.total)} of activations in "
                f"{len(self.records)} ops, {size_text(self.leaves)} of leaves>")


def _held(value: Any) -> Iterator[tuple[np.ndarray, bool]]:
    """The arrays in what an op keeps (tensors, arrays, and tuples, lists and dicts of them),
    each with whether it is a leaf's."""
    if isinstance(value, Tensor):
        yield value.data, value.grad_fn is None
    elif isinstance(value, np.ndarray):
        yield value, False
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _held(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _held(v)


def _owner(a: np.ndarray) -> np.ndarray:
    """The array that owns ``a``'s memory (``a`` itself unless it is a view)."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def memory_report(*roots: Tensor) -> MemoryReport:
    """What the graph behind ``roots`` keeps for backward: each op's arrays (the inputs the node
    holds, and what its forward saved), each memory buffer counted once, at the first op that
    holds it; per module and per time step; and the leaves it holds, apart."""
    order = forward_order(check_roots("memory_report", roots))
    held = {fn: list(_held((fn.inputs, fn.saved or ()))) for fn in order}
    # memory a leaf owns is the leaf's, also where the graph holds a view of it (a slice)
    owned_by_leaves = {id(_owner(a)) for pairs in held.values() for a, leaf in pairs if leaf}
    seen: set[int] = set()
    records, kept, leaves = [], {}, 0
    for fn in order:
        new = 0
        for a in map(_owner, (a for a, _ in held[fn])):
            if id(a) not in seen:
                seen.add(id(a))
                if id(a) in owned_by_leaves:
                    leaves += a.nbytes
                else:
                    new += a.nbytes
        arrays = sum(id(_owner(a)) not in owned_by_leaves for a, _ in held[fn])
        records.append(Kept(fn.name, fn.scope, arrays, new))
        kept[fn] = new
    return MemoryReport(records, leaves, kept)
