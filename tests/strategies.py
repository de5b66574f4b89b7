"""Shared hypothesis strategies for minigrad's tests: shapes, broadcasting, arrays and axes.

Arrays are float64 and bounded, and can be kept away from the points where an op has a kink
(relu and abs at 0, clip at its bounds), a tie (max, maximum) or a domain edge (log, sqrt), so
that the central differences of ``mg.gradcheck`` are accurate and tolerances never need
loosening. Shapes are small on purpose: gradcheck's full Jacobian costs one backward pass per
output element and two forward passes per input element.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg

Shape = tuple[int, ...]
Axis = int | tuple[int, ...] | None

MAX_DIMS = 3
MAX_SIDE = 3


def shapes(
    min_dims: int = 0, max_dims: int = MAX_DIMS, min_side: int = 1, max_side: int = MAX_SIDE
) -> st.SearchStrategy[Shape]:
    """Array shapes with ``min_dims..max_dims`` axes of ``min_side..max_side`` each."""
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def broadcast_shapes(
    num_shapes: int = 2, min_dims: int = 0, max_dims: int = MAX_DIMS, max_side: int = MAX_SIDE
) -> st.SearchStrategy[tuple[Shape, ...]]:
    """Tuples of ``num_shapes`` shapes that broadcast together, with missing and size-1 axes."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims, max_side=max_side
    ).map(lambda b: b.input_shapes)


@st.composite
def shapes_broadcasting_to(draw, shape: Shape) -> Shape:
    """Shapes that ``np.broadcast_to(..., shape)`` accepts: a suffix of ``shape`` with some
    axes set to 1."""
    suffix = shape[draw(st.integers(0, len(shape))):]
    return tuple(1 if draw(st.booleans()) else n for n in suffix)


def matmul_shapes(
    max_dims: int = 2, max_side: int = MAX_SIDE
) -> st.SearchStrategy[tuple[Shape, Shape]]:
    """Pairs of shapes that ``a @ b`` accepts: 1-D and 2-D operands, and up to ``max_dims``
    batch axes that broadcast against each other."""
    return hnp.mutually_broadcastable_shapes(
        signature=np.matmul.signature, max_dims=max_dims, max_side=max_side
    ).map(lambda b: b.input_shapes)


def arrays(
    shape: Shape,
    lo: float = -2.0,
    hi: float = 2.0,
    avoid: Sequence[float] = (),
    gap: float = 0.1,
) -> st.SearchStrategy[np.ndarray]:
    """float64 arrays of ``shape`` with elements in ``[lo, hi]``, each at least ``gap`` away
    from every point in ``avoid`` (kinks such as 0 for relu, or the bounds of clip)."""
    elements = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    if avoid:
        elements = elements.filter(lambda v: min(abs(v - k) for k in avoid) >= gap)
    return hnp.arrays(np.float64, shape, elements=elements)


@st.composite
def distinct_arrays(draw, shape: Shape, lo: float = -2.0, hi: float = 2.0) -> np.ndarray:
    """float64 arrays in ``[lo, hi]`` whose elements are pairwise at least
    ``(hi - lo) / (2 * size)`` apart, so that max and maximum have no ties."""
    size = math.prod(shape)
    order = np.array(draw(st.permutations(range(size))), dtype=np.float64)
    jitter = draw(hnp.arrays(np.float64, size, elements=st.floats(0.0, 0.5)))
    step = (hi - lo) / max(size, 1)
    return (lo + step * (order + jitter)).reshape(shape)


def axis(ndim: int) -> st.SearchStrategy[int]:
    """One valid axis of an ``ndim``-axis array (``ndim >= 1``), negative ones included."""
    return st.integers(-ndim, ndim - 1)


def axes(ndim: int) -> st.SearchStrategy[Axis]:
    """An ``axis`` argument for a reduction over ``ndim`` axes: None, one axis, or a tuple of
    distinct axes (possibly empty, possibly negative)."""
    choices = [st.none(), hnp.valid_tuple_axes(ndim)]
    if ndim:
        choices.append(axis(ndim))
    return st.one_of(choices)


@st.composite
def same_size_shapes(draw, size: int, max_dims: int = MAX_DIMS + 1) -> Shape:
    """Shapes with ``size`` elements in all (the targets of a reshape), size-1 axes included."""
    if size == 1 and draw(st.booleans()):
        return ()
    dims, left = [], size
    for _ in range(draw(st.integers(0, max_dims - 1))):
        divisors = [d for d in range(1, left + 1) if left % d == 0]
        d = draw(st.sampled_from(divisors))
        dims.append(d)
        left //= d
    dims.append(left)
    return tuple(draw(st.permutations(dims)))


def leaf(array: np.ndarray, dtype=np.float64) -> mg.Tensor:
    """A leaf tensor of ``array`` that requires grad (float64 by default, as gradcheck needs)."""
    return mg.tensor(array, dtype=dtype, requires_grad=True)
