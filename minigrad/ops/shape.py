"""Shape ops: reshape, transpose, broadcast_to, sum_to, getitem, concat, stack, split; and
unsqueeze, squeeze and flatten, which are reshapes."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from minigrad.autograd import Function
from minigrad.ops.reduce import normalize_axes
from minigrad.tensor import Tensor

Shape = tuple[int, ...]


class Reshape(Function):
    """reshape: y = x viewed with a new shape; dx = dy reshaped back"""

    def __init__(self, shape: Shape) -> None:
        self.shape = shape

    def forward(self, x):
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot view a tensor of shape {x.shape} ({x.size} elements) as "
                f"shape {self.shape}"
            ) from None

    def backward(self, gy):
        return gy.reshape(self.inputs[0].shape)


class Transpose(Function):
    """transpose: y = x with axes permuted; dx = dy with the inverse permutation"""

    def __init__(self, axes: Sequence[int] | None) -> None:
        self.axes = axes

    def forward(self, x):
        try:
            return x.transpose(self.axes)
        except ValueError:
            raise ValueError(
                f"transpose: axes {self.axes} are not a permutation of the {x.ndim} axes of a "
                f"tensor of shape {x.shape}"
            ) from None

    def backward(self, gy):
        if self.axes is None:
            return gy.transpose()
        return gy.transpose(tuple(np.argsort([a % gy.ndim for a in self.axes])))


class BroadcastTo(Function):
    """broadcast_to: y = x repeated to shape; dx = sum of dy over the repeated axes"""

    def __init__(self, shape: Shape) -> None:
        self.shape = shape

    def forward(self, x):
        try:
            return np.broadcast_to(x, self.shape)
        except ValueError:
            raise ValueError(
                f"broadcast_to: a tensor of shape {x.shape} cannot broadcast to {self.shape}"
            ) from None

    def backward(self, gy):
        return sum_to(gy, self.inputs[0].shape)


class SumTo(Function):
    """sum_to: y = x summed over the axes broadcasting added or stretched; dx = broadcast(dy)"""

    def __init__(self, shape: Shape) -> None:
        self.shape = shape

    def forward(self, x):
        lead = x.ndim - len(self.shape)
        stretched = tuple(lead + i for i, n in enumerate(self.shape)
                          if n == 1 and x.shape[lead + i] != 1)
        y = x.sum(axis=tuple(range(lead)) + stretched, keepdims=True)
        return y.reshape(self.shape)

    def backward(self, gy):
        return gy.broadcast_to(self.inputs[0].shape)


def sum_to(x: Tensor, shape: Shape) -> Tensor:
    """Sum ``x`` down to ``shape``: the inverse of broadcasting ``shape`` up to ``x.shape``."""
    shape = tuple(shape)
    if x.shape == shape:
        return x
    if np.broadcast_shapes(shape, x.shape) != x.shape:
        raise ValueError(f"sum_to: shape {x.shape} cannot be summed to {shape}")
    return SumTo.apply(x, shape=shape)


class _Array:
    """Stands in an index for an integer or boolean array that the op takes as an input."""

    def __repr__(self) -> str:
        return "<array>"


ARRAY = _Array()


def _index_inputs(index) -> tuple[object, tuple[Tensor, ...]]:
    """Split an index into what stays an option (slices, ints, None, ..., lists; ``ARRAY`` where
    an array goes) and its arrays, as tensors: data flows into the op, it is not baked in."""
    parts = index if type(index) is tuple else (index,)
    if not any(isinstance(p, (Tensor, np.ndarray)) for p in parts):
        return index, ()
    arrays = tuple(p if isinstance(p, Tensor) else Tensor._wrap(p)
                   for p in parts if isinstance(p, (Tensor, np.ndarray)))
    options = tuple(ARRAY if isinstance(p, (Tensor, np.ndarray)) else p for p in parts)
    return (options if type(index) is tuple else ARRAY), arrays


def _full_index(index, arrays: tuple[np.ndarray, ...]):
    """The NumPy index: ``index`` with its ``ARRAY`` places filled by ``arrays`` in order."""
    if not arrays:
        return index
    if index is ARRAY:
        return arrays[0]
    rest = iter(arrays)
    return tuple(next(rest) if p is ARRAY else p for p in index)


def _is_advanced(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, (list, np.ndarray)) for p in parts)


class GetItem(Function):
    """getitem: y = x[index]; dx = zeros with dy added at index (repeats accumulate)

    Index arrays come as inputs after ``x`` (no gradient); ``index`` holds ``ARRAY`` for them.
    """

    def __init__(self, index) -> None:
        self.index = index

    def forward(self, x, *arrays):
        index = _full_index(self.index, arrays)
        try:
            return x[index]
        except IndexError as e:
            raise IndexError(f"getitem: {e} (tensor of shape {x.shape}, index {index!r})") \
                from None

    def backward(self, gy):
        x, *arrays = self.inputs
        return IndexAdd.apply(gy, *arrays, index=self.index, shape=x.shape), *[None] * len(arrays)


class IndexAdd(Function):
    """index_add: y = zeros(shape) with x added at index; dx = dy[index]  (index arrays as in
    getitem)"""

    def __init__(self, index, shape: Shape) -> None:
        self.index, self.shape = index, shape

    def forward(self, x, *arrays):
        y = np.zeros(self.shape, x.dtype)
        index = _full_index(self.index, arrays)
        if not _is_advanced(index):
            y[index] = x
        elif self.index is ARRAY and index.dtype.kind in "iu":  # whole rows (embeddings)
            # np.add.at is 5x faster on a 1-D target: add each element at its flat position
            rows = index.reshape(-1, 1)
            rows = np.where(rows < 0, rows + len(y), rows)  # negative ids count from the end
            width = math.prod(self.shape[1:])
            np.add.at(y.reshape(-1), (rows * width + np.arange(width)).reshape(-1), x.reshape(-1))
        else:
            np.add.at(y, index, x)
        return y

    def backward(self, gy):
        arrays = self.inputs[1:]
        return GetItem.apply(gy, *arrays, index=self.index), *[None] * len(arrays)


def getitem(x: Tensor, index) -> Tensor:
    """``x[index]`` with NumPy's basic and advanced indexing; index arrays are op inputs."""
    index, arrays = _index_inputs(index)
    return GetItem.apply(x, *arrays, index=index)


class Concat(Function):
    """concat: y = [x1, x2, ...] joined along axis; dxi = the slice of dy that xi filled"""

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, *xs):
        try:
            y = np.concatenate(xs, axis=self.axis)
        except np.exceptions.AxisError:
            raise ValueError(
                f"concat: axis {self.axis} is out of range for tensors of shape {xs[0].shape}"
            ) from None
        except ValueError:
            shapes = ", ".join(str(x.shape) for x in xs)
            raise ValueError(
                f"concat: shapes {shapes} must match on every axis except axis {self.axis}"
            ) from None
        self.sizes = [x.shape[self.axis] for x in xs]
        return y

    def backward(self, gy):
        return Split.apply(gy, sizes=self.sizes, axis=self.axis)


class Split(Function):
    """split: (y1, y2, ...) = pieces of x along axis; dx = concat(dy1, dy2, ...)"""

    def __init__(self, sizes: Sequence[int], axis: int) -> None:
        self.sizes, self.axis = list(sizes), axis

    def forward(self, x):
        lead = (slice(None),) * (self.axis % x.ndim)  # plain slicing: np.split costs 10x more
        ends = itertools.accumulate(self.sizes)
        return tuple([x[(*lead, slice(end - n, end))] for n, end in zip(self.sizes, ends)])

    def backward(self, *gys):
        return Concat.apply(*gys, axis=self.axis)


class Stack(Function):
    """stack: y = [x1, x2, ...] along a new axis; dxi = dy's slice i along that axis"""

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, *xs):
        return np.stack(xs, axis=self.axis)

    def backward(self, gy):
        return Unbind.apply(gy, axis=self.axis)


class Unbind(Function):
    """unbind: (y1, y2, ...) = slices of x along axis, which they drop; dx = stack(dy1, dy2, ...)"""

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, x):
        return tuple(np.moveaxis(x, self.axis, 0))

    def backward(self, *gys):
        return Stack.apply(*gys, axis=self.axis)


def concat(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join tensors along an existing axis."""
    if len(tensors) == 0:
        raise ValueError("concat: needs at least one tensor")
    return Concat.apply(*tensors, axis=axis)


cat = concat  # PyTorch's name


def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join same-shaped tensors along a new axis."""
    if len(tensors) == 0:
        raise ValueError("stack: needs at least one tensor")
    shape = tensors[0].shape
    for t in tensors:
        if t.shape != shape:
            shapes = ", ".join(str(t.shape) for t in tensors)
            raise ValueError(f"stack: all tensors must have the same shape; got {shapes}")
    if not -len(shape) - 1 <= axis <= len(shape):
        raise ValueError(f"stack: axis {axis} is out of range for tensors of shape {shape}")
    return Stack.apply(*tensors, axis=axis % (len(shape) + 1))


def unbind(x: Tensor, axis: int = 0) -> tuple[Tensor, ...]:
    """The slices of ``x`` along ``axis``, each without that axis (one op: the inverse of stack)."""
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"unbind: axis {axis} is out of range for a tensor of shape {x.shape}")
    return Unbind.apply(x, axis=axis % x.ndim)


def split(x: Tensor, sizes_or_n: int | Sequence[int], axis: int = -1) -> tuple[Tensor, ...]:
    """Cut ``x`` along ``axis`` into ``n`` equal pieces, or into pieces of the given sizes."""
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"split: axis {axis} is out of range for a tensor of shape {x.shape}")
    length = x.shape[axis]
    if isinstance(sizes_or_n, (int, np.integer)):
        n = int(sizes_or_n)
        if n <= 0 or length % n:
            raise ValueError(
                f"split: axis {axis} of a tensor of shape {x.shape} has length {length}, "
                f"which cannot be cut into {n} equal pieces"
            )
        sizes = [length // n] * n
    else:
        sizes = [int(s) for s in sizes_or_n]
        if sum(sizes) != length or min(sizes, default=-1) < 0:
            raise ValueError(
                f"split: sizes {sizes} must be non-negative and add up to {length}, the length of "
                f"axis {axis} of a tensor of shape {x.shape}"
            )
    return Split.apply(x, sizes=sizes, axis=axis)


def unsqueeze(x: Tensor, axis: int) -> Tensor:
    """``x`` with a new axis of length 1 inserted at ``axis`` (in [-ndim - 1, ndim])."""
    if not -x.ndim - 1 <= axis <= x.ndim:
        raise ValueError(
            f"unsqueeze: axis {axis} is out of range for a tensor of shape {x.shape}; expected "
            f"an axis in [{-x.ndim - 1}, {x.ndim}]"
        )
    axis %= x.ndim + 1
    return x.reshape(x.shape[:axis] + (1,) + x.shape[axis:])


def squeeze(x: Tensor, axis: int | Sequence[int] | None = None) -> Tensor:
    """``x`` without its axes of length 1 (only those among ``axis`` when given; an axis of
    another length stays, as in PyTorch)."""
    axes = normalize_axes(axis, max(x.ndim, 1), "squeeze")
    return x.reshape(tuple(n for i, n in enumerate(x.shape) if n != 1 or i not in axes))


def flatten(x: Tensor, start_axis: int = 0, end_axis: int = -1) -> Tensor:
    """``x`` with the axes from ``start_axis`` to ``end_axis`` (both included) merged into one;
    a 0-d tensor becomes 1-d."""
    shape = x.shape or (1,)
    for name, a in (("start_axis", start_axis), ("end_axis", end_axis)):
        if not -len(shape) <= a < len(shape):
            raise ValueError(
                f"flatten: {name} {a} is out of range for a tensor of shape {x.shape}"
            )
    start, end = start_axis % len(shape), end_axis % len(shape)
    if start > end:
        raise ValueError(
            f"flatten: start_axis {start_axis} comes after end_axis {end_axis} for a tensor of "
            f"shape {x.shape}"
        )
    return x.reshape(shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:])
