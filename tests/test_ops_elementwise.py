"""Elementwise ops: gradients and second derivatives, forward values against NumPy, dtypes,
numerical stability and errors."""

from __future__ import annotations

import math
import operator
import warnings
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from minigrad.ops import elementwise as ew
from tests.strategies import arrays, broadcast_shapes, distinct_arrays, leaf, shapes


class Unary(NamedTuple):
    """A one-input op, its NumPy reference, the input domain and whether it is smooth there."""

    op: Callable[[mg.Tensor], mg.Tensor]
    reference: Callable[[np.ndarray], np.ndarray]
    lo: float = -2.0
    hi: float = 2.0
    avoid: tuple[float, ...] = ()
    smooth: bool = True


UNARY = {
    "neg": Unary(operator.neg, np.negative),
    "exp": Unary(mg.Tensor.exp, np.exp),
    "log": Unary(mg.Tensor.log, np.log, lo=0.2, hi=3.0),
    "tanh": Unary(mg.Tensor.tanh, np.tanh),
    "sigmoid": Unary(mg.Tensor.sigmoid, lambda a: 1 / (1 + np.exp(-a))),
    "sqrt": Unary(mg.Tensor.sqrt, np.sqrt, lo=0.2, hi=3.0),
    "relu": Unary(mg.Tensor.relu, lambda a: np.maximum(a, 0), avoid=(0.0,), smooth=False),
    "abs": Unary(mg.Tensor.abs, np.abs, avoid=(0.0,), smooth=False),
    "clip": Unary(lambda t: t.clip(-1.0, 0.5), lambda a: np.clip(a, -1.0, 0.5),
                  avoid=(-1.0, 0.5), smooth=False),
    "clip_lo": Unary(lambda t: t.clip(min=-0.5), lambda a: np.maximum(a, -0.5),
                     avoid=(-0.5,), smooth=False),
    "clip_hi": Unary(lambda t: t.clamp(max=0.5), lambda a: np.minimum(a, 0.5),
                     avoid=(0.5,), smooth=False),
    "pow_2": Unary(lambda t: t ** 2, lambda a: a ** 2),
    "pow_3": Unary(lambda t: t ** 3, lambda a: a ** 3),
    "pow_0": Unary(lambda t: t ** 0, lambda a: a ** 0, lo=0.5),
    "pow_neg_int": Unary(lambda t: t ** -2, lambda a: a ** -2.0, lo=0.5),
    "pow_half": Unary(lambda t: t ** 0.5, np.sqrt, lo=0.5),
    "pow_frac": Unary(lambda t: t ** 2.5, lambda a: a ** 2.5, lo=0.5),
    "pow_neg_frac": Unary(lambda t: t ** -1.5, lambda a: a ** -1.5, lo=0.5),
    "radd": Unary(lambda t: 1.5 + t, lambda a: 1.5 + a),
    "rsub": Unary(lambda t: 1.5 - t, lambda a: 1.5 - a),
    "rmul": Unary(lambda t: 2.5 * t, lambda a: 2.5 * a),
    "rdiv": Unary(lambda t: 2.0 / t, lambda a: 2.0 / a, lo=0.5),
    "rpow": Unary(lambda t: 2.0 ** t, lambda a: 2.0 ** a),
}


@st.composite
def unary_input(draw, case: Unary, shape=None) -> np.ndarray:
    """An input array in the case's domain, away from its kinks."""
    shape = draw(shapes()) if shape is None else shape
    return draw(arrays(shape, case.lo, case.hi, avoid=case.avoid))


@pytest.mark.parametrize("name", UNARY)
@given(data=st.data())
def test_unary_forward_matches_numpy(name: str, data) -> None:
    case = UNARY[name]
    a = data.draw(unary_input(case))
    np.testing.assert_allclose(case.op(mg.tensor(a)).data, case.reference(a), rtol=1e-12)


@pytest.mark.parametrize("name", UNARY)
@given(data=st.data())
def test_unary_gradients(name: str, data) -> None:
    case = UNARY[name]
    x = leaf(data.draw(unary_input(case)))
    assert mg.gradcheck(case.op, [x])
    if case.smooth:
        assert mg.gradgradcheck(case.op, [x])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", UNARY)
@given(data=st.data())
def test_unary_keeps_dtype(name: str, dtype, data) -> None:
    case = UNARY[name]
    x = leaf(data.draw(unary_input(case, shape=(2, 3))), dtype=dtype)
    y = case.op(x)
    assert y.dtype == dtype
    y.sum().backward()
    assert x.grad.dtype == dtype


class Binary(NamedTuple):
    """A two-input op, its NumPy reference and how to draw its inputs."""

    op: Callable[[mg.Tensor, mg.Tensor], mg.Tensor]
    reference: Callable[[np.ndarray, np.ndarray], np.ndarray]
    b_avoid: tuple[float, ...] = ()
    distinct: bool = False  # draw all elements of a and b apart, so there are no ties
    smooth: bool = True


BINARY = {
    "add": Binary(operator.add, np.add),
    "sub": Binary(operator.sub, np.subtract),
    "mul": Binary(operator.mul, np.multiply),
    "div": Binary(operator.truediv, np.divide, b_avoid=(0.0,)),
    "maximum": Binary(mg.maximum, np.maximum, distinct=True, smooth=False),
    "minimum": Binary(mg.minimum, np.minimum, distinct=True, smooth=False),
}


@st.composite
def binary_inputs(draw, case: Binary) -> tuple[np.ndarray, np.ndarray]:
    """Two arrays of broadcast-compatible shapes (away from b's kinks, or tie-free)."""
    shape_a, shape_b = draw(broadcast_shapes(2))
    if case.distinct:
        cut = math.prod(shape_a)
        flat = draw(distinct_arrays((cut + math.prod(shape_b),)))
        return flat[:cut].reshape(shape_a), flat[cut:].reshape(shape_b)
    return draw(arrays(shape_a)), draw(arrays(shape_b, avoid=case.b_avoid, gap=0.5))


@pytest.mark.parametrize("name", BINARY)
@given(data=st.data())
def test_binary_forward_matches_numpy(name: str, data) -> None:
    case = BINARY[name]
    a, b = data.draw(binary_inputs(case))
    y = case.op(mg.tensor(a), mg.tensor(b))
    assert y.shape == np.broadcast_shapes(a.shape, b.shape)
    np.testing.assert_allclose(y.data, case.reference(a, b), rtol=1e-12)


@pytest.mark.parametrize("name", BINARY)
@given(data=st.data())
def test_binary_gradients_with_broadcasting(name: str, data) -> None:
    case = BINARY[name]
    a, b = data.draw(binary_inputs(case))
    inputs = [leaf(a), leaf(b)]
    assert mg.gradcheck(case.op, inputs)
    if case.smooth:
        assert mg.gradgradcheck(case.op, inputs)


@pytest.mark.parametrize("name", BINARY)
@given(data=st.data())
def test_binary_gradient_of_one_input(name: str, data) -> None:
    """Only the input that requires grad gets a gradient (the other is a constant)."""
    case = BINARY[name]
    a, b = data.draw(binary_inputs(case))
    assert mg.gradcheck(case.op, [leaf(a), mg.tensor(b)])
    assert mg.gradcheck(case.op, [mg.tensor(a), leaf(b)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", BINARY)
def test_binary_keeps_dtype(name: str, dtype) -> None:
    a = leaf(np.array([[0.5, -1.0, 1.5]]), dtype=dtype)
    b = leaf(np.array([[1.25], [-0.75]]), dtype=dtype)
    y = BINARY[name].op(a, b)
    assert y.dtype == dtype
    y.sum().backward()
    assert a.grad.dtype == dtype and b.grad.dtype == dtype
    assert a.grad.shape == a.shape and b.grad.shape == b.shape


SCALAR_OPS = {
    "mul": (lambda t, s: t * s, lambda a, s: a * s),
    "rmul": (lambda t, s: s * t, lambda a, s: s * a),
    "add": (lambda t, s: t + s, lambda a, s: a + s),
    "rsub": (lambda t, s: s - t, lambda a, s: s - a),
    "div": (lambda t, s: t / s, lambda a, s: a / s),
    "rdiv": (lambda t, s: s / t, lambda a, s: s / a),
    "pow": (lambda t, s: t ** s, lambda a, s: a ** s),
    "rpow": (lambda t, s: s ** t, lambda a, s: s ** a),
    "maximum": (lambda t, s: mg.maximum(t, s), np.maximum),
    "rminimum": (lambda t, s: mg.minimum(s, t), lambda a, s: np.minimum(s, a)),
    "where": (lambda t, s: mg.where(t.data > 1, t, s), lambda a, s: np.where(a > 1, a, s)),
    "rwhere": (lambda t, s: mg.where(t.data > 1, s, t), lambda a, s: np.where(a > 1, s, a)),
}


@pytest.mark.parametrize("scalar", [2.5, 2])
@pytest.mark.parametrize("name", SCALAR_OPS)
def test_python_scalars_never_upcast(name: str, scalar) -> None:
    op, reference = SCALAR_OPS[name]
    a = np.array([0.5, 1.5, 2.0], dtype=np.float32)
    x = leaf(a, dtype=np.float32)
    y = op(x, scalar)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y.data, reference(a.astype(np.float64), scalar), rtol=1e-6)
    y.sum().backward()
    assert x.grad.dtype == np.float32


@st.composite
def where_inputs(draw) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A boolean condition and two arrays, all three of broadcast-compatible shapes."""
    shape_c, shape_a, shape_b = draw(broadcast_shapes(3))
    return (draw(hnp.arrays(bool, shape_c)), draw(arrays(shape_a)), draw(arrays(shape_b)))


@given(where_inputs())
def test_where_forward_and_gradients(inputs) -> None:
    cond, a, b = inputs
    y = mg.where(cond, mg.tensor(a), mg.tensor(b))
    np.testing.assert_array_equal(y.data, np.where(cond, a, b))
    assert mg.gradcheck(lambda s, t: mg.where(cond, s, t), [leaf(a), leaf(b)])


@given(where_inputs())
def test_where_takes_a_tensor_condition_and_a_scalar_branch(inputs) -> None:
    cond, a, _ = inputs
    y = mg.where(mg.tensor(cond), mg.tensor(a), 0.0)
    np.testing.assert_array_equal(y.data, np.where(cond, a, 0.0))
    assert mg.gradcheck(lambda t: mg.where(mg.tensor(cond), t, 0.0), [leaf(a)])


@given(data=st.data())
def test_maximum_and_minimum_accept_python_scalars(data) -> None:
    a = data.draw(arrays(data.draw(shapes()), avoid=(0.5,)))
    x = leaf(a)
    np.testing.assert_array_equal(mg.maximum(x, 0.5).data, np.maximum(a, 0.5))
    np.testing.assert_array_equal(mg.minimum(0.5, x).data, np.minimum(0.5, a))
    assert mg.gradcheck(lambda t: mg.maximum(t, 0.5) + mg.minimum(0.5, t), [x])


def test_maximum_and_minimum_send_ties_to_the_first_input() -> None:
    a, b = leaf(np.array([1.0, 2.0])), leaf(np.array([1.0, 3.0]))
    (mg.maximum(a, b) + mg.minimum(a, b)).sum().backward()
    np.testing.assert_array_equal(a.grad.data, [2.0, 1.0])
    np.testing.assert_array_equal(b.grad.data, [0.0, 1.0])


@pytest.mark.parametrize(("src", "dst"), [(np.float32, np.float64), (np.float64, np.float32)])
@given(data=st.data())
def test_cast_between_float_dtypes(src, dst, data) -> None:
    a = data.draw(arrays(data.draw(shapes())))
    x = leaf(a, dtype=src)
    y = x.astype(dst)
    assert y.dtype == dst
    np.testing.assert_array_equal(y.data, a.astype(src).astype(dst))
    (y * 3.0).sum().backward()
    assert x.grad.dtype == src
    np.testing.assert_array_equal(x.grad.data, np.full(a.shape, 3.0, dtype=src))


@given(data=st.data())
def test_cast_gradients(data) -> None:
    x = leaf(data.draw(arrays(data.draw(shapes()))))
    # The float32 detour rounds x to ~1e-7 relative; cast is linear, so a larger step keeps
    # central differences exact while the rounding error stays far below the tolerance.
    assert mg.gradcheck(lambda t: t.astype(np.float32).astype(np.float64) * t, [x], eps=1e-3)


def test_astype_to_the_same_dtype_is_the_tensor_itself() -> None:
    x = leaf(np.ones(3))
    assert x.astype(np.float64) is x


FREE = [
    (mg.tanh, "tanh"), (mg.sigmoid, "sigmoid"), (mg.relu, "relu"),
    (mg.exp, "exp"), (mg.log, "log"), (mg.sqrt, "sqrt"),
]


@pytest.mark.parametrize(("free", "name"), FREE)
@given(data=st.data())
def test_free_functions_match_methods(free, name: str, data) -> None:
    case = UNARY[name]
    a = data.draw(unary_input(case))
    x = leaf(a)
    np.testing.assert_array_equal(free(x).data, case.op(x).data)
    np.testing.assert_array_equal(free(a).data, case.op(mg.tensor(a)).data)
    assert mg.gradcheck(free, [x])


@pytest.mark.parametrize(
    ("op", "args", "expected"),
    [(mg.exp, ([0.0, 1.0],), np.exp(np.float32([0.0, 1.0]))),
     (mg.matmul, ([[1.0, 2.0]], np.array([[3.0], [4.0]])), np.array([[11.0]])),
     (mg.maximum, ([1.0, -1.0], 0.5), np.float32([1.0, 0.5])),
     (mg.where, ([True, False], [1.0, 2.0], 0.5), np.float32([1.0, 0.5]))],
    ids=["exp", "matmul", "maximum", "where"],
)
def test_operands_that_are_not_tensors_become_tensors_as_mg_tensor_makes_them(
    op, args, expected
) -> None:
    """Lists default to float32 and a float64 array stays float64, in every op."""
    y = op(*args)
    assert isinstance(y, mg.Tensor) and y.dtype == expected.dtype
    np.testing.assert_array_equal(y.data, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_saturates_without_overflow(dtype) -> None:
    x = leaf(np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0]), dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = x.sigmoid()
        y.sum().backward()
    assert y.dtype == dtype and x.grad.dtype == dtype
    tiny = np.exp(-50.0)  # sigmoid(-50) = e^-50 / (1 + e^-50), which rounds to e^-50
    np.testing.assert_allclose(y.data, [0.0, tiny, 0.5, 1.0, 1.0], rtol=1e-6, atol=0)
    np.testing.assert_allclose(x.grad.data, [0.0, tiny, 0.25, 0.0, 0.0], rtol=1e-6, atol=0)


@given(st.floats(-30.0, 30.0))
def test_sigmoid_matches_both_naive_forms(v) -> None:
    y = mg.tensor(np.array(v)).sigmoid().item()
    np.testing.assert_allclose(y, 1 / (1 + np.exp(-v)), rtol=1e-12)
    np.testing.assert_allclose(y, np.exp(v) / (1 + np.exp(v)), rtol=1e-12)


def _untouched(x: mg.Tensor) -> None:
    """A failed op leaves its input (all ones) as it was: same data, no gradient, a leaf."""
    np.testing.assert_array_equal(x.data, np.ones(x.shape))
    assert x.grad is None and x.grad_fn is None


@pytest.mark.parametrize(
    ("name", "op"),
    [("add", operator.add), ("sub", operator.sub), ("mul", operator.mul),
     ("div", operator.truediv), ("maximum", mg.maximum), ("minimum", mg.minimum)],
)
def test_binary_ops_reject_shapes_that_do_not_broadcast(name: str, op) -> None:
    x = leaf(np.ones((2, 3)))
    with pytest.raises(ValueError, match=rf"{name}.*\(2, 3\).*\(4,\)"):
        op(x, mg.tensor(np.ones(4)))
    _untouched(x)


def test_where_rejects_shapes_that_do_not_broadcast() -> None:
    x = leaf(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"where.*\(4,\).*\(2, 3\)"):
        mg.where(np.ones(4, bool), x, 0.0)
    _untouched(x)


def test_clip_rejects_lo_above_hi() -> None:
    x = leaf(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"(?i)clip.*lo \(1\.0\).*hi \(0\.0\)"):
        x.clip(1.0, 0.0)
    _untouched(x)


# -- ops without gradient: comparisons, sign, detach ----------------------------------------------

COMPARISONS = {
    "<": (operator.lt, np.less),
    "<=": (operator.le, np.less_equal),
    ">": (operator.gt, np.greater),
    ">=": (operator.ge, np.greater_equal),
    "eq": (mg.eq, np.equal),  # torch.eq and torch.ne: Tensor == stays identity
    "ne": (mg.ne, np.not_equal),
}


@pytest.mark.parametrize("name", COMPARISONS)
@given(data=st.data())
def test_comparisons_match_numpy_and_record_no_graph(name: str, data) -> None:
    op, reference = COMPARISONS[name]
    shape_a, shape_b = data.draw(broadcast_shapes(2))
    a = data.draw(hnp.arrays(np.float64, shape_a, elements=st.sampled_from([-1.0, 0.0, 0.5])))
    b = data.draw(hnp.arrays(np.float64, shape_b, elements=st.sampled_from([-1.0, 0.0, 0.5])))
    x, y = leaf(a), leaf(b)
    for got, want in ((op(x, y), reference(a, b)), (op(x, 0.5), reference(a, 0.5)),
                      (op(a, y), reference(a, b))):
        assert got.dtype == bool and got.shape == want.shape
        np.testing.assert_array_equal(got.data, want)
        assert got.is_leaf and not got.requires_grad


def test_a_python_number_compares_in_the_tensors_dtype_as_numpy_does() -> None:
    x = mg.tensor(np.float32([0.1, 0.2]))
    np.testing.assert_array_equal((x >= 0.1).data, np.float32([0.1, 0.2]) >= 0.1)
    assert (x >= 0.1).data[0]  # float32(0.1) < 0.1 in float64: the number is not upcast
    np.testing.assert_array_equal((mg.tensor([1, 2]) < 1.5).data, [True, False])


@given(data=st.data())
def test_a_mask_from_a_comparison_carries_no_gradient(data) -> None:
    """x * [x > 0.3]: the mask is piecewise constant, so the gradient is the mask itself."""
    x = leaf(data.draw(arrays(data.draw(shapes()), avoid=(0.3,))))
    assert mg.gradcheck(lambda t: t * (t > 0.3) + t * t * (0.3 >= t), [x])
    (g,) = mg.grad((x * (x > 0.3)).sum(), [x])
    np.testing.assert_array_equal(g.data, x.data > 0.3)


def test_comparisons_reject_shapes_that_do_not_broadcast() -> None:
    x = leaf(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"less: shapes \(2, 3\) and \(4,\) do not broadcast"):
        _ = x < mg.tensor(np.ones(4))
    with pytest.raises(ValueError, match=r"not_equal: shapes \(2, 3\) and \(4,\)"):
        ew.ne(x, np.ones(4))
    _untouched(x)


def test_tensors_stay_hashable_by_identity() -> None:
    x, y = mg.tensor([1.0]), mg.tensor([1.0])
    assert (x == y).tolist() == [True] and len({x, y}) == 2 and {x: 1, y: 2}[x] == 1


@given(data=st.data())
def test_sign_matches_numpy_and_has_no_gradient(data) -> None:
    a = data.draw(hnp.arrays(np.float64, data.draw(shapes()),
                             elements=st.sampled_from([-2.5, -0.0, 0.0, 1.0])))
    s = ew.Sign.apply(leaf(a))
    np.testing.assert_array_equal(s.data, np.sign(a))
    assert s.dtype == np.float64 and s.is_leaf and not s.requires_grad


@given(data=st.data())
def test_abs_gradient_of_gradient_sees_sign_as_a_constant(data) -> None:
    x = leaf(data.draw(arrays(data.draw(shapes()), avoid=(0.0,))))
    assert mg.gradgradcheck(lambda t: t.abs() * t, [x])


def test_detach_shares_the_array_and_is_a_leaf_without_grad() -> None:
    x = leaf(np.arange(3.0))
    y = (x * 2).detach()
    assert y.is_leaf and not y.requires_grad
    z = x * 2
    assert z.detach().data is z.data
