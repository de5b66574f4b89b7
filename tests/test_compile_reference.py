"""The real compiler held to the textbook one (minigrad/compile/reference.py): the same outputs
and gradients on random expressions, on every cell and on a language model's training step;
a program means what ``Program.interpret`` does, and generated code does the same; the checker
of minigrad/compile/check.py catches a pass that breaks a program, and names the pass."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad.compile import pipeline, reference
from minigrad.compile.check import ProgramError, check
from minigrad.models import RNNLM, CoupledLSTMCell, GRUCell, LSTMCell, PeepholeLSTMCell, RNNCell
from tests.strategies import leaf
from tests.test_compile import BACKENDS, MinimalGatedCell, kernel_backend
from tests.test_expressions import expressions


def weighted_sum(outputs):
    """The outputs that require grad, each weighted elementwise by fixed random weights, summed:
    one scalar whose gradients depend on every output element."""
    rng = np.random.default_rng(0)
    return sum((y * mg.tensor(rng.uniform(-1, 1, y.shape), dtype=y.dtype)).sum()
               for y in outputs if y.requires_grad)


def with_gradients(fn, wrt_params=()):
    """A function that returns ``fn``'s outputs and then the gradients of their weighted sum
    (fixed random weights) with respect to its tensor arguments that require grad and to
    ``wrt_params``, recorded with create_graph=True: what the reference compiles."""
    def value_and_grads(*args):
        outputs = reference._leaves(fn(*args))
        total = weighted_sum(outputs)
        wrt = [x for x in args if x.requires_grad] + list(wrt_params)
        grads = mg.grad(total, wrt, create_graph=True, allow_unused=True)
        return (*outputs, *[mg.zeros_like(x) if g is None else g for x, g in zip(wrt, grads)])

    return value_and_grads


def compiled_outputs_and_grads(compiled, args, params=()):
    """The real compiler's outputs and the gradients of the same weighted sum, by backward."""
    outputs = reference._leaves(compiled(*args))
    total = weighted_sum(outputs)
    wrt = [x for x in args if x.requires_grad] + list(params)
    grads = mg.grad(total, wrt, allow_unused=True)
    return [*outputs, *[mg.zeros_like(x) if g is None else g for x, g in zip(wrt, grads)]]


def assert_same(got, want, rtol=1e-10):
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a.shape == b.shape and a.dtype == b.dtype
        scale = max(1.0, float(np.abs(b.data).max(initial=0)))
        np.testing.assert_allclose(a.data, b.data, rtol=rtol, atol=rtol * scale)


def assert_real_equals_reference(fn, make_args, params=(), rtol=1e-10):
    """Trace both compilers at the first arguments, then compare them at other ones (what a
    replay computes, not what the tracing call did)."""
    textbook = reference.compile(with_gradients(fn, params))
    real = mg.compile(fn, fallback=False)
    for seed in (0, 1, 2):
        args = make_args(seed)
        assert_same(compiled_outputs_and_grads(real, args, params), textbook(*args), rtol)


@pytest.mark.parametrize("backend", BACKENDS)
@given(expr=expressions())
def test_random_expressions_compile_to_what_the_textbook_compiler_computes(expr, backend):
    with kernel_backend(backend):
        assert_real_equals_reference(
            expr, lambda seed: [leaf(np.tanh(a + seed)) for a in expr.inputs])


@pytest.mark.parametrize("cell_type", [RNNCell, LSTMCell, GRUCell, PeepholeLSTMCell,
                                       CoupledLSTMCell, MinimalGatedCell])
@given(batch=st.integers(1, 3), input_size=st.integers(1, 4), hidden=st.integers(1, 4))
def test_every_cells_step_compiles_to_what_the_textbook_compiler_computes(cell_type, batch,
                                                                         input_size, hidden):
    mg.manual_seed(0)
    cell = cell_type(input_size, hidden).double()
    rng = np.random.default_rng(batch)

    def step(x, *state):
        h, new_state = cell(x, state if len(state) > 1 else state[0])
        return (h, *reference._leaves(new_state))

    def make_args(seed):
        x = mg.tensor(rng.normal(size=(batch, input_size)), requires_grad=True)
        state = cell.init_state(batch, np.float64)
        state = state if isinstance(state, tuple) else (state,)
        return [x, *(mg.tensor(rng.normal(size=s.shape), requires_grad=True) for s in state)]

    assert_real_equals_reference(step, make_args, list(cell.parameters()))


def test_a_language_models_training_step_compiles_to_what_the_textbook_compiler_computes():
    mg.manual_seed(0)
    model = RNNLM(30, 8, 16).double()
    rng = np.random.default_rng(0)

    def loss(ids, targets):
        return model.loss(ids, targets)[0]

    def make_args(seed):
        return [mg.tensor(rng.integers(0, 30, (7, 3))) for _ in range(2)]

    assert_real_equals_reference(loss, make_args, list(model.parameters()))


@given(expr=expressions())
def test_generated_code_runs_a_program_as_the_interpreter_does(expr):
    compiled = mg.compile(expr, fallback=False)
    args = [leaf(np.tanh(a)) for a in expr.inputs]
    compiled(*args).backward()
    spec = compiled.traces[0]
    for program in (spec.forward, spec.backward, *spec.traced):
        arrays = [np.random.default_rng(s).normal(size=program.meta[s][0]).astype(
            program.meta[s][1]) for s in program.inputs]
        for got, want in zip(program.run(arrays), program.interpret(arrays)):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_the_textbook_trace_records_every_op_and_dce_keeps_only_what_outputs_need():
    w = mg.randn(3, 2)

    def f(x):
        unused = (x * 2).exp()  # noqa: F841  (recorded, then dropped by dce)
        return (x @ w).tanh().sum()

    program, outside, nesting = reference.trace(f, mg.randn(4, 3))
    assert [ins.label for ins in program.instrs] == ["Mul", "Exp", "MatMul", "Tanh", "Sum"]
    assert outside[-1] is w and len(program.inputs) == 1 + len(outside) and nesting is None
    kept = reference.dead_code_elimination(program)
    assert [ins.label for ins in kept.instrs] == ["MatMul", "Tanh", "Sum"]
    x = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    (y,) = reference.interpret(kept, [x, *(t.data for t in outside)])
    np.testing.assert_allclose(y, np.tanh(x @ w.data).sum(), rtol=1e-6)


def test_dce_keeps_a_random_draw_nobody_reads_so_later_draws_do_not_shift():
    def f(x):
        mg.nn.functional.dropout(x, 0.5)  # drawn, then dropped: still drawn at every run
        return mg.nn.functional.dropout(x, 0.5)

    x = mg.ones(50, dtype=np.float64)
    compiled = reference.compile(f)
    compiled(x)
    mg.manual_seed(3)
    got = compiled(x)
    mg.manual_seed(3)
    np.testing.assert_array_equal(got.data, f(x).data)


def test_the_textbook_trace_puts_function_apply_back_when_the_function_raises():
    apply = mg.Function.__dict__["apply"]

    def broken(x):
        x.exp()
        raise KeyError("inside")

    with pytest.raises(KeyError, match="inside"):
        reference.trace(broken, mg.randn(2))
    assert mg.Function.__dict__["apply"] is apply


def traced_program():
    x, w = mg.randn(4, 3, requires_grad=True), mg.randn(3, 3, requires_grad=True)
    program, outside, _ = reference.trace(lambda x: (x @ w).tanh().exp().sum(), x)
    return program, [x.data, *(t.data for t in outside)]


def test_the_checker_passes_a_well_formed_program_and_returns_every_slots_array():
    program, arrays = traced_program()
    values = check(program, arrays)
    assert set(values) >= set(program.outputs)
    assert values[program.outputs[0]] == pytest.approx(program.interpret(arrays)[0])


@pytest.mark.parametrize("breaking, message", [
    (lambda p: replace(p, instrs=p.instrs[1:]), "which nothing defined before"),
    (lambda p: replace(p, instrs=[p.instrs[0], p.instrs[0], *p.instrs[1:]]),
     "which is defined already"),
    (lambda p: replace(p, instrs=[replace(p.instrs[0], frees=(p.instrs[0].outputs[0],)),
                                  *p.instrs[1:]]), "freed"),
    (lambda p: replace(p, meta={**p.meta, p.outputs[0]: ((7,), np.dtype(np.float32))}),
     "made f32"),
    (lambda p: replace(p, outputs=[*p.outputs, 999]), "output s999 is never defined"),
])
def test_the_checker_catches_each_rule_broken(breaking, message):
    program, arrays = traced_program()
    with pytest.raises(ProgramError, match=message):
        check(breaking(program), arrays)


def test_a_pass_that_breaks_a_program_is_named_where_it_happens(monkeypatch):
    def forgetful(program):  # drops the first instruction, which later ones read
        return replace(program, instrs=program.instrs[1:])

    monkeypatch.setitem(pipeline.PASSES, "gather", forgetful)
    compiled = mg.compile(lambda x: (x * 2).tanh().sum(), fallback=False)
    with pytest.raises(ProgramError, match="after the gather pass is malformed"):
        compiled(mg.randn(3, requires_grad=True))
