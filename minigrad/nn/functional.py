"""Stateless layers and losses, as in ``torch.nn.functional``.

``cross_entropy`` follows PyTorch's layout: logits ``(N, C)`` with target ``(N,)``, or
``(N, C, d1, ...)`` with target ``(N, d1, ...)``, or ``(C,)`` with a 0-d target. For logits
with the classes last, ``(..., C)`` with target ``(...)``, pass ``axis=-1``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from minigrad.ops import linalg as _la
from minigrad.ops import nn as _nn
from minigrad.ops.elementwise import ne, where
from minigrad.ops.nn import log_softmax, softmax
from minigrad.tensor import Tensor

__all__ = [
    "cross_entropy", "dropout", "embedding", "linear", "log_softmax", "mse_loss", "softmax",
]

_REDUCTIONS = ("mean", "sum", "none")


def _check_tensor(x: Any, op: str, what: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {what} must be a Tensor; got a {type(x).__name__}")


def _ids(x: Any) -> Tensor:
    """Integer ids as a tensor: a Tensor as it is, anything else wrapped without a copy, so that
    they reach the ops that read them as an input (a traced program reads them at every call)."""
    return x if isinstance(x, Tensor) else Tensor._wrap(np.asarray(x))


def _check_reduction(reduction: str, op: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}; got {reduction!r}")


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x @ weight.T + bias for ``x`` of shape ``(..., in)`` and ``weight`` ``(out, in)``;
    ``bias`` is ``(out,)`` or, as in PyTorch, any shape that broadcasts to ``y``."""
    _check_tensor(x, "linear", "input")
    if bias is None:
        return _la.Linear.apply(x, weight)
    return _la.Linear.apply(x, weight, bias)


def embedding(ids: Any, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` picked by the integer array ``ids``: shape ``ids.shape + (dim,)``.

    Gradients of repeated ids accumulate; the row ``padding_idx`` gets no gradient.
    """
    ids = _ids(ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(
            f"Embedding: ids must be integers; got dtype {ids.dtype} (shape {ids.shape})"
        )
    ids = _nn.EmbeddingIds.apply(ids, num_embeddings=weight.shape[0])
    rows = weight[ids]
    if padding_idx is None:
        return rows
    return where(ne(ids, padding_idx)[..., None], rows, rows.detach())


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Inverted dropout: zero each element with probability ``p`` and scale the rest by
    1 / (1 - p) in training; the identity otherwise. The mask comes from ``mg.manual_seed``'s
    generator."""
    _check_tensor(x, "dropout", "input")
    if not 0 <= p < 1:
        raise ValueError(f"dropout: p must be in [0, 1); got {p}")
    if not training or p == 0:
        return x
    return x * _nn.DropoutMask.apply(x, p=p)


def cross_entropy(
    logits: Tensor,
    target: Any,
    ignore_index: int | None = None,
    reduction: str = "mean",
    axis: int = 1,
) -> Tensor:
    """Cross-entropy of integer class ``target`` under ``logits``: log-softmax and NLL fused.

    The classes lie on ``axis`` (1, as in PyTorch; pass ``axis=-1`` for ``(..., C)`` logits)
    and ``target`` has the logits' shape without that axis. Entries equal to ``ignore_index``
    add nothing; ``'mean'`` averages over the other entries, ``'sum'`` adds them and
    ``'none'`` returns one loss per target entry. Stable for large logits.
    """
    _check_tensor(logits, "cross_entropy", "logits")
    _check_reduction(reduction, "cross_entropy")
    if logits.dtype.kind != "f" or logits.ndim == 0:
        raise TypeError(
            f"cross_entropy: logits must be floating point with at least one axis; got dtype "
            f"{logits.dtype} and shape {logits.shape}"
        )
    target = _ids(target)
    if target.dtype.kind not in "iu":
        raise TypeError(
            f"cross_entropy: target must hold integer class ids; got dtype {target.dtype} "
            f"(shape {target.shape})"
        )
    ndim = logits.ndim
    axis = 0 if ndim == 1 else axis
    if not -ndim <= axis < ndim:
        raise ValueError(f"cross_entropy: axis {axis} is out of range for logits {logits.shape}")
    axis %= ndim
    expected = logits.shape[:axis] + logits.shape[axis + 1:]
    if target.shape != expected:
        hint = ""
        if axis != ndim - 1 and target.shape == logits.shape[:-1]:
            hint = "; for logits of shape (..., C) with the classes last, pass axis=-1"
        raise ValueError(
            f"cross_entropy: logits of shape {logits.shape} with classes on axis {axis} need "
            f"a target of shape {expected}; got {target.shape}{hint}"
        )
    target, weight = _nn.ClassTargets.apply(
        target, classes=logits.shape[axis], ignore_index=ignore_index, mean=reduction == "mean",
        dtype=logits.dtype,
    )
    return _nn.CrossEntropy.apply(logits, target, weight, axis=axis, reduction=reduction)


def mse_loss(x: Tensor, target: Any, reduction: str = "mean") -> Tensor:
    """Squared error (x - target) ** 2, averaged ('mean'), added ('sum') or kept ('none')."""
    _check_tensor(x, "mse_loss", "input")
    _check_reduction(reduction, "mse_loss")
    if not isinstance(target, Tensor):  # an input of the ops below, converted by an op
        target = Tensor._wrap(np.asarray(target)).astype(x.dtype)
    if target.shape != x.shape:
        raise ValueError(
            f"mse_loss: input of shape {x.shape} and target of shape {target.shape} must have "
            "the same shape"
        )
    diff = x - target
    loss = diff * diff
    if reduction == "none":
        return loss
    return loss.mean() if reduction == "mean" else loss.sum()
