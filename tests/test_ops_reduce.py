"""Reductions (sum, mean, max): forward values against NumPy over every kind of ``axis``,
gradients and second derivatives, dtypes and errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from tests.strategies import arrays, axes, distinct_arrays, leaf, shapes

REDUCTIONS = {
    "sum": (mg.Tensor.sum, np.sum),
    "mean": (mg.Tensor.mean, np.mean),
    "max": (mg.Tensor.max, np.max),
}


@st.composite
def reduction_inputs(draw, name: str):
    """An array (tie-free for max), an ``axis`` argument for it, and ``keepdims``."""
    shape = draw(shapes())
    a = draw(distinct_arrays(shape) if name == "max" else arrays(shape))
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
    if name != "max":
        assert mg.gradgradcheck(fn, [x])


@pytest.mark.parametrize("name", REDUCTIONS)
def test_default_reduces_everything(name: str) -> None:
    method, reference = REDUCTIONS[name]
    a = np.array([[1.0, -2.0, 3.5], [0.25, 4.0, -1.0]])
    y = method(mg.tensor(a))
    assert y.shape == ()
    assert y.item() == pytest.approx(reference(a))


def test_max_ties_share_the_gradient() -> None:
    x = leaf(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]))
    x.max(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.data, [[0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])


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


def test_max_of_an_empty_tensor_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"max: cannot reduce an empty tensor of shape \(0, 3\)"):
        mg.tensor(np.ones((0, 3))).max()
