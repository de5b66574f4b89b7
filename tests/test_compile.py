"""mg.compile: a compiled call gives the outputs and gradients that eager gives (random
expressions, every cell, stacked bidirectional LSTMs, a language model trained with truncated
BPTT, seq2seq models, classifiers and taggers on batches of different lengths), reads
parameters and random numbers afresh at every call, traces again for a new signature, and never
bakes a value read in Python into its program: it raises or falls back."""

from __future__ import annotations

import importlib.util
import re
import sys
import tracemalloc
import warnings
from contextlib import contextmanager
from functools import partial

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from minigrad.compile import ALL, CompiledCall, TraceError, TraceWarning
from minigrad.compile.fast import malloc
from minigrad.compile.fast import numba as numba_pass
from minigrad.compile.fast.lowering import stacked_in_place
from minigrad.compile.program import Instr, Program
from minigrad.compile.trace import flatten
from minigrad.models import (
    LSTM,
    RNNLM,
    AttentionDecoder,
    Cell,
    CoupledLSTMCell,
    FeatureEncoder,
    GRUCell,
    LSTMCell,
    PeepholeLSTMCell,
    Recurrent,
    RNNCell,
    Seq2Seq,
    SequenceClassifier,
    SequenceTagger,
)
from minigrad.models.classify import POOLINGS
from minigrad.models.lm import detach_state
from minigrad.ops.elementwise import Add, Exp, Mul, Tanh
from minigrad.ops.linalg import Linear, MatMul
from minigrad.ops.probability import CrossEntropy
from minigrad.ops.reduce import Sum
from minigrad.ops.shape import Concat, Reshape, Split, Stack, Transpose, Unbind
from tests.strategies import leaf
from tests.test_classify import CLASSES, padded_batches
from tests.test_classify import make as make_classify_model
from tests.test_expressions import expressions
from tests.test_ops_probability import cross_entropy_grad_cases
from tests.test_seq2seq import DECODERS as S2S_DECODERS
from tests.test_seq2seq import IDS as S2S_IDS
from tests.test_seq2seq import batch as seq2seq_batch
from tests.test_seq2seq import seeded as seeded_seq2seq

BACKENDS = ["numpy"] + (["numba"] if importlib.util.find_spec("numba") else [])
RTOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}


def is_numba(fn) -> bool:
    """Whether ``fn`` is a function numba compiled."""
    return type(fn).__module__.startswith("numba")


@contextmanager
def kernel_backend(name: str):
    """Generate fused kernels with ``name`` ("numpy" or "numba") inside the block."""
    previous, numba_pass.BACKEND = numba_pass.BACKEND, name
    try:
        yield
    finally:
        numba_pass.BACKEND = previous


def outputs_and_grads(fn, inputs, params=()):
    """``fn``'s output arrays, and the gradients of a fixed random weighting of its outputs
    with respect to the inputs that require grad and ``params`` (None where unused)."""
    outputs = flatten(fn(*inputs), arrays=False)[0]
    rng = np.random.default_rng(0)
    terms = [(y * mg.tensor(rng.uniform(-1, 1, y.shape), dtype=y.dtype)).sum()
             for y in outputs if y.requires_grad]
    wrt = [x for x in flatten(inputs)[0] if isinstance(x, mg.Tensor) and x.requires_grad]
    grads = mg.grad(sum(terms[1:], terms[0]), wrt + list(params), allow_unused=True)
    return [y.data for y in outputs], [None if g is None else g.data for g in grads]


def assert_close(got, want) -> None:
    """Equal within 1e-10 (float64) or 1e-5 (float32), relative to the largest magnitude."""
    got_outputs, got_grads = got
    want_outputs, want_grads = want
    assert len(got_outputs) == len(want_outputs) and len(got_grads) == len(want_grads)
    for a, b in zip(got_outputs + got_grads, want_outputs + want_grads):
        assert (a is None) == (b is None)
        if b is not None:
            assert a.shape == b.shape and a.dtype == b.dtype
            rtol = RTOL.get(b.dtype, 0)
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(1.0, np.abs(b).max()))


def assert_compiled_equals_eager(fn, compiled, make_inputs, params=()) -> None:
    """At the tracing call and at a replay on new values, the compiled outputs and gradients
    equal the eager ones."""
    for seed in (0, 1):
        inputs = make_inputs(seed)
        assert_close(outputs_and_grads(compiled, inputs, params),
                     outputs_and_grads(fn, inputs, params))


# -- compiled equals eager ---------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("passes", [(), ("dce",), ALL], ids=["no passes", "dce", "all"])
@given(expr=expressions())
def test_random_expressions_compiled_equal_eager_at_the_trace_and_at_replays(expr, passes,
                                                                            backend):
    compiled = mg.compile(expr, passes=passes, fallback=False)
    with kernel_backend(backend):
        assert_compiled_equals_eager(
            expr, compiled, lambda seed: [leaf(np.tanh(a + seed)) for a in expr.inputs])
    assert len(compiled.traces) == 1


class MinimalGatedCell(Cell):
    """A user's cell, the minimal gated unit of examples/custom_cell.py:
    f = σ(W_f x + U_f h + b_f); h' = (1 − f)⊙h + f⊙tanh(W_h x + U_h (f⊙h) + b_h)."""

    gates = 2

    def step(self, xp, h):
        x_f, x_h = xp.chunk(2, dim=-1)
        u_f, u_h = self.weight_hh.chunk(2)
        b_f, b_h = self.bias_hh.chunk(2)
        f = (x_f + h @ u_f.T + b_f).sigmoid()
        h = (1 - f) * h + f * (x_h + (f * h) @ u_h.T + b_h).tanh()
        return h, h


CELLS = [RNNCell, partial(RNNCell, nonlinearity="relu"), LSTMCell, GRUCell, PeepholeLSTMCell,
         CoupledLSTMCell, MinimalGatedCell]
CELL_IDS = ["rnn_tanh", "rnn_relu", "lstm", "gru", "peephole", "coupled", "user_mgu"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("cell_type", CELLS, ids=CELL_IDS)
@settings(max_examples=10)
@given(batch=st.integers(1, 3), input_size=st.integers(1, 3), hidden=st.integers(1, 4),
       data=st.data())
def test_every_cell_compiled_equals_eager(cell_type, dtype, backend, batch, input_size, hidden,
                                          data):
    mg.manual_seed(data.draw(st.integers(0, 99)))
    cell = cell_type(input_size, hidden).to(dtype)
    zero = cell.init_state(batch, dtype)
    parts = len(zero) if isinstance(zero, tuple) else 1

    def make_inputs(seed):
        rng = np.random.default_rng(seed)
        x, *state = [mg.tensor(rng.uniform(-1, 1, (batch, n)), dtype=dtype, requires_grad=True)
                     for n in [input_size] + [hidden] * parts]
        return x, tuple(state) if parts > 1 else state[0]

    with kernel_backend(backend):
        compiled = mg.compile(cell, fallback=False)
        assert_compiled_equals_eager(cell, compiled, make_inputs, list(cell.parameters()))
    assert len(compiled.traces) == 1


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(max_examples=5)
@given(steps=st.integers(1, 4), batch=st.integers(1, 3), seed=st.integers(0, 99))
def test_a_two_layer_bidirectional_lstm_compiled_equals_eager(dtype, backend, steps, batch,
                                                              seed):
    mg.manual_seed(seed)
    lstm = LSTM(3, 4, num_layers=2, bidirectional=True).to(dtype)

    def make_inputs(k):
        rng = np.random.default_rng(k)
        x = mg.tensor(rng.uniform(-1, 1, (steps, batch, 3)), dtype=dtype, requires_grad=True)
        h, c = (mg.tensor(rng.uniform(-1, 1, (4, batch, 4)), dtype=dtype, requires_grad=True)
                for _ in range(2))
        return x, (h, c)

    with kernel_backend(backend):
        compiled = mg.compile(lstm, fallback=False)
        assert_compiled_equals_eager(lstm, compiled, make_inputs, list(lstm.parameters()))


def train_rnnlm_with_truncated_bptt(model, loss_fn, stream, bptt, seed):
    """SGD on ``stream (T, B)`` in chunks of ``bptt`` steps (the last one shorter), carrying
    the detached state; returns the losses."""
    opt = mg.optim.SGD(model.parameters(), lr=0.5)
    state, losses = None, []
    for k, start in enumerate(range(0, len(stream) - 1, bptt)):
        x = stream[start:start + bptt]
        y = stream[start + 1:start + 1 + len(x)]
        x = x[:len(y)]
        mg.manual_seed(seed + k)  # dropout draws the same masks in both runs
        loss, state = loss_fn(x, y, state)
        opt.zero_grad()
        loss.backward()
        opt.step()
        state = detach_state(state)
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_rnnlm_trained_with_truncated_bptt_compiled_equals_eager(cell):
    stream = np.random.default_rng(0).integers(0, 11, (14, 3))  # chunks of 5, 5 and 3 steps
    mg.manual_seed(0)
    eager = RNNLM(11, 6, 6, num_layers=2, cell=cell, dropout=0.25, tie_weights=True)
    twin = RNNLM(11, 6, 6, num_layers=2, cell=cell, dropout=0.25, tie_weights=True)
    twin.load_state_dict(eager.state_dict())
    compiled = mg.compile(twin.loss, fallback=False)
    want = train_rnnlm_with_truncated_bptt(eager, eager.loss, stream, 5, seed=7)
    got = train_rnnlm_with_truncated_bptt(twin, compiled, stream, 5, seed=7)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    for (name, p), q in zip(eager.named_parameters(), twin.parameters()):
        np.testing.assert_allclose(q.data, p.data, rtol=1e-5, atol=1e-6, err_msg=name)
    # no state, then a state, then the shorter last chunk: three signatures
    assert [t.signature.count("i64[5,3]") for t in compiled.traces] == [2, 2, 0]


def assert_equal_on_batches(fn, compiled, batches, params) -> None:
    """On each batch in turn (a new signature traces, a repeated one replays), the compiled
    outputs and gradients equal the eager ones; dropout draws the same masks from the seed."""
    for k, inputs in enumerate(batches):
        runs = []
        for f in (compiled, fn):
            mg.manual_seed(k)
            runs.append(outputs_and_grads(f, inputs, params))
        assert_close(*runs)


@pytest.mark.parametrize("decoder_type", S2S_DECODERS, ids=lambda d: d.__name__)
@settings(max_examples=5)
@given(reverse=st.booleans(), rows=st.integers(1, 3),
       lengths=st.lists(st.tuples(st.integers(1, 4), st.integers(2, 5)), min_size=2, max_size=3),
       seed=st.integers(0, 2**16))
def test_a_seq2seq_model_compiles_for_batches_of_different_lengths(decoder_type, reverse, rows,
                                                                   lengths, seed):
    model = seeded_seq2seq(seed, decoder_type, reverse)
    compiled = mg.compile(model.loss, fallback=False)
    batches = [seq2seq_batch(seed + k, rows, *shape)
               for k, shape in enumerate(lengths + lengths[:1])]  # the first again: a replay
    assert_equal_on_batches(model.loss, compiled, batches, list(model.parameters()))
    assert len(compiled.traces) == len(set(lengths))


@pytest.mark.parametrize("decoder_type", S2S_DECODERS, ids=lambda d: d.__name__)
def test_a_vec2seq_model_compiles_taking_float64_features_as_its_float32_parameters(
        decoder_type):
    mg.manual_seed(0)
    model = Seq2Seq(FeatureEncoder(3, 4), decoder_type(7, 2, 4, **S2S_IDS))
    rng = np.random.default_rng(0)
    batches = [(rng.normal(size=(rows, 3)), seq2seq_batch(k, rows, 1, 4)[1])
               for k, rows in enumerate((2, 3, 2))]
    compiled = mg.compile(model.loss, fallback=False)
    assert_equal_on_batches(model.loss, compiled, batches, list(model.parameters()))
    assert len(compiled.traces) == 2


def test_greedy_generation_reads_tokens_so_it_falls_back_with_one_warning_and_equals_eager():
    model = seeded_seq2seq(0, AttentionDecoder)
    compiled = mg.compile(model.generate)
    with pytest.warns(TraceWarning, match="Seq2Seq.generate") as warned:
        for src_len in (3, 5):
            src, _ = seq2seq_batch(src_len, 2, src_len, 4)
            np.testing.assert_array_equal(compiled(src, 4), model.generate(src, 4))
    assert len(warned) == 1 and "seq2seq.py" in str(warned[0].message)
    assert len(compiled.fallbacks) == 2 and not compiled.traces


@pytest.mark.parametrize("model_type", [SequenceClassifier, SequenceTagger])
@settings(max_examples=10)
@given(cell=st.sampled_from(["lstm", "gru", "rnn"]), num_layers=st.integers(1, 2),
       bidirectional=st.booleans(), pooling=st.sampled_from(POOLINGS),
       dropout=st.sampled_from([0.0, 0.3]), with_lengths=st.booleans(),
       batches=st.lists(padded_batches(), min_size=2, max_size=3), seed=st.integers(0, 2**16),
       data=st.data())
def test_classifier_and_tagger_losses_compiled_equal_eager_for_batches_of_different_lengths(
        model_type, cell, num_layers, bidirectional, pooling, dropout, with_lengths, batches,
        seed, data):
    options = dict(cell=cell, num_layers=num_layers, bidirectional=bidirectional,
                   dropout=dropout)
    if model_type is SequenceClassifier:
        options["pooling"] = pooling
    model = make_classify_model(model_type, seed, **options)
    inputs = []
    for _, lengths, junk in batches:  # junk: random ids in the padding, which must not matter
        shape = junk.shape if model_type is SequenceTagger else junk.shape[:1]
        targets = data.draw(hnp.arrays(np.int64, shape, elements=st.integers(0, CLASSES - 1)))
        inputs.append((junk, targets, lengths) if with_lengths else (junk, targets))
    compiled = mg.compile(model.loss, fallback=False)
    assert_equal_on_batches(model.loss, compiled, inputs + inputs[:1], list(model.parameters()))
    assert len(compiled.traces) == len({junk.shape for _, _, junk in batches})


def test_gradcheck_passes_on_a_compiled_function():
    def f(x, w):
        return ((x @ w).tanh() * x.sum(axis=1, keepdims=True)).sigmoid()

    rng = np.random.default_rng(0)
    x, w = leaf(rng.normal(size=(3, 4))), leaf(rng.normal(size=(4, 4)))
    assert mg.gradcheck(mg.compile(f, fallback=False), [x, w])


# -- what is read at every call ------------------------------------------------------------------


def test_parameters_changed_by_an_optimizer_step_or_load_state_dict_are_seen():
    mg.manual_seed(0)
    model = mg.nn.Sequential(mg.nn.Linear(3, 4), mg.nn.Tanh(), mg.nn.Linear(4, 2))
    compiled = mg.compile(model, fallback=False)
    opt = mg.optim.Adam(model.parameters(), lr=0.1)
    x = mg.randn(5, 3)
    for _ in range(3):
        loss = (compiled(x) ** 2).sum()
        np.testing.assert_allclose(loss.data, (model(x) ** 2).sum().data, rtol=1e-6)
        opt.zero_grad()
        loss.backward()
        opt.step()
    other = mg.nn.Sequential(mg.nn.Linear(3, 4), mg.nn.Tanh(), mg.nn.Linear(4, 2))
    model.load_state_dict(other.state_dict())
    np.testing.assert_allclose(compiled(x).data, other(x).data, rtol=1e-6)
    assert len(compiled.traces) == 1


def test_dropout_draws_a_fresh_mask_at_every_call_equal_to_eager_from_the_same_seed():
    layer = LSTM(3, 5, num_layers=2, dropout=0.5)
    compiled = mg.compile(layer, fallback=False)
    x = mg.randn(4, 2, 3, requires_grad=True)
    runs = {}
    for name, fn in (("eager", layer), ("compiled", compiled)):
        mg.manual_seed(1)
        runs[name] = [outputs_and_grads(fn, (x,), list(layer.parameters())) for _ in range(3)]
    for got, want in zip(runs["compiled"], runs["eager"]):
        assert_close(got, want)
    first, second = (outputs for outputs, _ in runs["compiled"][:2])
    assert not np.allclose(first[0], second[0])  # a fresh mask at every call
    with layer.evaluating():
        np.testing.assert_allclose(compiled(x)[0].data, layer(x)[0].data, rtol=1e-5, atol=1e-7)
    assert len(compiled.traces) == 2  # training, then eval without a graph


# -- one node, hooks, create_graph ----------------------------------------------------------------


def test_a_compiled_call_is_one_node_whose_hooks_and_retained_grads_work():
    compiled = mg.compile(lambda x, w: ((x @ w).tanh() * 2).sum(axis=0), fallback=False)
    x, w = mg.randn(3, 4, requires_grad=True), mg.randn(4, 2, requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(("x", g.shape)))
    y = compiled(x, w)
    assert isinstance(y.grad_fn, CompiledCall) and y.grad_fn.inputs[:2] == (x, w)
    assert y.grad_fn.name.startswith("Compiled[") and "<lambda>" in y.grad_fn.name
    y.retain_grad()
    y.register_hook(lambda g: seen.append(("y", g.shape)))
    y.sum().backward()
    assert seen == [("y", (2,)), ("x", (3, 4))]
    np.testing.assert_array_equal(y.grad.data, np.ones(2, np.float32))


def test_create_graph_through_a_compiled_call_raises_a_clear_error():
    compiled = mg.compile(lambda x: (x * x).sum())
    x = mg.randn(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="create_graph=True through a compiled call"):
        mg.grad(compiled(x), x, create_graph=True)


def test_an_output_eager_would_not_track_comes_back_without_grad():
    compiled = mg.compile(lambda x, c: (x * 2, c * 3), fallback=False)
    y, z = compiled(mg.randn(2, requires_grad=True), mg.randn(2))
    assert y.requires_grad and not z.requires_grad and z.grad_fn is None


# -- signatures and the cache ---------------------------------------------------------------------


def test_a_new_signature_traces_again_and_the_cache_keeps_the_most_recent():
    compiled = mg.compile(lambda x: (x * x).sum(), cache_size=2, fallback=False)
    for rows in (2, 3, 2, 4):
        compiled(mg.randn(rows, 3, requires_grad=True)).backward()
    assert ["f32[2,3]" in t.signature for t in compiled.traces] == [True, False]
    assert "f32[4,3]" in compiled.traces[1].signature  # 3 rows was the least recently used
    compiled(mg.randn(4, 3, dtype=np.float64, requires_grad=True))
    with mg.no_grad():
        compiled(mg.randn(4, 3, requires_grad=True))
    assert compiled.traces[-1].backward is None and "grad off" in compiled.traces[-1].signature


def test_a_module_compiled_as_a_function_traces_again_when_its_training_flag_changes():
    drop = mg.nn.Dropout(0.5)
    compiled = mg.compile(lambda x: drop(x) * 2, fallback=False)
    x = mg.ones(10)
    compiled(x)
    drop.eval()
    np.testing.assert_array_equal(compiled(x).data, np.full(10, 2, np.float32))
    assert len(compiled.traces) == 2


def test_a_compiled_module_behaves_like_the_module_and_shares_its_parameters():
    model = LSTM(3, 4, num_layers=2)
    compiled = mg.compile(model)
    assert compiled.hidden_size == 4 and compiled.cells is model.cells
    assert list(compiled.parameters()) == list(model.parameters())
    assert list(compiled.state_dict()) == list(model.state_dict())
    assert compiled.eval() is compiled and not model.training
    assert compiled.train() is compiled and model.training
    assert "compiled LSTM" in repr(compiled)


# -- what cannot be traced: errors and fallback ---------------------------------------------------


def reads_item(x):
    return x * x.sum().item()


def branches_on_a_value(x):
    if x.sum() > 0:
        return x * 2
    return -x


def reads_numpy(x):
    return x * float(x.detach().numpy().sum())


VALUE_READS = [
    (reads_item, r"Tensor\.item\(\)", "x.sum().item()"),
    (branches_on_a_value, r"bool\(\)", "if x.sum() > 0:"),
    (reads_numpy, r"Tensor\.numpy\(\)", "x.detach().numpy().sum()"),
]


@pytest.mark.parametrize("fn, what, line", VALUE_READS, ids=["item", "if", "numpy"])
def test_reading_a_value_raises_naming_the_line_without_fallback(fn, what, line):
    with pytest.raises(TraceError, match=what) as error:
        mg.compile(fn, fallback=False)(mg.randn(3, requires_grad=True))
    assert "test_compile.py" in str(error.value) and line in str(error.value)
    assert fn.__name__ in str(error.value)


@pytest.mark.parametrize("fn, what, line", VALUE_READS, ids=["item", "if", "numpy"])
def test_reading_a_value_warns_once_then_runs_eagerly(fn, what, line):
    compiled = mg.compile(fn)
    x = mg.randn(3, requires_grad=True)
    with pytest.warns(TraceWarning, match=what):
        y = compiled(x)
    np.testing.assert_array_equal(y.data, fn(x).data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(compiled(x).data, fn(x).data)
    assert len(compiled.fallbacks) == 1 and not compiled.traces


class CarriesState:
    """A training step that keeps the running state on itself, as truncated BPTT does."""

    def __init__(self, w: mg.Tensor) -> None:
        self.w, self.state = w, mg.zeros(3)

    def __call__(self, x: mg.Tensor) -> mg.Tensor:
        h = (x + self.state * self.w).tanh()
        self.state = h.detach()
        return h.sum()


def counting_step():
    """A step that counts its calls in a closure variable."""
    calls = 0

    def step(x: mg.Tensor) -> mg.Tensor:
        nonlocal calls
        calls += 1
        return (x * calls).sum()

    return step


@pytest.mark.parametrize("make, name", [(lambda: CarriesState(leaf(np.ones(3) * 0.5)),
                                         "CarriesState.state"),
                                        (counting_step, "calls")], ids=["attribute", "closure"])
def test_a_function_that_sets_what_it_reads_warns_and_runs_eagerly_as_often_as_called(make, name):
    step, twin = make(), make()  # twin: the same step, never compiled
    compiled = mg.compile(step)
    x = mg.randn(3)
    with pytest.warns(TraceWarning, match=f"sets {name} while tracing"):
        got = [compiled(x).item()]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got += [compiled(x).item() for _ in range(2)]
    assert got == [twin(x).item() for _ in range(3)]  # the state moved once per call
    with pytest.raises(TraceError, match=f"sets {name} while tracing"):
        mg.compile(make(), fallback=False)(x)


class Remembers(mg.nn.Module):
    """A layer that keeps its last output and adds it to the next input (a stateful module)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = mg.nn.Parameter(np.full(3, 0.5))
        self.last = mg.zeros(3, dtype=np.float64)

    def forward(self, x: mg.Tensor) -> mg.Tensor:
        y = (x + self.last * self.w).tanh()
        self.last = y.detach()
        return y


@pytest.mark.parametrize("how", ["module", "method", "closure"])
def test_a_module_that_sets_its_own_state_while_tracing_is_caught_however_it_is_reached(how):
    layer, twin = Remembers(), Remembers()
    compiled = {"module": lambda: mg.compile(layer),
                "method": lambda: mg.compile(layer.forward),
                "closure": lambda: mg.compile(lambda x: layer(x) * 2.0)}[how]()
    x = mg.randn(3, dtype=np.float64)
    with pytest.warns(TraceWarning, match="sets Remembers.last while tracing"):
        got = [compiled(x).data]
    got += [compiled(x).data for _ in range(2)]
    scale = 2.0 if how == "closure" else 1.0
    for g in got:
        np.testing.assert_allclose(g, twin(x).data * scale, rtol=1e-12)


class ReadsItsWeight(mg.nn.Module):
    """y = x * sum(w), with the sum taken in NumPy (what tracing refuses)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = mg.nn.Parameter(np.ones(2))

    def forward(self, x):
        return x * float(self.w.data.sum())


def test_a_failed_trace_leaves_the_engine_and_the_parameters_as_they_were():
    apply, init = mg.Function.__dict__["apply"], mg.Tensor.__dict__["__init__"]
    eq = mg.Tensor.__dict__["__eq__"]
    module = ReadsItsWeight()
    compiled = mg.compile(module, fallback=False)
    with pytest.raises(TraceError, match=r"`\.sum` reads a parameter of shape \(2,\)"):
        compiled(mg.randn(2))  # though no op has read the weight yet
    assert mg.Function.__dict__["apply"] is apply and mg.Tensor.__dict__["__init__"] is init
    assert mg.Tensor.__dict__["__eq__"] is eq and not isinstance(mg.Tensor.grad, property)
    assert type(module.w.data) is np.ndarray and module.w.data.sum() == 2


class Scale(mg.Function):
    """y = x * factor, the factor kept in the node (what tracing refuses)."""

    def __init__(self, factor: np.ndarray) -> None:
        self.factor = factor

    def forward(self, x):
        return x * self.factor

    def backward(self, gy):
        return gy * mg.tensor(self.factor)


class Cube(mg.Function):
    """y = x ** 3, whose backward reads an array saved by forward (what tracing refuses)."""

    def forward(self, x):
        self.save_for_backward(x * x)
        return x ** 3

    def backward(self, gy):
        (square,) = self.saved
        return gy * 3 * mg.Tensor._wrap(square)


SCALE = mg.tensor(2.0, requires_grad=True)
SCALE.grad = mg.tensor(1.0)


def hooked_inside(x):
    y = x * 2
    y.register_hook(lambda g: g)
    return y.sum()


UNTRACEABLE = [
    (lambda x: x + mg.randn(*x.shape), "random numbers outside an op"),
    (lambda x: Scale.apply(x, factor=np.full(x.shape, 2.0)), r"Scale keeps data in self\.factor"),
    (lambda x: Cube.apply(x).sum(), r"an array that Cube\.forward saved"),
    (hooked_inside, "a hook or retain_grad"),
    (lambda x: x.data, "returning or passing the array of a traced tensor"),
    (lambda x: x * mg.zeros(*x.shape, requires_grad=True), "created inside requires grad"),
    (lambda x: mg.tensor(x, dtype=np.float32) * 2, "converting argument 0"),
    (lambda x: x * float(x.data.sum()), "`.sum` reads argument 0"),
    (lambda x: x * SCALE.grad, r"reading \.grad"),
]


@pytest.mark.parametrize("fn, what", UNTRACEABLE, ids=[
    "random draw", "data in an option", "saved array read in backward", "hook inside",
    "returned array", "leaf made inside", "dtype conversion",
    "data read", "grad read"])
def test_what_a_program_cannot_replay_raises_a_trace_error(fn, what):
    x = mg.tensor(np.linspace(-1, 1, 4), requires_grad=True)  # float64
    with pytest.raises(TraceError, match=what):
        mg.compile(fn, fallback=False)(x)


def test_bad_arguments_to_compile_give_clear_errors():
    with pytest.raises(TypeError, match="expected a function or a Module; got a int"):
        mg.compile(3)
    with pytest.raises(ValueError, match=r"unknown passes \['fusion'\]"):
        mg.compile(lambda x: x, passes=("fusion",))
    with pytest.raises(ValueError, match="cache_size must be at least 1"):
        mg.compile(lambda x: x, cache_size=0)
    with pytest.raises(TypeError, match="nor a hashable constant"):
        mg.compile(lambda x, options: x)(mg.randn(2), {1, 2})
    compiled = mg.compile(lambda x: x * 2)
    compiled(mg.randn(2))
    with pytest.raises(ValueError, match="program must be 'forward' or 'backward'"):
        compiled.draw("sideways")
    with pytest.raises(ValueError, match="has no backward program"):
        compiled.draw("backward")


# -- looking inside -------------------------------------------------------------------------------


def test_the_printed_programs_show_every_op_before_and_fused_kernels_after_the_passes(capsys):
    def f(x, b):
        return ((x + b).tanh() * x).sum()

    compiled = mg.compile(f, fallback=False)
    with kernel_backend("numpy"):
        compiled(mg.randn(2, 3, requires_grad=True), mg.randn(3, requires_grad=True)).backward()
    text = str(compiled.traces[0])
    assert "signature (f32[2,3] requires_grad, f32[3] requires_grad), grad on" in text
    traced_forward = text.split("-- forward, after")[0]
    for line in ("inputs: s0 f32[2,3], s1 f32[3]", "s2 = Add(s0, s1)", "s3 = Tanh(s2)",
                 "s4 = Mul(s3, s0)", "Sum(s4, axis=None, keepdims=False)"):
        assert line in traced_forward
    assert "TanhGrad(" in text.split("-- backward, as traced")[1]
    fused = compiled.traces[0].forward.kernels()
    # tanh(x + b) is not kept: backward recomputes it from x and b (remat), fused with TanhGrad
    assert len(fused) == 1 and fused[0].text().startswith("s4 = fused_")
    assert [ins.op for ins in fused[0].fused] == [Add, Tanh, Mul]  # x + b, tanh, * x
    backward = text.split("-- backward, after the passes")[1]
    assert "recomputes 1 Add, 1 Tanh" in backward
    assert fused[0].label in compiled.kernels()  # the source of each kernel, by name
    compiled.print()
    assert capsys.readouterr().out.count("-- forward, after the passes") == 1
    drawing = compiled.draw(passes=False).source
    assert "Tanh" in drawing and "fused_" not in drawing
    assert "fused_" in compiled.draw().source


@pytest.mark.skipif("numba" not in BACKENDS, reason="numba is not installed")
def test_numba_kernels_are_loops_cached_on_disk_for_the_next_process(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGRAD_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(numba_pass, "_LOADED", {})
    compiled = mg.compile(lambda x, y: ((x * y - y) ** 3 / (x + y)).sum(), fallback=False)
    x, y = mg.randn(4, 5, requires_grad=True), mg.randn(4, 5) + 3
    with kernel_backend("numba"):
        compiled(x, y).backward()
        source = compiled.traces[0].forward.kernels()[0].source
        name = re.search(r"def (fused_\w+)\(", source)[1]  # the loop's own hash names its file
        assert (tmp_path / "kernels" / f"{name}.py").exists()
        assert list((tmp_path / "kernels" / "__pycache__").glob(f"{name}*.nbi"))
        numba_pass._LOADED.clear()  # as a new process: import the file, load the machine code
        loop = numba_pass._load(name, (tmp_path / "kernels" / f"{name}.py").read_text())
        kernel = compiled.traces[0].forward.kernels()[0]
        loop(x.data, y.data, np.empty((len(kernel.outputs), 4, 5), np.float32), (4, 5))
    assert is_numba(loop) and sum(loop.stats.cache_hits.values()) == 1


@pytest.mark.skipif("numba" not in BACKENDS, reason="numba is not installed")
@pytest.mark.parametrize("name, exact", [
    ("exp32", np.exp), ("tanh32", np.tanh), ("sigmoid32", lambda x: 1 / (1 + np.exp(-x)))])
def test_float32_exp_tanh_and_sigmoid_of_numba_kernels_are_within_three_ulps(name, exact):
    import numba

    from minigrad.compile.fast import fastmath

    fn = getattr(fastmath, name)

    @numba.njit
    def apply(x, out):
        for i in range(x.size):
            out[i] = fn(x[i])

    x = np.concatenate([np.linspace(-110, 90, 2_000_001), np.linspace(-1, 1, 1_000_001),
                        [np.nan, np.inf, -np.inf, 0.0, -0.0]]).astype(np.float32)
    got = np.empty_like(x)
    apply(x, got)
    with np.errstate(over="ignore"):
        want, want32 = exact(x.astype(np.float64)), exact(x)
    normal = (np.abs(want) >= np.finfo(np.float32).tiny) & (np.abs(want) <= 3.4e38)
    ulps = np.abs(got[normal] - want[normal]) / np.spacing(np.abs(want[normal]).astype(np.float32))
    assert ulps.max() <= 3
    # beyond float32's normal range: inf where NumPy's overflows, its subnormals within two
    # of the smallest (1.4e-45), and nan for nan
    np.testing.assert_allclose(got[~normal], want32[~normal], rtol=3 * 2.0**-23, atol=3e-45)


@pytest.mark.skipif("numba" not in BACKENDS, reason="numba is not installed")
def test_float32_kernels_with_exp_or_tanh_stay_numba_at_any_size_float64_ones_do_not():
    def f(x):
        return (x.tanh() * x.sigmoid()).exp()

    with kernel_backend("numba"):
        for dtype, small in ((np.float32, False), (np.float64, False), (np.float64, True)):
            compiled = mg.compile(f, fallback=False)
            x = mg.tensor(np.linspace(-3, 3, 6 if small else 4000), dtype=dtype,
                          requires_grad=True)
            assert_close(outputs_and_grads(compiled, (x,)), outputs_and_grads(f, (x,)))
            kernel, = compiled.traces[0].forward.kernels()
            loops = [f for name, f in numba_pass._LOADED.items() if f"def {name}(" in kernel.source]
            assert len(loops) == (dtype == np.float32 or small)  # else left a NumPy kernel
            assert all(map(is_numba, loops))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc: Linux only")
def test_compile_asks_glibc_once_to_keep_freed_memory_unless_the_environment_says(monkeypatch):
    # what it buys, page faults per replayed step, is measured in benchmarks/page_faults.py
    calls = []
    monkeypatch.setattr(sys.modules["minigrad.compile.compiled"], "keep_freed_memory",
                        lambda: calls.append(1))
    mg.compile(lambda x: x * 2)
    mg.compile(LSTMCell(2, 3))
    assert len(calls) == 2  # once per compile; the function itself acts once per process
    malloc.keep_freed_memory.cache_clear()
    monkeypatch.setenv("MALLOC_TOP_PAD_", "131072")
    assert malloc.keep_freed_memory() is False  # the environment's setting stands
    malloc.keep_freed_memory.cache_clear()
    monkeypatch.delenv("MALLOC_TOP_PAD_")
    assert malloc.keep_freed_memory() is sys.platform.startswith("linux")


def test_gather_sums_a_recurrent_weights_gradient_with_one_matmul():
    lstm = LSTM(3, 4)
    compiled = mg.compile(lstm, passes=("dce", "gather"), fallback=False)
    x = mg.randn(6, 2, 3, requires_grad=True)
    assert_close(outputs_and_grads(compiled, (x,), list(lstm.parameters())),
                 outputs_and_grads(lstm, (x,), list(lstm.parameters())))
    entry = compiled.traces[0]
    weight_grads = [ins for ins in entry.backward.instrs
                    if ins.op is MatMul and entry.backward.meta[ins.outputs[0]][0] == (16, 4)]
    assert len(weight_grads) == 1  # weight_hh (16, 4), used at six steps
    traced = [ins for ins in entry.traced[1].instrs
              if ins.op is MatMul and entry.traced[1].meta[ins.outputs[0]][0] == (16, 4)]
    assert len(traced) == 6


@settings(max_examples=20)
@given(case=cross_entropy_grad_cases(), decompose=st.booleans())
def test_cross_entropys_backward_reads_the_exp_its_forward_computed(case, decompose):
    x, t, w, _, axis, reduction = case

    def loss(logits):
        return CrossEntropy.apply(logits, t, w, axis=axis, reduction=reduction)

    passes = ALL if decompose else tuple(p for p in ALL if p != "decompose")
    compiled = mg.compile(loss, passes=passes, fallback=False)
    assert_compiled_equals_eager(loss, compiled, lambda seed: (leaf(x + seed),))
    entry = compiled.traces[0]
    exps = [[k for k in program.kernels() if any(i.op is Exp for i in k.fused)]
            for program in (entry.forward, entry.backward)]
    recomputed = [ins for ins in entry.backward.instrs if ins.label == "CrossEntropyGrad"]
    if decompose:  # the forward's kernel computes exp(x - max); backward reads it
        assert len(exps[0]) == 1 and not exps[1] and not recomputed
        assert set(exps[0][0].outputs) <= set(entry.backward.inputs)
    else:
        assert not exps[0] and len(recomputed) == 1


def compiled_lstm_layer(steps: int):
    """The trace of an LSTM layer (3 -> 4, batch 2) compiled over ``steps`` steps, after
    checking that its outputs and gradients equal eager ones."""
    lstm = LSTM(3, 4)
    compiled = mg.compile(lstm, fallback=False)
    x = mg.randn(steps, 2, 3, requires_grad=True)
    params = list(lstm.parameters())
    assert_close(outputs_and_grads(compiled, (x,), params), outputs_and_grads(lstm, (x,), params))
    return compiled.traces[0]


def test_the_gate_gradients_are_written_once_into_the_stack_that_gather_reads():
    backward = compiled_lstm_layer(6).backward
    joins = [ins for ins in backward.instrs if ins.op in (Concat, Stack)
             and len(ins.inputs) == 6 and backward.meta[ins.inputs[0]][0] == (2, 16)]
    assert [ins.op for ins in joins] == [Stack]  # one stack of the six steps' gate gradients
    # and no copy at all: each step's kernel writes its gate gradients into their place in it
    places = stacked_in_place(backward)
    assert sorted(places.values()) == [(joins[0].outputs[0], k) for k in range(6)]
    makers = [ins for ins in backward.instrs if set(ins.outputs) & set(places)]
    assert len(makers) == 6 and all(ins.kernel and ins.lower for ins in makers)
    assert joins[0].lower(["a"] * 6, ["b"], "f") == []  # the stack itself: no line at all


def test_each_steps_kernel_adds_the_input_projection_to_the_recurrent_product_itself():
    forward = compiled_lstm_layer(5).forward
    steps = [ins for ins in forward.instrs
             if ins.op is Linear and forward.meta[ins.outputs[0]][0] == (2, 16)]
    assert len(steps) == 5 and all(len(ins.inputs) == 2 for ins in steps)  # h @ W_hhᵀ only
    kernels = forward.kernels()
    assert len(kernels) == 5
    assert all(sum(i.op is Add for i in k.fused) == 5 for k in kernels)  # 4 gates' sums, and c


def test_cse_runs_a_weights_split_once_for_all_the_steps_that_repeat_it():
    w = leaf(np.random.default_rng(0).standard_normal((6, 3)))

    def steps(x):
        h = x
        for _ in range(4):  # as a cell's step does: the same split of the same weight each time
            a, b = w.chunk(2, axis=0)
            h = (h @ a.T).tanh() + (h @ b.T).sigmoid()
        return h.sum()

    compiled = mg.compile(steps, passes=("dce", "cse"), fallback=False)
    x = leaf(np.random.default_rng(1).standard_normal((2, 3)))
    assert_close(outputs_and_grads(compiled, (x,), [w]), outputs_and_grads(steps, (x,), [w]))
    entry = compiled.traces[0]
    splits = [ins for ins in entry.forward.instrs if ins.label == "Split"]
    traced = [ins for ins in entry.traced[0].instrs if ins.label == "Split"]
    assert len(traced) == 4 and len(splits) == 1


@pytest.mark.parametrize("passes", [("dce", "cse", "gather"), ("dce", "cse", "distribute",
                                                             "gather")], ids=["", "distribute"])
def test_a_split_weights_gradient_is_gathered_once_distribute_moves_the_sums_inside(passes):
    rnn = Recurrent(MinimalGatedCell, 3, 4)  # steps multiply by the pieces of weight_hh
    compiled = mg.compile(rnn, passes=passes, fallback=False)
    x = mg.randn(6, 2, 3, requires_grad=True)
    assert_close(outputs_and_grads(compiled, (x,), list(rnn.parameters())),
                 outputs_and_grads(rnn, (x,), list(rnn.parameters())))
    backward = compiled.traces[0].backward
    pieces = [ins for ins in backward.instrs
              if ins.op is MatMul and backward.meta[ins.outputs[0]][0] == (4, 4)]
    # one product per piece of weight_hh (u_f, u_h) for all six steps, or one per step each
    assert len(pieces) == (2 if "distribute" in passes else 12)
    # backward reads the one copy of each piece that forward's cse kept, and transposes it once
    transposed = [s for ins in backward.instrs if ins.op is Transpose
                  for s in ins.inputs if s in backward.inputs and backward.meta[s][0] == (4, 4)]
    assert len(transposed) == len(set(transposed)) == 2


def test_a_rebound_variable_a_new_parameter_or_a_changed_option_traces_again():
    x = mg.ones(4)
    shift = mg.ones(4)
    add_shift = mg.compile(lambda x: x + shift, fallback=False)
    np.testing.assert_array_equal(add_shift(x).data, np.full(4, 2, np.float32))
    shift = mg.zeros(4)
    np.testing.assert_array_equal(add_shift(x).data, np.ones(4, np.float32))
    layer = mg.nn.Linear(4, 2)
    compiled = mg.compile(layer, fallback=False)
    compiled(x)
    layer.weight = mg.nn.Parameter(np.zeros((2, 4), np.float32))
    np.testing.assert_array_equal(compiled(x).data, layer.bias.data)
    drop = mg.nn.Dropout(0.0)
    compiled = mg.compile(drop, fallback=False)
    x = mg.ones(100)
    np.testing.assert_array_equal(compiled(x).data, x.data)
    drop.p = 0.5
    assert set(compiled(x).data) == {0.0, 2.0}
    assert len(add_shift.traces) == len(compiled.traces) == 1  # the new trace replaced the old


def test_free_lets_go_of_each_intermediate_after_its_last_reader():
    def chain(x, w):
        for _ in range(20):
            x = (x @ w).tanh()
        return x.sum()

    x, w = mg.randn(100, 100, dtype=np.float64), mg.randn(100, 100, dtype=np.float64) * 0.1
    peaks = {}
    for passes in (("dce", "fuse"), ("dce", "fuse", "free")):
        compiled = mg.compile(chain, passes=passes, fallback=False)
        with mg.no_grad():
            compiled(x, w)
            tracemalloc.start()
            result = compiled(x, w)
            peaks[passes] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        np.testing.assert_allclose(result.data, chain(x, w).data, rtol=1e-10)
    assert peaks[("dce", "fuse", "free")] < peaks[("dce", "fuse")] / 4  # 20 arrays of 80 kB
    with pytest.raises(ValueError, match="the passes run in the pipeline.s order"):
        mg.compile(chain, passes=("free", "fuse"))


# -- the generated Python -------------------------------------------------------------------------


def one_instruction(op: type, options: dict, arrays: list[np.ndarray]) -> Program:
    """A program of one instruction, ``op(**options)`` on ``arrays``, as tracing records it."""
    fn = op(**options).forward
    raw = fn(*arrays)
    results = raw if type(raw) is tuple else (raw,)
    n = len(arrays)
    meta = {s: (a.shape, a.dtype) for s, a in enumerate([*arrays, *results])}
    outputs = tuple(range(n, n + len(results)))
    ins = Instr(op.__name__, fn, tuple(range(n)), outputs, type(raw) is tuple, op, options)
    return Program([ins], list(range(n)), list(outputs), {}, meta)


@st.composite
def lowered_cases(draw) -> tuple[type, dict, list[np.ndarray]]:
    """An op that codegen writes out as NumPy code, its options and inputs of random shapes."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, max_side=4))
    ndim = len(shape)
    axis = draw(st.integers(-ndim, ndim - 1))
    x = np.random.default_rng(draw(st.integers(0, 99))).standard_normal(shape)
    m, k, n = (draw(st.integers(1, 4)) for _ in range(3))
    a, w = np.ones((m, k)) * 0.5, np.arange(n * k, dtype=np.float64).reshape(n, k)
    bias = draw(st.sampled_from([None, (n,), (m, n), (1, n)]))
    pieces = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    return draw(st.sampled_from([
        (Reshape, {"shape": (-1,)}, [x]),
        (Transpose, {"axes": None}, [x]),
        (Transpose, {"axes": tuple(int(i) for i in np.random.default_rng(k).permutation(ndim))},
         [x]),
        (MatMul, {}, [a, w.T]),
        (Linear, {}, [a, w] + ([] if bias is None else [np.full(bias, 2.0)])),
        (Linear, {}, [a[0], w]),
        (Split, {"sizes": pieces, "axis": axis},
         [np.zeros(shape[:axis % ndim] + (sum(pieces),) + shape[axis % ndim + 1:])]),
        (Unbind, {"axis": axis}, [x]),
        (Concat, {"axis": axis}, [x, x * 2, x + 1]),
        (Stack, {"axis": draw(st.integers(-ndim - 1, ndim))}, [x, x * 2]),
        (Mul, {}, [x, x[..., :1]]),
        (Sum, {"axis": axis, "keepdims": draw(st.booleans())}, [x]),
    ]))


@given(case=lowered_cases())
def test_each_op_that_codegen_writes_out_computes_what_its_forward_computes(case):
    op, options, arrays = case
    program = one_instruction(op, options, arrays)
    want = program.instrs[0].fn(*arrays)
    want = list(want) if type(want) is tuple else [want]
    got = program.run(arrays)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        if op is Sum:  # a matrix's is a product with ones, which adds in another order
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)
        else:
            np.testing.assert_array_equal(g, w)


def test_the_generated_function_calls_each_op_and_lowering_writes_views_and_products_out():
    cell = LSTMCell(3, 4)
    for passes in ((), ("lower",)):
        compiled = mg.compile(cell, passes=passes, fallback=False)
        compiled(mg.randn(2, 3))
        program = compiled.traces[0].forward
        code = program.code
        assert code.startswith("def program(inputs):\n") and "return [" in code
        calls = {ins.label for ins in program.instrs if f" = {ins.label}_" in code}
        if not passes:  # one call per instruction
            assert calls == {ins.label for ins in program.instrs} and " @ " not in code
        else:  # the products and the split written out, the rest called
            assert " @ " in code and "[:, 0:4], " in code and "np.tanh(" in code
            assert "Linear" not in calls and "Split" not in calls and "Tanh" not in calls
        assert "del " not in code  # the free pass writes the dels
    compiled = mg.compile(cell, fallback=False)
    compiled(mg.randn(2, 3))
    assert "del s" in compiled.traces[0].forward.code


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_lstm_steps_kernels_read_the_gates_split_and_write_their_gradients_joined(backend):
    lstm = LSTM(3, 4)
    with kernel_backend(backend):
        compiled = mg.compile(lstm, fallback=False)
        x = mg.randn(5, 2, 3, requires_grad=True)
        assert_close(outputs_and_grads(compiled, (x,), list(lstm.parameters())),
                     outputs_and_grads(lstm, (x,), list(lstm.parameters())))
    forward, backward = compiled.traces[0].forward, compiled.traces[0].backward
    assert not any(ins.op is Split for ins in forward.instrs)
    steps = [ins for ins in forward.kernels() if any(m.op is Split for m in ins.fused)]
    assert len(steps) == 5
    joined = [ins for ins in backward.kernels() if any(m.op is Concat for m in ins.fused)]
    assert len(joined) == 5 and all(backward.meta[ins.outputs[-1]][0] == (2, 16) for ins in joined)
    concats = [ins for ins in backward.instrs if ins.op is Concat]
    assert all(len(ins.inputs) == 5 for ins in concats)  # only gather's, over the steps


@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=25)
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=3), n=st.integers(2, 3),
       data=st.data())
def test_kernels_that_take_in_a_split_and_a_concatenation_compute_what_eager_does(
        backend, shape, n, data):
    ndim = len(shape)
    axis, joined_on = data.draw(st.integers(-ndim, ndim - 1)), data.draw(st.integers(0, ndim - 1))
    read_outside = data.draw(st.booleans())  # a part of the concatenation is also an output
    whole = list(shape)
    whole[axis] *= n
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    x, b = leaf(rng.standard_normal(whole)), leaf(rng.standard_normal(shape[-1:]))

    def f(x, b):
        pieces = x.chunk(n, axis=axis)
        gate = pieces[0].tanh()
        for piece in pieces[1:]:
            gate = gate * piece.sigmoid()
        parts = [gate * piece + b for piece in pieces]  # one chain: all made from the gate
        joined = mg.cat(parts, axis=joined_on)
        return (joined, parts[0] * 2.0) if read_outside else joined

    with kernel_backend(backend):
        compiled = mg.compile(f, fallback=False)
        assert_close(outputs_and_grads(compiled, (x, b)), outputs_and_grads(f, (x, b)))
    forward = compiled.traces[0].forward
    pieces = {s for ins in forward.instrs if ins.op is Split for s in ins.outputs}
    assert not any(pieces & set(ins.inputs) for ins in forward.kernels())  # the whole is read
    # (a split stays only for backward, which reads its pieces); the concatenation is taken in
    # unless one of its parts is also read elsewhere
    assert any(ins.op is Concat for ins in forward.instrs) == read_outside


@settings(max_examples=20)
@given(steps=st.integers(2, 5), axis=st.integers(0, 1), transposed=st.booleans(),
       seed=st.integers(0, 99))
def test_a_weight_split_and_used_at_every_step_gets_eager_gradients_with_one_product_a_piece(
        steps, axis, transposed, seed):
    rng = np.random.default_rng(seed)
    n = 3
    w = leaf(rng.standard_normal((2 * n, n) if axis == 0 else (n, 2 * n)) * 0.5)
    x = leaf(rng.standard_normal((2, n)))

    def f(x, w):
        h = x
        for _ in range(steps):
            a, b = w.chunk(2, axis=axis)
            h = (h @ (a.T if transposed else a)).tanh() * (h @ b.T).sigmoid()
        return h

    compiled = mg.compile(f, fallback=False)
    assert_close(outputs_and_grads(compiled, (x, w)), outputs_and_grads(f, (x, w)))
    backward = compiled.traces[0].backward
    products = [ins for ins in backward.instrs
                if ins.op is MatMul and backward.meta[ins.outputs[0]][0] == (n, n)]
    assert len(products) == 2  # distribute and gather: one for each piece, over all the steps


def test_stages_are_the_programs_after_each_step_of_the_pipeline_ending_where_the_call_runs():
    cell = LSTMCell(3, 4)
    step = mg.compile(cell)
    x, h, c = mg.randn(2, 3, requires_grad=True), mg.zeros(2, 4), mg.zeros(2, 4)
    h, (h, c) = step(x, (h, c))
    (h * h).sum().backward()
    entry = step.traces[0]
    stages = entry.stages()
    names = [name for name, _, _ in stages]
    rest = [p for p in ALL if p not in ("decompose", "cse", "remat")]
    assert names == (["tracing", "decompose", "cse", "remat"] + [f"{p}: backward" for p in rest]
                     + ["link"] + [f"{p}: forward" for p in rest])
    assert stages[0][1] is entry.trace.forward and stages[0][2] is entry.trace.backward
    _, forward, backward = stages[-1]
    assert str(forward) == str(entry.forward) and str(backward) == str(entry.backward)
    counts = {name: (len(f.instrs), len(b.instrs)) for name, f, b in stages}
    assert counts["tracing"] == (13, 19) and counts["fuse: backward"][1] == 6
    assert counts["fuse: forward"][0] == 4
