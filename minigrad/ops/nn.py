"""Neural-network ops: softmax, log_softmax and cross-entropy (computed stably), dropout."""

from __future__ import annotations

import numpy as np

from minigrad.autograd import Function, is_grad_enabled
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


class CrossEntropy(Function):
    """cross_entropy: y = sum w * (logsumexp(x) - x[t]); dx = w * dy * (softmax(x) - onehot(t))

    ``target`` (ints) and ``weight`` have the logits' shape with the class axis of size 1;
    ``weight`` is 0 at ignored targets and 1 / count for the mean.
    """

    def __init__(self, target: np.ndarray, weight: np.ndarray, axis: int, reduction: str) -> None:
        self.target, self.weight, self.axis, self.reduction = target, weight, axis, reduction

    def forward(self, x):
        delta = x - x.max(axis=self.axis, keepdims=True)  # worked on in place: logits are big
        picked = np.take_along_axis(delta, self.target, self.axis)
        np.exp(delta, out=delta)
        total = delta.sum(axis=self.axis, keepdims=True)
        loss = (np.log(total) - picked) * self.weight
        delta /= total  # softmax, then softmax - onehot: the gradient before weighting
        picked_p = np.take_along_axis(delta, self.target, self.axis)
        np.put_along_axis(delta, self.target, picked_p - 1, self.axis)
        self.save_for_backward(delta)
        if self.reduction == "none":
            return np.squeeze(loss, self.axis)
        return np.asarray(loss.sum(), x.dtype)

    def backward(self, gy):
        if is_grad_enabled():  # create_graph: softmax must be an op of x for second derivatives
            (x,) = self.inputs
            onehot = np.zeros(x.shape, x.dtype)
            np.put_along_axis(onehot, self.target, 1, self.axis)
            delta = x.softmax(self.axis) - Tensor._wrap(onehot)
        else:
            delta = Tensor._wrap(self.saved[0])
        if self.reduction == "none":
            gy = gy.reshape(self.weight.shape)
        return delta * (Tensor._wrap(self.weight) * gy)


class Dropout(Function):
    """dropout: y = x * mask; dx = dy * mask  (mask: kept / (1 - p), drawn by the caller)"""

    def __init__(self, mask: np.ndarray) -> None:
        self.mask = mask

    def forward(self, x):
        return x * self.mask

    def backward(self, gy):
        return gy * Tensor._wrap(self.mask)
