"""mg.gradcheck and mg.gradgradcheck: they accept correct gradients, reject wrong ones with a
message that locates the error, refuse float32, and leave their inputs as they found them."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from tests.strategies import arrays, broadcast_shapes, leaf


def rng_leaf(*shape: int, seed: int = 0) -> mg.Tensor:
    """A float64 leaf with deterministic values in [-1, 1]."""
    return leaf(np.random.default_rng(seed).uniform(-1, 1, shape))


class TanhOp(mg.Function):
    """tanh: y = tanh(x); dx = dy * (1 - y**2)"""

    def forward(self, x):
        return np.tanh(x)

    def backward(self, gy):
        y = self.output()
        return gy * (1 - y * y)


class MulWrongAtOneElement(mg.Function):
    """mul: y = a * b, but db is off by 0.5 * dy at element (1, 2) of b."""

    def forward(self, a, b):
        return a * b

    def backward(self, gy):
        a, b = self.inputs
        bump = np.zeros(b.shape)
        bump[1, 2] = 0.5
        return gy * b, gy * (a + mg.tensor(bump))


class TanhDetachedBackward(TanhOp):
    """tanh whose backward treats y as a constant: first derivative right, second wrong."""

    def backward(self, gy):
        y = self.output().detach()
        return gy * (1 - y * y)


class TanhNumpyBackward(TanhOp):
    """tanh whose backward is computed in raw NumPy: first derivative right, no second."""

    def backward(self, gy):
        return mg.tensor(gy.data * (1 - np.tanh(self.inputs[0].data) ** 2))


def smooth(a: mg.Tensor, b: mg.Tensor, w: mg.Tensor) -> mg.Tensor:
    """A smooth expression with broadcasting, matmul, softmax and reuse of ``a``."""
    h = (a * b).tanh() + a.sigmoid() * b
    return (h @ w).softmax(axis=0) * (a.exp() @ w)


# ----------------------------------------------------------------------------------------------
# gradcheck


@pytest.mark.parametrize("fast_mode", [False, True])
def test_gradcheck_accepts_correct_gradients(fast_mode):
    a, b, w = rng_leaf(3, 4), rng_leaf(1, 4, seed=1), rng_leaf(4, 2, seed=2)
    assert mg.gradcheck(smooth, [a, b, w], fast_mode=fast_mode) is True
    assert mg.gradcheck(lambda x: TanhOp.apply(x), [a], fast_mode=fast_mode) is True


@pytest.mark.parametrize("fast_mode", [False, True])
def test_gradcheck_handles_several_outputs_and_constant_inputs(fast_mode):
    x = rng_leaf(2, 6)
    constant = mg.tensor(np.linspace(1, 2, 6))  # does not require grad: not perturbed

    def pieces(x: mg.Tensor, c: mg.Tensor) -> tuple[mg.Tensor, ...]:
        first, second, third = (x * c).split(2, dim=-1)
        return first.exp(), second * third, c.sum()  # the last output depends on no input

    assert mg.gradcheck(pieces, [x, constant], fast_mode=fast_mode) is True


@given(st.data())
def test_gradcheck_over_broadcast_shapes(data):
    shape_a, shape_b = data.draw(broadcast_shapes(2))
    a, b = leaf(data.draw(arrays(shape_a))), leaf(data.draw(arrays(shape_b)))
    assert mg.gradcheck(lambda a, b: (a * b).tanh() + b, [a, b])


def test_wrong_backward_is_located_by_input_and_element():
    a, b = rng_leaf(2, 3), rng_leaf(2, 3, seed=1)
    with pytest.raises(mg.GradcheckError) as info:
        mg.gradcheck(lambda a, b: MulWrongAtOneElement.apply(a, b), [a, b])
    message = str(info.value)
    assert "input 1" in message
    assert "element (1, 2)" in message
    match = re.search(r"analytic (\S+) vs numeric (\S+)", message)
    assert match, message
    analytic, numeric = float(match[1]), float(match[2])
    true_value = a.data[1, 2]
    np.testing.assert_allclose(analytic, true_value + 0.5, rtol=1e-9)
    np.testing.assert_allclose(numeric, true_value, rtol=1e-6)


def test_fast_mode_also_catches_a_wrong_backward():
    a, b = rng_leaf(2, 3), rng_leaf(2, 3, seed=1)
    with pytest.raises(mg.GradcheckError, match=r"input 1 .*fast_mode=False"):
        mg.gradcheck(lambda a, b: MulWrongAtOneElement.apply(a, b), [a, b], fast_mode=True)


def test_float32_inputs_are_rejected():
    x64, x32 = rng_leaf(3), mg.tensor(np.ones(3, np.float32), requires_grad=True)
    with pytest.raises(TypeError, match=r"input 1 \(shape \(3,\)\) is float32.*float64"):
        mg.gradcheck(lambda a, b: a * b, [x64, x32])
    assert x32.dtype == np.float32 and x32.grad is None


def test_inputs_that_cannot_be_checked_are_rejected():
    with pytest.raises(ValueError, match=r"no input requires grad"):
        mg.gradcheck(lambda a: a * 2, [mg.tensor(np.ones(3))])
    with pytest.raises(TypeError, match=r"input 0 is a ndarray"):
        mg.gradcheck(lambda a: a * 2, [np.ones(3)])


@pytest.mark.parametrize("fast_mode", [False, True])
@pytest.mark.parametrize("correct", [True, False])
def test_inputs_are_restored_exactly(fast_mode, correct):
    a, b = rng_leaf(2, 3), rng_leaf(2, 3, seed=1)
    before = [a.data.copy(), b.data.copy()]
    op = (lambda a, b: a * b) if correct else MulWrongAtOneElement.apply
    try:
        mg.gradcheck(op, [a, b], fast_mode=fast_mode)
    except mg.GradcheckError:
        assert not correct
    for x, original in zip((a, b), before):
        assert x.dtype == np.float64
        np.testing.assert_array_equal(x.data, original)
        assert x.grad is None  # gradcheck uses mg.grad, which leaves .grad alone


# ----------------------------------------------------------------------------------------------
# gradgradcheck


@pytest.mark.parametrize("fast_mode", [False, True])
def test_gradgradcheck_accepts_smooth_expressions(fast_mode):
    a, b, w = rng_leaf(2, 3), rng_leaf(1, 3, seed=1), rng_leaf(3, 2, seed=2)
    assert mg.gradgradcheck(smooth, [a, b, w], fast_mode=fast_mode) is True
    assert mg.gradgradcheck(lambda x: TanhOp.apply(x) ** 3, [a], fast_mode=fast_mode) is True


@pytest.mark.parametrize("fast_mode", [False, True])
@pytest.mark.parametrize("op", [TanhDetachedBackward, TanhNumpyBackward])
def test_gradgradcheck_rejects_a_backward_that_is_not_differentiable(op, fast_mode):
    x = rng_leaf(2, 3)
    assert mg.gradcheck(lambda x: op.apply(x), [x])  # the first derivative is right
    with pytest.raises(mg.GradcheckError, match=r"input 0"):
        mg.gradgradcheck(lambda x: op.apply(x), [x], fast_mode=fast_mode)


def test_gradcheck_rejects_an_input_made_by_an_op():
    x = mg.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"input 0 \(shape \(3,\)\) was made by GetItem.*leaves"):
        mg.gradcheck(lambda row: row.tanh(), [x[0]])
