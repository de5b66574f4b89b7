"""matmul: 1-D and 2-D operands and batch axes that broadcast; forward values against NumPy,
gradients and second derivatives, dtypes and errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from tests.strategies import arrays, leaf, matmul_shapes

EXAMPLES = [
    ((4,), (4,)),
    ((4,), (4, 2)),
    ((3, 4), (4,)),
    ((3, 4), (4, 2)),
    ((2, 1, 3, 4), (5, 4, 2)),
    ((2, 3, 4), (4, 2)),
    ((2, 1, 3, 4), (4, 2)),
    ((4,), (2, 4, 3)),
    ((2, 3, 4), (4,)),
    ((1, 3, 2), (2, 2, 1)),
]


def _check(a: np.ndarray, b: np.ndarray) -> None:
    y = mg.matmul(mg.tensor(a), mg.tensor(b))
    expected = np.matmul(a, b)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y.data, expected, rtol=1e-12)
    inputs = [leaf(a), leaf(b)]
    assert mg.gradcheck(mg.matmul, inputs)
    assert mg.gradgradcheck(mg.matmul, inputs)


@given(data=st.data())
def test_matmul_random_shapes(data) -> None:
    shape_a, shape_b = data.draw(matmul_shapes())
    _check(data.draw(arrays(shape_a)), data.draw(arrays(shape_b)))


@pytest.mark.parametrize(("shape_a", "shape_b"), EXAMPLES, ids=str)
def test_matmul_examples(shape_a, shape_b) -> None:
    rng = np.random.default_rng(0)
    _check(rng.standard_normal(shape_a), rng.standard_normal(shape_b))


@given(data=st.data())
def test_gradient_of_one_operand(data) -> None:
    shape_a, shape_b = data.draw(matmul_shapes())
    a, b = data.draw(arrays(shape_a)), data.draw(arrays(shape_b))
    assert mg.gradcheck(mg.matmul, [leaf(a), mg.tensor(b)])
    assert mg.gradcheck(mg.matmul, [mg.tensor(a), leaf(b)])


def test_operator_and_free_function_agree_and_take_arrays() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    expected = a @ b
    np.testing.assert_allclose((mg.tensor(a) @ mg.tensor(b)).data, expected, rtol=1e-12)
    np.testing.assert_allclose((mg.tensor(a) @ b).data, expected, rtol=1e-12)
    np.testing.assert_allclose((a @ mg.tensor(b)).data, expected, rtol=1e-12)
    np.testing.assert_allclose(mg.matmul(a, mg.tensor(b)).data, expected, rtol=1e-12)
    np.testing.assert_allclose(mg.matmul(mg.tensor(a), b).data, expected, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("shape_a", "shape_b"), EXAMPLES, ids=str)
def test_keeps_dtype(shape_a, shape_b, dtype) -> None:
    rng = np.random.default_rng(2)
    a, b = leaf(rng.standard_normal(shape_a), dtype), leaf(rng.standard_normal(shape_b), dtype)
    y = a @ b
    assert y.dtype == dtype
    y.sum().backward()
    assert a.grad.dtype == dtype and b.grad.dtype == dtype
    assert a.grad.shape == a.shape and b.grad.shape == b.shape


@pytest.mark.parametrize(
    ("shape_a", "shape_b", "message"),
    [((2, 3), (2, 3), r"matmul: shapes \(2, 3\) and \(2, 3\) do not fit"),
     ((3,), (4,), r"matmul: shapes \(3,\) and \(4,\) do not fit"),
     ((2, 3), (4,), r"matmul: shapes \(2, 3\) and \(4,\) do not fit"),
     ((3,), (2, 4), r"matmul: shapes \(3,\) and \(2, 4\) do not fit"),
     ((2, 3, 4), (3, 4, 5), r"matmul: the batch axes of \(2, 3, 4\) and \(3, 4, 5\)"),
     ((), (2, 3), r"matmul: .*\(\) @ \(2, 3\)")],
)
def test_mismatched_shapes_are_a_clear_error(shape_a, shape_b, message: str) -> None:
    a, b = leaf(np.ones(shape_a)), leaf(np.ones(shape_b))
    with pytest.raises(ValueError, match=message):
        a @ b
    assert a.grad_fn is None and b.grad_fn is None
    assert a.grad is None and b.grad is None
