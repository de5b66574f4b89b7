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
from typing import Any

import numpy as np

from minigrad import random
from minigrad.autograd import Function, enable_grad, grad, is_grad_enabled, no_grad
from minigrad.tensor import Tensor

_ENGINE_APPLY = Function.__dict__["apply"]


class Checkpoint(Function):
    """checkpoint: y = function(*args), computed before the node without recording, so that
    the node keeps only the tensors the function read (``x``); dx = the backward of function,
    run again with recording from the same inputs and random state; no jvp rule"""

    saved_inputs = slice(0)  # the recomputation reads them, not this backward

    def __init__(self, function: Callable[..., Any], args: tuple, kwargs: dict,
                 results: tuple[np.ndarray, ...], state: dict | None) -> None:
        self.function, self.args, self.kwargs, self.results = function, args, kwargs, results
        self.state = state

    def forward(self, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        self.save_for_backward(self.state)  # freed by a backward without retain_graph
        results, self.results = self.results, None  # the outputs hold them, not the node
        return results

    def backward(self, *grad_outputs: Tensor | None) -> tuple[Tensor | None, ...]:
        (state,) = self.saved
        inputs = self.inputs
        # The tensors the function reads act as leaves while it runs again, so that the
        # gradient stops at them: this node hands it on to what made them, the engine's way.
        cut = [(x, x.grad_fn) for x in inputs if x.grad_fn is not None]
        for x, _ in cut:
            x.grad_fn = None
        try:
            with _random_state(state), enable_grad():
                outputs = _tensors(self.function(*self.args, **self.kwargs), "checkpoint")
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
def _reads(found: dict[int, Tensor]) -> Iterator[None]:
    """While open, each op notes in ``found`` the tensors it reads that require grad. Under
    ``no_grad`` nothing made inside requires grad: these come from outside (the arguments,
    parameters, tensors a closure holds)."""
    previous = Function.__dict__["apply"]

    def noting(op: type, /, *xs: Any, **options: Any) -> Any:
        for x in xs:
            if isinstance(x, Tensor) and x.requires_grad:
                found.setdefault(id(x), x)
        return previous.__func__(op, *xs, **options)

    Function.apply = classmethod(noting)
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


def checkpoint(function: Callable[..., Any], *args: Any, preserve_rng_state: bool = True,
               **kwargs: Any) -> Any:
    """``function(*args, **kwargs)`` without keeping its activations for backward, as
    ``torch.utils.checkpoint.checkpoint`` (non-reentrant): forward runs it without recording
    and keeps only what it read; backward runs it again, recording, and backpropagates through
    that, so gradients equal plain backward's. With ``preserve_rng_state`` the second run draws
    the same random numbers (the same dropout masks). ``function`` returns a tensor or a tuple
    of tensors. Gradients reach every tensor it reads that requires grad, arguments or not;
    ``create_graph=True`` works (second derivatives), and checkpoints nest.

    Inside ``mg.compile`` or ``mg.func.vmap`` it raises: both trace the ops a function applies,
    and a checkpoint's forward is a result computed outside the op that records it.
    """
    if not is_grad_enabled():  # (so also inside another checkpoint's forward)
        return function(*args, **kwargs)
    if Function.__dict__["apply"] is not _ENGINE_APPLY:
        raise RuntimeError("mg.checkpoint inside a function that mg.compile or mg.func.vmap "
                           "traces: call it outside, or leave the memory to the compiler")
    state = random.generator().bit_generator.state if preserve_rng_state else None
    found: dict[int, Tensor] = {}
    with no_grad(), _reads(found):
        result = function(*args, **kwargs)
    outputs = _tensors(result, "checkpoint")
    if not found:  # nothing it read requires grad: nothing to recompute
        return result
    ys = Checkpoint.apply(*found.values(), function=function, args=args, kwargs=kwargs,
                          results=tuple(y.data for y in outputs), state=state)
    return ys[0] if isinstance(result, Tensor) else ys
