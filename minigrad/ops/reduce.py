"""Reductions: sum, mean, var, std, max, min over any axes; argmax and argmin."""

from __future__ import annotations

import math
import warnings
from collections import namedtuple
from collections.abc import Sequence

import numpy as np

from minigrad.autograd import Function
from minigrad.ops.elementwise import Compare, NonDifferentiable
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
    """sum: y = sum_axis x; dx = broadcast(dy); ẏ = sum_axis ẋ"""

    saved_inputs = slice(0)  # backward reads no input

    def __init__(self, axis: Axis = None, keepdims: bool = False) -> None:
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        axes = normalize_axes(self.axis, x.ndim, "sum")
        self.save_for_backward(axes)
        return np.add.reduce(x, axis=axes, keepdims=self.keepdims)

    def backward(self, gy):
        (axes,) = self.saved
        shape = self.inputs[0].shape
        return gy.reshape(_kept_shape(shape, axes)).broadcast_to(shape)

    def jvp(self, tx):
        return Sum.apply(tx, axis=self.axis, keepdims=self.keepdims)


def _check_not_empty(x: np.ndarray | Tensor, op: str) -> None:
    if math.prod(x.shape) == 0:
        raise ValueError(f"{op}: cannot reduce an empty tensor of shape {x.shape}")


class Max(Function):
    """max: y = max_axis x; dx = dy * [x == y] / count(x == y)  (ties share the gradient);
    ẏ = sum_axis(ẋ * [x == y]) / count(x == y)  (ties share the tangent: ẋ's mean over them)"""

    pick = staticmethod(np.max)

    def __init__(self, axis: Axis = None, keepdims: bool = False) -> None:
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        op = self.name.lower()
        axes = normalize_axes(self.axis, x.ndim, op)
        _check_not_empty(x, op)
        self.save_for_backward(axes)
        return self.pick(x, axis=axes, keepdims=self.keepdims)

    def backward(self, gy):
        axes, kept, share = self._shares()
        return gy.reshape(kept) * share

    def jvp(self, tx):
        axes, _, share = self._shares()
        return Sum.apply(tx * share, axis=axes, keepdims=self.keepdims)

    def _shares(self) -> tuple[tuple[int, ...], tuple[int, ...], Tensor]:
        """The reduced axes, the output's shape with them kept, and each element's share of
        its result: [x == y] / count(x == y), a constant (no gradient, no tangent)."""
        (axes,) = self.saved
        x = self.inputs[0]
        kept = _kept_shape(x.shape, axes)
        hit = Compare.apply(x, self.output().reshape(kept), op="==").astype(x.dtype)
        return axes, kept, hit / hit.sum(axes, keepdims=True)


class Min(Max):
    """min: y = min_axis x; dx = dy * [x == y] / count(x == y);
    ẏ = sum_axis(ẋ * [x == y]) / count(x == y)  (max's rules: only the pick differs)"""

    pick = staticmethod(np.min)


class ArgMax(NonDifferentiable):
    """argmax: y = the int64 position of the largest x along axis (the first at ties); no
    gradient"""

    pick = staticmethod(np.argmax)

    def __init__(self, axis: int | None, keepdims: bool) -> None:
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        return self.pick(x, axis=self.axis, keepdims=self.keepdims).astype(np.int64)


class ArgMin(ArgMax):
    """argmin: y = the int64 position of the smallest x along axis (the first at ties); no
    gradient"""

    pick = staticmethod(np.argmin)


def _arg(op: type[ArgMax], x: Tensor, axis: int | None, keepdims: bool) -> Tensor:
    """The positions that ``op`` (ArgMax or ArgMin) finds, after checking the arguments."""
    name = op.__name__.lower()
    if axis is not None and not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{name}: axis must be an int or None; got {axis!r}")
    normalize_axes(axis, x.ndim, name)  # for its range check
    _check_not_empty(x, name)
    return op.apply(x, axis=None if x.ndim == 0 else axis, keepdims=keepdims)


def argmax(x: Tensor, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Position of the largest value along ``axis`` (in the flattened tensor when None), the
    first one at ties, as an int64 tensor that does not require grad."""
    return _arg(ArgMax, x, axis, keepdims)


def argmin(x: Tensor, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Position of the smallest value along ``axis`` (in the flattened tensor when None), the
    first one at ties, as an int64 tensor that does not require grad."""
    return _arg(ArgMin, x, axis, keepdims)


def _count(shape: tuple[int, ...], axes: tuple[int, ...]) -> int:
    """How many elements a reduction over ``axes`` takes into each result."""
    return math.prod(shape[a] for a in axes)


def mean(x: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis``: a sum scaled by the number of elements reduced."""
    axes = normalize_axes(axis, x.ndim, "mean")
    return x.sum(axes, keepdims) * (1.0 / _count(x.shape, axes))


def var(x: Tensor, axis: Axis = None, keepdims: bool = False, correction: float = 1) -> Tensor:
    """Variance over ``axis``: sum((x - mean) ** 2) / (N - correction), built from mean and sum.

    ``correction=1`` (Bessel's, PyTorch's default) gives the unbiased estimate, 0 the mean of
    the squared deviations. With N - correction <= 0 the result is inf or nan, with a warning,
    as in PyTorch.
    """
    axes = normalize_axes(axis, x.ndim, "var")
    n = _count(x.shape, axes)
    if n - correction <= 0:
        warnings.warn(
            f"var: no degrees of freedom left: N - correction = {n} - {correction} <= 0 (N: "
            "elements per result); the result is inf or nan",
            RuntimeWarning, stacklevel=3,
        )
    deviation = x - x.mean(axes, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (deviation * deviation).sum(axes, keepdims) / max(n - correction, 0)


def std(x: Tensor, axis: Axis = None, keepdims: bool = False, correction: float = 1) -> Tensor:
    """Standard deviation over ``axis``: the square root of ``var`` (same ``correction``)."""
    return var(x, axis, keepdims, correction).sqrt()


class Logical(NonDifferentiable):
    """all / any: y = whether every / some x along axis is true, as bools; no gradient"""

    def __init__(self, op: str, axis: int | None, keepdims: bool) -> None:
        self.op, self.axis, self.keepdims = op, axis, keepdims

    def forward(self, x):
        normalize_axes(self.axis, x.ndim, self.op)
        return getattr(np, self.op)(x, axis=self.axis, keepdims=self.keepdims)


class ArgSort(NonDifferentiable):
    """argsort: y = the int64 positions that sort x along axis (stable); no gradient"""

    def __init__(self, axis: int, descending: bool) -> None:
        self.axis, self.descending = axis, descending

    def forward(self, x):
        key = -x if self.descending and x.dtype.kind != "b" else x  # stable among equals
        order = np.argsort(key, axis=self.axis, kind="stable")
        if self.descending and x.dtype.kind == "b":
            order = np.flip(order, self.axis)
        return order.astype(np.int64)


RETURN_TYPES = {name: namedtuple(name, ("values", "indices"))  # torch.return_types
                for name in ("max", "min", "sort", "topk")}


def extreme(x: Tensor, op: str, dim: int | None, keepdim: bool) -> Tensor | tuple:
    """``x.max()``/``x.min()``: the extreme element (ties share the gradient); with ``dim``, the
    named tuple ``(values, indices)``, whose values are picked at the indices (as PyTorch's,
    the gradient goes to the index)."""
    if dim is None:
        return (Max if op == "max" else Min).apply(x)
    if not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{op}: dim must be an int (amax/amin reduce several); got {dim!r}")
    indices = _arg(ArgMax if op == "max" else ArgMin, x, dim, True)
    values = x.gather(dim, indices)
    if not keepdim:
        values, indices = values.squeeze(dim), indices.squeeze(dim)
    return RETURN_TYPES[op](values, indices)


def sort(x: Tensor, dim: int, descending: bool) -> tuple:
    """``(values, indices)`` of ``x`` sorted along ``dim``; values are picked at the indices."""
    normalize_axes(dim, x.ndim, "sort")
    indices = ArgSort.apply(x, axis=dim, descending=descending)
    return RETURN_TYPES["sort"](x.gather(dim, indices), indices)


def topk(x: Tensor, k: int, dim: int, largest: bool) -> tuple:
    """``(values, indices)`` of the ``k`` largest (smallest) entries along ``dim``, in order."""
    (axis,) = normalize_axes(dim, x.ndim, "topk")
    if not 0 <= k <= (x.shape[axis] if x.ndim else 1):
        raise ValueError(f"topk: k={k} is out of range for dimension {dim} of a tensor of shape "
                         f"{x.shape}")
    indices = ArgSort.apply(x, axis=dim, descending=largest).narrow(dim, 0, k)
    return RETURN_TYPES["topk"](x.gather(dim, indices), indices)


def logsumexp(x: Tensor, dim: Axis, keepdim: bool) -> Tensor:
    """log(sum(exp(x))) over ``dim``: m + log(sum(exp(x - m))) with m the (constant) max."""
    m = x.amax(dim, keepdim=True).detach()
    y = m + (x - m).exp().sum(dim, keepdim=True).log()
    return y if keepdim else y.squeeze(dim)


def norm(x: Tensor, p: float | str, dim: Axis, keepdim: bool) -> Tensor:
    """The vector ``p``-norm over ``dim``: 2 (or "fro"), 1 or inf."""
    if p in (2, "fro"):
        return (x * x).sum(dim, keepdim).sqrt()
    if p == 1:
        return x.abs().sum(dim, keepdim)
    if p == math.inf:
        return x.abs().amax(dim, keepdim)
    raise ValueError(f"norm: p must be 2, 'fro', 1 or inf; got {p!r}")
