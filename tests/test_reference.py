"""The real engine (minigrad.autograd) against the textbook one (minigrad.reference): same
gradients on random expression graphs and on an LSTM whose weights every step shares."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad import reference
from minigrad.models import LSTM
from tests.strategies import leaf
from tests.test_expressions import expressions


def assert_same(actual: mg.Tensor | None, expected: mg.Tensor | None) -> None:
    assert (actual is None) == (expected is None)
    if actual is not None:
        assert actual.shape == expected.shape and actual.dtype == expected.dtype
        np.testing.assert_allclose(actual.data, expected.data, rtol=1e-12, atol=1e-12)


@given(expressions())
def test_backward_agrees_with_the_reference_engine_on_random_graphs(expr):
    xs = expr.leaves()
    out = expr(*xs)
    expected = reference.grad(out, xs)
    out.backward()
    for x, g in zip(xs, expected):
        assert_same(x.grad, g)


@given(expressions())
def test_grad_agrees_with_the_reference_engine_on_random_graphs(expr):
    xs = expr.leaves()
    out = expr(*xs)
    expected = reference.grad(out, xs)
    for g, want in zip(mg.grad(out, xs, allow_unused=True), expected):
        assert_same(g, want)


@settings(max_examples=10)
@given(st.integers(1, 7), st.integers(1, 3), st.booleans(), st.integers(0, 2**16))
def test_backward_agrees_with_the_reference_engine_on_a_shared_weight_lstm(
    steps, batch, bidirectional, seed
):
    mg.manual_seed(seed)
    lstm = LSTM(3, 4, num_layers=2, bidirectional=bidirectional).double()
    rng = np.random.default_rng(seed)
    x = leaf(rng.standard_normal((steps, batch, 3)))
    out, (h, c) = lstm(x)
    loss = (out * mg.tensor(rng.standard_normal(out.shape))).sum() + (h * c).sum()
    params = dict(lstm.named_parameters())
    expected = reference.grad(loss, [x, *params.values()])
    loss.backward()
    assert_same(x.grad, expected[0])
    for p, g in zip(params.values(), expected[1:]):
        assert_same(p.grad, g)


def test_reference_gradients_can_be_differentiated_again():
    x = mg.tensor(0.5, dtype=np.float64, requires_grad=True)
    (dy,) = reference.grad(mg.tanh(x), [x])
    (d2y,) = reference.grad(dy, [x])
    t = np.tanh(0.5)
    assert d2y.item() == pytest.approx(-2 * t * (1 - t**2), rel=1e-12)


def test_reference_needs_a_one_element_result_of_ops():
    x = mg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match=r"reference.grad: root must be a one-element .*\(2,\)"):
        reference.grad(x * 2, [x])
    with pytest.raises(ValueError, match="grad_fn None"):
        reference.grad(mg.tensor(1.0, requires_grad=True), [x])
