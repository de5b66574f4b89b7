"""In-place ops (``add_``, ``mul_``, ``copy_``, ``x -= y``, ``x[i] = v``...) and the version
counter that keeps them safe, with PyTorch's rules.

An in-place op computes its result with the ordinary op and writes it into the tensor's own
array, so every tensor viewing that array sees the change. Three cases:

- Nothing to record (grad mode off, as in an optimizer's update under ``mg.no_grad()``, or no
  operand requires grad): the array is overwritten, and that is all.
- Recording, on a tensor that is not a leaf requiring grad: the update is recorded on a copy
  of the old value (which its backward may read, as PyTorch saves the original), and the
  tensor takes the result's place in the graph, so the gradient flows through the update. A
  node recorded before the write had the tensor as an input: in backward it reads the copy, the
  tensor's old place (``autograd.placed``), so its gradient goes where it went then.
- A leaf that requires grad, in grad mode: an error, as in PyTorch (its ``.grad`` would be
  the gradient of a value it no longer holds). Do the update under ``mg.no_grad()``.

The version counter: every in-place write stamps the array's owner (the tensor itself, or
the base tensor it views) with the next tick of a process-wide clock, and every recorded node
remembers the clock when it was made. If backward finds that a tensor the node reads was
written after that, the gradient would be computed from the wrong values: it raises, naming
the op and the tensor. The check costs backward one comparison per node when no in-place op
ran since the graph was built.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from minigrad.autograd import _state, is_grad_enabled, moved, no_grad, take_tangents
from minigrad.tensor import Tensor, _as_tensor


def update(x: Tensor, name: str, op: Callable[..., Tensor], *others: Any) -> Tensor:
    """Write ``op(x, *others)`` into ``x``'s array; returns ``x`` (the in-place op ``name``)."""
    others = tuple(_as_tensor(o, x) for o in others)
    record = is_grad_enabled() and (x.requires_grad or any(o.requires_grad for o in others))
    if not record:
        with no_grad():
            result = op(x, *others)
        _write(x, name, result)
        take_tangents(x, result)  # forward mode: x holds the result, and so its tangent
        return x
    if x.requires_grad and x.grad_fn is None:
        raise RuntimeError(
            f"{name}: a leaf tensor that requires grad (shape {x.shape}) is being used in an "
            "in-place operation; its .grad would belong to a value it no longer holds. Update "
            "parameters under `with mg.no_grad():`, or use an out-of-place op (x = x + y)."
        )
    if x._base is not None:
        raise RuntimeError(
            f"{name}: in-place op on a view (shape {x.shape}) of another tensor while recording "
            "a graph: minigrad cannot rewrite the graph of the tensor it views (PyTorch can). "
            "Build the result out of place (mg.cat, mg.stack, mg.where, masked_fill), or "
            "do it under mg.no_grad()."
        )
    if x.hooks or x.retains_grad:
        raise RuntimeError(
            f"{name}: in-place op on a tensor with hooks or retain_grad() while recording a "
            "graph; register them after the update, or use an out-of-place op"
        )
    before = _value_before(x)
    others = tuple(o.clone() if np.may_share_memory(o.data, x.data) else o for o in others)
    result = op(before, *others)  # reads copies of whatever the write below changes
    _write(x, name, result)
    _give_place(result, x)
    take_tangents(x, result)
    moved(x, before)  # nodes recorded earlier read ``before`` in backward, not x's new place
    return x


def _write(x: Tensor, name: str, result: Tensor) -> None:
    """Copy ``result`` into ``x``'s array after checking it fits, and stamp the new version."""
    if result.shape != x.shape:
        raise ValueError(
            f"{name}: the result has shape {result.shape}, which does not fit the tensor of shape "
            f"{x.shape} written in place (an in-place op cannot broadcast its target)"
        )
    if not np.can_cast(result.dtype, x.dtype, "same_kind"):
        raise TypeError(
            f"{name}: result type {result.dtype} can't be cast to the desired output type "
            f"{x.dtype} of the tensor written in place"
        )
    if not x.data.flags.writeable:
        raise ValueError(
            f"{name}: the tensor of shape {x.shape} cannot be written in place: it is an expanded "
            "view (several elements share one memory location); clone() it first"
        )
    np.copyto(x.data, result.data, casting="same_kind")
    mark_written(x)


def mark_written(x: Tensor) -> None:
    """Stamp ``x``'s array with a new version, after writing it in place by other means (an
    optimizer's NumPy update of ``p.data``), so that backward sees the change."""
    _state.version += 1
    (x if x._base is None else x._base)._version = _state.version


def _value_before(x: Tensor) -> Tensor:
    """A copy of ``x``'s value in ``x``'s place in the graph (made by the same node): the input
    of the update, which its backward may read. (The node that made ``x`` still outputs ``x``
    itself, so if its backward reads that output, the version check sees the write.)"""
    before = Tensor._wrap(x.data.copy())
    before.requires_grad, before.grad_fn, before.output_nr = (x.requires_grad, x.grad_fn,
                                                              x.output_nr)
    take_tangents(before, x)  # and, in forward mode, x's tangent
    return before


def _give_place(result: Tensor, x: Tensor) -> None:
    """Make ``x`` the output that ``result`` was: ``x`` now holds its value."""
    x.requires_grad, x.grad_fn, x.output_nr = result.requires_grad, result.grad_fn, result.output_nr
    if x.grad_fn is not None:
        k = x.output_nr
        x.grad_fn.outputs = x.grad_fn.outputs[:k] + (weakref.ref(x),) + x.grad_fn.outputs[k + 1:]
        x.grad_fn.version = _state.version  # the write made x: it is not a later change
