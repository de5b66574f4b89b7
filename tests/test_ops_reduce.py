"""Reductions (sum, mean, max, min, var, std) and argmax/argmin: forward values against NumPy
over every kind of ``axis`` (and against PyTorch for a few cases), gradients and second
derivatives, dtypes and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import minigrad as mg
from tests.strategies import arrays, axes, distinct_arrays, leaf, shapes

REDUCTIONS = {
    "sum": (mg.Tensor.sum, np.sum),
    "mean": (mg.Tensor.mean, np.mean),
    "max": (mg.Tensor.amax, np.max),  # max(dim) is (values, indices): tests of its own
    "min": (mg.Tensor.amin, np.min),
}
SELECTIONS = ("max", "min")  # tie-free inputs; their gradient is piecewise constant


@st.composite
def reduction_inputs(draw, name: str):
    """An array (tie-free for max and min), an ``axis`` argument for it, and ``keepdims``."""
    shape = draw(shapes())
    a = draw(distinct_arrays(shape) if name in SELECTIONS else arrays(shape))
    return a, draw(axes(len(shape))), draw(st.booleans())


@pytest.mark.parametrize("name", REDUCTIONS)
@given(data=st.data())
def test_forward_matches_numpy(name: str, data) -> None:
    method, reference = REDUCTIONS[name]
    a, axis, keepdims = data.draw(reduction_inputs(name))
    y = method(mg.tensor(a), axis=axis, keepdims=keepdims)
    expected = reference(a, axis=axis, keepdims=keepdims)
    assert y.shape == np.shape(expected)
    np.testing.assert_allclose(y.data, expected, rtol=1e-12)


@pytest.mark.parametrize("name", REDUCTIONS)
@given(data=st.data())
def test_gradients(name: str, data) -> None:
    method, _ = REDUCTIONS[name]
    a, axis, keepdims = data.draw(reduction_inputs(name))
    x = leaf(a)

    def fn(t: mg.Tensor) -> mg.Tensor:
        return method(t, axis=axis, keepdims=keepdims)

    assert mg.gradcheck(fn, [x])
    if name not in SELECTIONS:
        assert mg.gradgradcheck(fn, [x])


@pytest.mark.parametrize("name", REDUCTIONS)
def test_default_reduces_everything(name: str) -> None:
    method, reference = REDUCTIONS[name]
    a = np.array([[1.0, -2.0, 3.5], [0.25, 4.0, -1.0]])
    y = method(mg.tensor(a))
    assert y.shape == ()
    assert y.item() == pytest.approx(reference(a))


@pytest.mark.parametrize("name", SELECTIONS)
def test_max_and_min_ties_share_the_gradient(name: str) -> None:
    sign = 1.0 if name == "max" else -1.0
    x = leaf(sign * np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]))
    REDUCTIONS[name][0](x, axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.data, [[0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])


@pytest.mark.parametrize("name", SELECTIONS)
def test_max_and_min_ties_share_the_gradient_under_create_graph_too(name: str) -> None:
    """The share among ties is computed by ops from x and y (a mask from an equality), so the
    recorded backward gives the same gradient, and its own gradient sees the share as constant."""
    sign = 1.0 if name == "max" else -1.0
    x = leaf(sign * np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]))
    (g,) = mg.grad(REDUCTIONS[name][0](x, axis=1).sum(), [x], create_graph=True)
    np.testing.assert_allclose(g.data, [[0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    (gg,) = mg.grad((g * x).sum(), [x])
    np.testing.assert_allclose(gg.data, g.data)


def test_min_is_its_own_node_in_the_graph() -> None:
    y = mg.tensor([2.0, -1.0, 5.0], requires_grad=True).min()
    assert y.grad_fn.name == "Min" and y.item() == -1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2)])
def test_keeps_dtype(name: str, axis, dtype) -> None:
    x = leaf(np.arange(24.0).reshape(2, 3, 4), dtype=dtype)
    y = REDUCTIONS[name][0](x, axis=axis)
    assert y.dtype == dtype
    y.sum().backward()
    assert x.grad.dtype == dtype and x.grad.shape == x.shape


@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize(
    ("axis", "message"),
    [(2, r"axis 2 is out of range.* 2 dimensions"), (-3, r"axis -3 is out of range"),
     ((0, 5), r"axis 5 is out of range"), ((1, -1), r"axis \(1, -1\) repeats an axis")],
)
def test_bad_axis_is_a_clear_error(name: str, axis, message: str) -> None:
    x = leaf(np.ones((2, 3)))
    with pytest.raises(ValueError, match=rf"^{name}: {message}"):
        REDUCTIONS[name][0](x, axis=axis)
    assert x.grad is None and x.grad_fn is None


@pytest.mark.parametrize("name", ["max", "min", "argmax", "argmin"])
def test_selecting_from_an_empty_tensor_is_a_clear_error(name: str) -> None:
    with pytest.raises(ValueError, match=rf"{name}: cannot reduce an empty tensor of shape "
                                         r"\(0, 3\)"):
        getattr(mg.tensor(np.ones((0, 3))), name)()


# -- var, std -------------------------------------------------------------------------------------


@st.composite
def spread_inputs(draw, min_count: int = 1):
    """A tie-free array, an ``axis`` argument, ``keepdims`` and a ``correction`` that leaves at
    least one degree of freedom, where each result reduces at least ``min_count`` elements."""
    a, axis, keepdims = draw(reduction_inputs("max"))
    axes = range(a.ndim) if axis is None else np.atleast_1d(axis)
    n = math.prod(a.shape[i] for i in axes)
    assume(n >= min_count)
    return a, axis, keepdims, draw(st.integers(0, n - 1))


@pytest.mark.parametrize("name", ["var", "std"])
@given(spread_inputs())
def test_var_and_std_match_numpy_with_ddof(name: str, case) -> None:
    a, axis, keepdims, correction = case
    y = getattr(mg.tensor(a), name)(axis, keepdim=keepdims, correction=correction)
    axis = tuple(range(a.ndim)) if axis is None else axis
    expected = getattr(np, name)(a, axis=axis, keepdims=keepdims, ddof=correction)
    assert y.shape == np.shape(expected)
    np.testing.assert_allclose(y.data, expected, rtol=1e-10, atol=1e-12)


@given(spread_inputs())
def test_var_gradients(case) -> None:
    a, axis, keepdims, correction = case

    def fn(t: mg.Tensor) -> mg.Tensor:
        return t.var(axis, keepdim=keepdims, correction=correction)

    assert mg.gradcheck(fn, [leaf(a)])
    assert mg.gradgradcheck(fn, [leaf(a)])


@given(spread_inputs(min_count=2))  # a spread above 0: std is sqrt(var), with a kink at 0
def test_std_gradients(case) -> None:
    a, axis, keepdims, correction = case
    assert mg.gradcheck(lambda t: t.std(axis, keepdim=keepdims, correction=correction), [leaf(a)])


def test_var_defaults_to_the_unbiased_estimate_over_all_axes() -> None:
    a = np.array([[1.0, 2.0], [4.0, 7.0]])
    assert mg.tensor(a).var().item() == pytest.approx(np.var(a, ddof=1))
    assert mg.tensor(a).std().item() == pytest.approx(np.std(a, ddof=1))
    assert mg.tensor(a).var(1, keepdim=True).shape == (2, 1)


def test_var_without_degrees_of_freedom_warns_and_gives_nan_or_inf_as_pytorch() -> None:
    with pytest.warns(RuntimeWarning, match=r"var: no degrees of freedom left: "
                                            r"N - correction = 1 - 1 <= 0"):
        assert np.isnan(mg.tensor([3.0]).var().item())
    with pytest.warns(RuntimeWarning, match=r"N - correction = 2 - 3 <= 0"):
        assert mg.tensor([1.0, 2.0]).std(correction=3).item() == np.inf


# -- argmax, argmin -------------------------------------------------------------------------------


@st.composite
def arg_inputs(draw):
    """A tie-free array, one axis of it (negative ones included) or None, and ``keepdims``."""
    shape = draw(shapes())
    axis = draw(st.none() | st.integers(-len(shape), len(shape) - 1)) if shape else None
    return draw(distinct_arrays(shape)), axis, draw(st.booleans())


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@given(arg_inputs())
def test_argmax_and_argmin_match_numpy_as_int64_without_grad(name: str, case) -> None:
    a, axis, keepdims = case
    x = leaf(a)
    y = getattr(x, name)(axis, keepdims)
    expected = getattr(np, name)(a, axis=axis, keepdims=keepdims)
    assert y.dtype == np.int64 and y.shape == np.shape(expected)
    np.testing.assert_array_equal(y.data, expected)
    assert not y.requires_grad and y.grad_fn is None


def test_argmax_takes_the_first_of_tied_values() -> None:
    x = mg.tensor([[1.0, 3.0, 3.0], [2.0, 0.0, 0.0]])
    np.testing.assert_array_equal(x.argmax(1).data, [1, 0])
    np.testing.assert_array_equal(x.argmin(1).data, [0, 1])


@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_and_argmin_bad_axis_are_clear_errors(name: str) -> None:
    x = mg.ones(2, 3)
    with pytest.raises(TypeError, match=rf"{name}: axis must be an int or None; got \(0, 1\)"):
        getattr(x, name)((0, 1))
    with pytest.raises(ValueError, match=rf"{name}: axis -3 is out of range for a tensor with "
                                         "2 dimensions"):
        getattr(x, name)(-3)


# -- against PyTorch ------------------------------------------------------------------------------


TORCH_CASES = {  # minigrad's call and PyTorch's
    "min": (lambda t: t.min(), lambda t: t.min()),
    "min axis": (lambda t: t.min(1).values, lambda t: t.min(1).values),
    "min axis indices": (lambda t: t.min(1).indices, lambda t: t.min(1).indices),
    "min keepdims": (lambda t: t.min(-1, keepdims=True).values,
                     lambda t: t.min(-1, keepdim=True).values),
    "amax axes": (lambda t: t.amax((0, 2)), lambda t: t.amax((0, 2))),
    "argmax": (lambda t: t.argmax(), lambda t: t.argmax()),
    "argmax axis": (lambda t: t.argmax(0), lambda t: t.argmax(0)),
    "argmin keepdims": (lambda t: t.argmin(-2, True), lambda t: t.argmin(-2, keepdim=True)),
    "var": (lambda t: t.var(), lambda t: t.var()),
    "var axes": (lambda t: t.var((0, 2), correction=0), lambda t: t.var((0, 2), correction=0)),
    "std axis": (lambda t: t.std(1), lambda t: t.std(1)),
    "std keepdims": (lambda t: t.std(-1, keepdim=True, correction=2),
                     lambda t: t.std(-1, keepdim=True, correction=2)),
}


@pytest.mark.parametrize("name", TORCH_CASES)
def test_forward_matches_pytorch(name: str) -> None:
    torch = pytest.importorskip("torch")
    ours, theirs = TORCH_CASES[name]
    a = np.random.default_rng(7).standard_normal((3, 4, 5))
    y, expected = ours(mg.tensor(a)), theirs(torch.tensor(a))
    assert y.shape == tuple(expected.shape) and y.dtype == expected.numpy().dtype
    np.testing.assert_allclose(y.data, expected.numpy(), rtol=1e-12)
