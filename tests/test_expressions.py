"""Random expressions built from many ops, with fan-out, reuse and broadcasting, gradchecked
as a whole: this tests the engine (accumulation at fan-out, reduction of broadcast gradients,
topological order), not only each op on its own."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

import minigrad as mg
from tests.strategies import arrays, axes, axis, leaf, same_size_shapes, shapes

LIMIT = 100.0  # largest magnitude of any value, so that finite differences stay accurate

UNARY: dict[str, Callable[[mg.Tensor], mg.Tensor]] = {
    "tanh": mg.tanh,
    "sigmoid": mg.sigmoid,
    "exp_tanh": lambda x: x.tanh().exp(),
    "log1p_square": lambda x: (1 + x * x).log(),
    "square": lambda x: x * x,
    "hypot1": lambda x: (1 + x * x).sqrt(),
}
ELEMENTWISE: dict[str, Callable[[mg.Tensor, mg.Tensor], mg.Tensor]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": lambda a, b: a / (1.5 + b.tanh()),  # the divisor lies in [0.5, 2.5]
}


@dataclass(frozen=True)
class Step:
    """``fn`` applied to earlier values ``args`` (indices into inputs + earlier results)."""

    label: str
    args: tuple[int, ...]
    fn: Callable[..., mg.Tensor]


@dataclass(frozen=True)
class Expression:
    """Inputs, the steps that combine them and a random weighting of the unused results that
    turns them into one scalar."""

    inputs: tuple[np.ndarray, ...]
    steps: tuple[Step, ...]
    weights: dict[int, np.ndarray]

    def __call__(self, *inputs: mg.Tensor) -> mg.Tensor:
        values = list(inputs)
        for step in self.steps:
            values.append(step.fn(*[values[i] for i in step.args]))
        terms = [(values[k] * mg.tensor(w)).sum() for k, w in self.weights.items()]
        return sum(terms[1:], terms[0])

    def leaves(self) -> list[mg.Tensor]:
        """Fresh float64 leaves of the inputs."""
        return [leaf(a) for a in self.inputs]

    def __repr__(self) -> str:
        n = len(self.inputs)
        lines = [f"v{i} = input{a.shape}" for i, a in enumerate(self.inputs)]
        for k, step in enumerate(self.steps, n):
            lines.append(f"v{k} = {step.label}({', '.join(f'v{i}' for i in step.args)})")
        lines.append("out = " + " + ".join(f"sum(v{k} * w{k})" for k in self.weights))
        return "\n".join(lines)


def _fits_matmul(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    if not a or not b:
        return False
    try:
        np.broadcast_shapes(a[:-2], b[:-2])
    except ValueError:
        return False
    return a[-1] == (b[0] if len(b) == 1 else b[-2])


def _broadcasts(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    try:
        np.broadcast_shapes(a, b)
    except ValueError:
        return False
    return True


OPS = [*ELEMENTWISE, *UNARY, "matmul", "sum", "mean", "var", "softmax", "reshape", "permute",
       "unsqueeze", "squeeze", "flatten"]


@st.composite
def step_on(draw, values: list[mg.Tensor]) -> Step:
    """One random op applied to randomly chosen earlier values (recent ones first)."""
    i = len(values) - 1 - draw(st.integers(0, len(values) - 1))
    x = values[i]
    partners = [j for j, v in enumerate(values) if _broadcasts(x.shape, v.shape)]  # i is one
    matmul_partners = [j for j, v in enumerate(values) if _fits_matmul(x.shape, v.shape)]
    name = draw(st.sampled_from(OPS).filter(
        lambda op: (op not in ("softmax", "flatten") or x.ndim > 0)
        and (op != "matmul" or matmul_partners)
    ))
    if name in UNARY:
        return Step(name, (i,), UNARY[name])
    if name in ELEMENTWISE:
        return Step(name, (i, draw(st.sampled_from(partners))), ELEMENTWISE[name])
    if name == "matmul":
        return Step(name, (i, draw(st.sampled_from(matmul_partners))), operator.matmul)
    if name in ("sum", "mean"):
        ax, keep = draw(axes(x.ndim)), draw(st.booleans())
        reduce = getattr(mg.Tensor, name)
        return Step(f"{name}[axis={ax}, keepdims={keep}]", (i,), lambda t: reduce(t, ax, keep))
    if name == "var":
        ax, keep = draw(axes(x.ndim)), draw(st.booleans())
        chosen = range(x.ndim) if ax is None else np.atleast_1d(ax)
        c = int(math.prod(x.shape[a] for a in chosen) > 1)  # keep a degree of freedom
        return Step(f"var[axis={ax}, keepdims={keep}, correction={c}]", (i,),
                    lambda t: t.var(ax, keepdim=keep, correction=c))
    if name == "unsqueeze":
        ax = draw(st.integers(-x.ndim - 1, x.ndim))
        return Step(f"unsqueeze[{ax}]", (i,), lambda t: t.unsqueeze(ax))
    if name == "squeeze":
        ax = draw(axes(x.ndim))
        return Step(f"squeeze[{ax}]", (i,), lambda t: t.squeeze(ax))
    if name == "flatten":
        start, end = sorted(draw(st.lists(axis(x.ndim), min_size=2, max_size=2)),
                            key=lambda a: a % x.ndim)
        return Step(f"flatten[{start}, {end}]", (i,), lambda t: t.flatten(start, end))
    if name == "softmax":
        ax = draw(axis(x.ndim))
        return Step(f"softmax[axis={ax}]", (i,), lambda t: t.softmax(ax))
    if name == "reshape":
        new = draw(same_size_shapes(x.numel()))
        return Step(f"reshape{new}", (i,), lambda t: t.reshape(new))
    perm = tuple(draw(st.permutations(range(x.ndim))))
    return Step(f"permute{perm}", (i,), lambda t: t.permute(perm))


@st.composite
def input_shapes(draw, n: int) -> list[tuple[int, ...]]:
    """``n`` shapes that broadcast together: a full shape of 1-3 axes of length 2-3, and
    suffixes of it with some axes set to 1, in random order. (tests/strategies.broadcast_shapes
    mostly draws 0-d and size-1 shapes, too small to exercise broadcasting and matmul here.)"""
    full = draw(shapes(min_dims=1, max_dims=3, min_side=2))
    result = [full]
    for _ in range(n - 1):
        suffix = full[len(full) - draw(st.integers(0, len(full))):]
        result.append(tuple(1 if draw(st.booleans()) else d for d in suffix))
    return draw(st.permutations(result))


@st.composite
def expressions(draw) -> Expression:
    """2-3 broadcast-compatible float64 inputs and 3-8 random ops on them."""
    n = draw(st.integers(2, 3))
    inputs = tuple(draw(arrays(s)) for s in draw(input_shapes(n)))
    values = [mg.tensor(a) for a in inputs]
    steps, used = [], set()
    for _ in range(draw(st.integers(3, 8))):
        step = draw(step_on(values))
        y = step.fn(*[values[i] for i in step.args])
        assume(np.abs(y.data).max(initial=0.0) <= LIMIT)
        steps.append(step)
        used.update(step.args)
        values.append(y)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    weights = {k: rng.uniform(-1, 1, values[k].shape)
               for k in range(n, len(values)) if k not in used}
    return Expression(inputs, tuple(steps), weights)


@given(expressions())
def test_random_expression_gradients(expr):
    assert mg.gradcheck(expr, expr.leaves())


@given(expressions())
def test_random_expression_backward_matches_grad(expr):
    # .backward() accumulates into .grad where mg.grad captures: both must agree
    xs = expr.leaves()
    expected = mg.grad(expr(*xs), xs, allow_unused=True)
    expr(*xs).backward()
    for x, g in zip(xs, expected):
        if g is None:
            assert x.grad is None
        else:
            np.testing.assert_allclose(x.grad.data, g.data, rtol=1e-12, atol=1e-12)


@given(expressions())
def test_random_expression_second_derivatives(expr):
    assert mg.gradgradcheck(expr, expr.leaves())
