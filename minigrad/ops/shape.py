"""Shape ops: reshape, transpose, broadcast_to, sum_to, getitem, concat, stack, split; and
unsqueeze, squeeze and flatten, which are reshapes."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from minigrad.autograd import Function
from minigrad.ops.elementwise import NonDifferentiable, Where
from minigrad.ops.reduce import normalize_axes
from minigrad.tensor import Tensor

Shape = tuple[int, ...]


class Reshape(Function):
    """reshape: y = x viewed with a new shape; dx = dy reshaped back; ẏ = ẋ reshaped"""

    view = True
    saved_inputs = slice(0)  # backward reads no input

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

    def jvp(self, tx):
        return tx.reshape(self.shape)


class Transpose(Function):
    """transpose: y = x with axes permuted; dx = dy with the inverse permutation; ẏ = ẋ permuted"""

    view = True
    saved_inputs = slice(0)  # backward reads no input

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
        inverse = None if self.axes is None else tuple(np.argsort([a % gy.ndim for a in self.axes]))
        return Transpose.apply(gy, axes=inverse)

    def jvp(self, tx):
        return Transpose.apply(tx, axes=self.axes)


class BroadcastTo(Function):
    """broadcast_to: y = x repeated to shape; dx = sum of dy over the repeated axes;
    ẏ = ẋ repeated to shape"""

    view = True
    saved_inputs = slice(0)  # backward reads no input

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

    def jvp(self, tx):
        return BroadcastTo.apply(tx, shape=self.shape)


class SumTo(Function):
    """sum_to: y = x summed over the axes broadcasting added or stretched; dx = broadcast(dy);
    ẏ = ẋ summed to shape"""

    saved_inputs = slice(0)  # backward reads no input

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

    def jvp(self, tx):
        return SumTo.apply(tx, shape=self.shape)


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
    """getitem: y = x[index]; dx = zeros with dy added at index (repeats accumulate); ẏ = ẋ[index]

    Index arrays come as inputs after ``x`` (no gradient); ``index`` holds ``ARRAY`` for them.
    """

    view = True  # for a basic index (slices, ints): an advanced one copies
    saved_inputs = slice(1, None)  # backward reads the index arrays, not x

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

    def jvp(self, tx, *_):  # the index arrays have no tangent
        return GetItem.apply(tx, *self.inputs[1:], index=self.index)


class IndexAdd(Function):
    """index_add: y = zeros(shape) with x added at index; dx = dy[index]; ẏ = zeros(shape) with
    ẋ added at index  (index arrays as in getitem)"""

    saved_inputs = slice(1, None)  # backward reads the index arrays

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

    def jvp(self, tx, *_):  # the index arrays have no tangent
        return IndexAdd.apply(tx, *self.inputs[1:], index=self.index, shape=self.shape)


def getitem(x: Tensor, index) -> Tensor:
    """``x[index]`` with NumPy's basic and advanced indexing; index arrays are op inputs."""
    index, arrays = _index_inputs(index)
    return GetItem.apply(x, *arrays, index=index)


class Concat(Function):
    """concat: y = [x1, x2, ...] joined along axis; dxi = the slice of dy that xi filled;
    ẏ = [ẋ1, ẋ2, ...] joined along axis"""

    saved_inputs = slice(0)  # backward reads no input

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
        self.save_for_backward([x.shape[self.axis] for x in xs])
        return y

    def backward(self, gy):
        (sizes,) = self.saved
        return Split.apply(gy, sizes=sizes, axis=self.axis)

    def jvp(self, *txs):
        return Concat.apply(*_zero_filled(self.inputs, txs), axis=self.axis)


class Split(Function):
    """split: (y1, y2, ...) = pieces of x along axis; dx = concat(dy1, dy2, ...);
    (ẏ1, ẏ2, ...) = pieces of ẋ along axis"""

    view = True
    saved_inputs = slice(0)  # backward reads no input

    def __init__(self, sizes: Sequence[int], axis: int) -> None:
        self.sizes, self.axis = list(sizes), axis

    def forward(self, x):
        lead = (slice(None),) * (self.axis % x.ndim)  # plain slicing: np.split costs 10x more
        ends = itertools.accumulate(self.sizes)
        return tuple([x[(*lead, slice(end - n, end))] for n, end in zip(self.sizes, ends)])

    def backward(self, *gys):
        return Concat.apply(*gys, axis=self.axis)

    def jvp(self, tx):
        return Split.apply(tx, sizes=self.sizes, axis=self.axis)


class Stack(Function):
    """stack: y = [x1, x2, ...] along a new axis; dxi = dy's slice i along that axis;
    ẏ = [ẋ1, ẋ2, ...] along a new axis"""

    saved_inputs = slice(0)  # backward reads no input

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, *xs):
        return np.stack(xs, axis=self.axis)

    def backward(self, gy):
        return Unbind.apply(gy, axis=self.axis)

    def jvp(self, *txs):
        return Stack.apply(*_zero_filled(self.inputs, txs), axis=self.axis)


class Unbind(Function):
    """unbind: (y1, y2, ...) = slices of x along axis, which they drop; dx = stack(dy1, dy2, ...);
    (ẏ1, ẏ2, ...) = slices of ẋ along axis"""

    view = True
    saved_inputs = slice(0)  # backward reads no input

    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, x):
        return tuple(np.moveaxis(x, self.axis, 0))

    def backward(self, *gys):
        return Stack.apply(*gys, axis=self.axis)

    def jvp(self, tx):
        return Unbind.apply(tx, axis=self.axis)


def _zero_filled(xs: Sequence[Tensor], tangents: Sequence[Tensor | None]) -> list[Tensor]:
    """The tangents of a join's inputs (concat, stack), with zeros of an input's shape for an
    input without one (its part of the joined tangent is zero)."""
    return [Tensor._wrap(np.zeros(x.shape, x.dtype)) if t is None else t
            for x, t in zip(xs, tangents)]


def concat(tensors: Sequence[Tensor], dim: int = 0, *, axis: int | None = None) -> Tensor:
    """Join tensors along an existing axis ``dim``."""
    if len(tensors) == 0:
        raise ValueError("concat: needs at least one tensor")
    return Concat.apply(*tensors, axis=dim if axis is None else axis)


cat = concat  # PyTorch's name


def stack(tensors: Sequence[Tensor], dim: int = 0, *, axis: int | None = None) -> Tensor:
    """Join same-shaped tensors along a new axis ``dim``."""
    axis = dim if axis is None else axis
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


def unbind(x: Tensor, dim: int = 0, *, axis: int | None = None) -> tuple[Tensor, ...]:
    """The slices of ``x`` along ``dim``, each without that axis (one op: the inverse of stack)."""
    axis = dim if axis is None else axis
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"unbind: axis {axis} is out of range for a tensor of shape {x.shape}")
    return Unbind.apply(x, axis=axis % x.ndim)


def check_dim(x: Tensor, dim: int, op: str) -> int:
    """``dim`` as a non-negative axis of ``x``, with a clear error when it is out of range."""
    if not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{op}: dim must be an int; got {dim!r}")
    if not -max(x.ndim, 1) <= dim < max(x.ndim, 1):
        raise IndexError(
            f"{op}: dimension {dim} is out of range for a tensor of shape {x.shape}; expected a "
            f"dimension in [{-max(x.ndim, 1)}, {max(x.ndim, 1) - 1}]"
        )
    return int(dim) % max(x.ndim, 1)


def split(x: Tensor, split_size_or_sections: int | Sequence[int],
          dim: int = 0) -> tuple[Tensor, ...]:
    """Cut ``x`` along ``dim`` into pieces of ``split_size`` (the last one shorter if the
    length does not divide), or into pieces of the given sizes, as ``torch.split``."""
    axis = check_dim(x, dim, "split")
    length = x.shape[axis]
    if isinstance(split_size_or_sections, (int, np.integer)):
        size = int(split_size_or_sections)
        if size <= 0:
            raise ValueError(f"split: split_size must be positive; got {size}")
        sizes = [min(size, length - start) for start in range(0, length, size)] or [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if sum(sizes) != length or min(sizes, default=-1) < 0:
            raise ValueError(
                f"split: sizes {sizes} must be non-negative and add up to {length}, the length of "
                f"dimension {dim} of a tensor of shape {x.shape}"
            )
    return Split.apply(x, sizes=sizes, axis=axis)


def chunk(x: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """At most ``chunks`` pieces along ``dim``, each ``ceil(length / chunks)`` long but the
    last, as ``torch.chunk`` (so 6 rows in 4 chunks give 3 pieces of 2)."""
    if not isinstance(chunks, (int, np.integer)) or chunks <= 0:
        raise ValueError(f"chunk: chunks must be a positive integer; got {chunks!r}")
    length = x.shape[check_dim(x, dim, "chunk")]
    return split(x, max(-(-length // int(chunks)), 1), dim)


def view(x: Tensor, shape: Shape) -> Tensor:
    """``x`` with a new shape, sharing its array; raises where NumPy would have to copy."""
    try:
        if type(x.data) is np.ndarray:  # (not mg.compile's stand-in, which has no layout)
            np.reshape(x.data, shape, copy=False)
    except ValueError as e:
        if "copy" not in str(e):
            raise ValueError(f"view: cannot view a tensor of shape {x.shape} as {shape}") from None
        raise ValueError(
            f"view: a tensor of shape {x.shape} whose memory layout a view of shape {shape} "
            "cannot express (after transpose or permute): use .reshape(...) instead"
        ) from None
    return Reshape.apply(x, shape=shape)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    """``x`` with axes ``dim0`` and ``dim1`` swapped."""
    axes = list(range(x.ndim))
    a, b = check_dim(x, dim0, "transpose"), check_dim(x, dim1, "transpose")
    if x.ndim < 2:
        return x
    axes[a], axes[b] = axes[b], axes[a]
    return Transpose.apply(x, axes=tuple(axes))


def permute(x: Tensor, dims: Sequence[int]) -> Tensor:
    """``x`` with its axes reordered: axis ``i`` of the result is axis ``dims[i]`` of ``x``."""
    if len(dims) != x.ndim or sorted(d % max(x.ndim, 1) for d in dims) != list(range(x.ndim)):
        raise ValueError(
            f"permute: dims {tuple(dims)} are not a permutation of the {x.ndim} dimensions of a "
            f"tensor of shape {x.shape}"
        )
    return Transpose.apply(x, axes=tuple(d % x.ndim for d in dims))


def expand(x: Tensor, sizes: Shape) -> Tensor:
    """``x`` repeated along new leading axes and axes of length 1 (-1 keeps an axis)."""
    lead = len(sizes) - x.ndim
    if lead < 0:
        raise ValueError(f"expand: the {len(sizes)} sizes {sizes} are fewer than the dimensions "
                         f"of a tensor of shape {x.shape}")
    shape = tuple(x.shape[i - lead] if n == -1 and i >= lead else n for i, n in enumerate(sizes))
    return x.broadcast_to(shape)


def repeat(x: Tensor, sizes: Shape) -> Tensor:
    """``x`` tiled: its (left-padded to ``len(sizes)``) axis ``i`` repeated ``sizes[i]``
    times, by a broadcast over a new axis before each and a reshape."""
    if len(sizes) < x.ndim:
        raise ValueError(f"repeat: needs at least {x.ndim} sizes for a tensor of shape "
                         f"{x.shape}; got {sizes}")
    shape = (1,) * (len(sizes) - x.ndim) + x.shape
    spread = x.reshape(tuple(n for m in shape for n in (1, m)))
    tiled = spread.broadcast_to(tuple(n for r, m in zip(sizes, shape) for n in (r, m)))
    return tiled.reshape(tuple(r * m for r, m in zip(sizes, shape)))


def flip(x: Tensor, dims: int | Sequence[int]) -> Tensor:
    """``x`` in reverse order along ``dims``."""
    axes = normalize_axes(dims, x.ndim, "flip")
    return x[tuple(slice(None, None, -1) if i in axes else slice(None) for i in range(x.ndim))]


def _integer_index(index: Tensor, op: str) -> Tensor:
    index = index if isinstance(index, Tensor) else Tensor._wrap(np.asarray(index))
    if index.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must hold integers; got dtype {index.dtype}")
    return index


class IndexInRange(NonDifferentiable):
    """index_in_range: y = index, after checking 0 <= index < size (NumPy would wrap a
    negative one silently); no gradient"""

    def __init__(self, op: str, size: int) -> None:
        self.op, self.size = op, size

    def forward(self, index):
        bad = index[(index < 0) | (index >= self.size)]
        if bad.size:
            raise IndexError(
                f"{self.op}: index {bad.flat[0]} is out of bounds for a dimension of size "
                f"{self.size}"
            )
        return index


def index_select(x: Tensor, dim: int, index: Tensor) -> Tensor:
    """The entries at the 1-D integer positions ``index`` along ``dim``."""
    axis = check_dim(x, dim, "index_select")
    index = _integer_index(index, "index_select")
    if index.ndim > 1:
        raise ValueError(f"index_select: index must be 0-d or 1-d; got shape {index.shape}")
    index = IndexInRange.apply(index.reshape(-1), op="index_select", size=x.shape[axis])
    if axis == 0:
        return x[index]
    return x.transpose(0, axis)[index].transpose(0, axis)  # the index leads: vmap batches it


def gather(x: Tensor, dim: int, index: Tensor) -> Tensor:
    """``y[i][j] = x[index[i][j]][j]`` for ``dim`` 0 (and likewise for any ``dim``): ``index``
    has ``x``'s number of axes, and no axis longer than ``x``'s except along ``dim``."""
    axis = check_dim(x, dim, "gather")
    index = _integer_index(index, "gather")
    if index.ndim != x.ndim or any(n > m for i, (n, m) in enumerate(zip(index.shape, x.shape))
                                   if i != axis):
        raise ValueError(
            f"gather: index of shape {index.shape} does not fit a tensor of shape {x.shape} "
            f"along dimension {dim}: it needs the same number of dimensions, none longer except "
            f"dimension {dim}"
        )
    index = IndexInRange.apply(index, op="gather", size=x.shape[axis] if x.ndim else 1)
    if x.ndim == 0:
        return x.reshape(index.shape)
    grids = [Tensor._wrap(g) for g in np.indices(index.shape, sparse=True)]
    return x[tuple(index if i == axis else g for i, g in enumerate(grids))]


def setitem(x: Tensor, index, value) -> Tensor:
    """``x`` with ``value`` (broadcast) written at ``index``, out of place: what ``x[index] =
    value`` computes before writing it (``value``'s gradient is the gradient at ``index``)."""
    mask = np.zeros(x.shape, bool)
    options, arrays = _index_inputs(index)
    where = _full_index(options, tuple(a.data for a in arrays))
    mask[where] = True
    part = mask[where].shape
    value = value.astype(x.dtype)
    try:
        value = value.broadcast_to(part)
    except ValueError:
        raise ValueError(f"setitem: a value of shape {value.shape} cannot be written into a "
                         f"part of shape {part} of a tensor of shape {x.shape}") from None
    placed = IndexAdd.apply(value, *arrays, index=options, shape=x.shape)
    return Where.apply(Tensor._wrap(mask), placed, x)


def unsqueeze(x: Tensor, axis: int) -> Tensor:
    """``x`` with a new axis of length 1 inserted at ``axis`` (in [-ndim - 1, ndim])."""
    if not -x.ndim - 1 <= axis <= x.ndim:
        raise IndexError(
            f"unsqueeze: dimension {axis} is out of range for a tensor of shape {x.shape}; "
            "expected "
            f"an axis in [{-x.ndim - 1}, {x.ndim}]"
        )
    axis %= x.ndim + 1
    return x.reshape(x.shape[:axis] + (1,) + x.shape[axis:])


def squeeze(x: Tensor, axis: int | Sequence[int] | None = None) -> Tensor:
    """``x`` without its axes of length 1 (only those among ``axis`` when given; an axis of
    another length stays, as in PyTorch)."""
    axes = normalize_axes(axis, max(x.ndim, 1), "squeeze")
    return x.reshape(tuple(n for i, n in enumerate(x.shape) if n != 1 or i not in axes))


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """``x`` with the axes from ``start_dim`` to ``end_dim`` (both included) merged into one;
    a 0-d tensor becomes 1-d."""
    shape = x.shape or (1,)
    for name, a in (("start_dim", start_dim), ("end_dim", end_dim)):
        if not -len(shape) <= a < len(shape):
            raise ValueError(
                f"flatten: {name} {a} is out of range for a tensor of shape {x.shape}"
            )
    start, end = start_dim % len(shape), end_dim % len(shape)
    if start > end:
        raise ValueError(
            f"flatten: start_dim {start_dim} comes after end_dim {end_dim} for a tensor of "
            f"shape {x.shape}"
        )
    return x.reshape(shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:])
