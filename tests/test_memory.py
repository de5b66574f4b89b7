"""Memory: mg.checkpoint gives plain backward's values and gradients (any function, closures,
nesting, dropout, retain_graph, second derivatives) and raises where it cannot work; recurrent
layers checkpointed in segments equal plain ones for every cell and recompute each segment
once; mg.memory_report counts each array a graph holds once, as an independent walk of the
graph finds them; draw_graph(color_by="saved_bytes") shows those counts."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad.autograd import _state, forward_order
from minigrad.memory import Checkpoint
from minigrad.models import GRU, LSTM, RNN, LSTMCell, Recurrent, RNNCell
from minigrad.models.recurrent import scan, segment_size
from minigrad.nn import functional as F
from minigrad.viz.graph import size_text
from tests.test_compile import CELL_IDS, CELLS
from tests.test_recurrent import MinimalGatedUnit
from tests.test_viz import Dot, _attr

ENGINE_APPLY = mg.Function.__dict__["apply"]


def leaf(shape, seed, scale=1.0):
    """A float64 leaf that requires grad, uniform in ±scale."""
    rng = np.random.default_rng(seed)
    return mg.tensor(scale * rng.uniform(-1, 1, shape), requires_grad=True)


def assert_close(got, want, tol=1e-12):
    """Arrays (or tensors) equal to ``tol`` relative to the largest magnitude."""
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert (a is None) == (b is None)
        if b is None:
            continue
        a, b = (t.data if isinstance(t, mg.Tensor) else np.asarray(t) for t in (a, b))
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * max(1.0, np.abs(b).max()))


def checkpoints_in(*roots):
    return [fn for fn in forward_order(roots) if isinstance(fn, Checkpoint)]


def owner(a):
    """The array that owns ``a``'s memory (following NumPy's ``base``)."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


# -- 1. a checkpointed recurrent layer equals the plain one --------------------------------------


def run_layer(layer, x, hx, seed):
    """Outputs, final states and the gradients of a random weighting of them with respect to
    x, hx and every parameter (by name); the generator seeded first, so that dropout draws
    alike. Also the loss, whose graph the caller may inspect."""
    mg.manual_seed(seed)
    out, h_n = layer(x, hx)
    results = [out, *(h_n if isinstance(h_n, tuple) else (h_n,))]
    rng = np.random.default_rng(seed)
    loss = sum((y * mg.tensor(rng.uniform(-1, 1, y.shape))).sum() for y in results)
    names, params = zip(*layer.named_parameters())
    hx_parts = [] if hx is None else list(hx if isinstance(hx, tuple) else (hx,))
    grads = mg.grad(loss, [x, *hx_parts, *params])
    return [y.data for y in results], [g.data for g in grads], names, loss


@pytest.mark.parametrize("cell_type", [*CELLS, MinimalGatedUnit],
                         ids=[*CELL_IDS, "forward_only_mgu"])
@given(data=st.data())
def test_a_checkpointed_layer_equals_the_plain_one(cell_type, data):
    steps = data.draw(st.integers(1, 7), label="T")
    checkpoint = data.draw(st.one_of(st.integers(1, steps + 1), st.just("sqrt")),
                           label="checkpoint")
    batch = data.draw(st.integers(1, 3), label="batch")
    input_size = data.draw(st.integers(1, 4), label="input_size")
    hidden = data.draw(st.integers(1, 4), label="hidden")
    layers = data.draw(st.integers(1, 2), label="num_layers")
    bidirectional = data.draw(st.booleans(), label="bidirectional")
    dropout = data.draw(st.sampled_from([0.0, 0.4]), label="dropout") if layers > 1 else 0.0
    layout = data.draw(st.sampled_from(["TBI", "BTI", "TI"]), label="layout")
    residual = data.draw(st.booleans(), label="residual")
    given_hx = data.draw(st.booleans(), label="hx")
    seed = data.draw(st.integers(0, 99), label="seed")

    options = dict(num_layers=layers, bidirectional=bidirectional, dropout=dropout,
                   batch_first=layout == "BTI", residual=residual)
    mg.manual_seed(seed)
    plain = Recurrent(cell_type, input_size, hidden, **options).double()
    checkpointed = Recurrent(cell_type, input_size, hidden, checkpoint=checkpoint,
                             **options).double()
    checkpointed.load_state_dict(plain.state_dict())
    x = leaf({"TBI": (steps, batch, input_size), "BTI": (batch, steps, input_size),
              "TI": (steps, input_size)}[layout], seed)
    hx = None
    if given_hx:
        cell = plain.cells[0]
        zero = cell.init_state(batch, np.float64) if hasattr(cell, "init_state") else None
        parts = len(zero) if isinstance(zero, tuple) else 1
        shape = (layers * (2 if bidirectional else 1),) + ((batch,) if layout != "TI" else ())
        hx = tuple(leaf(shape + (hidden,), seed + 1 + k) for k in range(parts))
        hx = hx if parts > 1 else hx[0]

    want_out, want_grads, names, _ = run_layer(plain, x, hx, seed)
    got_out, got_grads, got_names, loss = run_layer(checkpointed, x, hx, seed)
    assert got_names == names
    assert_close(got_out, want_out)
    assert_close(got_grads, want_grads)
    # it did checkpoint: one node per segment, per layer and direction
    k = segment_size(checkpoint, steps, "test")
    segments = layers * (2 if bidirectional else 1) * math.ceil(steps / k)
    assert len(checkpoints_in(loss)) == segments


def test_the_same_dropout_masks_are_drawn_with_and_without_checkpointing():
    """Dropout between layers draws from the generator in the same order either way: with the
    same seed the outputs agree, with another seed they do not (so the masks matter)."""
    mg.manual_seed(0)
    plain = LSTM(3, 4, num_layers=2, dropout=0.5).double()
    checkpointed = LSTM(3, 4, num_layers=2, dropout=0.5, checkpoint=2).double()
    checkpointed.load_state_dict(plain.state_dict())
    x = leaf((5, 3, 3), 0)
    mg.manual_seed(7)
    want = plain(x)[0].data
    mg.manual_seed(7)
    got = checkpointed(x)[0].data
    mg.manual_seed(8)
    other = checkpointed(x)[0].data
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert np.abs(other - want).max() > 1e-3


# -- 2. mg.checkpoint on arbitrary functions ------------------------------------------------------


def values_and_grads(make, wrt):
    """The arrays of ``make()``'s outputs, and the gradients of a fixed weighting of them with
    respect to ``wrt``."""
    result = make()
    outputs = result if isinstance(result, tuple) else (result,)
    rng = np.random.default_rng(0)
    loss = sum((y * mg.tensor(rng.uniform(-1, 1, y.shape))).sum() for y in outputs)
    return [y.data for y in outputs], list(mg.grad(loss, wrt))


def test_one_output_equals_plain():
    x, w = leaf((4, 3), 0), leaf((3, 5), 1)

    def f(x, w):
        return (x @ w).tanh().exp() * x.sum()

    want = values_and_grads(lambda: f(x, w), [x, w])
    got = values_and_grads(lambda: mg.checkpoint(f, x, w), [x, w])
    assert_close(got[0], want[0])
    assert_close(got[1], want[1])
    y = mg.checkpoint(f, x, w)
    assert isinstance(y, mg.Tensor) and isinstance(y.grad_fn, Checkpoint)


def test_a_tuple_of_outputs_equals_plain_also_when_one_output_is_unused():
    x, w = leaf((4, 3), 2), leaf((3, 3), 3)

    def f(x, w):
        h = x @ w
        return h.sigmoid(), (h * x).sum(axis=0), h.tanh()

    want = values_and_grads(lambda: f(x, w), [x, w])
    got = values_and_grads(lambda: mg.checkpoint(f, x, w), [x, w])
    assert_close(got[0], want[0])
    assert_close(got[1], want[1])
    out = mg.checkpoint(f, x, w)
    assert isinstance(out, tuple) and len(out) == 3
    (one,) = mg.checkpoint(lambda x: (x * 2,), x)  # a 1-tuple stays a tuple
    assert one.shape == x.shape
    # a gradient from the second output only (the others get none)
    want = mg.grad(f(x, w)[1].sum(), [x, w])
    got = mg.grad(mg.checkpoint(f, x, w)[1].sum(), [x, w])
    assert_close(got, want)


def test_non_tensor_arguments_and_keyword_arguments_reach_the_function_both_times():
    x = leaf((3, 4), 4)
    seen = []

    def f(x, power, *, scale, mode="tanh"):
        seen.append((power, scale, mode))
        y = x ** power * scale
        return y.tanh() if mode == "tanh" else y.sigmoid()

    want = values_and_grads(lambda: f(x, 3, scale=0.5, mode="sigmoid"), [x])
    seen.clear()
    got = values_and_grads(lambda: mg.checkpoint(f, x, 3, scale=0.5, mode="sigmoid"), [x])
    assert_close(got[0], want[0])
    assert_close(got[1], want[1])
    assert seen == [(3, 0.5, "sigmoid")] * 2  # forward, then backward's recomputation


def test_parameters_captured_by_a_closure_get_their_gradients():
    x, w, b = leaf((4, 3), 5), leaf((3, 2), 6), leaf((2,), 7)

    def f(x):  # w and b are not arguments
        return (x @ w + b).tanh()

    grads = []
    for make in (lambda: f(x), lambda: mg.checkpoint(f, x)):
        x.grad = w.grad = b.grad = None
        (make() ** 2).sum().backward()
        grads.append([x.grad, w.grad, b.grad])
    assert all(g is not None for g in grads[1])
    assert_close(grads[1], grads[0])
    # an argument that does not require grad: only the closure's parameters get gradients
    w.grad = b.grad = None
    constant = mg.tensor(x.data)
    (mg.checkpoint(f, constant) ** 2).sum().backward()
    assert constant.grad is None
    assert_close([w.grad, b.grad], grads[0][1:])


def test_a_closure_tensor_with_a_graph_upstream_passes_the_gradient_on():
    a, x = leaf((3,), 8), leaf((2, 3), 9)
    results = []
    for checkpointed in (False, True):
        u = (a * 3).exp()  # not a leaf: the gradient must go on to a
        producer = u.grad_fn

        def f(x, u=u):
            return (x * u).tanh()

        def make(f=f, checkpointed=checkpointed):
            return mg.checkpoint(f, x) if checkpointed else f(x)

        results.append(values_and_grads(make, [x, a]))
        assert u.grad_fn is producer  # the cut made in backward is undone
    assert_close(results[1][0], results[0][0])
    assert_close(results[1][1], results[0][1])


def test_an_argument_with_a_graph_upstream_passes_the_gradient_on():
    a, w = leaf((2, 3), 10), leaf((3, 3), 11)

    def f(h):
        return (h @ w).relu() + h.exp()

    want = values_and_grads(lambda: f(a.tanh() * 2), [a, w])
    got = values_and_grads(lambda: mg.checkpoint(f, a.tanh() * 2), [a, w])
    assert_close(got[0], want[0])
    assert_close(got[1], want[1])


def test_nested_checkpoints_equal_plain():
    x, w, v = leaf((3, 4), 12), leaf((4, 4), 13), leaf((4,), 14)
    inner_calls = []

    def inner(h):
        inner_calls.append(mg.is_grad_enabled())
        return (h @ w).tanh()

    def outer(x, nested):
        h = mg.checkpoint(inner, x) if nested else inner(x)
        return (mg.checkpoint(inner, h * v) if nested else inner(h * v)).sigmoid()

    want = values_and_grads(lambda: outer(x, False), [x, w, v])
    inner_calls.clear()
    got = values_and_grads(lambda: mg.checkpoint(outer, x, True), [x, w, v])
    assert_close(got[0], want[0])
    assert_close(got[1], want[1])
    # outer forward: inner twice without recording; outer backward recomputes outer, whose
    # two inner checkpoints again run without recording and then once more each, recording
    assert inner_calls == [False, False, False, False, True, True]


def test_dropout_inside_gets_the_same_mask_again_only_with_preserve_rng_state():
    x, w = leaf((8, 6), 15), leaf((6, 6), 16)

    def f(x):
        return F.dropout((x @ w).tanh(), 0.5, True) * 3

    def run(make):
        mg.manual_seed(1)
        return values_and_grads(make, [x, w])

    want = run(lambda: f(x))
    same = run(lambda: mg.checkpoint(f, x))
    other = run(lambda: mg.checkpoint(f, x, preserve_rng_state=False))
    assert_close(same[0], want[0])
    assert_close(same[1], want[1])
    assert_close(other[0], want[0])  # forward draws as plain does...
    for g, h in zip(other[1], want[1]):  # ...but backward recomputes with a fresh mask
        assert np.abs(g.data - h.data).max() > 1e-3
    # preserving the state leaves the generator where the forward left it
    mg.manual_seed(2)
    y = mg.checkpoint(f, x)
    after_forward = mg.random.generator().bit_generator.state
    y.sum().backward()
    assert mg.random.generator().bit_generator.state == after_forward


def test_retain_graph_allows_a_second_backward_with_equal_gradients():
    x, w = leaf((3, 4), 17), leaf((4, 2), 18)
    y = mg.checkpoint(lambda x: (x @ w).tanh() ** 2, x)
    first = mg.grad([y], [x, w], [mg.ones(3, 2, dtype=np.float64)], retain_graph=True)
    second = mg.grad([y], [x, w], [mg.ones(3, 2, dtype=np.float64)], retain_graph=True)
    assert_close(second, first)
    mg.grad([y], [x, w], [mg.ones(3, 2, dtype=np.float64)])  # frees the node
    assert y.grad_fn.freed
    with pytest.raises(mg.GraphFreedError, match="Checkpoint"):
        mg.grad([y], [x, w], [mg.ones(3, 2, dtype=np.float64)])
    # .backward twice with retain_graph accumulates twice the gradient
    x.grad = w.grad = None
    loss = mg.checkpoint(lambda x: (x @ w).exp(), x).sum()
    loss.backward(retain_graph=True)
    once = [x.grad.data.copy(), w.grad.data.copy()]
    loss.backward()
    assert_close([x.grad, w.grad], [2 * once[0], 2 * once[1]])


def test_second_derivatives_of_a_gradient_norm_equal_plain():
    a, w = leaf((3, 4), 19), leaf((4, 4), 20)

    def f(h):
        return (h @ w).tanh() * h

    for checkpointed in (False, True):
        x = a * 1.5  # a graph upstream: the second derivative goes through it too
        y = mg.checkpoint(f, x) if checkpointed else f(x)
        gx, gw = mg.grad((y ** 2).sum(), [x, w], create_graph=True)
        assert gx.requires_grad and gw.requires_grad
        penalty = (gx ** 2).sum() + (gw ** 2).sum()
        second = mg.grad(penalty, [a, w])
        if not checkpointed:
            want = [gx.data, gw.data, *(g.data for g in second)]
    assert_close([gx, gw, *second], want)


def test_func_grad_and_reverse_over_reverse_hessian_of_a_checkpointing_function():
    w = leaf((3, 3), 21)

    def plain(v):
        return ((v @ w).tanh() * v).sum() + (v ** 3).sum()

    def checkpointing(v):
        return mg.checkpoint(plain, v)

    v = mg.tensor(np.random.default_rng(22).uniform(-1, 1, 3))
    assert_close([mg.func.grad(checkpointing)(v)], [mg.func.grad(plain)(v)])
    want = mg.func.jacrev(mg.func.jacrev(plain))(v)
    got = mg.func.jacrev(mg.func.jacrev(checkpointing))(v)
    assert_close([got], [want])
    assert_close([mg.func.grad(mg.func.grad(lambda s: checkpointing(s * mg.ones(3)).sum()))(
        mg.tensor(0.3))], [mg.func.grad(mg.func.grad(lambda s: plain(s * mg.ones(3))))(
            mg.tensor(0.3))])


def test_func_hessian_of_a_checkpointing_function_equals_plain():
    w = leaf((3, 3), 21)

    def plain(v):
        return ((v @ w).tanh() * v).sum() + (v ** 3).sum()

    v = mg.tensor(np.random.default_rng(22).uniform(-1, 1, 3))
    want = mg.func.hessian(plain)(v)
    got = mg.func.hessian(lambda v: mg.checkpoint(plain, v))(v)
    assert_close([got], [want])


def test_under_no_grad_it_just_runs_the_function():
    x = leaf((2, 3), 23)
    calls = []

    def f(x):
        calls.append(mg.is_grad_enabled())
        return x * 2

    with mg.no_grad():
        y = mg.checkpoint(f, x)
    assert calls == [False]
    assert y.grad_fn is None and not y.requires_grad
    np.testing.assert_array_equal(y.data, 2 * x.data)
    sentinel = object()
    with mg.no_grad():  # whatever it returns, untouched
        assert mg.checkpoint(lambda: sentinel) is sentinel
    # nothing it reads requires grad: run once, nothing recorded
    calls.clear()
    y = mg.checkpoint(f, mg.tensor(x.data))
    assert calls == [False] and y.grad_fn is None


def test_inside_compile_or_vmap_it_raises_a_clear_error_and_leaves_the_engine_as_it_was():
    x, w = leaf((3, 4), 24), leaf((4, 4), 25)

    def f(x):
        return mg.checkpoint(lambda h: (h @ w).tanh(), x)

    message = "mg.checkpoint inside a function that mg.compile or mg.func.vmap traces"
    with pytest.raises(RuntimeError, match=message):
        mg.compile(f, fallback=False)(x)
    with pytest.raises(RuntimeError, match=message):
        mg.compile(f)(x)
    with pytest.raises(RuntimeError, match=message):
        mg.func.vmap(f)(x)
    assert mg.Function.__dict__["apply"] is ENGINE_APPLY
    assert_close(values_and_grads(lambda: f(x), [x, w])[1],
                 values_and_grads(lambda: (x @ w).tanh(), [x, w])[1])


def test_a_function_that_raises_leaves_the_engine_as_it_was():
    x = leaf((2,), 26)

    def f(x):
        (x * 2).sum()
        raise KeyError("inside")

    with pytest.raises(KeyError, match="inside"):
        mg.checkpoint(f, x)
    assert mg.Function.__dict__["apply"] is ENGINE_APPLY
    assert (x * 2).grad_fn is not None


@pytest.mark.parametrize("result", [
    lambda y: 3.0, lambda y: None, lambda y: [y], lambda y: (y, 1), lambda y: (),
    lambda y: {"y": y},
], ids=["float", "None", "list", "tuple with a non-tensor", "empty tuple", "dict"])
def test_a_function_returning_no_tensor_raises_type_error(result):
    x = leaf((2,), 27)
    with pytest.raises(TypeError, match="^checkpoint: the function must return a tensor or a "
                                        "tuple of tensors; got [A-Za-z]+$"):
        mg.checkpoint(lambda x: result(x * 2), x)
    assert mg.Function.__dict__["apply"] is ENGINE_APPLY


def test_an_argument_returned_unchanged_gets_its_gradient():
    x, skip, w = leaf((3,), 28), leaf((3,), 29), leaf((3,), 30)

    def f(x, skip):  # a block that passes its skip input (and a parameter) through
        return x * 2, skip, w

    grads = []
    for make in (lambda: f(x, skip), lambda: mg.checkpoint(f, x, skip)):
        x.grad = skip.grad = w.grad = None
        a, b, c = make()
        (a.sum() + (b * 3).sum() + (c * 5).sum()).backward()
        grads.append([x.grad, skip.grad, w.grad])
    assert all(g is not None for g in grads[1])
    assert_close(grads[1], grads[0])


def test_integer_outputs_do_not_require_grad_and_constant_ones_get_a_zero_gradient():
    x = leaf((3, 2), 31)

    def f(x):
        return x.tanh(), mg.zeros(2, dtype=np.float64), x.argmax(axis=1)

    y, constant, index = mg.checkpoint(f, x)
    assert y.requires_grad and not index.requires_grad and index.dtype == np.int64
    # a float output that depends on nothing differentiable requires grad (the forward run
    # records nothing that would tell), and its gradient is zero: documented
    assert constant.requires_grad
    (g,) = mg.grad((y.sum() + (constant * 3).sum()), [x])
    assert_close([g], [mg.grad(x.tanh().sum(), [x])[0]])


def test_an_input_written_in_place_before_backward_raises_as_plain_does():
    a = leaf((3, 4), 32)
    u = a * 1.0
    y = mg.checkpoint(lambda u: (u * u).sum(), u)
    u.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.backward()


def test_func_grad_over_the_parameters_of_a_checkpointed_layer_raises_clearly():
    """functional_call gives the module its own parameters back before backward runs, so the
    recomputation would read other tensors than the forward did: it raises, naming it."""
    mg.manual_seed(0)
    checkpointed = LSTM(2, 3, checkpoint=2).double()
    x = mg.tensor(np.random.default_rng(45).uniform(-1, 1, (5, 1, 2)))
    params = {k: v.detach() * 0.5 for k, v in checkpointed.named_parameters()}

    def loss(p):
        return (mg.func.functional_call(checkpointed, p, (x,))[0] ** 2).sum()

    with pytest.raises(RuntimeError, match="functional_call"):
        mg.func.grad(loss)(params)


def test_func_grad_with_the_checkpoint_inside_the_functional_call_equals_plain():
    mg.manual_seed(0)
    plain = LSTM(2, 3).double()
    x = mg.tensor(np.random.default_rng(45).uniform(-1, 1, (5, 1, 2)))
    params = {k: v.detach() * 0.5 for k, v in plain.named_parameters()}

    def loss(p):
        return (mg.func.functional_call(plain, p, (x,))[0] ** 2).sum()

    want = mg.func.grad(loss)(params)
    got = mg.func.grad(lambda p: mg.checkpoint(loss, p))(params)
    assert_close([got[k] for k in sorted(got)], [want[k] for k in sorted(want)])


# -- 3. recomputation: once per segment ----------------------------------------------------------


def count_steps(cell):
    """Replace ``cell.step`` by one that logs (recording?, time step) at each call."""
    log = []
    step = cell.step

    def counted(xp, state):
        log.append((mg.is_grad_enabled(), int(_state.scope.rpartition(".")[2][1:])))
        return step(xp, state)

    cell.step = counted
    return log


def segment_order(steps, size, reverse):
    """The segments of scan's checkpointing, in the order its forward runs them, each as the
    time steps in the order they run."""
    segments = [list(range(s, min(s + size, steps))) for s in range(0, steps, size)]
    if reverse:
        segments = [seg[::-1] for seg in segments[::-1]]
    return segments


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("steps, checkpoint", [(7, 3), (6, 2), (5, 1), (4, 4), (3, 5), (10, "sqrt"),
                                               (17, "sqrt"), (1, "sqrt")])
def test_backward_recomputes_each_segment_once_last_segment_first(steps, checkpoint, reverse):
    mg.manual_seed(0)
    cell = LSTMCell(2, 3).double()
    xs = leaf((steps, 2, 2), 33)
    state = cell.init_state(2, np.float64)

    log = count_steps(cell)
    out, (h, c) = scan(cell, xs, state, reverse=reverse)
    plain = values_and_grads(lambda: (out, h, c), [xs, *cell.parameters()])
    assert [rec for rec, _ in log] == [True] * steps  # plain: T steps, all in forward
    log.clear()

    out, (h, c) = scan(cell, xs, state, reverse=reverse, checkpoint=checkpoint)
    size = math.ceil(math.sqrt(steps)) if checkpoint == "sqrt" else checkpoint
    segments = segment_order(steps, size, reverse)
    forward = [t for seg in segments for t in seg]
    assert log == [(False, t) for t in forward]  # T steps, none recorded
    log.clear()
    got = values_and_grads(lambda: (out, h, c), [xs, *cell.parameters()])
    # backward: T more steps, recorded; the last segment first, each segment once
    assert log == [(True, t) for seg in reversed(segments) for t in seg]
    assert len(checkpoints_in(out, h, c)) == len(segments)
    assert_close(got[0], plain[0])
    assert_close(got[1], plain[1])


@pytest.mark.parametrize("steps", [1, 2, 3, 4, 5, 9, 10, 16, 17, 50])
def test_sqrt_segments_are_ceil_of_the_square_root_of_the_length(steps):
    assert segment_size("sqrt", steps, "x") == math.ceil(math.sqrt(steps))
    mg.manual_seed(0)
    layer = RNN(2, 3, checkpoint="sqrt").double()
    x = leaf((steps, 1, 2), 34)
    out, h = layer(x)
    nodes = checkpoints_in(out, h)
    size = math.ceil(math.sqrt(steps))
    assert len(nodes) == math.ceil(steps / size)
    # each node holds its segment of the sequence (a view of x) and the state it starts from
    lengths = [y.shape[0] for fn in nodes for y in fn.inputs if y.ndim == 3]
    assert lengths == [min(size, steps - s) for s in range(0, steps, size)]
    assert all(owner(y.data) is x.data for fn in nodes for y in fn.inputs if y.ndim == 3)


def test_each_layer_and_direction_recomputes_its_segments_once():
    mg.manual_seed(0)
    layer = GRU(2, 3, num_layers=2, bidirectional=True, checkpoint=2).double()
    logs = [count_steps(cell) for cell in layer.cells]
    out, h = layer(leaf((5, 2, 2), 35))
    assert [len(log) for log in logs] == [5] * 4
    (out.sum() + h.sum()).backward()
    assert [len(log) for log in logs] == [10] * 4
    for log in logs:
        assert sorted(t for rec, t in log if rec) == list(range(5))
    # under no_grad nothing is checkpointed: one plain run
    for log in logs:
        log.clear()
    with mg.no_grad():
        layer(leaf((5, 2, 2), 35))
    assert [len(log) for log in logs] == [5] * 4


# -- 4. bad checkpoint values --------------------------------------------------------------------


BAD = [0, -1, 1.5, "log", True, False, "SQRT", [2]]


@pytest.mark.parametrize("value", BAD, ids=repr)
@pytest.mark.parametrize("make", [
    lambda c: Recurrent(LSTMCell, 2, 3, checkpoint=c),
    lambda c: LSTM(2, 3, checkpoint=c),
    lambda c: GRU(2, 3, checkpoint=c),
    lambda c: RNN(2, 3, checkpoint=c),
], ids=["Recurrent", "LSTM", "GRU", "RNN"])
def test_bad_checkpoint_values_are_refused_by_the_constructor(make, value):
    with pytest.raises(ValueError, match=r"checkpoint must be None, a positive number of steps "
                                         r"per segment, or 'sqrt'; got " + re.escape(repr(value))):
        make(value)


@pytest.mark.parametrize("value", BAD, ids=repr)
def test_bad_checkpoint_values_are_refused_by_scan(value):
    cell = RNNCell(2, 3)
    xs = mg.tensor(np.zeros((4, 1, 2), np.float32), requires_grad=True)
    with pytest.raises(ValueError, match=r"^scan: checkpoint must be .*; got "
                                         + re.escape(repr(value)) + "$"):
        scan(cell, xs, cell.init_state(1), checkpoint=value)


def test_constructor_errors_name_the_layer_and_good_values_are_kept():
    with pytest.raises(ValueError, match=r"^LSTM: checkpoint"):
        LSTM(2, 3, checkpoint=0)
    with pytest.raises(ValueError, match=r"^Recurrent: checkpoint"):
        Recurrent(RNNCell, 2, 3, checkpoint="log")
    for good in (None, 1, 100, "sqrt"):
        layer = LSTM(2, 3, checkpoint=good)
        assert layer.checkpoint == good
        assert (f"checkpoint={good!r}" in repr(layer)) == (good is not None)
        out, _ = layer(mg.tensor(np.zeros((3, 1, 2), np.float32)))
        assert out.shape == (3, 1, 3)


# -- 5. memory_report counts what the nodes hold ---------------------------------------------------


def arrays_in(value, kind=np.ndarray):
    """The arrays (or, with kind=mg.Tensor, the tensors) in what an op saved."""
    if isinstance(value, kind):
        return [value]
    if isinstance(value, (tuple, list)):
        return [a for v in value for a in arrays_in(v, kind)]
    if isinstance(value, dict):
        return [a for v in value.values() for a in arrays_in(v, kind)]
    return []


def tensors_in(value):
    return arrays_in(value, mg.Tensor)


def walk(*roots):
    """The memory the graph's nodes hold, found independently: {id: owning array} of the
    leaves' arrays, and of the rest (non-leaf inputs, saved arrays) apart from those (a
    non-leaf view of a leaf, as a slice of the input or a chunk of a weight, is the leaf's)."""
    leaves, rest = {}, {}
    for fn in forward_order(list(roots)):
        for x in fn.inputs:
            a = owner(x.data)
            (leaves if x.grad_fn is None else rest)[id(a)] = a
        for x in tensors_in(fn.saved):  # a checkpoint keeps its arguments
            a = owner(x.data)
            (leaves if x.grad_fn is None else rest)[id(a)] = a
        for a in map(owner, arrays_in(fn.saved)):
            rest[id(a)] = a
    return leaves, {k: a for k, a in rest.items() if k not in leaves}


def nbytes(arrays):
    return sum(a.nbytes for a in arrays.values())


def assert_report_matches_walk(report, *roots):
    leaves, rest = walk(*roots)
    assert report.total + report.leaves == nbytes(leaves) + nbytes(rest)
    assert report.total == nbytes(rest)
    assert report.leaves == nbytes(leaves)
    assert sum(report.by_module.values()) == report.total
    assert sum(report.by_step.values()) == report.total
    order = forward_order(list(roots))
    assert [r.op for r in report.records] == [fn.name for fn in order]
    assert sum(report.saved_bytes(fn) for fn in order) == report.total
    assert [report.saved_bytes(fn) for fn in order] == [r.bytes for r in report.records]


class SaveDouble(mg.Function):
    """y = x²; keeps 2x for backward, a new array, in ``saved``."""

    def forward(self, x):
        self.save_for_backward(2 * x)
        return x * x

    def backward(self, g):
        (twice,) = self.saved
        return g * mg.tensor(twice)


def lstm_loss(steps=4, checkpoint=None, dtype=np.float64, seed=0):
    mg.manual_seed(seed)
    layer = LSTM(3, 4, checkpoint=checkpoint).to(dtype)
    x = mg.tensor(np.random.default_rng(seed).uniform(-1, 1, (steps, 2, 3)), dtype=dtype,
                  requires_grad=True)
    h0 = tuple(mg.tensor(np.zeros((1, 2, 4)), dtype=dtype, requires_grad=True) for _ in "hc")
    out, (h, c) = layer(x, h0)
    return (out ** 2).sum() + h.sum() + c.sum(), layer


def mlp_loss(dtype=np.float32):
    mg.manual_seed(1)
    model = mg.nn.Sequential(mg.nn.Linear(5, 7), mg.nn.Tanh(), mg.nn.Linear(7, 3)).to(dtype)
    x = mg.tensor(np.random.default_rng(1).uniform(-1, 1, (6, 5)), dtype=dtype)
    target = mg.tensor(np.array([0, 1, 2, 0, 1, 2]))
    return F.cross_entropy(model(x), target), model


@pytest.mark.parametrize("make", [
    lambda: lstm_loss()[0],
    lambda: lstm_loss(dtype=np.float32)[0],
    lambda: lstm_loss(steps=6, checkpoint=2)[0],
    lambda: mlp_loss()[0],
    lambda: SaveDouble.apply(leaf((3, 2), 36).tanh()).sum(),
    lambda: several_roots(),
], ids=["lstm", "lstm_float32", "checkpointed_lstm", "mlp", "custom_saving_op", "several_roots"])
def test_the_report_counts_each_held_array_once_as_a_walk_of_the_graph_finds_it(make):
    roots = make()
    roots = roots if isinstance(roots, tuple) else (roots,)
    report = mg.memory_report(*roots)
    assert report.total > 0 and report.leaves > 0
    assert_report_matches_walk(report, *roots)


def several_roots():
    """An LSTM's output and final states, which share their graph, and a root given twice."""
    mg.manual_seed(2)
    out, (h, c) = LSTM(2, 3, num_layers=2, bidirectional=True).double()(leaf((3, 2, 2), 46))
    return out, h, c, out


def test_the_report_needs_tensors():
    with pytest.raises(ValueError, match="^memory_report: give at least one tensor"):
        mg.memory_report()
    with pytest.raises(TypeError, match="^memory_report: root 1 must be a Tensor; got ndarray"):
        mg.memory_report(leaf((2,), 0) * 2, np.ones(2))


def test_the_activation_total_is_what_the_ops_hold_beyond_the_leaves_in_a_small_example():
    w = leaf((3, 4), 37)  # 96 bytes, a leaf
    h = w * 2  # Mul holds w (leaf) and the constant 2 (a leaf of 8 bytes)
    t = h.tanh()  # Tanh holds h: 96 bytes
    loss = (t * h).sum()  # Mul holds t (96) and h (counted already); Sum holds t*h (96)
    report = mg.memory_report(loss)
    assert [(r.op, r.arrays, r.bytes) for r in report.records] == [
        ("Mul", 0, 0), ("Tanh", 1, 96), ("Mul", 2, 96), ("Sum", 1, 96)]
    assert report.total == 3 * 96 and report.leaves == 96 + 8
    assert_report_matches_walk(report, loss)


def test_an_array_read_by_two_ops_or_twice_by_one_counts_once():
    w = leaf((4, 5), 38)
    a = w.exp()  # 160 bytes
    twice = a * a  # one op reading a twice
    both = twice + a.tanh()  # a read by a second op too
    report = mg.memory_report(both)
    kept = {r.op: r.bytes for r in report.records}
    assert kept["Mul"] == 160 and kept["Tanh"] == 0
    assert [r.arrays for r in report.records if r.op == "Mul"] == [2]
    assert report.total == 160 + 160 + 160  # a, a*a and tanh(a), held by Mul/Tanh and Add
    assert_report_matches_walk(report, both)


def test_views_of_one_array_count_as_their_owner_once():
    w = leaf((10, 4), 39)
    big = w * 2  # 320 bytes; the slices below are views of it
    parts = [big[0:2], big[5], big[3:7], big[:, 1], big.reshape(40)]
    assert all(owner(p.data) is big.data for p in parts)
    sums = [p.sum() for p in parts]
    loss = sums[0] + sums[1] + sums[2] + sums[3] + sums[4]
    report = mg.memory_report(loss)
    viewing = [r.bytes for r in report.records if r.op in ("GetItem", "Reshape", "Sum")]
    assert sorted(viewing) == [0] * 9 + [320]  # the first GetItem counts big; no other
    assert report.total == 320 + 8 * 8  # the owner once, and the 8 scalars the Adds hold
    assert_report_matches_walk(report, loss)


def test_backward_frees_saved_arrays_and_the_report_shrinks_by_them():
    x = leaf((6, 5), 40)
    u = x.tanh()
    loss = (SaveDouble.apply(u) * u).sum()
    before = mg.memory_report(loss)
    saved = 6 * 5 * 8
    op = next(fn for fn in forward_order([loss]) if isinstance(fn, SaveDouble))
    assert before.saved_bytes(op) == 240 + saved  # u, and 2u that its forward saved
    loss.backward(retain_graph=True)
    assert mg.memory_report(loss).total == before.total  # retained
    loss.backward()
    after = mg.memory_report(loss)
    assert op.freed
    assert after.total == before.total - saved
    assert after.saved_bytes(op) == 240
    assert after.leaves == before.leaves
    assert_report_matches_walk(after, loss)
    # an LSTM's ops keep nothing in saved beyond their inputs: backward never grows the report
    loss, _ = lstm_loss()
    total = mg.memory_report(loss).total
    loss.backward()
    assert mg.memory_report(loss).total <= total


def test_by_module_and_by_step_split_an_lstm_by_scope_and_time_step():
    loss, _ = lstm_loss(steps=5)
    report = mg.memory_report(loss)
    assert set(report.by_step) == {"-", *(f"t{k}" for k in range(5))}
    assert "lstm.l0.fwd" in report.by_module
    assert not any(re.search(r"(^|\.)t\d+($|\.)", m) for m in report.by_module)
    for step in ("t1", "t2", "t3"):  # the steps inside hold alike
        assert report.by_step[step] == report.by_step["t2"] > 0
    for by in ("op", "module", "step"):
        text = report.table(by)
        assert text.splitlines()[-1] == (
            f"activations kept: {size_text(report.total)} in {len(report.records)} ops; "
            f"leaves held (parameters, inputs, constants): {size_text(report.leaves)}")
    with pytest.raises(ValueError, match="by must be 'op', 'module' or 'step'; got 'scope'"):
        report.table("scope")


@pytest.mark.parametrize("layer_type", [RNN, LSTM, GRU])
def test_activations_grow_linearly_with_the_length_and_checkpointing_keeps_far_less(layer_type):
    def total(steps, checkpoint=None):
        mg.manual_seed(0)
        layer = layer_type(3, 6, checkpoint=checkpoint).double()
        x = leaf((steps, 2, 3), 41)
        out, _ = layer(x)
        loss = out.sum()
        return mg.memory_report(loss), loss, layer, x

    t = 8
    plain = [total(n)[0].total for n in (t, 2 * t, 3 * t)]
    assert plain[2] - plain[1] == plain[1] - plain[0] > 0  # exactly linear
    assert 1.8 < plain[1] / plain[0] < 2.05  # doubling T about doubles it

    report, loss, layer, x = total(4 * t, "sqrt")
    plain_report = total(4 * t)[0]
    assert report.total < plain_report.total / 2.5
    assert_report_matches_walk(report, loss)
    # no op of a step is in the graph: the Checkpoint nodes hold only each segment's inputs
    assert set(report.by_step) == {"-"}
    nodes = checkpoints_in(loss)
    size = math.ceil(math.sqrt(4 * t))
    assert len(nodes) == math.ceil(4 * t / size)
    params = {id(p) for p in layer.parameters()}
    parts = 2 if layer_type is LSTM else 1
    for k, fn in enumerate(nodes):
        assert {id(y) for y in fn.inputs} >= params
        (segment,) = [y for y in fn.inputs if y.ndim == 3]  # its piece of the sequence
        assert segment.shape == (min(size, 4 * t - k * size), 2, 3)
        assert owner(segment.data) is x.data
        state = [y for y in fn.inputs if id(y) not in params and y is not segment]
        # the state it starts from: the previous segment's (the first starts from zeros,
        # which need no grad)
        assert len(state) == (0 if k == 0 else parts)
        assert all(s.shape == (2, 6) and s.grad_fn is nodes[k - 1] for s in state)
    # the checkpointed layer's activations grow with T much more slowly
    small, big = total(t, 2)[0].total, total(4 * t, 2)[0].total
    assert big - small < (plain_report.total - plain[0]) / 2.5


def test_a_checkpointed_layer_holds_the_same_leaves_as_the_plain_one():
    leaves = []
    for checkpoint in (None, 2):
        mg.manual_seed(0)
        layer = LSTM(3, 4, checkpoint=checkpoint).double()
        out, _ = layer(mg.tensor(np.ones((6, 2, 3))))  # an input that needs no grad
        leaves.append(mg.memory_report(out.sum()).leaves)
    assert leaves[1] == leaves[0]


def test_a_checkpoint_node_holds_only_what_the_function_read():
    w = leaf((5, 5), 42)
    x = leaf((4, 5), 43)
    u = x * 1.0  # 160 bytes, not a leaf

    def f(h):
        for _ in range(6):
            h = (h @ w).tanh()
        return h

    plain = mg.memory_report(f(u).sum())
    report = mg.memory_report(mg.checkpoint(f, u).sum())
    assert [r.op for r in report.records] == ["Mul", "Checkpoint", "Sum"]
    assert report.records[1].bytes == 160  # u; w is a leaf
    assert report.total == 160 + 160  # u, and the output the Sum holds
    assert plain.total > 6 * 160


# -- 6. draw_graph(color_by="saved_bytes") -------------------------------------------------------

OP_LABEL = re.compile(r'^\s*(op\d+) \[label=<<TABLE[^>]*><TR><TD>(\w+)</TD></TR><TR><TD>'
                      r'<FONT POINT-SIZE="9">([^<]*)</FONT></TD></TR></TABLE>>(.*)\]$')


def op_sizes(source):
    """[(node id, op name, size text, the other attributes)] of the drawing's ops."""
    return [m.groups() for line in source.splitlines() if (m := OP_LABEL.match(line))]


def test_each_op_shows_its_bytes_and_the_legend_is_titled_saved_bytes():
    x = mg.tensor(np.ones((2, 2)), requires_grad=True)
    loss = (x * 2.0).tanh().sum()
    source = mg.draw_graph(loss, color_by="saved_bytes").source
    ops = op_sizes(source)
    assert [(name, size) for _, name, size, _ in ops] == [
        ("Mul", "0 B"), ("Tanh", "32 B"), ("Sum", "32 B")]
    fills = {name: _attr(rest, "fillcolor") for _, name, _, rest in ops}
    assert fills["Mul"] == "#bdbdbd"  # nothing kept: the zero colour
    assert fills["Tanh"] == fills["Sum"] != fills["Mul"]
    dot = Dot(source)
    assert "<B>saved bytes</B> (log scale)" in dot.nodes["legend"]
    assert re.findall(r'<TD ALIGN="LEFT">([^<]*)</TD>', dot.nodes["legend"])[-1] == "0"
    # tensors keep their usual fills: only ops are shaded
    assert _attr(dot.nodes[dot.ids("t")[0]], "fillcolor") == "#dbe8f6"


def test_each_op_shows_what_memory_report_counts_for_it():
    loss, layer = lstm_loss(steps=3)
    report = mg.memory_report(loss)
    ops = op_sizes(mg.draw_graph(loss, params=layer, color_by="saved_bytes").source)
    order = forward_order([loss])
    assert len(ops) == len(order)
    assert sorted((name, size) for _, name, size, _ in ops) == sorted(
        (fn.name, size_text(report.saved_bytes(fn))) for fn in order)


def test_collapsed_boxes_show_the_sum_of_their_ops():
    loss, layer = lstm_loss(steps=4)
    report = mg.memory_report(loss)
    source = mg.draw_graph(loss, params=layer, collapse="t*", color_by="saved_bytes").source
    dot = Dot(source)
    want = []
    for k in range(4):
        kept = [r for r in report.records if r.scope.endswith(f".t{k}")]
        assert sum(r.bytes for r in kept) == report.by_step[f"t{k}"] > 0
        want.append([f"t{k}", f"{len(kept)} ops, {size_text(report.by_step[f't{k}'])}"])
    assert [dot.lines(b) for b in dot.ids("box")] == want
    assert all(_attr(dot.nodes[b], "fillcolor") not in ("#bdbdbd", None) for b in dot.ids("box"))
    # the ops outside the boxes still show their own sizes
    outside = [r for r in report.records if not re.search(r"\.t\d+$", r.scope)]
    assert sorted((name, size) for _, name, size, _ in op_sizes(source)) == sorted(
        (r.op, size_text(r.bytes)) for r in outside)
    assert "<B>saved bytes</B> (log scale)" in dot.nodes["legend"]


def test_a_bad_color_by_lists_saved_bytes():
    loss = (mg.tensor(np.ones(2), requires_grad=True) * 2).sum()
    with pytest.raises(ValueError, match=r"color_by must be None, 'grad_norm', 'saved_bytes'"):
        mg.draw_graph(loss, color_by="bytes")
    with pytest.raises(ValueError, match="'saved_bytes'"):
        mg.draw_graph(loss, color_by="saved bytes")


def test_use_reentrant_false_is_accepted_and_true_raises():
    x = leaf((3,), 60)
    y = mg.checkpoint(lambda x: (x * x).sum(), x, use_reentrant=False)
    (g,) = mg.grad(y, [x])
    assert_close([g], [2 * x.detach()])
    with pytest.raises(ValueError, match="use_reentrant=False"):
        mg.checkpoint(lambda x: x.sum(), x, use_reentrant=True)


@given(rows=st.integers(1, 3), cols=st.integers(1, 4), broadcast=st.booleans(),
       seed=st.integers(0, 2**16))
def test_the_checkpoint_op_passes_gradcheck_and_gradgradcheck(rows, cols, broadcast, seed):
    """The Checkpoint op against central differences (float64), first and second order, on
    operands that broadcast (w is a row when ``broadcast``)."""
    x = leaf((rows, cols), seed)
    w = leaf((1, cols) if broadcast else (rows, cols), seed + 1)

    def f(x, w):
        return mg.checkpoint(lambda x, w: (x * w).tanh() + (x - w) ** 2, x, w)

    assert mg.gradcheck(f, [x, w])
    assert mg.gradgradcheck(f, [x, w])
