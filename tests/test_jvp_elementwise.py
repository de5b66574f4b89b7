"""Forward mode through the elementwise and probability ops: every op's ``jvp`` rule against
reverse mode (``J @ t`` from ``mg.func.jacrev``) and central differences, with broadcasting and
with each input alone (the others' tangents None); ``jacfwd`` against ``jacrev``; tangent
dtypes; Hessian-vector products of composite functions by forward over reverse, reverse over
forward and forward over forward, against ``hessian``; and the error of an op without a rule."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from minigrad import func
from minigrad.autograd import Function
from minigrad.nn import functional as F
from minigrad.ops import elementwise as ew
from minigrad.ops import probability as pr
from tests.strategies import (
    arrays,
    axis,
    broadcast_shapes,
    distinct_arrays,
    shapes,
    shapes_broadcasting_to,
)

F64 = np.dtype(np.float64)
H = 1e-6  # the step of central differences


def assert_close(got, want, rel: float, what: str) -> None:
    """Equal within ``rel``, relative to each element and to the largest of ``want``."""
    got = got.data if isinstance(got, mg.Tensor) else np.asarray(got)
    want = want.data if isinstance(want, mg.Tensor) else np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    scale = max(1.0, float(np.abs(want).max(initial=0.0)))
    np.testing.assert_allclose(got, want, rtol=rel, atol=rel * scale, err_msg=what)


# -- the cases: a function of input tensors that uses the op, drawn with its inputs --------------

Drawn = tuple[Callable[..., mg.Tensor], list[np.ndarray]]


def unary(op: Callable[[mg.Tensor], mg.Tensor], lo: float = -2.0, hi: float = 2.0,
          avoid: tuple[float, ...] = ()) -> st.SearchStrategy[Drawn]:
    """One input of any shape in ``[lo, hi]``, away from the op's kinks."""
    return shapes().flatmap(lambda s: arrays(s, lo, hi, avoid=avoid)).map(lambda a: (op, [a]))


@st.composite
def binary(draw, op: Callable[[mg.Tensor, mg.Tensor], mg.Tensor], a_lo: float = -2.0,
           b_avoid: tuple[float, ...] = (), distinct: bool = False) -> Drawn:
    """Two inputs of shapes that broadcast together (b away from ``b_avoid``; all elements
    pairwise apart with ``distinct``, so that maximum and minimum have no ties)."""
    shape_a, shape_b = draw(broadcast_shapes(2))
    if distinct:
        cut = math.prod(shape_a)
        flat = draw(distinct_arrays((cut + math.prod(shape_b),)))
        return op, [flat[:cut].reshape(shape_a), flat[cut:].reshape(shape_b)]
    return op, [draw(arrays(shape_a, a_lo)), draw(arrays(shape_b, avoid=b_avoid, gap=0.5))]


@st.composite
def where_case(draw) -> Drawn:
    """``where(cond, a, b)``, all three broadcasting; cond is a constant."""
    shape_c, shape_a, shape_b = draw(broadcast_shapes(3))
    cond = draw(hnp.arrays(np.bool_, shape_c))
    return (lambda a, b: mg.where(cond, a, b)), [draw(arrays(shape_a)), draw(arrays(shape_b))]


@st.composite
def masked_fill_case(draw) -> Drawn:
    """``masked_fill``: where(mask, a constant, x), so the first branch has no tangent."""
    shape = draw(shapes())
    mask = draw(hnp.arrays(np.bool_, shape[draw(st.integers(0, len(shape))):]))
    return (lambda x: x.masked_fill(mask, 0.5)), [draw(arrays(shape))]


@st.composite
def along_axis(draw, op: Callable[[mg.Tensor, int], mg.Tensor]) -> Drawn:
    """softmax and log_softmax: one input of one or more axes, along one of them."""
    a = draw(arrays(draw(shapes(min_dims=1)), -3.0, 3.0))
    ax = draw(axis(a.ndim))
    return (lambda x: op(x, ax)), [a]


@st.composite
def class_targets(draw, logits_shape: tuple[int, ...], ax: int, ignore: bool) -> np.ndarray:
    """Class ids for logits with classes on ``ax``; with ``ignore``, some are -100 (ignored),
    never the first."""
    shape = logits_shape[:ax] + logits_shape[ax + 1:]
    t = draw(hnp.arrays(np.int64, shape, elements=st.integers(0, logits_shape[ax] - 1)))
    if ignore and t.size > 1:
        drop = draw(hnp.arrays(np.bool_, shape))
        drop.flat[0] = False
        t = np.where(drop, -100, t)
    return t


@st.composite
def cross_entropy_case(draw) -> Drawn:
    """``F.cross_entropy`` of class ids (the fused ``CrossEntropy``; with class weights, its
    weights are not ``ClassTargets``'), classes on any axis, every reduction."""
    x = draw(arrays(draw(shapes(min_dims=1)), -3.0, 3.0))
    ax = draw(st.integers(0, x.ndim - 1))
    t = draw(class_targets(x.shape, ax, draw(st.booleans())))
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    weight = draw(st.none() | arrays((x.shape[ax],), 0.5, 2.0))

    def f(x):
        w = None if weight is None else mg.tensor(weight, dtype=x.dtype)
        return F.cross_entropy(x, t, w, reduction=reduction, axis=ax)

    return f, [x]


@st.composite
def cross_entropy_grad_case(draw) -> Drawn:
    """``CrossEntropyGrad`` of the logits ``x`` and the loss's gradient ``g`` (0-d for 'mean'
    and 'sum', the target's shape for 'none'); its targets and weights are constants."""
    x = draw(arrays(draw(shapes(min_dims=1)), -3.0, 3.0))
    ax = draw(st.integers(0, x.ndim - 1))
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    t = draw(class_targets(x.shape, ax, ignore=False))
    w = draw(arrays(t.shape, 0.0, 1.0))
    g = draw(arrays(t.shape if reduction == "none" else ()))

    def f(x, g):
        return pr.CrossEntropyGrad.apply(x, mg.tensor(t), mg.tensor(w, dtype=x.dtype), g,
                                         axis=ax, reduction=reduction)

    return f, [x, g]


CASES: dict[str, st.SearchStrategy[Drawn]] = {
    # elementwise.py
    "add": binary(lambda a, b: a + b),
    "sub": binary(lambda a, b: a - b),
    "rsub": unary(lambda x: 1.5 - x),  # Sub with no tangent for a
    "mul": binary(lambda a, b: a * b),
    "div": binary(lambda a, b: a / b, b_avoid=(0.0,)),
    "rdiv": unary(lambda x: 2.0 / x, lo=0.5),  # Div with no tangent for a
    "neg": unary(lambda x: -x),
    "pow_2": unary(lambda x: x ** 2),
    "pow_3": unary(lambda x: x ** 3),
    "pow_0": unary(lambda x: x ** 0),
    "pow_1": unary(lambda x: x ** 1),
    "pow_neg_int": unary(lambda x: x ** -2, lo=0.5),
    "pow_half": unary(lambda x: x ** 0.5, lo=0.5),
    "pow_frac": unary(lambda x: x ** 2.5, lo=0.5),
    "pow_neg_frac": unary(lambda x: x ** -1.5, lo=0.5),
    "pow_tensor": binary(lambda a, b: a ** b, a_lo=0.5),
    "rpow": unary(lambda x: 1.5 ** x),  # PowTensor with no tangent for a
    "pow_tensor_base": unary(lambda x: x ** mg.tensor(-1.5), lo=0.5),  # no tangent for b
    "exp": unary(mg.Tensor.exp),
    "log": unary(mg.Tensor.log, lo=0.2, hi=3.0),
    "tanh": unary(mg.Tensor.tanh),
    "tanh_grad": binary(ew.TanhGrad.apply),
    "sigmoid": unary(mg.Tensor.sigmoid, lo=-4.0, hi=4.0),
    "sigmoid_grad": binary(ew.SigmoidGrad.apply),
    "relu": unary(mg.Tensor.relu, avoid=(0.0,)),
    "sqrt": unary(mg.Tensor.sqrt, lo=0.2, hi=3.0),
    "abs": unary(mg.Tensor.abs, avoid=(0.0,)),
    "clip": unary(lambda x: x.clip(-1.0, 0.5), avoid=(-1.0, 0.5)),
    "clip_lo": unary(lambda x: x.clip(min=-0.5), avoid=(-0.5,)),
    "clip_hi": unary(lambda x: x.clamp(max=0.5), avoid=(0.5,)),
    "where": where_case(),
    "masked_fill": masked_fill_case(),
    "maximum": binary(mg.maximum, distinct=True),
    "minimum": binary(mg.minimum, distinct=True),
    "cast": unary(lambda x: ew.Cast.apply(x, dtype=F64)),  # float32 -> float64 in the dtype check
    "clone": unary(mg.Tensor.clone),
    # probability.py
    "softmax": along_axis(mg.softmax),
    "log_softmax": along_axis(mg.log_softmax),
    "cross_entropy": cross_entropy_case(),
    "cross_entropy_grad": cross_entropy_grad_case(),
}


def jacobian_times(jacobians: tuple[mg.Tensor, ...], tangents: list[np.ndarray],
                   shape: tuple[int, ...]) -> np.ndarray:
    """``sum_k J_k @ t_k``, of the output's ``shape``."""
    size = math.prod(shape)
    return sum(J.data.reshape(size, -1) @ t.ravel() for J, t in zip(jacobians, tangents)
               ).reshape(shape)


@pytest.mark.parametrize("name", CASES)
@given(data=st.data())
def test_jvp_matches_reverse_mode_and_central_differences(name: str, data) -> None:
    """1. jvp = J @ t with J from jacrev, along all inputs and along each alone (so that the
    rule meets None tangents); 2. jvp = central differences; and in float32 the tangent has
    the output's dtype."""
    f, primals = data.draw(CASES[name], label="case")
    tangents = [data.draw(arrays(p.shape), label=f"tangent {k}") for k, p in enumerate(primals)]
    xs = [mg.tensor(p) for p in primals]
    y, ty = func.jvp(f, tuple(xs), tuple(mg.tensor(t) for t in tangents))
    np.testing.assert_array_equal(y.data, f(*xs).data)
    assert ty.shape == y.shape and ty.dtype == y.dtype

    # 1. reverse mode: J @ t, all inputs at once and each alone (the others constants)
    jacobians = func.jacrev(f, argnums=tuple(range(len(xs))))(*xs)
    assert_close(ty, jacobian_times(jacobians, tangents, y.shape), 1e-10, "jvp vs jacrev")
    for k in range(len(xs) if len(xs) > 1 else 0):
        def alone(x, k=k):
            return f(*xs[:k], x, *xs[k + 1:])

        _, tk = func.jvp(alone, (xs[k],), (mg.tensor(tangents[k]),))
        assert_close(tk, jacobian_times(jacobians[k:k + 1], tangents[k:k + 1], y.shape), 1e-10,
                     f"jvp along input {k} alone vs jacrev")

    # 2. central differences
    plus = f(*[mg.tensor(p + H * t) for p, t in zip(primals, tangents)]).data
    minus = f(*[mg.tensor(p - H * t) for p, t in zip(primals, tangents)]).data
    assert_close(ty, (plus - minus) / (2 * H), 1e-6, "jvp vs central differences")

    # the tangent keeps the output's dtype in float32 (the cast case turns it to float64)
    y32, t32 = func.jvp(f, tuple(mg.tensor(p, dtype=np.float32) for p in primals),
                        tuple(mg.tensor(t, dtype=np.float32) for t in tangents))
    assert t32.dtype == y32.dtype and t32.shape == y32.shape
    assert_close(t32.data.astype(F64), ty, 1e-3, "float32 jvp vs float64")


@pytest.mark.parametrize("name", CASES)
@given(data=st.data())
def test_jacfwd_equals_jacrev(name: str, data) -> None:
    """3. The Jacobian by forward mode, one jvp per input element, is reverse mode's (every
    input at once; single-input cases are most of the table)."""
    f, primals = data.draw(CASES[name], label="case")
    xs = [mg.tensor(p) for p in primals]
    argnums = tuple(range(len(xs)))
    forward = func.jacfwd(f, argnums=argnums)(*xs)
    reverse = func.jacrev(f, argnums=argnums)(*xs)
    for k, (jf, jr) in enumerate(zip(forward, reverse)):
        assert_close(jf, jr, 1e-10, f"jacfwd vs jacrev, input {k}")


# -- every rule: written, and documented ---------------------------------------------------------


def differentiable_ops() -> list[type[Function]]:
    return [cls for module in (ew, pr) for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, Function) and cls.__module__ == module.__name__
            and not issubclass(cls, ew.NonDifferentiable)]


def test_every_differentiable_op_has_a_documented_jvp_rule() -> None:
    """Each op of elementwise.py and probability.py with a gradient (those the table above
    exercises) defines jvp, and its docstring gives the rule in dot notation."""
    ops = differentiable_ops()
    assert {cls.__name__ for cls in ops} == {
        "Add", "Sub", "Mul", "Div", "Neg", "Pow", "PowTensor", "Exp", "Log", "Tanh", "TanhGrad",
        "Sigmoid", "SigmoidGrad", "Relu", "Sqrt", "Abs", "Clip", "Where", "Cast", "Clone",
        "Softmax", "LogSoftmax", "CrossEntropy", "CrossEntropyGrad"}, "a new op: add its case"
    dotted = set("ȧḃẋẏġż") | {"\u0307"}
    for cls in ops:
        assert "jvp" in vars(cls), f"{cls.__name__} has no jvp rule"
        assert dotted & set(cls.__doc__), f"{cls.__name__}'s docstring gives no tangent rule"


# -- special points and dtypes ------------------------------------------------------------------


def test_pow_tensor_tangent_in_the_exponent_is_zero_at_a_zero_base() -> None:
    """ḃ * y * ln a counts as 0 where a = 0 (y = 0 there for b > 0), as backward does."""
    a = mg.tensor(np.array([0.0, 1.0, 2.0]))

    def f(b):
        return a ** b

    b, tb = mg.tensor(np.full(3, 2.0)), mg.tensor(np.ones(3))
    _, t = func.jvp(f, (b,), (tb,))
    np.testing.assert_array_equal(t.data, [0.0, 0.0, 4.0 * np.log(2.0)])
    np.testing.assert_array_equal(t.data, np.diag(func.jacrev(f)(b).data))


def test_cast_casts_the_tangent_and_a_non_float_cast_has_none() -> None:
    x = mg.tensor([0.25, -1.5, 3.0], dtype=np.float32)
    t = mg.tensor([1.0, 2.0, -0.5], dtype=np.float32)
    y, ty = func.jvp(lambda x: x.astype(np.float64), (x,), (t,))
    assert y.dtype == ty.dtype == np.float64
    np.testing.assert_array_equal(ty.data, t.data.astype(np.float64))
    y, ty = func.jvp(lambda x: x.astype(np.float64).astype(np.float32), (x,), (t,))
    assert ty.dtype == np.float32
    np.testing.assert_array_equal(ty.data, t.data)
    y, ty = func.jvp(lambda x: x.astype(np.int64), (x,), (t,))
    assert y.dtype == ty.dtype == np.int64 and not ty.data.any()


def test_a_condition_with_a_tangent_changes_nothing() -> None:
    """where's condition, cast from a float tensor with a tangent, gives no tangent."""
    x, t = mg.tensor(np.array([0.0, 1.0, -2.0])), mg.tensor(np.ones(3))
    _, ty = func.jvp(lambda c: mg.where(c, mg.tensor(1.0), mg.tensor(2.0)), (x,), (t,))
    assert ty.shape == (3,) and not ty.data.any()


def test_where_tangent_takes_the_outputs_dtype_when_one_branch_has_none() -> None:
    x = mg.tensor(np.array([1.0, 2.0, 3.0], np.float32))
    c = mg.tensor(np.array([5.0, 6.0, 7.0]))  # float64: y is float64
    cond = np.array([True, False, True])
    for f, expected in [(lambda x: mg.where(cond, x, c), [1.0, 0.0, 1.0]),
                        (lambda x: mg.where(cond, c, x), [0.0, 1.0, 0.0])]:
        y, ty = func.jvp(f, (x,), (mg.tensor(np.ones(3, np.float32)),))
        assert y.dtype == ty.dtype == np.float64
        np.testing.assert_array_equal(ty.data, expected)


# -- second derivatives: forward over reverse, reverse over forward, forward over forward -------


def small(shape_strategy=None, **kwargs) -> st.SearchStrategy[np.ndarray]:
    """An input of at most 2 axes of at most 3 (Hessians cost one pass per element pair)."""
    shape_strategy = shape_strategy or shapes(max_dims=2)
    return shape_strategy.flatmap(lambda s: arrays(s, **kwargs))


def smooth(x: mg.Tensor) -> mg.Tensor:
    return (x.sigmoid() * (x / 3).exp()).tanh().sum()


def kinked(x: mg.Tensor) -> mg.Tensor:
    """Every elementwise op, away from kinks: x avoids 0 and ±1."""
    y = (x * x + 1).log() * (x.abs() + 1).sqrt() / (2 + x.relu()) - x.clip(-1.0, 1.0) ** 3
    z = mg.where(x.data > 0, 1.5 ** x, (x - 3) ** -2) + mg.maximum(x, -x * 0.5).clone()
    return (y * z + (x.abs() + 0.5) ** x.sigmoid() - ew.Cast.apply((-x).exp(), dtype=F64)).sum()


N_CLASSES = 3
X_LINEAR = np.random.default_rng(0).standard_normal((4, 3))
TARGETS = np.array([0, 2, 1, 2])
ONEHOT = np.eye(N_CLASSES)[TARGETS]


def linear(w: mg.Tensor) -> mg.Tensor:
    """X @ w as broadcast products and a sum (ops with rules of their own here and in sum)."""
    return (mg.tensor(X_LINEAR).reshape(4, 3, 1) * w).sum(1)


def classifier(w: mg.Tensor) -> mg.Tensor:
    """A linear classifier's losses: fused cross-entropy, log_softmax's NLL and a softmax
    penalty."""
    z = linear(w)
    nll = -(z.log_softmax(1) * mg.tensor(ONEHOT)).sum() / 4
    return F.cross_entropy(z, TARGETS) + nll + (z.softmax(1) ** 2).sum() * 0.5


def classifier_none(w: mg.Tensor) -> mg.Tensor:
    """Cross-entropy per entry ('none'), over the first axis, weighted, then a smooth sum."""
    losses = F.cross_entropy(linear(w).permute(1, 0), TARGETS, axis=0, reduction="none")
    return (losses * mg.tensor(np.array([1.0, 2.0, 0.5, 1.5]))).sum() + (losses * losses).sum()


C = np.random.default_rng(1).uniform(-2.0, 2.0, (3, 3))


def broadcast(x: mg.Tensor) -> mg.Tensor:
    """x against a constant of a bigger shape, so that each gradient is summed to x's shape
    (and each tangent broadcast)."""
    c = mg.tensor(C)
    return ((x * c).sigmoid() / (1 + (x - c) ** 2) + c / (x * x + 1)
            + mg.where(C > 0, x, c).exp()).sum()


COMPOSITES: dict[str, tuple[Callable[[mg.Tensor], mg.Tensor], st.SearchStrategy]] = {
    "smooth": (smooth, small()),
    "kinked": (kinked, small(avoid=(0.0, -1.0, 1.0))),
    "broadcast": (broadcast, small(shapes_broadcasting_to((3, 3)))),
    "classifier": (classifier, small(st.just((3, N_CLASSES)))),
    "classifier_none": (classifier_none, small(st.just((3, N_CLASSES)))),
}


@pytest.mark.parametrize("name", COMPOSITES)
@given(data=st.data())
def test_hessian_vector_products(name: str, data) -> None:
    """4. For a scalar f: jvp(grad(f), x, v) = hessian(f)(x) @ v = jacrev(grad(f))(x) @ v =
    grad of jvp(f, x, v)[1] (reverse over forward); u . Hv = jvp of jvp (forward over forward);
    the Hessian is symmetric."""
    f, strategy = COMPOSITES[name]
    a = data.draw(strategy, label="x")
    v, u = (data.draw(arrays(a.shape), label=label) for label in ("v", "u"))
    x = mg.tensor(a)
    g, hv = func.jvp(func.grad(f), (x,), (mg.tensor(v),))
    assert_close(g, func.grad(f)(x), 1e-12, "the gradient under jvp")

    hessian = func.hessian(f)(x).data.reshape(a.size, a.size)
    assert_close(hessian, hessian.T, 1e-10, "the Hessian's symmetry")
    assert_close(hv, (hessian @ v.ravel()).reshape(a.shape), 1e-10, "jvp(grad) vs hessian @ v")
    by_reverse = func.jacrev(func.grad(f))(x).data.reshape(a.size, a.size)
    assert_close(hv, (by_reverse @ v.ravel()).reshape(a.shape), 1e-10,
                 "jvp(grad) vs jacrev(grad) @ v")

    def directional(x):
        return func.jvp(f, (x,), (mg.tensor(v),))[1]

    assert_close(func.grad(directional)(x), hv, 1e-10, "grad(jvp) vs jvp(grad)")
    _, uhv = func.jvp(directional, (x,), (mg.tensor(u),))
    assert_close(uhv, u.ravel() @ hessian @ v.ravel(), 1e-10, "jvp(jvp) vs u . H v")


# -- an op without a rule ------------------------------------------------------------------------


class Cube(Function):
    """cube: y = x ** 3; dx = 3 dy x ** 2 (and no jvp rule)"""

    def forward(self, x):
        return x ** 3

    def backward(self, gy):
        return 3 * gy * self.inputs[0] ** 2


def test_an_op_without_a_rule_raises_naming_it() -> None:
    x = mg.tensor(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(func.jacrev(Cube.apply)(x).data, np.diag([3.0, 12.0]))
    with pytest.raises(NotImplementedError, match=r"^Cube defines no jvp rule.*jacrev"):
        func.jvp(lambda x: Cube.apply(x * 2), (x,), (mg.tensor(np.ones(2)),))
    with pytest.raises(NotImplementedError, match=r"^Cube defines no jvp rule"):
        func.jacfwd(Cube.apply)(x)
