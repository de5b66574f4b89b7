"""Reductions: sum, mean, max over any axes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from minigrad.autograd import Function
from minigrad.tensor import Tensor

Axis = int | Sequence[int] | None


def normalize_axes(axis: Axis, ndim: int, op: str) -> tuple[int, ...]:
    """``axis`` as a tuple of non-negative axes, with a clear error when one is out of range."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions")
    normalized = tuple(sorted(a % ndim for a in axes)) if ndim else ()
    if len(set(normalized)) < len(normalized):
        raise ValueError(f"{op}: axis {axis} repeats an axis of a tensor with {ndim} dimensions")
    return normalized


def _kept_shape(shape: tuple[int, ...], axes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(1 if i in axes else n for i, n in enumerate(shape))


class Sum(Function):
    """sum: y = sum_axis x; dx = broadcast(dy)"""

    def __init__(self, axis: Axis = None, keepdims: bool = False) -> None:
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axes = normalize_axes(self.axis, x.ndim, "sum")
        return np.add.reduce(x, axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy):
        shape = self.inputs[0].shape
        return gy.reshape(_kept_shape(shape, self.axes)).broadcast_to(shape)


class Max(Function):
    """max: y = max_axis x; dx = dy * [x == y] / count(x == y)  (ties share the gradient)"""

    def __init__(self, axis: Axis = None, keepdims: bool = False) -> None:
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.axes = normalize_axes(self.axis, x.ndim, "max")
        if x.size == 0:
            raise ValueError(f"max: cannot reduce an empty tensor of shape {x.shape}")
        y = np.max(x, axis=self.axes, keepdims=True)
        hit = x == y
        self.save_for_backward(hit / hit.sum(axis=self.axes, keepdims=True, dtype=x.dtype))
        return y if self.keepdims else np.squeeze(y, axis=self.axes)

    def backward(self, gy):
        (share,) = self.saved
        return gy.reshape(_kept_shape(share.shape, self.axes)) * Tensor._wrap(share)


def mean(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis``: a sum scaled by the number of elements reduced."""
    axes = normalize_axes(axis, x.ndim, "mean")
    count = int(np.prod([x.shape[a] for a in axes]))
    return x.sum(axes, keepdims) * (1.0 / count)
