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

    ``hits`` indexes the target entries of the logits (``x[hits]`` has the target's shape) and
    ``weight``, of the target's shape, is 0 at ignored targets and 1 / count for the mean.
    """

    def __init__(self, hits: tuple, weight: np.ndarray, axis: int, reduction: str) -> None:
        self.hits, self.weight, self.axis, self.reduction = hits, weight, axis, reduction

    def forward(self, x):
        e = x - x.max(axis=self.axis, keepdims=True)  # worked on in place: logits are big
        picked = e[self.hits]
        np.exp(e, out=e)
        total = e.sum(axis=self.axis)
        loss = (np.log(total) - picked) * self.weight
        self.save_for_backward(e, total)  # softmax = e / total, formed only in backward
        return loss if self.reduction == "none" else np.asarray(loss.sum(), x.dtype)

    def backward(self, gy):
        if is_grad_enabled():  # create_graph: softmax must be an op of x for second derivatives
            (x,) = self.inputs
            onehot = np.zeros(x.shape, x.dtype)
            onehot[self.hits] = 1
            w = Tensor._wrap(np.expand_dims(self.weight, self.axis))
            g = gy.reshape(w.shape) if self.reduction == "none" else gy
            return (x.softmax(self.axis) - Tensor._wrap(onehot)) * (w * g)
        e, total = self.saved
        scale = self.weight * gy.data  # the weight of each target's row in dx
        dx = e * np.expand_dims(scale / total, self.axis)  # one pass: softmax times its weight
        dx[self.hits] -= scale
        return Tensor._wrap(dx)


class Dropout(Function):
    """dropout: y = x * mask; dx = dy * mask  (mask: kept / (1 - p), drawn by the caller)"""

    def __init__(self, mask: np.ndarray) -> None:
        self.mask = mask

    def forward(self, x):
        return x * self.mask

    def backward(self, gy):
        return gy * Tensor._wrap(self.mask)
