"""Shape ops (reshape, transpose, swapaxes, .T, broadcast_to, getitem, concat, stack, split,
chunk, unsqueeze, squeeze, flatten): forward values against NumPy (and PyTorch for a few
cases), gradients and second derivatives, dtypes and errors; and building tensors (mg.tensor of
tensors, arange, zeros_like, ones_like)."""

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
    axes,
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
def test_permute(data) -> None:
    a = data.draw(arrays(data.draw(shapes())))
    perm = data.draw(permutations(a.ndim))
    check(lambda t: t.permute(perm), [leaf(a)], np.transpose(a, perm))
    check(lambda t: t.permute(*perm), [leaf(a)], np.transpose(a, perm))


@given(data=st.data())
def test_T_reverses_the_axes(data) -> None:
    a = data.draw(arrays(data.draw(shapes())))
    check(lambda t: t.T, [leaf(a)], a.T)


@given(data=st.data())
def test_transpose_and_swapaxes_swap_two_axes_as_in_pytorch(data) -> None:
    a = data.draw(arrays(data.draw(shapes(min_dims=1))))
    i, j = data.draw(axis(a.ndim)), data.draw(axis(a.ndim))
    check(lambda t: t.transpose(i, j), [leaf(a)], np.swapaxes(a, i, j))
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


def test_index_arrays_are_inputs_of_getitem_and_the_rest_of_the_index_is_an_option() -> None:
    """Arrays (ndarray or Tensor, integer or boolean) reach the op as inputs without gradient,
    so a traced program reads them at every call; slices, ints, None and lists are options."""
    x = leaf(np.arange(24.0).reshape(2, 3, 4))
    rows, cols = np.array([1, 0, 1]), mg.tensor([3, 3, 0])
    y = x[rows, ::-1, cols]
    assert y.grad_fn.inputs[0] is x and y.grad_fn.inputs[2] is cols
    assert y.grad_fn.inputs[1].data is rows and not y.grad_fn.inputs[1].requires_grad
    assert repr(y.grad_fn.index) == "(<array>, slice(None, None, -1), <array>)"
    np.testing.assert_array_equal(y.data, x.data[rows, ::-1, cols.data])
    z = x[0, [2, 0], None]
    assert z.grad_fn.inputs == (x,) and z.grad_fn.index == (0, [2, 0], None)
    (g,) = mg.grad((y * y).sum(), [x], create_graph=True)
    assert g.grad_fn.name == "IndexAdd" and g.grad_fn.inputs[2] is cols


@given(data=st.data())
def test_index_add_of_rows_matches_numpy_add_at(data) -> None:
    """The embedding backward: rows of x added at integer ids, repeats and negative ids too."""
    shape = data.draw(shapes(min_dims=1))
    ids = data.draw(hnp.arrays(np.int64, data.draw(shapes(max_dims=2)),
                               elements=st.integers(-shape[0], shape[0] - 1)))
    x = data.draw(arrays(ids.shape + shape[1:]))
    y = mg.ops.shape.IndexAdd.apply(leaf(x), mg.tensor(ids), index=mg.ops.shape.ARRAY,
                                    shape=shape)
    expected = np.zeros(shape)
    np.add.at(expected, ids, x)
    np.testing.assert_allclose(y.data, expected, rtol=1e-12, atol=1e-12)
    assert mg.gradcheck(lambda t: mg.ops.shape.IndexAdd.apply(
        t, mg.tensor(ids), index=mg.ops.shape.ARRAY, shape=shape), [leaf(x)])


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
    """An array, an axis and either a piece size (the last piece may be shorter) or a list of
    sizes that add up."""
    shape = list(draw(shapes(min_dims=1)))
    ax = draw(axis(len(shape)))
    if equal:
        how = draw(st.integers(1, 3))
        shape[ax] = draw(st.integers(1, 6))
    else:
        how = draw(st.lists(st.integers(0, 2), min_size=1, max_size=3).filter(lambda s: sum(s)))
        shape[ax] = sum(how)
    return draw(arrays(tuple(shape))), how, ax


@given(split_cases(equal=True))
def test_split_into_pieces_of_a_size_and_chunk_into_at_most_n(case) -> None:
    a, size, ax = case
    expected = np.split(a, range(size, a.shape[ax], size), axis=ax)
    check(lambda t: t.split(size, dim=ax), [leaf(a)], expected)
    check(lambda t: mg.split(t, size, ax), [leaf(a)], expected)
    n = -(-a.shape[ax] // size)  # chunks of ceil(length / n) cut as pieces of `size` do ...
    if -(-a.shape[ax] // n) == size:  # ... when that ceiling gives `size` back
        check(lambda t: t.chunk(n, axis=ax), [leaf(a)], expected)


@given(split_cases(equal=False))
def test_split_into_sizes(case) -> None:
    a, sizes, ax = case
    check(lambda t: t.split(sizes, axis=ax), [leaf(a)],
          np.split(a, np.cumsum(sizes)[:-1], axis=ax))


@given(split_cases(equal=True))
def test_split_gradient_when_only_some_pieces_are_used(case) -> None:
    a, n, ax = case
    last = np.split(a, range(n, a.shape[ax], n), axis=ax)[-1]
    check(lambda t: t.split(n, axis=ax)[-1] * 2.0, [leaf(a)], last * 2.0)


def test_chunk_and_split_default_to_the_first_axis_as_in_pytorch() -> None:
    x = mg.tensor(np.arange(12.0).reshape(6, 2))
    assert [p.shape for p in x.chunk(3)] == [(2, 2)] * 3
    assert [p.shape for p in x.chunk(4)] == [(2, 2)] * 3
    assert [p.shape for p in x.split(4)] == [(4, 2), (2, 2)]
    assert [p.shape for p in x.split([1, 5])] == [(1, 2), (5, 2)]


# -- unsqueeze, squeeze, flatten ------------------------------------------------------------------


@given(data=st.data())
def test_unsqueeze(data) -> None:
    a = data.draw(arrays(data.draw(shapes())))
    ax = data.draw(st.integers(-a.ndim - 1, a.ndim))
    check(lambda t: t.unsqueeze(ax), [leaf(a)], np.expand_dims(a, ax))


@given(data=st.data())
def test_squeeze_drops_only_axes_of_length_1(data) -> None:
    """With axes given, those of length 1 go and the others stay (PyTorch's rule)."""
    a = data.draw(arrays(data.draw(shapes(max_side=2))))
    ax = data.draw(axes(a.ndim)) if a.ndim else None
    chosen = range(a.ndim) if ax is None else [i % a.ndim for i in np.atleast_1d(ax)]
    expected = a.reshape([n for i, n in enumerate(a.shape) if n != 1 or i not in chosen])
    check(lambda t: t.squeeze(ax), [leaf(a)], expected)


@st.composite
def flatten_cases(draw):
    """An array and a start and end axis (negative ones included) with start <= end."""
    a = draw(arrays(draw(shapes(min_dims=1))))
    start, end = sorted(draw(st.lists(st.integers(0, a.ndim - 1), min_size=2, max_size=2)))
    negative = st.booleans()
    return (a, start - a.ndim if draw(negative) else start,
            end - a.ndim if draw(negative) else end)


@given(flatten_cases())
def test_flatten(case) -> None:
    a, start, end = case
    s, e = start % a.ndim, end % a.ndim
    expected = a.reshape(a.shape[:s] + (-1,) + a.shape[e + 1:])
    check(lambda t: t.flatten(start, end), [leaf(a)], expected)


def test_flatten_defaults_to_every_axis_and_makes_a_0d_tensor_1d() -> None:
    assert mg.ones(2, 3, 4).flatten().shape == (24,)
    assert mg.ones(2, 3, 4).flatten(1).shape == (2, 12)
    assert mg.tensor(5.0).flatten().shape == (1,)


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [(lambda t: t.unsqueeze(-1), lambda t: t.unsqueeze(-1)),
     (lambda t: t.unsqueeze(1), lambda t: t.unsqueeze(1)),
     (lambda t: t.squeeze(), lambda t: t.squeeze()),
     (lambda t: t.squeeze(0), lambda t: t.squeeze(0)),
     (lambda t: t.squeeze((1, -1)), lambda t: t.squeeze((1, -1))),
     (lambda t: t.flatten(), lambda t: t.flatten()),
     (lambda t: t.flatten(1, -2), lambda t: t.flatten(1, -2))],
    ids=["unsqueeze-1", "unsqueeze1", "squeeze", "squeeze-not-1", "squeeze-axes", "flatten",
         "flatten-middle"],
)
def test_unsqueeze_squeeze_flatten_match_pytorch(ours, theirs) -> None:
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(3).standard_normal((2, 1, 3, 1))
    np.testing.assert_array_equal(ours(mg.tensor(a)).data, theirs(torch.tensor(a)).numpy())


def test_cat_is_concat() -> None:
    assert mg.cat is mg.concat
    assert mg.cat([mg.ones(2, 3), mg.zeros(1, 3)]).shape == (3, 3)


# -- building tensors: mg.tensor of tensors, arange, zeros_like, ones_like -------------------------


def test_a_list_of_one_element_tensors_becomes_their_values_in_a_new_leaf() -> None:
    a, b = mg.tensor(1.0, requires_grad=True), mg.tensor([2.0])
    t = mg.tensor([a * 3, b])
    np.testing.assert_array_equal(t.data, [3.0, 2.0])
    assert t.shape == (2,) and t.dtype == np.float32
    assert t.is_leaf and not t.requires_grad
    nested = mg.tensor([[mg.tensor(1), 2], [3, mg.tensor(4)]])
    assert nested.dtype == np.int64
    np.testing.assert_array_equal(nested.data, [[1, 2], [3, 4]])


def test_a_list_of_tensors_keeps_float64_as_pytorch_does() -> None:
    torch = pytest.importorskip("torch")
    values = [mg.tensor(1.5, dtype=np.float64), 2.0]
    t = mg.tensor(values)
    expected = torch.tensor([torch.tensor(1.5, dtype=torch.float64), 2.0])
    assert t.dtype == expected.numpy().dtype == np.float64
    np.testing.assert_array_equal(t.data, expected.numpy())
    assert mg.tensor([mg.tensor(1.5), 2.0]).dtype == np.float32
    assert mg.tensor([mg.tensor(1.5), 2.0], dtype=np.float64).dtype == np.float64


def test_a_list_holding_a_tensor_of_several_elements_points_to_stack() -> None:
    with pytest.raises(ValueError, match=r"tensor: a list may hold tensors of one element only "
                                         r".*got one of shape \(2,\).*use mg\.stack"):
        mg.tensor([mg.tensor([1.0, 2.0]), mg.tensor([3.0, 4.0])])


ARANGE = [(5,), (1, 4), (0, 1, 0.25), (0, 1, 0.1), (5, 0, -1), (0.5, 3), (-1, 1, 0.3), (3, 3)]


@pytest.mark.parametrize("args", ARANGE, ids=str)
def test_arange_matches_pytorch(args) -> None:
    torch = pytest.importorskip("torch")
    t, expected = mg.arange(*args), torch.arange(*args).numpy()
    assert t.dtype == expected.dtype  # int64 for integers, float32 otherwise
    np.testing.assert_array_equal(t.data, expected)


def test_arange_takes_a_dtype_and_requires_grad() -> None:
    t = mg.arange(1, 4, dtype=np.float64, requires_grad=True)
    np.testing.assert_array_equal(t.data, [1.0, 2.0, 3.0])
    assert t.dtype == np.float64 and t.requires_grad and t.is_leaf


def test_arange_errors() -> None:
    with pytest.raises(ValueError, match="arange: step must be nonzero"):
        mg.arange(0, 5, 0)
    with pytest.raises(ValueError, match=r"arange: step 1 points away from stop 0 \(start 5\)"):
        mg.arange(5, 0)


@pytest.mark.parametrize(("make", "value"), [(mg.zeros_like, 0), (mg.ones_like, 1)])
def test_zeros_like_and_ones_like(make, value) -> None:
    x = mg.randn(2, 3, dtype=np.float64, requires_grad=True)
    t = make(x)
    assert t.shape == (2, 3) and t.dtype == np.float64 and not t.requires_grad
    np.testing.assert_array_equal(t.data, np.full((2, 3), value))
    assert make(mg.arange(3)).dtype == np.int64
    assert make(x, dtype=np.float32, requires_grad=True).requires_grad
    name = make.__name__
    with pytest.raises(TypeError, match=rf"{name}: expected a Tensor; got a ndarray"):
        make(np.ones(3))


# -- dtypes ---------------------------------------------------------------------------------------

SHAPE_OPS = {
    "reshape": lambda t: t.reshape(-1, 2),
    "transpose": lambda t: t.transpose(2, 0),
    "permute": lambda t: t.permute(2, 0, 1),
    "T": lambda t: t.T,
    "swapaxes": lambda t: t.swapaxes(0, -1),
    "broadcast_to": lambda t: t.broadcast_to((3, 2, 3, 2)),
    "getitem": lambda t: t[[1, 1], ::-1, None],
    "concat": lambda t: mg.concat([t, t * 2.0], axis=1),
    "stack": lambda t: mg.stack([t, t], axis=-1),
    "split": lambda t: t.split([1, 2], axis=1)[1],
    "chunk": lambda t: t.chunk(2, axis=0)[0],
    "unsqueeze": lambda t: t.unsqueeze(1),
    "squeeze": lambda t: t[:1].squeeze(),
    "flatten": lambda t: t.flatten(1),
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
    "transpose count": (lambda t: t.transpose(1), TypeError, r"transpose.*dim1"),
    "permute repeat": (lambda t: t.permute(0, 0), ValueError,
                       r"permute: dims \(0, 0\) are not a permutation.*\(2, 3\)"),
    "transpose range": (lambda t: t.transpose(0, 2), IndexError,
                        r"transpose: dimension 2 is out of range.*\(2, 3\)"),
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
    "split size": (lambda t: t.split(0), ValueError, r"split: split_size must be positive"),
    "chunk n": (lambda t: t.chunk(0), ValueError, r"chunk: chunks must be a positive integer"),
    "split sizes": (lambda t: t.split([1, 1], 1), ValueError,
                    r"split: sizes \[1, 1\].*add up to 3.*\(2, 3\)"),
    "split negative size": (lambda t: t.split([4, -1]), ValueError, r"split.*non-negative"),
    "split axis": (lambda t: t.split(1, axis=2), IndexError,
                   r"split: dimension 2 is out of range.*\(2, 3\)"),
    "getitem int": (lambda t: t[2], IndexError, r"getitem.*index 2.*size 2.*\(2, 3\)"),
    "getitem negative": (lambda t: t[:, -4], IndexError, r"getitem.*-4.*size 3.*\(2, 3\)"),
    "getitem array": (lambda t: t[[0, 5]], IndexError, r"getitem.*index 5.*\(2, 3\)"),
    "getitem too many": (lambda t: t[0, 0, 0], IndexError, r"getitem.*too many.*\(2, 3\)"),
    "getitem mask": (lambda t: t[np.ones(3, bool)], IndexError, r"getitem.*boolean.*\(2, 3\)"),
    "unsqueeze": (lambda t: t.unsqueeze(3), IndexError,
                  r"unsqueeze: dimension 3 is out of range for a tensor of shape \(2, 3\); "
                  r"expected an axis in \[-3, 2\]"),
    "squeeze": (lambda t: t.squeeze(-3), ValueError,
                r"squeeze: axis -3 is out of range for a tensor with 2 dimensions"),
    "flatten range": (lambda t: t.flatten(0, 2), ValueError,
                      r"flatten: end_dim 2 is out of range for a tensor of shape \(2, 3\)"),
    "flatten order": (lambda t: t.flatten(-1, 0), ValueError,
                      r"flatten: start_dim -1 comes after end_dim 0 .*\(2, 3\)"),
}


@pytest.mark.parametrize("name", ERRORS)
def test_bad_arguments_are_clear_errors(name: str) -> None:
    fn, error, message = ERRORS[name]
    x = leaf(np.arange(6.0).reshape(2, 3))
    with pytest.raises(error, match=message):
        fn(x)
    np.testing.assert_array_equal(x.data, np.arange(6.0).reshape(2, 3))
    assert x.grad is None and x.grad_fn is None


def test_a_ragged_list_says_the_lists_must_be_rectangular() -> None:
    with pytest.raises(ValueError, match=r"tensor: nested lists must be rectangular"):
        mg.tensor([[1.0, 2.0], [3.0]])
