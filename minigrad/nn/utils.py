"""Gradient clipping, the two remedies for exploding gradients.

Gradients of different parameters may share one Tensor (``a + b`` hands the same gradient to
both), so clipping replaces each ``.grad`` with a new Tensor and never writes into one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from minigrad.tensor import Tensor


def _with_grads(parameters: Tensor | Iterable[Tensor], owner: str) -> list[Tensor]:
    """The parameters that have a gradient; ``owner`` names the caller in errors."""
    if callable(parameters):  # model.parameters without the call, or the model itself
        raise TypeError(
            f"{owner}: parameters must be a Tensor or an iterable of Tensors; got the callable "
            f"{getattr(parameters, '__qualname__', type(parameters).__name__)}: pass "
            "model.parameters(), with the parentheses"
        )
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    return [p for p in params if p.grad is not None]


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
) -> Tensor:
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    The total norm is the ``norm_type``-norm of all gradients seen as one vector; when it
    exceeds ``max_norm`` every gradient is multiplied by ``max_norm / (total + 1e-6)``.
    Returns the total norm (before clipping) as a 0-d Tensor.
    """
    if not max_norm >= 0:
        raise ValueError(f"clip_grad_norm_: max_norm must be >= 0; got {max_norm}")
    if not norm_type > 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be > 0 or inf; got {norm_type}")
    params = _with_grads(parameters, "clip_grad_norm_")
    if not params:
        return Tensor(np.zeros((), np.float32))
    norms = np.array([np.linalg.norm(p.grad.data.ravel(), norm_type) for p in params])
    total = np.linalg.norm(norms, norm_type).astype(params[0].grad.dtype)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(
            f"clip_grad_norm_: the total norm of the gradients is {total}; pass "
            "error_if_nonfinite=False to clip anyway"
        )
    coef = max_norm / (float(total) + 1e-6)
    if coef < 1 or math.isnan(coef):
        for p in params:
            p.grad = Tensor(p.grad.data * coef)
    return Tensor(total)


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clip every gradient element to ``[-clip_value, clip_value]``."""
    if not clip_value >= 0:
        raise ValueError(f"clip_grad_value_: clip_value must be >= 0; got {clip_value}")
    for p in _with_grads(parameters, "clip_grad_value_"):
        p.grad = Tensor(np.clip(p.grad.data, -clip_value, clip_value))
