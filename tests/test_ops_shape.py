"""Shape ops (reshape, transpose, swapaxes, .T, broadcast_to, getitem, concat, stack, split,
chunk): forward values against NumPy, gradients and second derivatives, dtypes and errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from tests.strategies import (
    MAX_SIDE,
    arrays,
    axis,
    leaf,
    same_size_shapes,
    shapes,
    shapes_broadcasting_to,
)


def check(fn, inputs: list[mg.Tensor], expected: np.ndarray | list[np.ndarray]) -> None:
    """fn(*inputs) equals ``expected`` exactly, and its first and second derivatives check."""
    out = fn(*inputs)
    outs, expected = (out, expected) if isinstance(out, tuple) else ((out,), [expected])
    assert len(outs) == len(expected)
    for y, e in zip(outs, expected):
        assert y.shape == e.shape
        np.testing.assert_array_equal(y.data, e)
    assert mg.gradcheck(fn, inputs)
    assert mg.gradgradcheck(fn, inputs)


# -- reshape --------------------------------------------------------------------------------------


@st.composite
def reshape_cases(draw):
    """An array and a target shape with as many elements, one entry maybe replaced by -1."""
    a = draw(arrays(draw(shapes())))
    target = draw(same_size_shapes(a.size))
    if target and draw(st.booleans()):
        i = draw(st.integers(0, len(target) - 1))
        target = target[:i] + (-1,) + target[i + 1:]
    return a, target


@given(reshape_cases())
def test_reshape(case) -> None:
    a, target = case
    check(lambda t: t.reshape(target), [leaf(a)], a.reshape(target))


def test_reshape_takes_the_shape_as_arguments_or_a_sequence() -> None:
    x = mg.tensor(np.arange(6.0))
    assert x.reshape(2, 3).shape == x.reshape((2, 3)).shape == x.reshape([-1, 3]).shape == (2, 3)


# -- transpose, swapaxes, .T ----------------------------------------------------------------------


@st.composite
def permutations(draw, ndim: int) -> tuple[int, ...]:
    """A permutation of ``ndim`` axes, with some axes written as negative numbers."""
    perm = draw(st.permutations(range(ndim)))
    return tuple(p - ndim if draw(st.booleans()) else p for p in perm)


@given(data=st.data())
def test_transpose(data) -> None:
    a = data.draw(arrays(data.draw(shapes())))
    perm = data.draw(permutations(a.ndim))
    check(lambda t: t.transpose(perm), [leaf(a)], np.transpose(a, perm))
    check(lambda t: t.transpose(*perm), [leaf(a)], np.transpose(a, perm))


@given(data=st.data())
def test_transpose_without_axes_and_T_reverse_the_axes(data) -> None:
    a = data.draw(arrays(data.draw(shapes())))
    check(lambda t: t.transpose(), [leaf(a)], a.T)
    check(lambda t: t.T, [leaf(a)], a.T)


@given(data=st.data())
def test_swapaxes(data) -> None:
    a = data.draw(arrays(data.draw(shapes(min_dims=1))))
    i, j = data.draw(axis(a.ndim)), data.draw(axis(a.ndim))
    check(lambda t: t.swapaxes(i, j), [leaf(a)], np.swapaxes(a, i, j))


# -- broadcast_to ---------------------------------------------------------------------------------


@given(data=st.data())
def test_broadcast_to(data) -> None:
    target = data.draw(shapes())
    source = data.draw(shapes_broadcasting_to(target))
    a = data.draw(arrays(source))
    check(lambda t: t.broadcast_to(target), [leaf(a)], np.broadcast_to(a, target))


# -- getitem --------------------------------------------------------------------------------------


@given(data=st.data())
def test_getitem_basic_indices(data) -> None:
    """Slices (negative steps too), integers, None and Ellipsis."""
    a = data.draw(arrays(data.draw(shapes(min_dims=1))))
    index = data.draw(hnp.basic_indices(a.shape, allow_newaxis=True, allow_ellipsis=True))
    check(lambda t: t[index], [leaf(a)], a[index])


@st.composite
def repeated_indices(draw, sides: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """One integer index array per axis length in ``sides`` (negative entries included),
    together naming every position twice."""
    k = draw(st.integers(1, 3))
    once = [draw(hnp.arrays(np.int64, k, elements=st.integers(-n, n - 1))) for n in sides]
    return tuple(np.concatenate([i, i[::-1]]) for i in once)


@given(data=st.data())
def test_getitem_integer_arrays_accumulate_repeats(data) -> None:
    a = data.draw(arrays(data.draw(shapes(min_dims=1))))
    (rows,) = data.draw(repeated_indices(a.shape[:1]))
    (last,) = data.draw(repeated_indices(a.shape[-1:]))
    check(lambda t: t[rows], [leaf(a)], a[rows])
    check(lambda t: t[mg.tensor(rows)], [leaf(a)], a[rows])
    grid = np.stack([rows, rows[::-1]])  # a 2-D array of rows, as an embedding lookup makes
    check(lambda t: t[grid], [leaf(a)], a[grid])
    check(lambda t: t[..., last.tolist()], [leaf(a)], a[..., last.tolist()])
    if a.ndim >= 2:
        pair = data.draw(repeated_indices(a.shape[:2]))
        check(lambda t: t[pair], [leaf(a)], a[pair])
        check(lambda t: t[::-1, pair[1]], [leaf(a)], a[::-1, pair[1]])


def test_getitem_repeats_add_up_in_the_gradient() -> None:
    x = leaf(np.arange(4.0))
    x[[0, 2, 0, 0, -1]].sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3.0, 0.0, 1.0, 1.0])


@given(data=st.data())
def test_getitem_boolean_masks(data) -> None:
    a = data.draw(arrays(data.draw(shapes(min_dims=1))))
    mask = data.draw(hnp.arrays(bool, a.shape))
    rows = data.draw(hnp.arrays(bool, a.shape[:1]))
    check(lambda t: t[mask], [leaf(a)], a[mask])
    check(lambda t: t[mg.tensor(mask)], [leaf(a)], a[mask])
    check(lambda t: t[rows], [leaf(a)], a[rows])


@pytest.mark.parametrize(
    "index",
    [np.s_[::-1], np.s_[1, ::-2], np.s_[None, ..., 0], np.s_[..., None], np.s_[-1],
     np.s_[:, [2, 0, 2]], np.s_[[1, 1], [3, -1]], np.s_[[True, False, True], 1:3]],
    ids=["reverse", "int-negstep", "newaxis-ellipsis-int", "ellipsis-newaxis", "negative-int",
         "slice-intarray", "two-intarrays", "mask-slice"],
)
def test_getitem_examples(index) -> None:
    a = np.random.default_rng(0).standard_normal((3, 4))
    check(lambda t: t[index], [leaf(a)], a[index])


# -- concat, stack --------------------------------------------------------------------------------


@st.composite
def concat_cases(draw):
    """1 to 3 arrays that agree on every axis except ``axis``, and that axis."""
    shape = draw(shapes(min_dims=1))
    ax = draw(axis(len(shape)))
    pieces = []
    for _ in range(draw(st.integers(1, 3))):
        piece = list(shape)
        piece[ax] = draw(st.integers(1, MAX_SIDE))
        pieces.append(draw(arrays(tuple(piece))))
    return pieces, ax


@given(concat_cases())
def test_concat(case) -> None:
    pieces, ax = case
    check(lambda *ts: mg.concat(ts, axis=ax), [leaf(p) for p in pieces],
          np.concatenate(pieces, axis=ax))


@given(data=st.data())
def test_stack(data) -> None:
    shape = data.draw(shapes())
    pieces = [data.draw(arrays(shape)) for _ in range(data.draw(st.integers(1, 3)))]
    ax = data.draw(st.integers(-len(shape) - 1, len(shape)))
    check(lambda *ts: mg.stack(ts, axis=ax), [leaf(p) for p in pieces], np.stack(pieces, axis=ax))


@given(st.data())
def test_unbind(data) -> None:
    shape = data.draw(shapes(min_dims=1))
    x = data.draw(arrays(shape))
    ax = data.draw(st.integers(-len(shape), len(shape) - 1))
    check(lambda t: mg.unbind(t, axis=ax), [leaf(x)], list(np.moveaxis(x, ax, 0)))


def test_unbind_with_only_some_slices_used_and_its_errors() -> None:
    x = leaf(np.arange(6.0).reshape(3, 2))
    first, _, last = mg.unbind(x)
    (first * 2 + last).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [[2, 2], [0, 0], [1, 1]])
    with pytest.raises(ValueError, match=r"unbind: axis 2 is out of range .*\(3, 2\)"):
        mg.unbind(x, axis=2)


def test_concat_and_stack_default_to_axis_0() -> None:
    a, b = np.ones((2, 3)), np.zeros((2, 3))
    assert mg.concat([mg.tensor(a), mg.tensor(b)]).shape == (4, 3)
    assert mg.stack([mg.tensor(a), mg.tensor(b)]).shape == (2, 2, 3)


# -- split, chunk ---------------------------------------------------------------------------------


@st.composite
def split_cases(draw, equal: bool):
    """An array, an axis and either n (equal pieces) or a list of sizes that add up."""
    shape = list(draw(shapes(min_dims=1)))
    ax = draw(axis(len(shape)))
    if equal:
        n = draw(st.integers(1, 3))
        shape[ax] = n * draw(st.integers(1, 2))
        how = n
    else:
        how = draw(st.lists(st.integers(0, 2), min_size=1, max_size=3).filter(lambda s: sum(s)))
        shape[ax] = sum(how)
    return draw(arrays(tuple(shape))), how, ax


@given(split_cases(equal=True))
def test_split_into_n(case) -> None:
    a, n, ax = case
    expected = np.split(a, n, axis=ax)
    check(lambda t: t.split(n, axis=ax), [leaf(a)], expected)
    check(lambda t: t.chunk(n, axis=ax), [leaf(a)], expected)
    check(lambda t: mg.split(t, n, axis=ax), [leaf(a)], expected)


@given(split_cases(equal=False))
def test_split_into_sizes(case) -> None:
    a, sizes, ax = case
    check(lambda t: t.split(sizes, axis=ax), [leaf(a)],
          np.split(a, np.cumsum(sizes)[:-1], axis=ax))


@given(split_cases(equal=True))
def test_split_gradient_when_only_some_pieces_are_used(case) -> None:
    a, n, ax = case
    check(lambda t: t.split(n, axis=ax)[-1] * 2.0, [leaf(a)], np.split(a, n, axis=ax)[-1] * 2.0)


def test_chunk_defaults_to_the_last_axis() -> None:
    x = mg.tensor(np.arange(12.0).reshape(2, 6))
    assert [p.shape for p in x.chunk(3)] == [(2, 2)] * 3
    assert [p.shape for p in x.split([1, 5])] == [(2, 1), (2, 5)]


# -- dtypes ---------------------------------------------------------------------------------------

SHAPE_OPS = {
    "reshape": lambda t: t.reshape(-1, 2),
    "transpose": lambda t: t.transpose(2, 0, 1),
    "T": lambda t: t.T,
    "swapaxes": lambda t: t.swapaxes(0, -1),
    "broadcast_to": lambda t: t.broadcast_to((3, 2, 3, 2)),
    "getitem": lambda t: t[[1, 1], ::-1, None],
    "concat": lambda t: mg.concat([t, t * 2.0], axis=1),
    "stack": lambda t: mg.stack([t, t], axis=-1),
    "split": lambda t: t.split([1, 2], axis=1)[1],
    "chunk": lambda t: t.chunk(2, axis=0)[0],
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", SHAPE_OPS)
def test_keeps_dtype(name: str, dtype) -> None:
    x = leaf(np.arange(12.0).reshape(2, 3, 2), dtype=dtype)
    y = SHAPE_OPS[name](x)
    assert y.dtype == dtype
    y.sum().backward()
    assert x.grad.dtype == dtype and x.grad.shape == x.shape


# -- errors ---------------------------------------------------------------------------------------

ERRORS = {
    "reshape": (lambda t: t.reshape(4, 2), ValueError, r"reshape.*\(2, 3\).*\(4, 2\)"),
    "reshape -1": (lambda t: t.reshape(-1, 4), ValueError, r"reshape.*\(2, 3\).*\(-1, 4\)"),
    "transpose count": (lambda t: t.transpose(1,), ValueError, r"transpose.*\(1,\).*\(2, 3\)"),
    "transpose repeat": (lambda t: t.transpose(0, 0), ValueError,
                         r"transpose.*\(0, 0\).*\(2, 3\)"),
    "transpose range": (lambda t: t.transpose(0, 2), ValueError,
                        r"transpose.*\(0, 2\).*\(2, 3\)"),
    "broadcast_to": (lambda t: t.broadcast_to((3, 3)), ValueError,
                     r"broadcast_to.*\(2, 3\).*\(3, 3\)"),
    "broadcast_to fewer axes": (lambda t: t.broadcast_to((3,)), ValueError,
                                r"broadcast_to.*\(2, 3\).*\(3,\)"),
    "concat": (lambda t: mg.concat([t, mg.ones(3, 2)]), ValueError,
               r"concat.*\(2, 3\), \(3, 2\).*axis 0"),
    "concat axis": (lambda t: mg.concat([t, t], axis=2), ValueError,
                    r"concat: axis 2 is out of range.*\(2, 3\)"),
    "concat nothing": (lambda t: mg.concat([]), ValueError, r"concat: needs at least one"),
    "stack": (lambda t: mg.stack([t, mg.ones(3, 2)]), ValueError, r"stack.*\(2, 3\), \(3, 2\)"),
    "stack axis": (lambda t: mg.stack([t, t], axis=3), ValueError,
                   r"stack: axis 3 is out of range.*\(2, 3\)"),
    "split n": (lambda t: t.split(2), ValueError, r"split.*\(2, 3\).*length 3.*2 equal pieces"),
    "chunk n": (lambda t: t.chunk(4, axis=0), ValueError,
                r"split.*\(2, 3\).*length 2.*4 equal pieces"),
    "split sizes": (lambda t: t.split([1, 1]), ValueError,
                    r"split: sizes \[1, 1\].*add up to 3.*\(2, 3\)"),
    "split negative size": (lambda t: t.split([4, -1]), ValueError, r"split.*non-negative"),
    "split axis": (lambda t: t.split(1, axis=2), ValueError,
                   r"split: axis 2 is out of range.*\(2, 3\)"),
    "getitem int": (lambda t: t[2], IndexError, r"getitem.*index 2.*size 2.*\(2, 3\)"),
    "getitem negative": (lambda t: t[:, -4], IndexError, r"getitem.*-4.*size 3.*\(2, 3\)"),
    "getitem array": (lambda t: t[[0, 5]], IndexError, r"getitem.*index 5.*\(2, 3\)"),
    "getitem too many": (lambda t: t[0, 0, 0], IndexError, r"getitem.*too many.*\(2, 3\)"),
    "getitem mask": (lambda t: t[np.ones(3, bool)], IndexError, r"getitem.*boolean.*\(2, 3\)"),
}


@pytest.mark.parametrize("name", ERRORS)
def test_bad_arguments_are_clear_errors(name: str) -> None:
    fn, error, message = ERRORS[name]
    x = leaf(np.arange(6.0).reshape(2, 3))
    with pytest.raises(error, match=message):
        fn(x)
    np.testing.assert_array_equal(x.data, np.arange(6.0).reshape(2, 3))
    assert x.grad is None and x.grad_fn is None
