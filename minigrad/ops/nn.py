"""Neural-network ops: softmax and log_softmax, computed stably."""

from __future__ import annotations

import numpy as np

from minigrad.autograd import Function
from minigrad.ops.reduce import normalize_axes
from minigrad.tensor import Tensor


class Softmax(Function):
    """softmax: y = exp(x - max x) / sum exp(x - max x); dx = y * (dy - sum(dy * y))"""

    def __init__(self, axis: int = -1) -> None:
        self.axis = axis

    def forward(self, x):
        normalize_axes(self.axis, x.ndim, "softmax")
        e = np.exp(x - x.max(axis=self.axis, keepdims=True))
        return e / e.sum(axis=self.axis, keepdims=True)

    def backward(self, gy):
        y = self.output()
        return y * (gy - (gy * y).sum(self.axis, keepdims=True))


class LogSoftmax(Function):
    """log_softmax: y = x - logsumexp(x); dx = dy - exp(y) * sum(dy)"""

    def __init__(self, axis: int = -1) -> None:
        self.axis = axis

    def forward(self, x):
        normalize_axes(self.axis, x.ndim, "log_softmax")
        shifted = x - x.max(axis=self.axis, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=self.axis, keepdims=True))

    def backward(self, gy):
        return gy - self.output().exp() * gy.sum(self.axis, keepdims=True)


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """Softmax along ``axis``."""
    return Softmax.apply(x, axis=axis)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """Log-softmax along ``axis``."""
    return LogSoftmax.apply(x, axis=axis)
