"""The engine: graph traversal, accumulation, freeing, grad mode, hooks, mg.grad, higher-order
derivatives, dtypes, anomaly detection, user-defined ops and the errors of DESIGN.md."""

from __future__ import annotations

import gc
import os
import weakref
from collections.abc import Iterator

import numpy as np
import pytest

import minigrad as mg
from tests.strategies import leaf

THIS_FILE = os.path.basename(__file__)


@pytest.fixture
def no_gc() -> Iterator[None]:
    """Turn the cycle collector off, so only reference counting can free objects."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def vector(*values: float) -> mg.Tensor:
    """A float64 leaf that requires grad."""
    return leaf(np.array(values, dtype=np.float64))


def rng_array(*shape: int, seed: int = 0) -> np.ndarray:
    """Deterministic float64 values in [-1, 1]."""
    return np.random.default_rng(seed).uniform(-1, 1, shape)


# ----------------------------------------------------------------------------------------------
# graph traversal and accumulation


def test_fan_out_and_reuse_accumulate_exactly():
    a = mg.tensor([1.0, 2.0, -3.0], requires_grad=True)
    b = a + a
    c = b * b
    c.sum().backward()
    # c = 4 a**2, so dc/da = 8 a: exact in float32 for these small integers
    np.testing.assert_array_equal(a.grad.data, np.array([8.0, 16.0, -24.0], np.float32))
    assert a.grad.dtype == np.float32


def test_diamond_graph_matches_closed_form():
    x = vector(0.3, -1.2, 0.8)
    top, bottom = x.tanh(), x.exp()
    out = (top * bottom + top).sum()
    out.backward()
    t, e = np.tanh(x.data), np.exp(x.data)
    dt = 1 - t**2
    np.testing.assert_allclose(x.grad.data, dt * e + t * e + dt, rtol=1e-12)
    assert mg.gradcheck(lambda x: (x.tanh() * x.exp() + x.tanh()).sum(), [x])


def test_node_waits_for_all_its_consumers_before_its_backward():
    # y feeds the root directly and through a long path; it must get both gradients before
    # its own backward runs, or the gradient arriving late is lost
    x = vector(0.5, -2.0)
    y = x * 2
    z = y
    for _ in range(5):
        z = z + 1
    (z * y).sum().backward()  # (2x + 5) 2x  ->  8x + 10
    np.testing.assert_allclose(x.grad.data, 8 * x.data + 10, rtol=1e-12)


def test_backward_through_a_20000_op_chain():
    x = mg.tensor(0.5, dtype=np.float64, requires_grad=True)
    c = 1.00001
    y = x
    for i in range(20_000):
        y = y * c if i % 2 == 0 else y + 1.0
    y.backward()
    np.testing.assert_allclose(x.grad.data, c**10_000, rtol=1e-9)
    del y  # freeing the chain must not overflow the stack either


def test_gradients_accumulate_across_separate_backward_calls():
    x = vector(1.0, 2.0)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, 3 + 2 * x.data)


def test_broadcast_gradient_is_reduced_to_each_input_shape():
    a = leaf(np.arange(6.0).reshape(2, 3))
    b = leaf(np.array([[1.0], [2.0]]))
    c = leaf(np.array(0.5))
    (a * b + c).sum().backward()
    assert (a.grad.shape, b.grad.shape, c.grad.shape) == ((2, 3), (2, 1), ())
    np.testing.assert_allclose(a.grad.data, np.broadcast_to(b.data, (2, 3)))
    np.testing.assert_allclose(b.grad.data, a.data.sum(axis=1, keepdims=True))
    assert c.grad.item() == 6.0


# ----------------------------------------------------------------------------------------------
# freeing the graph


def test_graph_is_freed_when_root_and_intermediates_are_dropped(no_gc):
    x = vector(0.1, 0.2, 0.3)
    h = x * 2
    t = h.tanh()
    root = (t * h).sum()
    nodes = [weakref.ref(t.grad_fn), weakref.ref(h.grad_fn), weakref.ref(root.grad_fn)]
    root.backward()
    assert all(ref() is not None for ref in nodes)  # the tensors still hold them
    del root, t, h
    assert [ref() for ref in nodes] == [None, None, None]  # refcounting alone freed them
    assert x.grad is not None


def test_unused_graph_is_freed_without_backward(no_gc):
    x = vector(1.0, 2.0)
    y = (x.exp() * x).softmax()
    node = weakref.ref(y.grad_fn)
    del y
    assert node() is None


def test_backward_frees_saved_arrays_unless_retain_graph():
    x = vector(1.0, 3.0, 2.0)
    y = x.max()
    y.backward(retain_graph=True)
    assert not y.grad_fn.freed
    y.backward()
    assert y.grad_fn.freed


def test_second_backward_raises_and_names_retain_graph():
    x = vector(0.5, 1.5)
    y = (x.tanh() * 3).sum()
    y.backward()
    grad_after_first = x.grad.data.copy()
    with pytest.raises(mg.GraphFreedError, match="retain_graph=True") as info:
        y.backward()
    assert "Sum" in str(info.value)  # names the op it could not go through
    np.testing.assert_array_equal(x.grad.data, grad_after_first)


def test_new_graph_through_a_freed_part_raises_naming_the_freed_op():
    x = vector(0.5, 1.5)
    t = x.tanh()
    t.sum().backward()
    with pytest.raises(mg.GraphFreedError, match="Tanh"):
        (t * 2).sum().backward()


def test_retain_graph_allows_second_backward_and_accumulates():
    x = vector(0.5, -1.0)
    y = (x.tanh() * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.data.copy()
    y.backward()
    np.testing.assert_allclose(x.grad.data, 2 * first, rtol=1e-15)
    t = np.tanh(x.data)
    np.testing.assert_allclose(first, (1 - t**2) * x.data + t, rtol=1e-12)


# ----------------------------------------------------------------------------------------------
# hooks, retain_grad, leaves


def test_hook_on_leaf_sees_its_gradient_and_can_replace_it():
    x = vector(1.0, 2.0)
    seen = []
    x.register_hook(lambda g: seen.append(g.data.copy()))
    x.register_hook(lambda g: g * 10)
    (x * x).sum().backward()  # x reaches the root along two paths: one hook call, on the sum
    assert len(seen) == 1, f"the leaf hook ran {len(seen)} times, on {seen}"
    np.testing.assert_allclose(seen[0], 2 * x.data)
    np.testing.assert_allclose(x.grad.data, 20 * x.data)


def test_hook_on_non_leaf_replaces_the_gradient_flowing_upstream():
    x = vector(1.0, 2.0)
    y = x * 3
    seen = []
    y.register_hook(lambda g: seen.append(g.data.copy()))
    y.register_hook(lambda g: g * 10)
    (y * y).sum().backward()
    np.testing.assert_allclose(seen[0], 2 * y.data)
    np.testing.assert_allclose(x.grad.data, 3 * 10 * 2 * y.data)
    assert y.grad is None  # a non-leaf keeps no .grad unless retain_grad() was called


def test_removed_hook_is_not_called():
    x = vector(1.0, 2.0)
    y = x * 3
    calls = []
    leaf_handle = x.register_hook(lambda g: calls.append("leaf"))
    y_handle = y.register_hook(lambda g: g * 0)
    leaf_handle.remove()
    y_handle.remove()
    y_handle.remove()  # removing twice is harmless
    y.sum().backward()
    assert calls == []
    np.testing.assert_allclose(x.grad.data, [3.0, 3.0])


def test_register_hook_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match=r"does not require grad"):
        mg.tensor([1.0]).register_hook(lambda g: g)


def test_retain_grad_keeps_non_leaf_gradient():
    x = vector(1.0, -2.0)
    y = x.tanh()
    y.retain_grad()
    z = y * y
    z.sum().backward()
    np.testing.assert_allclose(y.grad.data, 2 * y.data)
    assert z.grad is None


def test_is_leaf_and_detach():
    x = vector(1.0, 2.0)
    y = x * x
    assert x.is_leaf and not y.is_leaf
    assert mg.tensor([1.0]).is_leaf
    d = y.detach()
    assert d.is_leaf and not d.requires_grad and d.grad_fn is None
    assert np.shares_memory(d.data, y.data)
    (x * y.detach()).sum().backward()  # no gradient flows through the detached factor
    np.testing.assert_allclose(x.grad.data, x.data**2)


# ----------------------------------------------------------------------------------------------
# grad mode


def test_no_grad_builds_nothing():
    x = vector(1.0, 2.0)
    with mg.no_grad():
        assert not mg.is_grad_enabled()
        y = (x * 2).tanh()
    assert mg.is_grad_enabled()
    assert y.grad_fn is None and not y.requires_grad and y.is_leaf


def test_no_grad_as_decorator():
    @mg.no_grad()
    def double(t: mg.Tensor) -> mg.Tensor:
        assert not mg.is_grad_enabled()
        return t * 2

    y = double(vector(1.0))
    assert y.grad_fn is None and not y.requires_grad
    assert mg.is_grad_enabled()


def test_enable_grad_inside_no_grad():
    x = vector(1.0, 2.0)
    with mg.no_grad():
        with mg.enable_grad():
            assert mg.is_grad_enabled()
            y = x * 2
        assert not mg.is_grad_enabled()
    assert y.requires_grad and y.grad_fn is not None
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, [2.0, 2.0])


def test_grad_mode_is_restored_after_an_exception():
    with pytest.raises(ValueError, match="reshape"):
        with mg.no_grad():
            vector(1.0, 2.0).reshape(3)
    assert mg.is_grad_enabled()


# ----------------------------------------------------------------------------------------------
# mg.grad


def test_grad_multiple_outputs_and_inputs_with_grad_outputs():
    a, b = vector(0.3, -0.7), vector(1.5, 0.5)
    u = a * b
    v = u.tanh()
    w = rng_array(2)
    ga, gb = mg.grad([v, u.sum()], [a, b], grad_outputs=[mg.tensor(w), None])
    dv = w * (1 - np.tanh(a.data * b.data) ** 2)
    np.testing.assert_allclose(ga.data, dv * b.data + b.data, rtol=1e-12)
    np.testing.assert_allclose(gb.data, dv * a.data + a.data, rtol=1e-12)


def test_grad_of_non_leaf_input_and_no_side_effects():
    x = vector(0.2, 0.4)
    y = x.exp()
    y.retain_grad()
    z = (y * y).sum()
    gy, gx = mg.grad(z, [y, x])
    np.testing.assert_allclose(gy.data, 2 * y.data, rtol=1e-12)
    np.testing.assert_allclose(gx.data, 2 * np.exp(2 * x.data), rtol=1e-12)
    assert x.grad is None and y.grad is None  # mg.grad touches no .grad


def test_grad_allow_unused():
    x, unused = vector(1.0), vector(2.0)
    with pytest.raises(RuntimeError, match=r"input 1 .*allow_unused=True"):
        mg.grad((x * 2).sum(), [x, unused])
    gx, gu = mg.grad((x * 2).sum(), [x, unused], allow_unused=True)
    assert gu is None
    np.testing.assert_allclose(gx.data, [2.0])


def test_grad_of_input_without_requires_grad_raises():
    x = vector(1.0)
    with pytest.raises(RuntimeError, match=r"input 1 .*does not require grad"):
        mg.grad((x * 2).sum(), [x, mg.tensor([1.0])])


# ----------------------------------------------------------------------------------------------
# higher-order derivatives


def first_grad(f, x: mg.Tensor) -> mg.Tensor:
    """d sum(f(x)) / dx, recorded as a graph. f(x) is dropped on return: the node holds its
    output weakly, so a second derivative is right only if backward put that output into the
    graph of the gradient as a Tensor (a function of x), not as a constant."""
    (g,) = mg.grad(f(x).sum(), x, create_graph=True)
    gc.collect()
    return g


SECOND_DERIVATIVES = {
    "tanh": (mg.tanh, lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2)),
    "sigmoid": (
        mg.sigmoid,
        lambda x: (s := 1 / (1 + np.exp(-x))) * (1 - s) * (1 - 2 * s),
    ),
    "exp": (mg.exp, np.exp),
    "cube": (lambda t: t**3, lambda x: 6 * x),
}


@pytest.mark.parametrize("name", SECOND_DERIVATIVES)
def test_second_derivative_matches_closed_form(name):
    f, d2f = SECOND_DERIVATIVES[name]
    x = vector(-1.3, -0.2, 0.4, 1.7)
    g = first_grad(f, x)
    assert g.requires_grad
    (h,) = mg.grad(g.sum(), x)
    np.testing.assert_allclose(h.data, d2f(x.data), rtol=1e-10, atol=1e-12)


def test_second_derivative_of_softmax_matches_closed_form():
    # f = w . softmax(x): g = s * (w - w.s) and the Hessian is diag(g) - g sᵀ - s gᵀ
    x = vector(0.5, -1.0, 2.0, 0.1)
    w, v = rng_array(4, seed=1), rng_array(4, seed=2)
    (g,) = mg.grad((x.softmax() * mg.tensor(w)).sum(), x, create_graph=True)
    gc.collect()
    (hv,) = mg.grad(g, x, grad_outputs=mg.tensor(v))
    s = np.exp(x.data) / np.exp(x.data).sum()
    gs = s * (w - w @ s)
    np.testing.assert_allclose(g.data, gs, rtol=1e-12)
    np.testing.assert_allclose(hv.data, gs * v - gs * (s @ v) - s * (gs @ v), rtol=1e-10)


def test_third_derivative_of_tanh():
    x = vector(-0.8, 0.3, 1.1)
    g = first_grad(mg.tanh, x)
    (h,) = mg.grad(g.sum(), x, create_graph=True)
    (k,) = mg.grad(h.sum(), x)
    t = np.tanh(x.data)
    np.testing.assert_allclose(k.data, (1 - t**2) * (6 * t**2 - 2), rtol=1e-10)


def test_backward_with_create_graph_gives_differentiable_grad():
    x = vector(0.7)
    (x**3).sum().backward(create_graph=True)
    g = x.grad
    assert g.requires_grad
    (h,) = mg.grad(g.sum(), x)
    np.testing.assert_allclose(h.data, 6 * x.data)


# ----------------------------------------------------------------------------------------------
# multi-output ops


def test_split_with_only_some_outputs_used():
    x = leaf(np.arange(6.0))
    _, middle, _ = x.split(2)  # the other two outputs die at once
    (middle * middle).sum().backward()
    np.testing.assert_allclose(x.grad.data, [0, 0, 4, 6, 0, 0])


def test_chunk_outputs_used_twice_and_one_unused():
    x = leaf(np.arange(1.0, 10.0).reshape(3, 3))
    first, second, third = x.chunk(3, axis=0)
    del second
    (first * third + first).sum().backward()
    expected = np.zeros((3, 3))
    expected[0] = x.data[2] + 1
    expected[2] = x.data[0]
    np.testing.assert_allclose(x.grad.data, expected)


def test_grad_with_respect_to_one_output_of_a_split():
    x = leaf(np.array([1.0, 2.0, 3.0, 4.0]))
    a, b = x.split([1, 3])
    gb, gx = mg.grad((a * b).sum(), [b, x])
    np.testing.assert_allclose(gb.data, [1.0, 1.0, 1.0])
    np.testing.assert_allclose(gx.data, [9.0, 1.0, 1.0, 1.0])


# ----------------------------------------------------------------------------------------------
# dtypes


def test_dtype_rules():
    assert mg.tensor([1.0, 2.0]).dtype == np.float32
    assert mg.tensor(np.array([1.0, 2.0])).dtype == np.float64
    x32 = mg.tensor([1.0, 2.0], requires_grad=True)
    y = x32 * 0.1 + 2.5
    assert y.dtype == np.float32
    y.sum().backward()
    assert x32.grad.dtype == np.float32
    assert mg.tensor([1, 2]).dtype.kind == "i"
    assert (mg.tensor([1, 2]) + 1).dtype.kind == "i"
    x64 = leaf(np.array([1.0]))
    (x64 * 0.5).sum().backward()
    assert x64.grad.dtype == np.float64


def test_mixed_dtypes_give_each_leaf_a_gradient_of_its_own_dtype():
    a = mg.tensor([1.0, 2.0], requires_grad=True)
    b = leaf(np.array([3.0, 4.0]))
    (a * b).sum().backward()
    assert a.grad.dtype == np.float32 and b.grad.dtype == np.float64
    np.testing.assert_allclose(a.grad.data, [3.0, 4.0])


# ----------------------------------------------------------------------------------------------
# detect_anomaly


def test_anomaly_in_forward_names_the_op_and_where_it_was_created():
    x = vector(-1.0, 2.0)
    with mg.detect_anomaly(), np.errstate(invalid="ignore"):
        with pytest.raises(mg.AnomalyError) as info:
            x.log()
    message = str(info.value)
    assert "Log" in message and "nan" in message
    assert THIS_FILE in message and "x.log()" in message


def make_sqrt_at_zero() -> tuple[mg.Tensor, mg.Tensor]:
    """sqrt(0) is finite, but its gradient 1 / (2 sqrt(0)) is not."""
    x = vector(0.0, 1.0)
    return x, x.sqrt()


def test_anomaly_in_backward_names_the_op_and_where_it_was_created():
    with mg.detect_anomaly(), np.errstate(divide="ignore"):
        x, y = make_sqrt_at_zero()
        with pytest.raises(mg.AnomalyError) as info:
            y.sum().backward()
    message = str(info.value)
    assert "Sqrt" in message and "inf" in message
    assert THIS_FILE in message and "x.sqrt()" in message  # where Sqrt was created
    assert mg.is_grad_enabled()


def test_without_anomaly_mode_nothing_is_checked():
    x, y = make_sqrt_at_zero()
    with np.errstate(divide="ignore"):
        y.sum().backward()
    assert np.isinf(x.grad.data[0])


# ----------------------------------------------------------------------------------------------
# errors (DESIGN.md)


def test_backward_on_non_scalar_needs_gradient():
    x = leaf(np.ones((2, 3)))
    y = x * 2
    with pytest.raises(RuntimeError, match=r"scalar.*\(2, 3\)"):
        y.backward()
    assert x.grad is None
    y.backward(np.ones((2, 3)))
    np.testing.assert_allclose(x.grad.data, np.full((2, 3), 2.0))


def test_backward_with_gradient_of_wrong_shape():
    x = leaf(np.ones((2, 3)))
    y = x * 2
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(2, 3\)"):
        y.backward(np.ones((3, 2)))
    assert x.grad is None
    y.backward(mg.tensor(np.ones((2, 3))))
    np.testing.assert_allclose(x.grad.data, np.full((2, 3), 2.0))


def test_requires_grad_on_integer_data():
    with pytest.raises(TypeError, match=r"floating.*int64"):
        mg.tensor(np.array([1, 2], dtype=np.int64), requires_grad=True)


def test_backward_on_tensor_that_does_not_require_grad():
    y = mg.tensor([1.0, 2.0]) * 2
    with pytest.raises(RuntimeError, match=r"shape \(2,\).* does not require grad"):
        y.backward(np.ones(2))


# ----------------------------------------------------------------------------------------------
# user-defined ops


class LogCosh(mg.Function):
    """logcosh: y = log(cosh(x)); dx = dy * tanh(x)"""

    def forward(self, x):
        return np.logaddexp(x, -x) - np.log(2.0)

    def backward(self, gy):
        return gy * self.inputs[0].tanh()


class SquaredDistance(mg.Function):
    """sqdist: y = sum((a - b)**2, axis=-1); da = 2 (a - b) dy, db = -da  (a, b broadcast)"""

    def forward(self, a, b):
        return ((a - b) ** 2).sum(axis=-1)

    def backward(self, gy):
        a, b = self.inputs
        ga = 2 * (a - b) * gy.reshape(gy.shape + (1,))
        return ga, -ga


class WrongLogCosh(LogCosh):
    """logcosh with a backward off by a factor of 2."""

    def backward(self, gy):
        return 2 * gy * self.inputs[0].tanh()


def test_user_defined_ops_are_gradchecked():
    x = leaf(rng_array(3, 4))
    c = leaf(rng_array(4, seed=1))
    assert mg.gradcheck(lambda x: LogCosh.apply(x), [x])
    assert mg.gradgradcheck(lambda x: LogCosh.apply(x), [x])
    assert mg.gradcheck(lambda x, c: SquaredDistance.apply(x, c), [x, c])  # c is broadcast
    y = SquaredDistance.apply(x, c)
    assert y.grad_fn.name == "SquaredDistance" and y.shape == (3,)
    np.testing.assert_allclose(y.data, ((x.data - c.data) ** 2).sum(-1))


def test_user_defined_op_with_wrong_backward_is_rejected():
    x = leaf(rng_array(3))
    with pytest.raises(mg.GradcheckError, match="input 0"):
        mg.gradcheck(lambda x: WrongLogCosh.apply(x), [x])


class Product(mg.Function):
    """product: y = a * b; da = dy * b, db = dy * a  (notes what backward is told it needs)"""

    seen: list[tuple[bool, ...]] = []

    def forward(self, a, b):
        return a * b

    def backward(self, gy):
        Product.seen.append(self.needs_input_grad)
        a, b = self.inputs
        need_a, need_b = self.needs_input_grad
        return Product.apply(gy, b) if need_a else None, Product.apply(gy, a) if need_b else None


def test_needs_input_grad_is_true_for_leaves_and_results_that_require_grad():
    x, c = leaf(rng_array(3)), mg.tensor(rng_array(3, seed=1))
    h = x * 2  # a result of ops: requires grad, not a leaf
    Product.seen = []
    (Product.apply(h, c).sum() + Product.apply(c, x).sum()).backward(retain_graph=True)
    assert sorted(Product.seen) == [(False, True), (True, False)]
    # under create_graph the ops of backward are recorded, and told what their inputs need
    Product.seen = []
    (dx,) = mg.grad(Product.apply(h, h).sum(), x, create_graph=True)  # d sum(4 x**2) = 8 x
    assert Product.seen == [(True, True)]
    Product.seen = []
    (d2x,) = mg.grad(dx.sum(), x)  # the two products dy * h made: dy = ones needs no grad
    assert Product.seen == [(False, True), (False, True)]
    np.testing.assert_allclose(dx.data, 8 * x.data)
    np.testing.assert_allclose(d2x.data, np.full(3, 8.0))


class ReturnsArray(LogCosh):
    """A backward that returns a NumPy array instead of a Tensor."""

    def backward(self, gy):
        return gy.data * 2


class ReturnsTooMany(LogCosh):
    """A backward that returns two gradients for one input."""

    def backward(self, gy):
        return gy, gy


class ReturnsWrongShape(LogCosh):
    """A backward whose gradient does not fit the input's shape."""

    def backward(self, gy):
        return mg.tensor(np.ones(5))


@pytest.mark.parametrize(
    "op, error, pattern",
    [
        (ReturnsArray, TypeError, r"ReturnsArray.backward must return Tensors"),
        (ReturnsTooMany, ValueError, r"ReturnsTooMany.backward returned 2 gradients for 1"),
        (ReturnsWrongShape, ValueError, r"ReturnsWrongShape.*\(5,\).*\(3,\)"),
    ],
)
def test_malformed_user_backward_is_reported_by_name(op, error, pattern):
    x = leaf(rng_array(3))
    y = op.apply(x).sum()
    with pytest.raises(error, match=pattern):
        y.backward()
    assert mg.is_grad_enabled() and x.grad is None


def test_apply_rejects_non_tensor_inputs():
    with pytest.raises(TypeError, match=r"LogCosh.apply takes Tensors; got a ndarray"):
        LogCosh.apply(np.ones(3))


def test_a_gradient_handed_to_two_inputs_is_summed_apart_for_each():
    # s's total gradient is handed by Add to both p and q, which then receive more gradient:
    # a sum that wrote into the shared gradient would leak p's share into q's.
    x1 = mg.tensor([1.0, 2.0], requires_grad=True)
    x2 = mg.tensor([3.0, 4.0], requires_grad=True)
    p, q = x1 * 1.0, x2 * 1.0
    s = p + q
    t = s + s + s
    (t + p * 2.0 + q * 5.0).sum().backward()
    np.testing.assert_array_equal(x1.grad.data, [5.0, 5.0])
    np.testing.assert_array_equal(x2.grad.data, [8.0, 8.0])


def test_a_weight_shared_by_linear_ops_gets_one_total_gradient():
    """A weight used by several Linear ops and one other op: its gradient is the sum of every
    use's gᵀ x, hooks see the total once, and mg.grad, trace_backward, create_graph and anomaly
    mode agree with it."""
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((2, 3)), rng.standard_normal((4, 3)), rng.standard_normal((3,))]
    gs = [rng.standard_normal((2, 5)), rng.standard_normal((4, 5)), rng.standard_normal((5,))]
    expected = sum(np.atleast_2d(g).T @ np.atleast_2d(x) for g, x in zip(gs, xs)) + 2.0

    def loss(w):
        total = (w * 2.0).sum()  # one use that is not a Linear
        for x, g in zip(xs, gs):
            total = total + (mg.nn.functional.linear(mg.tensor(x), w) * mg.tensor(g)).sum()
        return total

    w = leaf(rng.standard_normal((5, 3)))
    seen = []
    w.register_hook(lambda grad: seen.append(grad.data.copy()))
    with mg.trace_backward() as trace:
        loss(w).backward()
    np.testing.assert_allclose(w.grad.data, expected, rtol=1e-12)
    assert len(seen) == 1 and np.allclose(seen[0], expected)
    linear = [r for r in trace.records if r.op == "Linear"]  # each use's own share, formed
    assert len(linear) == 3 and all(r.grad_out[1] > 0 for r in linear)
    (by_grad,) = mg.grad(loss(w), [w])
    np.testing.assert_allclose(by_grad.data, expected, rtol=1e-12)
    (with_graph,) = mg.grad(loss(w), [w], create_graph=True)
    np.testing.assert_allclose(with_graph.data, expected, rtol=1e-12)
    with mg.detect_anomaly():
        (checked,) = mg.grad(loss(w), [w])
    np.testing.assert_allclose(checked.data, expected, rtol=1e-12)


def test_float_and_int_of_a_one_element_tensor_are_its_value():
    assert float(mg.tensor([[2.5]])) == 2.5 and int(mg.tensor(3.9)) == 3
    with pytest.raises(ValueError, match=r"item\(\) needs a tensor with one element; got shape"):
        float(mg.tensor([1.0, 2.0]))
