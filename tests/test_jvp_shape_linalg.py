"""Forward mode for the reduce, shape and linalg ops (max, min, transpose, broadcast_to, sum_to,
getitem, index_add, concat, split, stack, unbind, matmul, linear, einsum): each op's ``jvp``
rule against reverse mode (``J @ t``, with ``J`` from ``jacrev``) and against central
differences, ``jacfwd`` against ``jacrev``, and Hessians of composites of these ops (forward
over reverse against reverse over reverse, forward over forward and finite differences of the
gradient). Float64 throughout, over random shapes with broadcasting.

Outside these three modules the functions use only add, mul, tanh, sum and reshape (and the
ops that backward passes are made of).
"""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import func
from minigrad.autograd import Function
from minigrad.ops import linalg, reduce, shape
from minigrad.ops.elementwise import NonDifferentiable
from minigrad.ops.shape import ARRAY, IndexAdd, SumTo
from tests.strategies import (
    arrays,
    axes,
    axis,
    broadcast_shapes,
    distinct_arrays,
    matmul_shapes,
    shapes,
    shapes_broadcasting_to,
)

H = 1e-6  # central differences' step
RTOL_EXACT = 1e-10  # forward mode against reverse mode: the same sums in another order
RTOL_DIFFERENCES = 1e-6  # against central differences


class Case:
    """A function made of the op under test, with the arrays to call it on (its repr is what
    hypothesis prints for a failing example)."""

    def __init__(self, label: str, f: Callable[..., mg.Tensor], *arrays: np.ndarray) -> None:
        self.label, self.f, self.arrays = label, f, arrays

    def __repr__(self) -> str:
        return f"Case({self.label}, shapes {[a.shape for a in self.arrays]})"


def tensors(arrays) -> tuple[mg.Tensor, ...]:
    return tuple(mg.tensor(a, dtype=np.float64) for a in arrays)


def constant(shape) -> mg.Tensor:
    """A fixed tensor that is no argument of the function: it has no tangent (None in rules)."""
    return mg.tensor(np.linspace(-1.5, 1.5, math.prod(shape)).reshape(shape), dtype=np.float64)


def assert_close(actual: np.ndarray, expected: np.ndarray, rtol: float, what: str) -> None:
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale, err_msg=what)


# -- the cases: one strategy per op (and per way of reaching it) ---------------------------------


@st.composite
def transpose_cases(draw) -> Case:
    a = draw(arrays(draw(shapes())))
    kind = draw(st.sampled_from(["permute", "T", "mT"] if a.ndim >= 2 else ["permute", "T"]))
    if kind == "T":
        return Case("x.T", lambda x: x.T, a)
    if kind == "mT":
        return Case("x.mT", lambda x: x.mT, a)
    perm = tuple(p - a.ndim if draw(st.booleans()) else p
                 for p in draw(st.permutations(range(a.ndim))))
    return Case(f"x.permute{perm}", lambda x: x.permute(perm), a)


@st.composite
def broadcast_to_cases(draw) -> Case:
    target = draw(shapes())
    a = draw(arrays(draw(shapes_broadcasting_to(target))))
    return Case(f"x.broadcast_to({target})", lambda x: x.broadcast_to(target), a)


@st.composite
def sum_to_cases(draw) -> Case:
    small, other = draw(broadcast_shapes(2))
    a = draw(arrays(np.broadcast_shapes(small, other)))
    return Case(f"sum_to(x, {small})", lambda x: SumTo.apply(x, shape=small), a)


@st.composite
def getitem_basic_cases(draw) -> Case:
    a = draw(arrays(draw(shapes(min_dims=1))))
    index = draw(hnp.basic_indices(a.shape, allow_newaxis=True))
    return Case(f"x[{index}]", lambda x: x[index], a)


@st.composite
def getitem_advanced_cases(draw) -> Case:
    a = draw(arrays(draw(shapes(min_dims=1))))
    kind = draw(st.sampled_from(["integers", "mask", "mixed"]))
    if kind == "integers":  # repeats included: their tangents are picked twice
        index = draw(hnp.integer_array_indices(a.shape, result_shape=shapes(max_dims=2)))
    elif kind == "mask":
        index = draw(hnp.arrays(np.bool_, a.shape))
    else:  # a slice, then an integer array along the next axis
        rows = draw(hnp.arrays(np.int64, draw(shapes(max_dims=2)),
                               elements=st.integers(-a.shape[-1], a.shape[-1] - 1)))
        index = (*(slice(None),) * (a.ndim - 1), rows)
    return Case(f"x[{kind} {index!r}]", lambda x: x[index], a)


@st.composite
def index_add_cases(draw) -> Case:
    """index_add, the op under getitem's backward (and setitem): repeated places add up."""
    target = draw(shapes(min_dims=1))
    kind = draw(st.sampled_from(["integers", "rows", "basic"]))
    if kind == "integers":
        found = draw(hnp.integer_array_indices(target, result_shape=shapes(max_dims=2)))
        index, ids = (ARRAY,) * len(found), [mg.tensor(i, dtype=np.int64) for i in found]
        where = found
    elif kind == "rows":  # index=ARRAY: whole rows, as an embedding's backward adds them
        where = draw(hnp.arrays(np.int64, draw(shapes(max_dims=2)),
                                elements=st.integers(-target[0], target[0] - 1)))
        index, ids = ARRAY, [mg.tensor(where, dtype=np.int64)]
    else:
        index = where = draw(hnp.basic_indices(target))
        ids = []
    a = draw(arrays(np.zeros(target)[where].shape))
    return Case(f"index_add({kind} {where!r}, shape={target})",
                lambda x: IndexAdd.apply(x, *ids, index=index, shape=target), a)


@st.composite
def gather_cases(draw) -> Case:
    """getitem reached by gather, max(dim) and sort: the values picked at indices that
    non-differentiable ops (argmax, argsort) compute."""
    a = draw(distinct_arrays(draw(shapes(min_dims=1))))
    dim, keep = draw(axis(a.ndim)), draw(st.booleans())
    kind = draw(st.sampled_from(["max", "min", "sort", "gather"]))
    if kind == "max":
        return Case(f"x.max({dim}, {keep}).values", lambda x: x.max(dim, keep).values, a)
    if kind == "min":
        return Case(f"x.min({dim}, {keep}).values", lambda x: x.min(dim, keep).values, a)
    if kind == "sort":
        return Case(f"x.sort({dim}).values", lambda x: x.sort(dim, descending=keep).values, a)
    n = a.shape[dim]
    index = draw(hnp.arrays(np.int64, a.shape, elements=st.integers(0, n - 1)))
    return Case(f"x.gather({dim}, {index.tolist()})",
                lambda x: x.gather(dim, mg.tensor(index, dtype=np.int64)), a)


@st.composite
def max_cases(draw) -> Case:
    """amax and amin (the ops Max and Min) over any axes, tie-free (ties: a test below)."""
    a = draw(distinct_arrays(draw(shapes())))
    over, keep = draw(axes(a.ndim)), draw(st.booleans())
    if draw(st.booleans()):
        return Case(f"x.amax({over}, {keep})", lambda x: x.amax(over, keepdim=keep), a)
    return Case(f"x.amin({over}, {keep})", lambda x: x.amin(over, keepdim=keep), a)


@st.composite
def _pieces(draw, min_size: int = 0) -> tuple[tuple[int, ...], int, list[tuple[int, ...]]]:
    """A shape, an axis of it, and 1 to 3 shapes that differ from it only along that axis."""
    base = draw(shapes(min_dims=1))
    ax = draw(axis(len(base)))
    sizes = draw(st.lists(st.integers(min_size, 3), min_size=1, max_size=3))
    return base, ax, [base[:ax % len(base)] + (n,) + base[ax % len(base) + 1:] for n in sizes]


@st.composite
def concat_cases(draw) -> Case:
    _, ax, parts = draw(_pieces())
    xs = [draw(arrays(s)) for s in parts]
    if draw(st.booleans()):  # a constant piece too: its part of the tangent is zero
        fixed = constant(parts[0])
        return Case(f"concat([x1, c, ...], {ax})",
                    lambda *ts: mg.concat([ts[0], fixed, *ts[1:]], ax), *xs)
    return Case(f"concat(xs, {ax})", lambda *ts: mg.concat(ts, ax), *xs)


@st.composite
def split_cases(draw) -> Case:
    """split (one op, several outputs): through all its pieces concatenated in reverse order,
    or through one piece only (the others unused)."""
    base, ax, parts = draw(_pieces())
    sizes = [s[ax % len(base)] for s in parts]
    a = draw(arrays(parts[0][:ax % len(base)] + (sum(sizes),) + parts[0][ax % len(base) + 1:]))
    if draw(st.booleans()):
        return Case(f"concat(reversed(x.split({sizes}, {ax})))",
                    lambda x: mg.concat(x.split(sizes, ax)[::-1], ax), a)
    k = draw(st.integers(0, len(sizes) - 1))
    return Case(f"x.split({sizes}, {ax})[{k}]", lambda x: x.split(sizes, ax)[k], a)


@st.composite
def stack_cases(draw) -> Case:
    s = draw(shapes())
    ax = draw(st.integers(-len(s) - 1, len(s)))
    xs = [draw(arrays(s)) for _ in range(draw(st.integers(1, 3)))]
    if draw(st.booleans()):
        fixed = constant(s)
        return Case(f"stack([c, x1, ...], {ax})",
                    lambda *ts: mg.stack([fixed, *ts], ax), *xs)
    return Case(f"stack(xs, {ax})", lambda *ts: mg.stack(ts, ax), *xs)


@st.composite
def unbind_cases(draw) -> Case:
    a = draw(arrays(draw(shapes(min_dims=1))))
    ax = draw(axis(a.ndim))
    if draw(st.booleans()):
        return Case(f"stack(reversed(x.unbind({ax})), {ax})",
                    lambda x: mg.stack(x.unbind(ax)[::-1], ax), a)
    k = draw(st.integers(0, a.shape[ax] - 1))
    return Case(f"x.unbind({ax})[{k}]", lambda x: x.unbind(ax)[k], a)


@st.composite
def matmul_cases(draw) -> Case:
    """1-D and 2-D operands and batch axes that broadcast (a 3-D @ 2-D product is folded into
    one 2-D product by forward: the same path for the tangent's terms)."""
    shape_a, shape_b = draw(matmul_shapes())
    a, b = draw(arrays(shape_a)), draw(arrays(shape_b))
    kind = draw(st.sampled_from(["both", "a", "b"]))
    if kind == "a":  # b a constant: only ȧ @ b
        fixed = mg.tensor(b, dtype=np.float64)
        return Case("x @ B", lambda x: x @ fixed, a)
    if kind == "b":
        fixed = mg.tensor(a, dtype=np.float64)
        return Case("A @ x", lambda x: fixed @ x, b)
    return Case("a @ b", lambda x, y: x @ y, a, b)


@st.composite
def folded_matmul_cases(draw) -> Case:
    """(..., n, m) @ (m, p): forward's folded path, with up to two batch axes."""
    lead = draw(shapes(min_dims=1, max_dims=2))
    n, m, p = (draw(st.integers(1, 3)) for _ in range(3))
    return Case("a @ b (folded)", lambda x, y: x @ y,
                draw(arrays((*lead, n, m))), draw(arrays((m, p))))


@st.composite
def linear_cases(draw) -> Case:
    """x (..., in) with W (out, in), and no bias, a bias (out,), or one that broadcasts to y."""
    lead = draw(shapes(max_dims=2))
    n_in, n_out = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    x, w = draw(arrays((*lead, n_in))), draw(arrays((n_out, n_in)))
    kind = draw(st.sampled_from(["none", "vector", "broadcast"]))
    if kind == "none":
        return Case("linear(x, W)", lambda a, b: F.linear(a, b), x, w)
    bias_shape = (n_out,) if kind == "vector" else draw(shapes_broadcasting_to((*lead, n_out)))
    return Case(f"linear(x, W, b of {bias_shape})", lambda a, b, c: F.linear(a, b, c),
                x, w, draw(arrays(bias_shape)))


EINSUM_SPECS = [
    "ij,jk->ik", "bij,bjk->bik", "ij->ji", "ijk->kj", "ii->i", "ii->", "i,i->", "ij,j->i",
    "i,j->ij", "ij,ij,ij->i", "ij,jk,kl->il", "ii,i->i", "ij,jk",  # (implicit output: "ik")
]


@st.composite
def einsum_cases(draw) -> Case:
    """Contractions, transposes, diagonals, outer products, three operands (NumPy's optimized
    path) and an implicit output; and batch axes that broadcast through "..."."""
    if draw(st.booleans()):
        batch_a, batch_b = draw(broadcast_shapes(2, max_dims=2))
        n, m, p = (draw(st.integers(1, 3)) for _ in range(3))
        return Case("einsum('...ij,...jk->...ik')",
                    lambda a, b: mg.einsum("...ij,...jk->...ik", a, b),
                    draw(arrays((*batch_a, n, m))), draw(arrays((*batch_b, m, p))))
    spec = draw(st.sampled_from(EINSUM_SPECS))
    size = {c: draw(st.integers(1, 3)) for c in sorted(set(spec) - set(",->"))}
    operands = spec.split("->")[0].split(",")
    return Case(f"einsum({spec!r})", lambda *ts: mg.einsum(spec, *ts),
                *[draw(arrays(tuple(size[c] for c in s))) for s in operands])


CASES = {
    "transpose": transpose_cases(),
    "broadcast_to": broadcast_to_cases(),
    "sum_to": sum_to_cases(),
    "getitem_basic": getitem_basic_cases(),
    "getitem_advanced": getitem_advanced_cases(),
    "getitem_gather": gather_cases(),
    "index_add": index_add_cases(),
    "max_min": max_cases(),
    "concat": concat_cases(),
    "split": split_cases(),
    "stack": stack_cases(),
    "unbind": unbind_cases(),
    "matmul": matmul_cases(),
    "matmul_folded": folded_matmul_cases(),
    "linear": linear_cases(),
    "einsum": einsum_cases(),
}


def jacobian_times(jacobians: tuple[mg.Tensor, ...], ts: tuple[np.ndarray, ...]) -> np.ndarray:
    """sum_k J_k @ t_k, each J_k of shape out + in_k contracted with t_k over in_k's axes."""
    return sum(np.tensordot(J.data, t, axes=t.ndim) for J, t in zip(jacobians, ts))


@pytest.mark.parametrize("name", CASES)
@given(data=st.data())
def test_jvp_equals_reverse_mode_central_differences_and_jacfwd_equals_jacrev(name, data):
    """For the op's function f at x along t: (1) mg.func.jvp's tangent equals J @ t with J from
    jacrev; (2) it equals (f(x + h t) - f(x - h t)) / 2h; (3) jacfwd's Jacobian (one jvp per
    input element) equals jacrev's, with respect to every argument."""
    case = data.draw(CASES[name], label="case")
    ts = tuple(data.draw(arrays(a.shape), label=f"tangent {k}")
               for k, a in enumerate(case.arrays))
    xs, argnums = tensors(case.arrays), tuple(range(len(case.arrays)))

    y, ty = func.jvp(case.f, xs, tensors(ts))
    assert ty.shape == y.shape and ty.dtype == y.dtype
    assert_close(y.data, case.f(*xs).data, 0, "jvp's output is f(x)")

    jacobians = func.jacrev(case.f, argnums)(*xs)
    assert_close(ty.data, jacobian_times(jacobians, ts), RTOL_EXACT, "jvp against jacrev's J @ t")

    with mg.no_grad():
        ahead = case.f(*tensors([a + H * t for a, t in zip(case.arrays, ts)])).data
        behind = case.f(*tensors([a - H * t for a, t in zip(case.arrays, ts)])).data
    assert_close(ty.data, (ahead - behind) / (2 * H), RTOL_DIFFERENCES,
                 "jvp against central differences")

    for k, (forward, reverse) in enumerate(zip(func.jacfwd(case.f, argnums)(*xs), jacobians)):
        assert_close(forward.data, reverse.data, RTOL_EXACT, f"jacfwd against jacrev, arg {k}")


# -- ties, and the rules' reach -------------------------------------------------------------------


@pytest.mark.parametrize("op", ["amax", "amin"])
def test_tied_extremes_share_the_tangent_as_backward_shares_the_gradient(op: str) -> None:
    """At ties the tangent is the mean of the tangents at the tied extremes: J @ t with the
    Jacobian of the backward rule (ties share the gradient)."""
    sign = 1.0 if op == "amax" else -1.0
    x = mg.tensor(sign * np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [0.0, 5.0, -1.0]]),
                  dtype=np.float64)
    t = mg.tensor(np.arange(9.0).reshape(3, 3) ** 2, dtype=np.float64)
    for over, expected in [(1, [(1 + 4) / 2, (9 + 16 + 25) / 3, 49]), (None, 49.0),
                           (0, [9, 49, 4]), ((0, 1), 49.0)]:
        def f(a: mg.Tensor, over=over) -> mg.Tensor:
            return getattr(a, op)(over)

        _, ty = func.jvp(f, (x,), (t,))
        np.testing.assert_allclose(ty.data, expected, rtol=1e-15)
        np.testing.assert_allclose(ty.data, jacobian_times((func.jacrev(f)(x),), (t.data,)),
                                   rtol=1e-15)
        np.testing.assert_allclose(func.jacfwd(f)(x).data, func.jacrev(f)(x).data, rtol=1e-15)


def test_max_along_a_dim_at_ties_takes_the_tangent_at_the_index() -> None:
    """max(dim)'s values are picked at argmax's index (the first of tied maxima), as its
    gradient goes to that index: so does its tangent; the indices have none."""
    x = mg.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], dtype=np.float64)
    t = mg.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float64)
    (values, indices), (tv, ti) = func.jvp(lambda a: tuple(a.max(1)), (x,), (t,))
    np.testing.assert_array_equal(tv.data, [2.0, 4.0])
    np.testing.assert_array_equal(ti.data, [0, 0])  # zeros: no tangent
    assert not indices.requires_grad


def _own_ops(module) -> list[type[Function]]:
    return [c for _, c in inspect.getmembers(module, inspect.isclass)
            if c.__module__ == module.__name__ and issubclass(c, Function)]


@pytest.mark.parametrize("module", [reduce, shape, linalg], ids=lambda m: m.__name__)
def test_every_differentiable_op_has_a_jvp_rule_stated_in_its_docstring(module) -> None:
    ops = [c for c in _own_ops(module) if not issubclass(c, NonDifferentiable)]
    assert ops
    for op in ops:
        assert op.jvp is not Function.jvp, f"{op.__name__} has no jvp rule"
        assert "ẏ" in op.__doc__, f"{op.__name__}'s docstring does not state its tangent rule"


# -- Hessians of composites: forward over reverse, reverse over reverse, forward over forward ----


def _square_sum(z: mg.Tensor) -> mg.Tensor:
    return (z * z).sum()


W = constant((3, 2))


def _split_stack(x: mg.Tensor) -> mg.Tensor:
    first, rest = x.split([1, x.shape[1] - 1], 1)
    return _square_sum(mg.stack([first.broadcast_to(rest.shape) * rest, rest], 0)
                       .sum_to_size(1, *rest.shape))


HESSIAN_CASES: dict[str, Callable[[mg.Tensor], mg.Tensor]] = {
    "square of a matmul's column sums": lambda x: _square_sum((x @ W).sum(0)),
    "matmul chain with transpose and concat":
        lambda x: _square_sum((mg.concat([x.T @ x, x.T], 1).T @ x.T).tanh()),
    "einsum bilinear form": lambda x: mg.einsum("ij,jk,ik->", x, W @ W.T, x),
    "einsum quartic": lambda x: mg.einsum("ij,kj,kl->", x, x, x @ x.mT),
    "linear with weight and bias of x": lambda x: _square_sum(F.linear(x, x.T @ x, x[0])),
    "amax and amin products": lambda x: (x.amax(1) * x.amin(0).sum() * x.amax()).sum(),
    "getitem and index_add": lambda x: (x[np.array([0, 0, -1])].sum(0) * x[-1, ::-1]).sum()
        + (x[np.arange(x.shape[0])[::-1]] * x[:, ::-1]).sum()
        + _square_sum(IndexAdd.apply(x, mg.tensor([2, 0, 2][:x.shape[0]], dtype=np.int64),
                                     index=ARRAY, shape=(4, x.shape[1]))),
    "split, stack, broadcast_to, sum_to": _split_stack,
    "unbind and stack": lambda x: _square_sum(mg.stack(x.unbind(1), 0) @ x),
    "matmul of batch-broadcast operands":
        lambda x: _square_sum(x.reshape(1, *x.shape) @ mg.stack([x.T, x.T * x.T], 0)),
}


@pytest.mark.parametrize("name", HESSIAN_CASES)
@given(data=st.data())
def test_hessians_of_composites(name: str, data) -> None:
    """mg.func.hessian (jacfwd over jacrev) is symmetric and equals jacfwd(jacrev(f)),
    jacrev(jacrev(f)), jacfwd(jacfwd(f)) (nested forward levels) and jacrev(jacfwd(f)); H @ v
    equals the forward-over-reverse product jvp(grad(f), x, v) and central differences of the
    gradient."""
    f = HESSIAN_CASES[name]
    n = data.draw(st.integers(1, 3), label="rows")
    a = data.draw(distinct_arrays((n, 3)), label="x")  # tie-free for amax and amin
    v = data.draw(arrays((n, 3)), label="v")
    x, size = mg.tensor(a, dtype=np.float64), a.size
    hess = func.hessian(f)(x).data
    assert hess.shape == (n, 3, n, 3)
    square = hess.reshape(size, size)
    assert_close(square, square.T, RTOL_EXACT, "symmetric")
    for label, other in [("jacfwd(jacrev)", func.jacfwd(func.jacrev(f))),
                         ("jacrev(jacrev)", func.jacrev(func.jacrev(f))),
                         ("jacfwd(jacfwd)", func.jacfwd(func.jacfwd(f))),
                         ("jacrev(jacfwd)", func.jacrev(func.jacfwd(f)))]:
        assert_close(other(x).data, hess, RTOL_EXACT, label)
    product = np.tensordot(hess, v, axes=2)
    _, hvp = func.jvp(func.grad(f), (x,), (mg.tensor(v, dtype=np.float64),))
    assert_close(hvp.data, product, RTOL_EXACT, "forward-over-reverse Hessian-vector product")
    ahead, behind = (func.grad(f)(mg.tensor(a + s * H * v, dtype=np.float64)).data
                     for s in (1, -1))
    assert_close((ahead - behind) / (2 * H), product, RTOL_DIFFERENCES,
                 "central differences of the gradient")


def test_split_with_empty_pieces_and_all_pieces_used() -> None:
    """Pieces of length 0 have empty tangents; the others' tangents are the pieces of ẋ."""
    x = mg.tensor(np.arange(12.0).reshape(3, 4), dtype=np.float64)
    t = mg.tensor(np.arange(12.0).reshape(3, 4) * 0.5, dtype=np.float64)
    pieces, tangents = func.jvp(lambda a: a.split([0, 3, 0, 1], 1), (x,), (t,))
    assert [p.shape for p in tangents] == [(3, 0), (3, 3), (3, 0), (3, 1)]
    for got, want in zip(tangents, np.split(t.data, list(itertools.accumulate([0, 3, 0])), 1)):
        np.testing.assert_array_equal(got.data, want)
