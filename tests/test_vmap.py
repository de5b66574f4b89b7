"""mg.func.vmap: per-example results through every cell, layer stack and model, composed with
the other transforms (inside and outside), its arguments (in_dims, out_dims, chunk_size,
randomness) and its errors. Each op's batching rule is tested in test_vmap_ops.py; parity with
torch.func in test_vmap_parity.py."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad import func
from minigrad.func import vectorize
from minigrad.func.batching import VmapError
from minigrad.models import GRU, LSTM, RNNLM, Recurrent, SequenceClassifier
from tests.test_compile import CELL_IDS, CELLS


def data(seed: int, *shape: int) -> mg.Tensor:
    return mg.tensor(np.random.default_rng(seed).standard_normal(shape))


def close(got: mg.Tensor, want: mg.Tensor | np.ndarray, tol: float = 1e-12) -> None:
    want = want.data if isinstance(want, mg.Tensor) else want
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_allclose(got.data, want, rtol=tol, atol=tol)


def one_by_one(f, *args, in_dims=0):
    """The definition of vmap: f on each example, stacked (batch on axis 0)."""
    dims = in_dims if isinstance(in_dims, tuple) else (in_dims,) * len(args)
    size = next(a.shape[d] for a, d in zip(args, dims) if d is not None)
    pick = lambda a, d, i: a if d is None else a[(slice(None),) * (d % a.ndim) + (i,)]  # noqa: E731
    runs = [f(*[pick(a, d, i) for a, d in zip(args, dims)]) for i in range(size)]
    leaves = [func.tree_flatten(r)[0] for r in runs]
    shape = func.tree_flatten(runs[0])[1]
    return func.tree_unflatten(shape, [mg.stack(list(parts)) for parts in zip(*leaves)])


def params_of(module: mg.nn.Module) -> dict[str, mg.Tensor]:
    return {k: v.detach() for k, v in module.named_parameters()}


# -- through the models -------------------------------------------------------------------------


@pytest.mark.parametrize("cell_type", CELLS, ids=CELL_IDS)
@settings(max_examples=5)
@given(batch=st.integers(1, 3), steps=st.integers(1, 3), input_size=st.integers(1, 3),
       hidden=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_per_example_gradients_of_every_cell_equal_one_by_one(cell_type, batch, steps,
                                                              input_size, hidden, seed):
    mg.manual_seed(seed)
    layer = Recurrent(cell_type, input_size, hidden).to(mg.float64)
    xs, targets = data(seed, batch, steps, input_size), data(seed + 1, batch, hidden)

    def loss(params, x, target):  # one example: a sequence (T, I) and its target (H,)
        out, _ = func.functional_call(layer, params, x)
        return ((out[-1] - target) ** 2).sum()

    params = params_of(layer)
    got = func.vmap(func.grad(loss), in_dims=(None, 0, 0))(params, xs, targets)
    want = one_by_one(func.grad(loss), params, xs, targets, in_dims=(None, 0, 0))
    assert got.keys() == params.keys()
    for name in params:
        assert got[name].shape == (batch, *params[name].shape)
        close(got[name], want[name])


@pytest.mark.parametrize("bidirectional", [False, True])
def test_per_example_gradients_of_a_deep_bidirectional_stack(bidirectional):
    mg.manual_seed(0)
    layer = LSTM(3, 4, num_layers=2, bidirectional=bidirectional).to(mg.float64)
    xs = data(1, 5, 6, 3)  # 5 examples, each (T=6, I=3)

    def loss(params, x):
        out, (h, c) = func.functional_call(layer, params, x)
        return out.tanh().mean() + (h * c).sum()

    params = params_of(layer)
    got = func.vmap(func.grad(loss), in_dims=(None, 0))(params, xs)
    want = one_by_one(func.grad(loss), params, xs, in_dims=(None, 0))
    for name in params:
        close(got[name], want[name])


def test_per_example_gradients_of_a_classifier_with_lengths_and_of_a_language_model():
    mg.manual_seed(0)
    model = SequenceClassifier(11, 4, 5, 3, bidirectional=True).to(mg.float64)
    ids = mg.tensor(np.random.default_rng(0).integers(0, 11, (6, 7)))
    labels, lengths = mg.tensor([0, 1, 2, 0, 1, 2]), mg.tensor([7, 3, 1, 5, 7, 2])

    def loss(params, ids, label, length):  # one sequence, as a batch of one
        logits = func.functional_call(model, params, (ids[None],), {"lengths": length[None]})
        return mg.nn.functional.cross_entropy(logits, label[None])

    params = params_of(model)
    got = func.vmap(func.grad(loss), in_dims=(None, 0, 0, 0))(params, ids, labels, lengths)
    want = one_by_one(func.grad(loss), params, ids, labels, lengths, in_dims=(None, 0, 0, 0))
    for name in params:
        close(got[name], want[name])

    lm = RNNLM(9, 4, 5, num_layers=2).to(mg.float64)
    text = mg.tensor(np.random.default_rng(1).integers(0, 9, (4, 8)))

    def lm_loss(params, ids):  # one sequence (T,): next-token cross-entropy
        logits, _ = func.functional_call(lm, params, ids[:-1, None])
        return mg.nn.functional.cross_entropy(logits.reshape(-1, 9), ids[1:])

    params = params_of(lm)
    got = func.vmap(func.grad(lm_loss), in_dims=(None, 0))(params, text)
    want = one_by_one(func.grad(lm_loss), params, text, in_dims=(None, 0))
    for name in params:
        close(got[name], want[name])


def test_the_compiler_passes_a_replay_runs_change_nothing_but_its_speed(monkeypatch):
    mg.manual_seed(0)
    layer = GRU(3, 4).to(mg.float64)
    xs = data(1, 4, 5, 3)

    def loss(params, x):
        return func.functional_call(layer, params, x)[0].sum()

    params = params_of(layer)
    optimized = func.vmap(func.grad(loss), in_dims=(None, 0))(params, xs)
    monkeypatch.setattr(vectorize, "OPTIMIZE", ())
    plain = func.vmap(func.grad(loss), in_dims=(None, 0))(params, xs)
    for name in params:
        close(optimized[name], plain[name])


# -- composed with the other transforms ---------------------------------------------------------


def f(x: mg.Tensor, w: mg.Tensor) -> mg.Tensor:
    """A small nonlinear function of one example x (3,) and a weight w (3, 2)."""
    return (x @ w).tanh() * x.sum() + (x * x).sum().sqrt()


@pytest.fixture
def xw():
    return data(0, 4, 3), data(1, 3, 2)


def test_grad_jvp_jacrev_jacfwd_and_hessian_under_vmap_equal_one_by_one(xw):
    x, w = xw
    scalar = lambda x, w: f(x, w).sum()  # noqa: E731
    for transform in (func.grad(scalar), func.grad(scalar, argnums=(0, 1)), func.jacrev(f),
                      func.jacfwd(f), func.hessian(scalar)):
        got = func.vmap(transform, in_dims=(0, None))(x, w)
        want = one_by_one(transform, x, w, in_dims=(0, None))
        for g, v in zip(func.tree_flatten(got)[0], func.tree_flatten(want)[0]):
            close(g, v)
    tangents = data(2, 4, 3)
    got = func.vmap(lambda x, t: func.jvp(lambda x: f(x, w), (x,), (t,)))(x, tangents)
    want = one_by_one(lambda x, t: func.jvp(lambda x: f(x, w), (x,), (t,)), x, tangents)
    close(got[0], want[0])
    close(got[1], want[1])


def test_grad_and_jvp_of_vmap_differentiate_the_replay(xw):
    x, w = xw
    batched = lambda x, w: func.vmap(f, in_dims=(0, None))(x, w).sum()  # noqa: E731
    looped = lambda x, w: one_by_one(f, x, w, in_dims=(0, None)).sum()  # noqa: E731
    for g, v in zip(func.grad(batched, argnums=(0, 1))(x, w),
                    func.grad(looped, argnums=(0, 1))(x, w)):
        close(g, v)
    t = data(3, 4, 3)
    close(func.jvp(lambda x: func.vmap(f, in_dims=(0, None))(x, w), (x,), (t,))[1],
          func.jvp(lambda x: one_by_one(f, x, w, in_dims=(0, None)), (x,), (t,))[1])
    y = func.vmap(f, in_dims=(0, None))(x, w.requires_grad_())
    y.sum().backward()  # the engine's backward through the replay, too
    close(w.grad, func.grad(looped, argnums=1)(x, w))


def test_nested_vmap_in_every_arrangement_of_axes():
    a, b = data(0, 3, 4), data(1, 5, 4)
    dot = lambda u, v: (u * v).sum()  # noqa: E731
    table = func.vmap(func.vmap(dot, in_dims=(None, 0)), in_dims=(0, None))(a, b)
    close(table, a.data @ b.data.T)
    close(func.vmap(func.vmap(dot, in_dims=(0, None)), in_dims=(None, 0))(a, b),
          b.data @ a.data.T)
    stacked = data(2, 2, 3, 4)  # vmap over both leading axes, then out_dims moving them
    got = func.vmap(func.vmap(lambda u: u.softmax(-1), out_dims=1), in_dims=1)(stacked)
    close(got, stacked.softmax(-1).data.transpose(1, 2, 0))


# -- arguments ----------------------------------------------------------------------------------


def test_in_dims_trees_out_dims_and_chunks():
    params = {"w": data(0, 3, 2), "b": data(1, 5, 2)}  # b batched along axis 0, w shared
    x = data(2, 3, 5)  # batched along axis 1
    g = lambda p, x: (x @ p["w"] + p["b"]).tanh()  # noqa: E731
    got = func.vmap(g, in_dims=({"w": None, "b": 0}, 1))(params, x)
    want = mg.stack([g({"w": params["w"], "b": params["b"][i]}, x[:, i]) for i in range(5)])
    close(got, want)
    pair = lambda x: (x.sum(), x.exp())  # noqa: E731
    s, e = func.vmap(pair, in_dims=1, out_dims=(0, -1))(x)
    close(s, x.data.sum(0))
    close(e, np.exp(x.data))
    for chunk in (1, 2, 4, 5, 9):
        close(func.vmap(g, in_dims=({"w": None, "b": 0}, 1), chunk_size=chunk)(params, x),
              want)
    unbatched = func.vmap(lambda x, w: (x.sum(), w * 2), in_dims=(0, None),
                          out_dims=(0, None))(x, params["w"])
    close(unbatched[1], params["w"].data * 2)  # out_dims None: as one example made it
    expanded = func.vmap(lambda x, w: w * 2, in_dims=(0, None))(x, params["w"])
    close(expanded, np.broadcast_to(params["w"].data * 2, (3, 3, 2)))  # repeated, as torch
    close(func.vmap(lambda x, k: x * k, in_dims=(0, None))(x, 3), x.data * 3)  # any None arg
    close(func.vmap(lambda x, scale: x * scale)(x, scale=mg.tensor(2.0)), x.data * 2)


def test_randomness_different_draws_each_examples_own_and_replays_draw_afresh():
    x = mg.ones(4, 1000)
    dropped = func.vmap(lambda x: mg.nn.functional.dropout(x, 0.5, True),
                        randomness="different")
    first, second = dropped(x), dropped(x)
    assert set(np.unique(first.data)) == {0.0, 2.0}
    assert not np.array_equal(first.data[0], first.data[1])
    assert not np.array_equal(first.data, second.data)
    shared = mg.ones(1000)  # unbatched input: still one mask per example
    masks = func.vmap(lambda x, s: mg.nn.functional.dropout(s, 0.5, True) + 0 * x.sum(),
                      in_dims=(0, None), randomness="different")(x, shared)
    assert masks.shape == (4, 1000) and not np.array_equal(masks.data[0], masks.data[1])


def test_reading_an_unbatched_value_is_allowed_and_a_batched_one_raises():
    x, w = data(0, 4, 3), data(1, 3)
    got = func.vmap(lambda x, w: x * float(w.sum()), in_dims=(0, None))(x, w)
    close(got, x.data * float(w.data.sum()))
    for read in (lambda x: x.sum().item(), lambda x: bool(x.sum() > 0), lambda x: x.numpy(),
                 lambda x: float(x[0]), lambda x: x.tolist(), lambda x: np.asarray(x)):
        with pytest.raises(VmapError, match="differs across the batch"):
            func.vmap(lambda x, read=read: x * read(x))(x)


# -- errors -------------------------------------------------------------------------------------


def test_errors_name_what_does_not_fit():
    x, y = data(0, 4, 3), data(1, 5, 3)
    cases = [
        (lambda: func.vmap(lambda x: x, in_dims=None)(x), "no argument is batched"),
        (lambda: func.vmap(lambda x, y: x + y)(x, y),
         r"disagree on the batch size: argument 0 of shape \(4, 3\) \(in_dim 0\): 4; "
         r"argument 1 of shape \(5, 3\) \(in_dim 0\): 5"),
        (lambda: func.vmap(lambda x: x, in_dims=2)(x), r"in_dims 2 .* out of range"),
        (lambda: func.vmap(lambda x, k: x, in_dims=(0, 0))(x, 3),
         "argument 1, a int: only tensors"),
        (lambda: func.vmap(lambda x: x, in_dims=(0, 0))(x), "2 entries for 1 positional"),
        (lambda: func.vmap(lambda p: p["a"], in_dims=({"b": 0},))({"a": x}),
         "does not fit its structure"),
        (lambda: func.vmap(lambda x: x, in_dims=[0])(x), "in_dims must be an int, None or"),
        (lambda: func.vmap(lambda x: x, out_dims=3)(x), "out_dims 3 is out of range"),
        (lambda: func.vmap(lambda x: (x, x), out_dims=(0, 1, 2))(x), "does not fit the res"),
        (lambda: func.vmap(lambda x: x, out_dims=None)(x), "differs across the batch"),
        (lambda: func.vmap(lambda x: x.shape)(x), "must return tensors"),
        (lambda: func.vmap(lambda x: x)(x[:0]), "the batch is empty"),
        (lambda: func.vmap(lambda x: x.add_(1))(x), "in-place op add_"),
        (lambda: func.vmap(lambda x: mg.tensor(x) * 2)(x), "made from a value that differs"),
        (lambda: func.vmap(lambda x: x + mg.randn(3))(x), "random numbers drawn outside an op"),
        (lambda: func.vmap(lambda x: mg.nn.functional.dropout(x, 0.5, True))(x),
         "DropoutMask draws random numbers, and randomness='error'"),
        (lambda: func.vmap(lambda x, i: x[:, i], in_dims=(None, 0))(
            data(2, 3, 3), mg.tensor([0, 2])), "index arrays come first"),
        (lambda: func.vmap(lambda x, m: x[m])(x, x > 0), "boolean mask that differs"),
    ]
    for run, message in cases:
        with pytest.raises(VmapError, match=message):
            run()
    with pytest.raises(ValueError, match="randomness must be one of"):
        func.vmap(lambda x: x, randomness="same")
    with pytest.raises(ValueError, match="chunk_size must be a positive int"):
        func.vmap(lambda x: x, chunk_size=0)


def test_vmap_inside_a_compiled_function_raises():
    compiled = mg.compile(lambda x: func.vmap(lambda r: r.sum())(x))
    with pytest.raises(Exception, match="vmap inside a function that mg.compile traces"):
        compiled(data(0, 4, 3))


def test_an_op_without_a_rule_runs_once_per_example_with_a_warning():
    class Cube(mg.Function):
        """cube: y = x**3; dx = 3 x**2 dy"""

        def forward(self, x):
            return x ** 3

        def backward(self, gy):
            return 3 * self.inputs[0] ** 2 * gy

    x = data(0, 4, 3)
    with pytest.warns(RuntimeWarning, match="Cube has no batching rule, so it runs once per "
                                            "example"):
        grads, values = func.vmap(func.grad_and_value(lambda x: Cube.apply(x).sum()))(x)
    close(grads, 3 * x.data ** 2)
    close(values, (x.data ** 3).sum(1))
