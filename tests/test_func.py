"""mg.func: torch.func's transforms (grad, grad_and_value, vjp, jvp, jacrev, jacfwd, hessian,
functional_call), their composition, trees of tensors, and their errors; in float64 against
torch.func where PyTorch is installed. Each op's own jvp rule is tested in test_jvp_*.py."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg
from minigrad import func
from minigrad.autograd import _state
from minigrad.models import LSTMCell

torch = pytest.importorskip("torch")
tfunc = pytest.importorskip("torch.func")


def data(seed: int, *shape: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def both(array: np.ndarray):
    """The same float64 values as a minigrad and as a torch tensor."""
    return mg.tensor(array, dtype=np.float64), torch.tensor(array, dtype=torch.float64)


def close(got, want, rtol: float = 1e-10) -> None:
    want = want.detach().numpy() if isinstance(want, torch.Tensor) else want
    np.testing.assert_allclose(got.data, want, rtol=rtol, atol=rtol)


def layer(t, x, w, b):
    """A small network in either library: tanh(x @ w + b), then a smooth scalar."""
    h = t.tanh(x @ w + b)
    return (h * h).sum() + h.sigmoid().sum()


@pytest.fixture
def inputs():
    return [both(data(k, *shape)) for k, shape in enumerate([(4, 3), (3, 5), (5,)])]


def test_grad_and_grad_and_value_match_torch_func_with_argnums_and_aux(inputs):
    (x, tx), (w, tw), (b, tb) = inputs
    close(func.grad(lambda x, w, b: layer(mg, x, w, b))(x, w, b),
          tfunc.grad(lambda x, w, b: layer(torch, x, w, b))(tx, tw, tb))
    got = func.grad(lambda x, w, b: layer(mg, x, w, b), argnums=(1, 2))(x, w, b)
    want = tfunc.grad(lambda x, w, b: layer(torch, x, w, b), argnums=(1, 2))(tx, tw, tb)
    assert isinstance(got, tuple) and len(got) == 2
    for g, t in zip(got, want):
        close(g, t)
    (g, (value, aux)) = func.grad_and_value(lambda x: (layer(mg, x, w, b), x.sum()),
                                            has_aux=True)(x)
    (tg, (tvalue, taux)) = tfunc.grad_and_value(lambda x: (layer(torch, x, tw, tb), x.sum()),
                                                has_aux=True)(tx)
    close(g, tg)
    close(value, tvalue)
    close(aux, taux)


def test_grad_of_a_params_dict_is_a_dict_of_gradients():
    cell = LSTMCell(3, 4).double()
    params = dict(cell.named_parameters())
    x = mg.tensor(data(0, 2, 3))

    def loss(params, x):
        h, _ = func.functional_call(cell, params, (x,))
        return (h * h).sum()

    grads = func.grad(loss)(params, x)
    assert set(grads) == set(params)
    h, _ = cell(x)
    expected = mg.grad((h * h).sum(), list(params.values()))
    for name, g in zip(params, expected):
        np.testing.assert_allclose(grads[name].data, g.data, rtol=1e-12)


def test_vjp_and_jvp_match_torch_func(inputs):
    (x, tx), (w, tw), (b, tb) = inputs

    def f(t):
        return lambda x, w: t.tanh(x @ w) * 2

    out, vjp_fn = func.vjp(f(mg), x, w)
    tout, tvjp_fn = tfunc.vjp(f(torch), tx, tw)
    close(out, tout)
    cot, tcot = both(data(7, 4, 5))
    for g, t in zip(vjp_fn(cot), tvjp_fn(tcot)):
        close(g, t)
    (dx, tdx), (dw, tdw) = both(data(8, 4, 3)), both(data(9, 3, 5))
    out, tangent = func.jvp(f(mg), (x, w), (dx, dw))
    tout, ttangent = tfunc.jvp(f(torch), (tx, tw), (tdx, tdw))
    close(out, tout)
    close(tangent, ttangent)


def test_jacrev_jacfwd_and_hessian_match_torch_func(inputs):
    (x, tx), (w, tw), (b, tb) = inputs

    def vector(t):
        return lambda b: t.tanh(x @ w + b) if t is mg else torch.tanh(tx @ tw + b)

    close(func.jacrev(vector(mg))(b), tfunc.jacrev(vector(torch))(tb))
    close(func.jacfwd(vector(mg))(b), tfunc.jacfwd(vector(torch))(tb))
    assert func.jacrev(vector(mg))(b).shape == (4, 5, 5)
    close(func.hessian(lambda b: layer(mg, x, w, b))(b),
          tfunc.hessian(lambda b: layer(torch, tx, tw, b))(tb))


def test_the_transforms_compose(inputs):
    (x, _), (w, _), (b, _) = inputs

    def f(b):
        return layer(mg, x, w, b)

    v = mg.tensor(data(5, 5))
    hessian = func.hessian(f)(b)
    np.testing.assert_allclose(hessian.data, hessian.data.T, atol=1e-12)  # symmetric
    for other in (func.jacfwd(func.jacrev(f)), func.jacrev(func.jacrev(f)),
                  func.jacrev(func.grad(f))):
        close(other(b), hessian.data)
    _, forward_over_reverse = func.jvp(func.grad(f), (b,), (v,))
    close(forward_over_reverse, hessian.data @ v.data)
    reverse_over_forward = func.grad(lambda b: func.jvp(f, (b,), (v,))[1])(b)
    close(reverse_over_forward, hessian.data @ v.data)


def test_functional_call_uses_the_given_tensors_and_gives_the_module_its_own_back():
    mg.manual_seed(0)
    lin = mg.nn.Linear(3, 2).double()
    before = {k: v for k, v in lin.named_parameters()}
    zeros = {k: mg.zeros_like(v) for k, v in before.items()}
    out = func.functional_call(lin, zeros, (mg.tensor(data(0, 4, 3)),))
    np.testing.assert_array_equal(out.data, np.zeros((4, 2)))
    assert all(p is before[k] for k, p in lin.named_parameters())  # given back
    assert lin.weight is before["weight"]
    ones = mg.ones(1, 3, dtype=np.float64)
    only_weight = func.functional_call(lin, {"weight": zeros["weight"]}, ones)
    np.testing.assert_allclose(only_weight.data, lin.bias.data[None])
    with pytest.raises(ValueError, match=r"no parameters named \['wieght'\]"):
        func.functional_call(lin, {"wieght": zeros["weight"]}, (ones,))
    with pytest.raises(ValueError, match=r"missing parameters \['bias'\]"):
        func.functional_call(lin, {"weight": zeros["weight"]}, (ones,), strict=True)


def test_errors_name_what_is_wrong():
    x = mg.tensor(data(0, 3))
    with pytest.raises(ValueError, match="must return a tensor with one element.*shape \\(3,\\)"):
        func.grad(lambda x: x * 2)(x)
    with pytest.raises(ValueError, match=r"tangent of shape \(2,\).*primal of shape \(3,\)"):
        func.jvp(lambda x: x * 2, (x,), (mg.tensor(data(1, 2)),))
    with pytest.raises(ValueError, match="dtype float32.*dtype float64"):
        func.jvp(lambda x: x * 2, (x,), (mg.tensor(data(1, 3), dtype=np.float32),))
    with pytest.raises(TypeError, match="primals and tangents must be tuples"):
        func.jvp(lambda x: x * 2, x, x)
    with pytest.raises(ValueError, match="argnums 3 out of range for 1"):
        func.grad(lambda x: x.sum(), argnums=3)(x)
    with pytest.raises(TypeError, match="only differentiate with respect to floating"):
        func.grad(lambda i: i.sum())(mg.tensor([1, 2]))

    class Cube(mg.Function):
        def forward(self, x):
            return x ** 3

        def backward(self, gy):
            return gy * 3 * self.inputs[0] ** 2

    with pytest.raises(NotImplementedError, match="Cube defines no jvp rule"):
        func.jvp(lambda x: Cube.apply(x), (x,), (x,))
    np.testing.assert_allclose(func.jacrev(lambda x: Cube.apply(x))(x).data,
                               np.diag(3 * x.data ** 2))  # reverse mode needs no jvp rule


def test_a_level_closes_and_leaves_no_tangents_behind_even_when_the_function_raises():
    x = mg.tensor(data(0, 3))

    def broken(x):
        (x * 2).tanh()
        raise KeyError("inside")

    with pytest.raises(KeyError):
        func.jvp(broken, (x,), (x,))
    assert _state.levels == []
    (x * 2).tanh()  # eager again: no rule runs (a custom op without jvp would raise)


def test_in_place_ops_carry_their_tangents():
    x, v = mg.tensor(np.array([1.0, 2.0, 3.0])), mg.tensor(np.ones(3))

    def scaled(x):
        y = x * 1.0
        y.mul_(3.0)
        return y

    def clamped(x):
        y = x * 1.0
        y.clamp_(max=2.0)
        return y

    def assigned(x):
        y = x * 1.0
        y[1] = 5.0
        return y

    for f, want in ((scaled, [3, 3, 3]), (clamped, [1, 1, 0]), (assigned, [1, 0, 1])):
        np.testing.assert_array_equal(func.jvp(f, (x,), (v,))[1].data, want)
        np.testing.assert_array_equal(func.jacfwd(f)(x).data, func.jacrev(f)(x).data)
    with mg.no_grad():  # written without a graph: the tangent still follows
        np.testing.assert_array_equal(func.jvp(scaled, (x,), (v,))[1].data, [3, 3, 3])


def test_a_tangent_takes_its_outputs_dtype():
    x32, c = mg.tensor(np.ones(3, np.float32)), mg.tensor(np.full(3, 2.0))
    y, dy = func.jvp(lambda a: a + c, (x32,), (mg.tensor(np.ones(3, np.float32)),))
    assert y.dtype == dy.dtype == np.float64


def test_hessian_over_several_arguments_nests_like_torch_func():
    (a, ta), (b, tb) = both(data(0, 3)), both(data(1, 3))

    def f(t):
        return lambda a, b: (t.tanh(a * b) * a).sum()

    got = func.hessian(f(mg), argnums=(0, 1))(a, b)
    want = tfunc.hessian(f(torch), argnums=(0, 1))(ta, tb)
    for row, trow in zip(got, want):
        for h, th in zip(row, trow):
            close(h, th)


def test_a_jvp_rule_that_returns_the_wrong_tangents_is_named():
    class Twice(mg.Function):
        def forward(self, x):
            return x * 2, x * 3

        def backward(self, ga, gb):
            return ga * 2 + gb * 3

        def jvp(self, tx):
            return tx * 2  # one tangent for two outputs

    class Wide(mg.Function):
        def forward(self, x):
            return x * 2

        def backward(self, gy):
            return gy * 2

        def jvp(self, tx):
            return mg.ones(5, dtype=np.float64)  # not the output's shape

    x = mg.tensor(data(0, 3))
    with pytest.raises(ValueError, match="Twice.jvp returned 1 tangents for 2 outputs"):
        func.jvp(lambda x: Twice.apply(x)[0], (x,), (x,))
    with pytest.raises(ValueError, match=r"Wide.jvp returned a tangent of shape \(5,\) for an "
                                         r"output of shape \(3,\)"):
        func.jvp(lambda x: Wide.apply(x), (x,), (x,))


def test_forward_mode_and_mg_compile_refuse_each_other_with_a_clear_error():
    x = mg.tensor(data(0, 3))
    compiled = mg.compile(lambda x: x.tanh() * 2, fallback=False)
    with pytest.raises(NotImplementedError, match="jvp through a compiled call"):
        func.jvp(compiled, (x,), (x,))
    inside = mg.compile(lambda x: func.jvp(lambda y: y * 2, (x,), (x,))[1], fallback=False)
    with pytest.raises(RuntimeError, match="inside a function that mg.compile traces"):
        inside(x)


def test_jacrev_of_a_tree_argument_is_a_tree_of_jacobians():
    params = {"a": mg.tensor(data(0, 3)), "b": mg.tensor(data(1, 3))}
    jac = func.jacrev(lambda p: p["a"] * p["b"].tanh())(params)
    assert set(jac) == {"a", "b"}
    np.testing.assert_allclose(jac["a"].data, np.diag(np.tanh(params["b"].data)), atol=1e-12)
    np.testing.assert_allclose(jac["b"].data, np.diag(params["a"].data
                                                      * (1 - np.tanh(params["b"].data) ** 2)),
                               atol=1e-12)
    pair = func.jacrev(lambda x, p: x * p["a"], argnums=(0, 1))(params["b"], params)
    assert isinstance(pair, tuple) and set(pair[1]) == {"a", "b"}
    np.testing.assert_array_equal(pair[1]["b"].data, np.zeros((3, 3)))
