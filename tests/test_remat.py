"""What a compiled call keeps for backward: the ``remat`` pass recomputes in backward the values
that one or two elementwise instructions make from values it keeps anyway, never keeps a value
it did not keep before, and changes no result; and a backward that frees the graph lets go of
each kept array after its last use (``Function.take_saved``, ``Program.run(consume=True)``)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad.compile import ALL, CompiledCall, Specialization
from minigrad.compile.passes import RECOMPUTE_AT_MOST
from minigrad.models import LSTMCell, Recurrent
from minigrad.ops.elementwise import Mul, Tanh

NO_REMAT = tuple(p for p in ALL if p != "remat")


def compiled_grads(f, args, passes=ALL):
    """The compiled specialization of ``f`` on ``args``, its value and the gradients."""
    xs = [mg.tensor(a, requires_grad=True) for a in args]
    g = mg.compile(f, passes=passes, fallback=False)
    y = g(*xs)
    y.backward()
    return g.traces[0], y.item(), grads_of(xs)


def kept(spec: Specialization) -> dict[int, int]:
    """The values forward makes and hands to backward (beyond the function's results), with
    their bytes. (The inputs it hands over cost nothing: the call's node holds them anyway.)"""
    n, meta = len(spec.trace.tracked), spec.forward.meta
    return {s: int(np.prod(meta[s][0])) * meta[s][1].itemsize for s in spec.forward.outputs[n:]
            if s not in spec.forward.inputs}


def grads_of(xs: list) -> list[np.ndarray]:
    """Each tensor's gradient, zeros where none reached it."""
    return [np.zeros(x.shape) if x.grad is None else x.grad.numpy() for x in xs]


def eager_grads(f, args):
    xs = [mg.tensor(a, requires_grad=True) for a in args]
    y = f(*xs)
    y.backward()
    return y.item(), grads_of(xs)


UNARY = {"tanh": mg.tanh, "sigmoid": mg.sigmoid, "exp": lambda x: (x * 0.3).exp(),
         "square": lambda x: x * x}
BINARY = {"mul": lambda a, b: a * b, "add": lambda a, b: a + b, "sub": lambda a, b: a - b}


@st.composite
def elementwise_functions(draw):
    """A random chain of elementwise ops over two inputs, ending in a sum, with every
    intermediate value kept reachable (some are read by backward, some could be remade)."""
    steps = draw(st.lists(st.one_of(
        st.tuples(st.just("u"), st.sampled_from(sorted(UNARY)), st.integers(0, 9)),
        st.tuples(st.just("b"), st.sampled_from(sorted(BINARY)), st.integers(0, 9),
                  st.integers(0, 9))), min_size=1, max_size=8))

    def f(a, b):
        values = [a, b]
        for step in steps:
            pick = [values[k % len(values)] for k in step[2:]]
            values.append(UNARY[step[1]](*pick) if step[0] == "u" else BINARY[step[1]](*pick))
        return values[-1].sum() + values[len(values) // 2].sum()
    return f


@given(elementwise_functions(), st.sampled_from([(3,), (2, 3), (4, 1, 3)]), st.integers(0, 99))
def test_remat_changes_no_result_and_never_keeps_more(f, shape, seed):
    rng = np.random.default_rng(seed)
    args = [rng.uniform(-1, 1, shape), rng.uniform(-1, 1, shape[-1:])]
    value, grads = eager_grads(f, args)
    with_remat, v1, g1 = compiled_grads(f, args)
    without, v2, g2 = compiled_grads(f, args, NO_REMAT)
    for got in (g1, g2):
        for a, b in zip(got, grads):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    assert v1 == pytest.approx(value, rel=1e-12) and v2 == pytest.approx(value, rel=1e-12)
    assert set(kept(with_remat)) <= set(kept(without))
    recomputed = [f for ins in with_remat.backward.instrs for f in (ins, *ins.fused)
                  if f.recomputed]
    assert (len(recomputed) > 0) == (set(kept(with_remat)) != set(kept(without)))


def lstm_loss(layer):
    def loss(x):
        h, _ = layer(x)
        return (h * h).sum()
    return loss


def test_an_lstm_keeps_its_gates_and_c_and_recomputes_tanh_c_and_h():
    mg.manual_seed(0)
    layer = Recurrent(LSTMCell, 3, 4).to(np.float64)
    x = np.random.default_rng(0).normal(size=(6, 2, 3))
    spec, _, grads = compiled_grads(lstm_loss(layer), [x])
    plain, _, plain_grads = compiled_grads(lstm_loss(layer), [x], NO_REMAT)
    np.testing.assert_allclose(grads[0], plain_grads[0], rtol=1e-12)
    # per step: i, f, g, o and c stay; tanh(c) and h = o * tanh(c) are remade from them. The
    # last step's c is kept for no later step, so its tanh(c) stays (4 instructions from the
    # gates), and its h is not read by backward at all.
    state = 2 * 4 * 8  # bytes of one (batch 2, hidden 4) float64 value
    assert sum(kept(plain).values()) - sum(kept(spec).values()) == (2 * 6 - 2) * state
    ops = [f.op for ins in spec.backward.instrs for f in (ins, *ins.fused) if f.recomputed]
    assert ops.count(Tanh) >= 5 and ops.count(Mul) == 5
    assert "recomputes 1 Tanh" in str(spec.backward)  # taken into backward's kernels


def test_a_chain_longer_than_the_limit_or_through_a_product_is_kept():
    def f(x, w):
        y = ((x * 2 + 1) * 3).tanh()     # 4 elementwise instructions from x: kept
        z = (x @ w).tanh()               # from a matmul's result, which backward does not keep
        u = (x + 1).tanh()               # 2 from x: recomputed
        return (y * y).sum() + (z * z).sum() + (u * u).sum()

    assert RECOMPUTE_AT_MOST == 2
    rng = np.random.default_rng(1)
    args = [rng.normal(size=(3, 4)), rng.normal(size=(4, 4))]
    spec, _, grads = compiled_grads(f, args)
    np.testing.assert_allclose(grads[0], eager_grads(f, args)[1][0], rtol=1e-10)
    again = [f for ins in spec.backward.instrs for f in (ins, *ins.fused) if f.recomputed]
    assert [f.op.__name__ for f in again] == ["Add", "Tanh"]  # u's chain, and nothing else
    assert len(kept(spec)) == 2  # tanh of y and of z


def test_a_random_draw_is_never_recomputed():
    def f(x):
        return (mg.nn.functional.dropout(x, 0.5).tanh() ** 2).sum()

    x = mg.randn(5, 6, requires_grad=True, dtype=np.float64)
    g = mg.compile(f, fallback=False)
    mg.manual_seed(3)
    g(x).backward()
    compiled = x.grad.numpy().copy()
    x.grad = None
    mg.manual_seed(3)
    f(x).backward()
    np.testing.assert_allclose(compiled, x.grad.numpy(), rtol=1e-12)
    spec = g.traces[0]
    assert not any(f.impure for ins in spec.backward.instrs for f in (ins, *ins.fused))


def test_print_and_draw_show_what_backward_recomputes():
    g = mg.compile(lambda x: ((x + 1).tanh() ** 2).sum(), fallback=False)
    g(mg.randn(3, requires_grad=True)).backward()
    spec = g.traces[0]
    plain = mg.compile(lambda x: ((x + 1).tanh() ** 2).sum(), fallback=False,
                       passes=("dce", "remat"))
    plain(mg.randn(3, requires_grad=True)).backward()
    assert "recomputes 1 Add, 1 Tanh" in str(spec)
    assert ", recomputed" in str(plain.traces[0].backward)  # unfused: each line says so
    assert "recomputes 1 Add, 1 Tanh" in g.draw("backward").source.replace("\\n", " ")
    assert "#c6dbef" in plain.draw("backward").source  # unfused recomputed ops are blue


def test_backward_lets_go_of_what_forward_kept_unless_the_graph_is_retained():
    mg.manual_seed(0)
    layer = Recurrent(LSTMCell, 3, 4).to(np.float64)
    g = mg.compile(lstm_loss(layer), fallback=False)
    x = mg.randn(5, 2, 3, requires_grad=True, dtype=np.float64)
    y = g(x)
    call = y.grad_fn
    assert isinstance(call, CompiledCall) and call.saved
    y.backward(retain_graph=True)
    first = x.grad.numpy().copy()
    assert call.saved  # still there: consume=True emptied only backward's own list
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * first, rtol=1e-12)
    assert call.saved is None
    with pytest.raises(RuntimeError, match="freed"):
        y.backward()


def test_a_consuming_run_empties_the_list_it_is_given_and_a_plain_run_does_not():
    g = mg.compile(lambda x: (x * 2).sum(), fallback=False)
    g(mg.randn(3, requires_grad=True))
    program = g.traces[0].forward
    arrays = [np.ones(3)]
    assert program.run(arrays)[0] == 6 and len(arrays) == 1
    assert program.run(arrays, consume=True)[0] == 6 and arrays == []
