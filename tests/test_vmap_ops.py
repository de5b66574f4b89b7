"""vmap against its definition, op by op: ``vmap(f, in_dims, out_dims)(*args)`` equals ``f`` run
on each example alone and the results stacked along ``out_dims``, in shape, dtype and value
(float64, tight tolerance). Each case reaches one op's batching rule (minigrad/func/batching.py)
with a batched and an unbatched operand of different ranks, in both orders, and with both
batched: elementwise ops, reductions, softmax and cross-entropy, shape ops and indexing, matmul,
linear and einsum. Then per-example gradients (``vmap(grad(f))``, which batches the backward
ops: sum_to, index_add, broadcast_to...) against gradients taken one example at a time; in_dims
and out_dims other than 0; random ops under ``randomness="different"``; and the fallback for an
op without a rule. Whole-model vmap and its errors are in test_vmap.py."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
import minigrad.nn.functional as F
from minigrad import func
from minigrad.func.batching import VmapError
from minigrad.func.trees import tree_flatten
from minigrad.ops import probability as pr
from tests.strategies import (
    axes,
    axis,
    broadcast_shapes,
    distinct_arrays,
    same_size_shapes,
    shapes,
    shapes_broadcasting_to,
)

RTOL = 1e-12  # the batch runs the example's arithmetic: only summation order may differ
SIZES = st.integers(1, 4)  # batch sizes
WHICH = st.sampled_from([(True, False), (False, True), (True, True)])  # which operand is batched


# -- the definition of vmap, and the comparison -------------------------------------------------


def example(a: Any, in_dim: int | None, i: int) -> Any:
    """Example ``i`` of argument ``a``, batched along ``in_dim`` (None: ``a`` itself)."""
    return a if in_dim is None else a[(slice(None),) * (in_dim % a.ndim) + (i,)]


def stacked(f: Callable, args: list, in_dims: tuple, out_dims: int) -> list[mg.Tensor]:
    """vmap by its definition: ``f`` on each example, each result stacked along ``out_dims``."""
    size = next(a.shape[d] for a, d in zip(args, in_dims) if d is not None)
    runs = [tree_flatten(f(*[example(a, d, i) for a, d in zip(args, in_dims)]))[0]
            for i in range(size)]
    return [mg.stack(list(parts), dim=out_dims) for parts in zip(*runs)]


def assert_same(got: mg.Tensor, want: mg.Tensor, what: str) -> None:
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, expected {want.dtype}"
    if want.dtype.kind == "f":
        scale = max(1.0, float(np.nanmax(np.abs(want.data), initial=0.0)))
        np.testing.assert_allclose(got.data, want.data, rtol=RTOL, atol=RTOL * scale,
                                   err_msg=what)
    else:
        np.testing.assert_array_equal(got.data, want.data, err_msg=what)


def assert_vmap_is_stacked(f: Callable, args: list, in_dims: Any = 0, out_dims: int = 0,
                           what: str = "") -> list[mg.Tensor]:
    dims = in_dims if isinstance(in_dims, tuple) else (in_dims,) * len(args)
    got = tree_flatten(func.vmap(f, in_dims, out_dims)(*args))[0]
    want = stacked(f, args, dims, out_dims)
    assert len(got) == len(want), f"{what}: {len(got)} results, expected {len(want)}"
    for k, (g, w) in enumerate(zip(got, want)):
        assert_same(g, w, f"{what}, result {k}")
    return got


class Case:
    """A function of one example, the arguments to map it over and their in_dims (its repr is
    what hypothesis prints for a failing example)."""

    def __init__(self, label: str, f: Callable, args: list, in_dims: tuple,
                 out_dims: int = 0) -> None:
        self.label, self.f, self.args, self.in_dims, self.out_dims = (
            label, f, args, in_dims, out_dims)

    def __repr__(self) -> str:
        return (f"Case({self.label}, shapes {[tuple(a.shape) for a in self.args]}, "
                f"in_dims {self.in_dims}, out_dims {self.out_dims})")


# -- values -------------------------------------------------------------------------------------


def signed(shape) -> st.SearchStrategy[np.ndarray]:
    """float64 in [-2, -0.1] and [0.1, 2]: away from the kinks of relu, abs and sign at 0, and
    safe to divide by."""
    magnitudes = hnp.arrays(np.float64, shape, elements=st.floats(0.1, 2.0))
    return st.tuples(magnitudes, hnp.arrays(np.bool_, shape)).map(
        lambda ms: np.where(ms[1], ms[0], -ms[0]))


def positive(shape) -> st.SearchStrategy[np.ndarray]:
    """float64 in [0.1, 2]: in the domain of log, sqrt and fractional powers."""
    return hnp.arrays(np.float64, shape, elements=st.floats(0.1, 2.0))


def distinct(shape) -> st.SearchStrategy[np.ndarray]:
    """float64 pairwise apart (no ties for max, sort, argmax)."""
    return distinct_arrays(tuple(shape))


def few(shape) -> st.SearchStrategy[np.ndarray]:
    """float64 from a few values, so that == and <= often hold."""
    return hnp.arrays(np.float64, shape, elements=st.sampled_from([-1.0, 0.5, 1.0]))


def special(shape) -> st.SearchStrategy[np.ndarray]:
    """float64 with nan and infinities among ordinary values."""
    return hnp.arrays(np.float64, shape,
                      elements=st.sampled_from([np.nan, np.inf, -np.inf, -1.5, 0.0, 2.0]))


def ints(shape, lo: int = -9, hi: int = 9) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.int64, shape, elements=st.integers(lo, hi))


def nonzero_ints(shape) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.int64, shape, elements=st.sampled_from([-4, -3, -1, 1, 2, 5]))


def bools(shape) -> st.SearchStrategy[np.ndarray]:
    return hnp.arrays(np.bool_, shape)


def operand(draw, values, shape, batched: bool, size: int) -> mg.Tensor:
    """A tensor of one example's ``shape``, with the batch in front when ``batched``."""
    return mg.tensor(draw(values((size, *shape) if batched else tuple(shape))))


def dims_of(which) -> tuple:
    return tuple(0 if b else None for b in which)


@st.composite
def two_shapes(draw) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Two example shapes that broadcast together: one a suffix of the other with axes set to
    1 (most often of a lower rank), in either order; or two that both stretch."""
    if draw(st.booleans()):
        return draw(broadcast_shapes(2))
    full = draw(shapes())
    part = draw(shapes_broadcasting_to(full))
    return (full, part) if draw(st.booleans()) else (part, full)


# -- elementwise ops ------------------------------------------------------------------------------

BINARY = {  # name: (f, a's values, b's values)
    "add": (lambda a, b: a + b, signed, signed),
    "sub": (lambda a, b: a - b, signed, signed),
    "mul": (lambda a, b: a * b, signed, signed),
    "div": (lambda a, b: a / b, signed, signed),
    "pow_tensor": (lambda a, b: a ** b, positive, signed),
    "maximum": (mg.maximum, signed, signed),
    "minimum": (mg.minimum, signed, signed),
    "where_a_gt_b": (lambda a, b: mg.where(a > b, a, b * 2.0), signed, signed),
    "lt": (lambda a, b: a < b, few, few),
    "le": (lambda a, b: a <= b, few, few),
    "gt": (lambda a, b: a > b, few, few),
    "ge": (lambda a, b: a >= b, few, few),
    "eq": (lambda a, b: mg.eq(a, b), few, few),
    "ne": (lambda a, b: a != b, few, few),
    "floor_divide": (lambda a, b: a // b, ints, nonzero_ints),
    "remainder": (lambda a, b: a % b, ints, nonzero_ints),
    "int_true_divide": (lambda a, b: a / b, ints, nonzero_ints),  # float32, as PyTorch
    "int_plus_float": (lambda a, b: a + b, ints, signed),
    "bitwise_and_bools": (lambda a, b: a & b, bools, bools),
    "bitwise_or_bools": (lambda a, b: a | b, bools, bools),
    "bitwise_xor_bools": (lambda a, b: a ^ b, bools, bools),
    "bitwise_and_ints": (lambda a, b: a & b, ints, ints),
    "logical_and": (lambda a, b: a.logical_and(b), ints, bools),
    "logical_or": (lambda a, b: a.logical_or(b), bools, ints),
}


@st.composite
def binary_cases(draw, name: str) -> Case:
    f, values_a, values_b = BINARY[name]
    shape_a, shape_b = draw(two_shapes())
    size, which = draw(SIZES), draw(WHICH)
    args = [operand(draw, values_a, shape_a, which[0], size),
            operand(draw, values_b, shape_b, which[1], size)]
    return Case(name, f, args, dims_of(which))


UNARY = {  # name: (f, values); examples of rank 0 to 3, batched
    "neg": (lambda x: -x, signed),
    "pow_2": (lambda x: x ** 2, signed),
    "pow_3": (lambda x: x.pow(3), signed),
    "pow_minus_1": (lambda x: x ** -1, signed),
    "pow_half": (lambda x: x ** 0.5, positive),
    "rpow": (lambda x: 2.0 ** x, signed),  # an unbatched 0-d base
    "rsub": (lambda x: 1.0 - x, signed),
    "rdiv": (lambda x: 2.0 / x, signed),
    "exp": (mg.exp, signed),
    "log": (mg.log, positive),
    "tanh": (mg.tanh, signed),
    "sigmoid": (mg.sigmoid, signed),
    "relu": (mg.relu, signed),
    "sqrt": (mg.sqrt, positive),
    "abs": (lambda x: abs(x), signed),
    "square": (lambda x: x.square(), signed),
    "clip": (lambda x: x.clip(-0.5, 1.0), signed),
    "clamp_min": (lambda x: x.clamp(min=0.3), signed),
    "clamp_max": (lambda x: x.clamp(max=-0.2), signed),
    "astype_int64": (lambda x: (x * 3.0).astype(mg.int64), signed),
    "astype_int32": (lambda x: (x * 3.0).int(), signed),
    "astype_float32": (lambda x: x.float(), signed),
    "astype_bool": (lambda x: x.relu().bool(), signed),
    "int_to_float64": (lambda x: x.double(), ints),
    "clone": (lambda x: x.clone(), signed),
    "detach": (lambda x: x.detach() * 2.0, signed),
    "sign": (lambda x: x.sign(), signed),
    "isnan": (lambda x: x.isnan(), special),
    "isinf": (lambda x: x.isinf(), special),
    "isfinite": (lambda x: x.isfinite(), special),
    "invert_bools": (lambda x: ~x, bools),
    "invert_ints": (lambda x: ~x, ints),
    "logical_not": (lambda x: x.logical_not(), ints),
    "max()": (lambda x: x.max(), distinct),  # Max without an axis option
    "min()": (lambda x: x.min(), distinct),
}


@st.composite
def unary_cases(draw, name: str) -> Case:
    f, values = UNARY[name]
    x = operand(draw, values, draw(shapes()), True, draw(SIZES))
    return Case(name, f, [x], (0,))


@st.composite
def where_cases(draw) -> Case:
    """where(cond, a, b): the three broadcast together, each batched or not (one at least)."""
    shapes3 = draw(broadcast_shapes(3))
    which = draw(st.tuples(st.booleans(), st.booleans(), st.booleans()).filter(any))
    size = draw(SIZES)
    args = [operand(draw, v, s, b, size) for v, s, b in zip((bools, signed, signed), shapes3,
                                                            which)]
    return Case("where", mg.where, args, dims_of(which))


@st.composite
def masked_fill_cases(draw) -> Case:
    """x.masked_fill(mask, value): the mask broadcasts to x's shape (it may have fewer axes);
    the value a number, or a 0-d tensor per example."""
    shape = draw(shapes())
    mask_shape = draw(shapes_broadcasting_to(shape))
    size, which = draw(SIZES), draw(WHICH)
    x = operand(draw, signed, shape, which[0], size)
    mask = operand(draw, bools, mask_shape, which[1], size)
    if draw(st.booleans()):
        return Case("masked_fill(mask, 0.5)", lambda x, m: x.masked_fill(m, 0.5), [x, mask],
                    dims_of(which))
    value = operand(draw, signed, (), True, size)
    return Case("masked_fill(mask, v)", lambda x, m, v: x.masked_fill(m, v), [x, mask, value],
                (*dims_of(which), 0))


@st.composite
def batched_scalar_cases(draw) -> Case:
    """A 0-d example (a batched scalar) with a float32 tensor: NumPy would widen a batch of
    scalars where one scalar does not; the result has the dtype one example gives."""
    size, w_batched = draw(SIZES), draw(st.booleans())
    scalar = mg.tensor(draw(st.one_of(signed((size,)), ints((size,), 1, 5))))
    shape = draw(shapes(min_dims=1))
    w = operand(draw, signed, shape, w_batched, size).astype(mg.float32)
    op = draw(st.sampled_from(["+", "-", "*", "/"]))
    f = {"+": lambda s, w: s + w, "-": lambda s, w: w - s, "*": lambda s, w: s * w,
         "/": lambda s, w: w / s}[op]
    return Case(f"batched scalar {scalar.dtype} {op} float32 tensor", f, [scalar, w],
                (0, 0 if w_batched else None))


# -- reductions, and ops along an axis -----------------------------------------------------------


def _var_or_std(name: str) -> Callable:
    """x.var or x.std, unbiased unless one element is reduced (no degree of freedom left)."""
    def f(x, over, keep):
        over_all = range(x.ndim) if over is None else (over,) if isinstance(over, int) else over
        reduced = math.prod(x.shape[a] for a in over_all)
        return getattr(x, name)(over, unbiased=reduced > 1, keepdim=keep)
    return f


REDUCTIONS = {  # name: (f(x, axis, keepdim), values)
    "sum": (lambda x, a, k: x.sum(a, keepdim=k), signed),
    "mean": (lambda x, a, k: x.mean(a, keepdim=k), signed),
    "var": (_var_or_std("var"), signed),
    "std": (_var_or_std("std"), distinct),
    "amax": (lambda x, a, k: x.amax(a, keepdim=k), distinct),
    "amin": (lambda x, a, k: x.amin(a, keepdim=k), distinct),
    "logsumexp": (lambda x, a, k: x.logsumexp(a, keepdim=k), signed),
    "norm_2": (lambda x, a, k: x.norm(2, a, k), signed),
    "norm_1": (lambda x, a, k: x.norm(1, a, k), signed),
    "norm_inf": (lambda x, a, k: x.norm(math.inf, a, k), distinct),
    "all": (lambda x, a, k: x.all(a, keepdim=k), bools),
    "any": (lambda x, a, k: x.any(a, keepdim=k), bools),
}


@st.composite
def reduction_cases(draw, name: str) -> Case:
    """Over None, one axis (negative too), or a tuple of axes; keepdim or not."""
    f, values = REDUCTIONS[name]
    x = operand(draw, values, draw(shapes()), True, draw(SIZES))
    over, keep = draw(axes(x.ndim - 1)), draw(st.booleans())
    return Case(f"{name}(axis={over}, keepdim={keep})", lambda x: f(x, over, keep), [x], (0,))


AXIS_OPS = {  # name: f(x, axis, flag, k) on examples of one axis or more, without ties
    "argmax": lambda x, a, flag, k: x.argmax(a, keepdim=flag),
    "argmin": lambda x, a, flag, k: x.argmin(a, keepdim=flag),
    "max_dim": lambda x, a, flag, k: x.max(a, keepdim=flag),  # a named tuple
    "min_dim": lambda x, a, flag, k: x.min(a, keepdim=flag),  # a named tuple
    "sort": lambda x, a, flag, k: x.sort(a, descending=flag),
    "argsort": lambda x, a, flag, k: x.argsort(a, descending=flag),
    "topk": lambda x, a, flag, k: x.topk(min(k, x.shape[a]), a, largest=flag),
    "softmax": lambda x, a, flag, k: x.softmax(a),
    "log_softmax": lambda x, a, flag, k: mg.log_softmax(x, a),
    "split_by_size": lambda x, a, flag, k: x.split(k, a),
    "chunk": lambda x, a, flag, k: x.chunk(k, a),
    "unbind": lambda x, a, flag, k: x.unbind(a),
    "flip": lambda x, a, flag, k: x.flip(a),
    "narrow": lambda x, a, flag, k: x.narrow(a, 0, min(k, x.shape[a])),
}


@st.composite
def axis_cases(draw, name: str) -> Case:
    x = operand(draw, distinct, draw(shapes(min_dims=1)), True, draw(SIZES))
    a = draw(axis(x.ndim - 1))
    if name in ("argmax", "argmin") and draw(st.booleans()):
        a = None  # a position in the flattened example
    flag, k = draw(st.booleans()), draw(st.integers(1, 3))
    f = AXIS_OPS[name]
    return Case(f"{name}(axis={a}, {flag}, k={k})", lambda x: f(x, a, flag, k), [x], (0,))


@st.composite
def split_sections_cases(draw) -> Case:
    shape = draw(shapes(min_dims=1))
    a = draw(axis(len(shape)))
    sizes = draw(st.lists(st.integers(0, 3), min_size=1, max_size=3).filter(sum))
    shape = shape[:a % len(shape)] + (sum(sizes),) + shape[a % len(shape) + 1:]
    x = operand(draw, signed, shape, True, draw(SIZES))
    return Case(f"split({sizes}, {a})", lambda x: x.split(sizes, a), [x], (0,))


# -- probability: cross-entropy and one-hot ------------------------------------------------------


@st.composite
def cross_entropy_cases(draw) -> Case:
    """F.cross_entropy of logits with the classes on any axis, every reduction, ignored targets
    (-100, or ignore_index=1), class weights, label smoothing, class ids or probabilities; the
    targets batched or the same for every example. Every example keeps one target at least (a
    mean over none is nan)."""
    shape = draw(shapes(min_dims=1))
    classes = draw(st.integers(2, 4))
    ax = draw(st.integers(0, len(shape) - 1))
    shape = shape[:ax] + (classes,) + shape[ax + 1:]
    target_shape = shape[:ax] + shape[ax + 1:]
    size = draw(SIZES)
    logits_batched, targets_batched = draw(WHICH)
    logits = operand(draw, signed, shape, logits_batched, size)
    t = draw(ints((size, *target_shape) if targets_batched else target_shape, 0, classes - 1))
    ignore = draw(st.sampled_from([None, -100, 1]))
    if ignore == -100:
        t = np.where(draw(bools(t.shape)), -100, t)
    if ignore is not None:  # keep the first target of each example
        t.reshape(size if targets_batched else 1, -1)[:, 0] = 0
    reduction = draw(st.sampled_from(["none", "mean", "sum"]))
    weight = draw(st.none() | hnp.arrays(np.float64, classes, elements=st.floats(0.5, 2.0)))
    class_axis = draw(st.sampled_from([ax, ax - len(shape)]))
    kwargs = {"reduction": reduction, "axis": class_axis,
              "ignore_index": -100 if ignore is None else ignore,
              "label_smoothing": draw(st.sampled_from([0.0, 0.0, 0.2]))}
    if draw(st.integers(0, 3)) == 0:  # class probabilities of the logits' shape as the target
        del kwargs["ignore_index"]
        q = draw(positive((size, *shape) if targets_batched else shape))
        t = q / q.sum(axis=ax + targets_batched, keepdims=True)

    def f(x, t):
        w = None if weight is None else mg.tensor(weight)
        return F.cross_entropy(x, t, w, **kwargs)

    return Case(f"cross_entropy({kwargs}, weight {weight is not None})", f,
                [logits, mg.tensor(t)], dims_of((logits_batched, targets_batched)))


@st.composite
def one_hot_cases(draw) -> Case:
    """OneHot (cross-entropy's second derivative): class ids, the classes inserted at an axis."""
    shape, classes, size = draw(shapes()), draw(st.integers(1, 4)), draw(SIZES)
    t = mg.tensor(draw(ints((size, *shape), 0, classes - 1)))
    ax = draw(st.integers(0, len(shape)))
    return Case(f"one_hot(classes={classes}, axis={ax})",
                lambda t: pr.OneHot.apply(t, classes=classes, axis=ax, dtype=mg.float64),
                [t], (0,))


# -- shape ops ------------------------------------------------------------------------------------


@st.composite
def reshape_cases(draw, kind: str) -> Case:
    shape = draw(shapes())
    target = list(draw(same_size_shapes(math.prod(shape))))
    if target and draw(st.booleans()):
        target[draw(st.integers(0, len(target) - 1))] = -1
    target = tuple(target)
    x = operand(draw, signed, shape, True, draw(SIZES))
    if kind == "view":
        return Case(f"view{target}", lambda x: x.view(*target), [x], (0,))
    return Case(f"reshape{target}", lambda x: x.reshape(target), [x], (0,))


@st.composite
def flatten_cases(draw) -> Case:
    x = operand(draw, signed, draw(shapes()), True, draw(SIZES))
    n = max(x.ndim - 1, 1)
    start, end = sorted(draw(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1))))
    start, end = start - draw(st.sampled_from([0, n])), end - draw(st.sampled_from([0, n]))
    if x.ndim == 1:
        start, end = 0, -1
    return Case(f"flatten({start}, {end})", lambda x: x.flatten(start, end), [x], (0,))


@st.composite
def unsqueeze_squeeze_cases(draw, kind: str) -> Case:
    shape = draw(shapes(max_side=2))  # many axes of length 1
    x = operand(draw, signed, shape, True, draw(SIZES))
    if kind == "unsqueeze":
        a = draw(st.integers(-len(shape) - 1, len(shape)))
        return Case(f"unsqueeze({a})", lambda x: x.unsqueeze(a), [x], (0,))
    if kind == "squeeze()" or not shape:
        return Case("squeeze()", lambda x: x.squeeze(), [x], (0,))
    a = draw(axis(len(shape)))
    return Case(f"squeeze({a})", lambda x: x.squeeze(a), [x], (0,))


@st.composite
def transpose_cases(draw, kind: str) -> Case:
    """x.T (0-d and 1-d examples too), x.mT, transpose(d0, d1), permute (negative dims too)."""
    shape = draw(shapes(min_dims={"mT": 2, "transpose": 1}.get(kind, 0)))
    x = operand(draw, signed, shape, True, draw(SIZES))
    if kind == "T":
        return Case("x.T", lambda x: x.T, [x], (0,))
    if kind == "mT":
        return Case("x.mT", lambda x: x.mT, [x], (0,))
    if kind == "transpose":
        d0, d1 = draw(axis(len(shape))), draw(axis(len(shape)))
        return Case(f"transpose({d0}, {d1})", lambda x: x.transpose(d0, d1), [x], (0,))
    perm = tuple(p - len(shape) if draw(st.booleans()) else p
                 for p in draw(st.permutations(range(len(shape)))))
    return Case(f"permute{perm}", lambda x: x.permute(*perm), [x], (0,))


@st.composite
def expand_cases(draw, kind: str) -> Case:
    target = draw(shapes())
    shape = draw(shapes_broadcasting_to(target))
    x = operand(draw, signed, shape, True, draw(SIZES))
    lead = len(target) - len(shape)
    if kind == "broadcast_to":
        return Case(f"broadcast_to{target}", lambda x: x.broadcast_to(target), [x], (0,))
    if kind == "expand_as":
        other = mg.zeros(*target, dtype=mg.float64)
        return Case(f"expand_as{target}", lambda x: x.expand_as(other), [x], (0,))
    sizes = tuple(-1 if i >= lead and shape[i - lead] == n and draw(st.booleans()) else n
                  for i, n in enumerate(target))
    return Case(f"expand{sizes}", lambda x: x.expand(*sizes), [x], (0,))


@st.composite
def sum_to_size_cases(draw) -> Case:
    shape = draw(shapes())
    target = draw(shapes_broadcasting_to(shape))
    x = operand(draw, signed, shape, True, draw(SIZES))
    return Case(f"sum_to_size{target}", lambda x: x.sum_to_size(*target), [x], (0,))


@st.composite
def repeat_cases(draw) -> Case:
    shape = draw(shapes())
    reps = tuple(draw(st.lists(st.integers(1, 2), min_size=len(shape),
                               max_size=len(shape) + 1)))
    x = operand(draw, signed, shape, True, draw(SIZES))
    return Case(f"repeat{reps}", lambda x: x.repeat(*reps), [x], (0,))


@st.composite
def concat_cases(draw) -> Case:
    """concat/cat of 1 to 3 pieces along any axis, some batched, some the same for every
    example."""
    base = draw(shapes(min_dims=1))
    a = draw(axis(len(base)))
    lengths = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    which = draw(st.lists(st.booleans(), min_size=len(lengths), max_size=len(lengths))
                 .filter(any))
    size = draw(SIZES)
    k = a % len(base)
    args = [operand(draw, signed, base[:k] + (n,) + base[k + 1:], b, size)
            for n, b in zip(lengths, which)]
    join = draw(st.sampled_from([mg.concat, mg.cat]))
    return Case(f"{join.__name__}(axis={a})", lambda *xs: join(list(xs), a), args,
                dims_of(which))


@st.composite
def stack_cases(draw) -> Case:
    shape = draw(shapes())
    a = draw(st.integers(-len(shape) - 1, len(shape)))
    count = draw(st.integers(1, 3))
    which = draw(st.lists(st.booleans(), min_size=count, max_size=count).filter(any))
    size = draw(SIZES)
    args = [operand(draw, signed, shape, b, size) for b in which]
    return Case(f"stack(axis={a})", lambda *xs: mg.stack(list(xs), a), args, dims_of(which))


@st.composite
def getitem_basic_cases(draw) -> Case:
    """Slices (negative steps too), ints (negative too), None and Ellipsis."""
    shape = draw(shapes())
    index = draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    x = operand(draw, signed, shape, True, draw(SIZES))
    return Case(f"x[{index!r}]", lambda x: x[index], [x], (0,))


def _ids(draw, n: int, shape) -> np.ndarray:
    """Integer positions along an axis of length ``n``, negative ones too."""
    return draw(ints(shape, -n, n - 1))


@st.composite
def getitem_unbatched_array_cases(draw, kind: str) -> Case:
    """Index arrays and masks that are the same for every example (numpy arrays, lists, mg
    tensors), on a batched x: one array along any axis, two adjacent, two separated by a slice
    (NumPy moves their axes to the front), arrays with an Ellipsis, boolean masks."""
    shape = draw(shapes(min_dims={"two_adjacent": 2, "two_separated": 3}.get(kind, 1)))
    x = operand(draw, signed, shape, True, draw(SIZES))
    n = len(shape)
    ids_shape = draw(shapes(max_dims=2))
    if kind in ("array", "tensor"):
        a = draw(st.integers(0, n - 1))
        ids = _ids(draw, shape[a], ids_shape)
        ids = ids if kind == "array" else mg.tensor(ids)
        index = ids if a == 0 and draw(st.booleans()) else (*(slice(None),) * a, ids)
    elif kind == "list":
        index = [int(i) for i in _ids(draw, shape[0], (draw(st.integers(1, 3)),))]
    elif kind == "ellipsis_array":
        index = (Ellipsis, _ids(draw, shape[-1], ids_shape))
    elif kind in ("mask", "mask_tensor"):
        mask = draw(bools(shape[:draw(st.integers(1, n))]))
        index = mask if kind == "mask" else mg.tensor(mask)
    elif kind == "mask_after_slice":
        index = (slice(None),) * (n - 1) + (draw(bools(shape[-1:])),)
    elif kind == "two_adjacent":
        a = draw(st.integers(0, n - 2))
        index = (*(slice(None),) * a, _ids(draw, shape[a], ids_shape),
                 _ids(draw, shape[a + 1], ids_shape[1:]))
    else:  # two arrays with a slice between them: NumPy puts their axes first
        a = draw(st.integers(0, n - 3))
        index = (*(slice(None),) * a, _ids(draw, shape[a], ids_shape),
                 slice(None, None, -1), _ids(draw, shape[a + 2], ids_shape))
    return Case(f"x[{kind}]", lambda x: x[index], [x], (0,))


@st.composite
def getitem_batched_ids_cases(draw, kind: str) -> Case:
    """Index arrays that differ across the batch, leading the index: x[ids], x[ids, j],
    x[j, ids], x[ids, ids2] (ids2 batched or not), x[ids, None], x[ids, ...]; x batched or not
    (an embedding lookup: W unbatched, ids batched)."""
    shape = draw(shapes(min_dims=1 if kind in ("x[ids]", "x[ids, None]", "x[ids, ...]",
                                               "embedding") else 2))
    size, x_batched = draw(SIZES), draw(st.booleans())
    x = operand(draw, signed, shape, x_batched, size)
    ids_shape = draw(shapes(max_dims=2))
    ids = mg.tensor(_ids(draw, shape[0], (size, *ids_shape)))
    dims = (0 if x_batched else None, 0)
    if kind == "x[ids]":
        return Case(kind, lambda x, i: x[i], [x, ids], dims)
    if kind == "x[ids, None]":
        return Case(kind, lambda x, i: x[i, None], [x, ids], dims)
    if kind == "x[ids, ...]":
        return Case(kind, lambda x, i: x[i, ...], [x, ids], dims)
    if kind == "embedding":
        ids = mg.tensor(draw(ints((size, *ids_shape), 0, shape[0] - 1)))
        w = operand(draw, signed, (shape[0], draw(st.integers(1, 3))), x_batched, size)
        return Case(kind, lambda w, i: F.embedding(i, w), [w, ids], dims)
    if kind == "x[ids, j]":
        j = draw(st.integers(-shape[1], shape[1] - 1))
        return Case(f"x[ids, {j}]", lambda x, i: x[i, j], [x, ids], dims)
    if kind == "x[j, ids]":  # an int, then the array: both advanced, adjacent
        j = draw(st.integers(-shape[0], shape[0] - 1))
        ids = mg.tensor(_ids(draw, shape[1], (size, *ids_shape)))
        return Case(f"x[{j}, ids]", lambda x, i: x[j, i], [x, ids], dims)
    if kind == "x[ids, fixed]":  # the second array the same for every example
        fixed = _ids(draw, shape[1], ids_shape[len(ids_shape) - draw(st.integers(0, 1)):])
        return Case(kind, lambda x, i: x[i, fixed], [x, ids], dims)
    ids2 = mg.tensor(_ids(draw, shape[1], (size, *ids_shape)))
    return Case(kind, lambda x, i, j: x[i, j], [x, ids, ids2], (*dims, 0))


@st.composite
def gather_cases(draw) -> Case:
    shape = draw(shapes(min_dims=1))
    a = draw(axis(len(shape)))
    k = a % len(shape)
    index_shape = tuple(draw(st.integers(1, 3)) if i == k else draw(st.integers(1, n))
                        for i, n in enumerate(shape))
    size, which = draw(SIZES), draw(WHICH)
    x = operand(draw, signed, shape, which[0], size)
    index = mg.tensor(draw(ints((size, *index_shape) if which[1] else index_shape, 0,
                                shape[k] - 1)))
    return Case(f"gather({a})", lambda x, i: x.gather(a, i), [x, index], dims_of(which))


@st.composite
def index_select_cases(draw) -> Case:
    """index_select: x batched or not, along any axis, with an index that may differ across
    the batch."""
    shape = draw(shapes(min_dims=1))
    size, which = draw(SIZES), draw(WHICH)
    a = draw(axis(len(shape)))
    ids_shape = draw(st.sampled_from([(), (draw(st.integers(1, 3)),)]))
    x = operand(draw, signed, shape, which[0], size)
    index = mg.tensor(draw(ints((size, *ids_shape) if which[1] else ids_shape, 0,
                                shape[a] - 1)))
    return Case(f"index_select({a})", lambda x, i: x.index_select(a, i), [x, index],
                dims_of(which))


# -- linalg ---------------------------------------------------------------------------------------


@st.composite
def matmul_cases(draw, kind: str, ra: int, rb: int) -> Case:
    """a @ b with a of rank ``ra`` and b of rank ``rb`` (1, 2 or 3; two 3-D operands' batch
    axes may stretch), each batched or not; mm and bmm."""
    n, m, p, q = (draw(st.integers(1, 3)) for _ in range(4))
    qa, qb = (q, q) if kind != "@" else draw(st.sampled_from([(q, q), (1, q), (q, 1)]))
    shape_a = {1: (m,), 2: (n, m), 3: (qa, n, m)}[ra]
    shape_b = {1: (m,), 2: (m, p), 3: (qb, m, p)}[rb]
    size, which = draw(SIZES), draw(WHICH)
    args = [operand(draw, signed, shape_a, which[0], size),
            operand(draw, signed, shape_b, which[1], size)]
    f = {"@": lambda a, b: a @ b, "mm": mg.mm, "bmm": mg.bmm}[kind]
    return Case(f"{kind} of ranks {ra}, {rb}", f, args, dims_of(which))


@st.composite
def linear_cases(draw) -> Case:
    """F.linear(x, W, b): x (..., in) of rank 1 to 3, W (out, in), b (out,) or a shape that
    broadcasts to y, or none; x, W and b each batched or not (x or W at least)."""
    lead = draw(shapes(max_dims=2))
    n_in, n_out = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    bias = draw(st.sampled_from(["none", "vector", "broadcast"]))
    which = draw(st.tuples(st.booleans(), st.booleans(), st.booleans())
                 .filter(lambda w: w[0] or w[1]))  # (only b batched: a known bug, below)
    size = draw(SIZES)
    args = [operand(draw, signed, (*lead, n_in), which[0], size),
            operand(draw, signed, (n_out, n_in), which[1], size)]
    if bias == "none":
        return Case("linear(x, W)", F.linear, args, dims_of(which[:2]))
    shape = (n_out,) if bias == "vector" else draw(shapes_broadcasting_to((*lead, n_out)))
    args.append(operand(draw, signed, shape, which[2], size))
    return Case(f"linear(x, W, b of {shape})", F.linear, args, dims_of(which))


EINSUM_SPECS = [
    "ij,jk->ik", "ij,jk", "bij,bjk->bik", "ij->ji", "ijk->kj", "ii->i", "ii->", "i,i->", "i,i",
    "ij,j->i", "i,j->ij", "ij,ij,ij->i", "ij,jk,kl->il", "ii,i->i", "...ij,...jk->...ik",
    "...i,i->...",
]


@st.composite
def einsum_cases(draw) -> Case:
    """Contractions, transposes, diagonals, outer products, three operands, implicit outputs
    and an ellipsis; each operand batched or not."""
    spec = draw(st.sampled_from(EINSUM_SPECS))
    size = {c: draw(st.integers(1, 3)) for c in sorted(set(spec) - set(",->."))}
    lead = draw(broadcast_shapes(2, max_dims=2))
    operands = spec.split("->")[0].split(",")
    count = len(operands)
    which = draw(st.lists(st.booleans(), min_size=count, max_size=count).filter(any))
    batch = draw(SIZES)
    args = []
    for k, (s, b) in enumerate(zip(operands, which)):
        shape = tuple(size[c] for c in s.replace("...", ""))
        if "..." in s:
            shape = lead[k % 2] + shape
        args.append(operand(draw, signed, shape, b, batch))
    return Case(f"einsum({spec!r})", lambda *xs: mg.einsum(spec, *xs), args, dims_of(which))


UNBATCHED = ["array", "tensor", "list", "ellipsis_array", "mask", "mask_tensor",
             "mask_after_slice", "two_adjacent", "two_separated"]
BATCHED_IDS = ["x[ids]", "x[ids, None]", "x[ids, ...]", "embedding", "x[ids, j]", "x[j, ids]",
               "x[ids, ids2]", "x[ids, fixed]"]

CASES = {
    **{f"binary_{name}": binary_cases(name) for name in BINARY},
    **{f"unary_{name}": unary_cases(name) for name in UNARY},
    "where": where_cases(),
    "masked_fill": masked_fill_cases(),
    "batched_scalar_with_float32": batched_scalar_cases(),
    **{f"reduce_{name}": reduction_cases(name) for name in REDUCTIONS},
    **{f"axis_{name}": axis_cases(name) for name in AXIS_OPS},
    "split_sections": split_sections_cases(),
    "cross_entropy": cross_entropy_cases(),
    "one_hot": one_hot_cases(),
    **{kind: reshape_cases(kind) for kind in ("reshape", "view")},
    "flatten": flatten_cases(),
    **{kind: unsqueeze_squeeze_cases(kind) for kind in ("unsqueeze", "squeeze()",
                                                        "squeeze(axis)")},
    **{kind: transpose_cases(kind) for kind in ("T", "mT", "transpose", "permute")},
    **{kind: expand_cases(kind) for kind in ("expand", "broadcast_to", "expand_as")},
    "sum_to_size": sum_to_size_cases(),
    "repeat": repeat_cases(),
    "concat": concat_cases(),
    "stack": stack_cases(),
    "getitem_basic": getitem_basic_cases(),
    **{f"getitem_unbatched_{kind}": getitem_unbatched_array_cases(kind) for kind in UNBATCHED},
    **{f"getitem_batched_{kind}": getitem_batched_ids_cases(kind) for kind in BATCHED_IDS},
    "gather": gather_cases(),
    "index_select": index_select_cases(),
    **{f"matmul_{ra}d_{rb}d": matmul_cases("@", ra, rb) for ra in (1, 2, 3) for rb in (1, 2, 3)},
    "mm": matmul_cases("mm", 2, 2),
    "bmm": matmul_cases("bmm", 3, 3),
    "linear": linear_cases(),
    "einsum": einsum_cases(),
}


@pytest.mark.parametrize("name", CASES)
@given(data=st.data())
def test_vmap_equals_the_examples_stacked(name: str, data) -> None:
    case = data.draw(CASES[name], label="case")
    assert_vmap_is_stacked(case.f, case.args, case.in_dims, case.out_dims, case.label)


# -- per-example gradients: vmap(grad(f)) batches the backward ops too ---------------------------

GRADIENT_CASES = [
    *(f"binary_{name}" for name in ("add", "sub", "mul", "div", "pow_tensor", "maximum",
                                    "minimum", "where_a_gt_b", "int_plus_float")),
    *(f"unary_{name}" for name in ("neg", "pow_3", "pow_minus_1", "pow_half", "rpow", "rdiv",
                                   "exp", "log", "tanh", "sigmoid", "relu", "sqrt", "abs",
                                   "clip", "clamp_min", "clone", "max()", "min()")),
    "where", "masked_fill",
    *(f"reduce_{name}" for name in ("sum", "mean", "var", "amax", "amin", "logsumexp",
                                    "norm_2", "norm_1", "norm_inf")),
    *(f"axis_{name}" for name in ("max_dim", "min_dim", "sort", "topk", "softmax",
                                  "log_softmax", "split_by_size", "chunk", "unbind", "flip",
                                  "narrow")),
    "split_sections", "cross_entropy", "reshape", "view", "flatten", "unsqueeze", "squeeze()",
    "squeeze(axis)", "T", "mT", "transpose", "permute", "expand", "broadcast_to", "expand_as",
    "sum_to_size", "repeat", "concat", "stack", "getitem_basic",
    *(f"getitem_unbatched_{kind}" for kind in UNBATCHED),
    *(f"getitem_batched_{kind}" for kind in BATCHED_IDS),
    "gather", "index_select",
    *(f"matmul_{ra}d_{rb}d" for ra in (1, 2, 3) for rb in (1, 2, 3)), "mm", "bmm",
    "linear", "einsum",
]


def squares(f: Callable, squared: bool = True) -> Callable:
    """A scalar loss of ``f``: the sum of its floating results, or of their squares (then the
    gradient flowing back is batched and depends on the values, not only on the shapes)."""
    def loss(*args):
        ys = [y for y in tree_flatten(f(*args))[0] if y.dtype.kind == "f"]
        return sum(((y * y) if squared else y).sum() for y in ys)
    return loss


@pytest.mark.parametrize("name", GRADIENT_CASES)
@settings(max_examples=max(settings.default.max_examples // 2, 1))  # each runs backward B + 1 times
@given(data=st.data())
def test_per_example_gradients_equal_the_gradients_of_each_example(name: str, data) -> None:
    """vmap(grad(loss), in_dims) against grad(loss) on each example alone, with respect to
    every floating argument: an unbatched one (in_dims None) has a gradient per example,
    (B, *w.shape)."""
    case = data.draw(CASES[name], label="case")
    argnums = tuple(k for k, a in enumerate(case.args) if a.dtype.kind == "f")
    gradient = func.grad(squares(case.f, data.draw(st.booleans(), label="squared")),
                         argnums=argnums)
    got = assert_vmap_is_stacked(gradient, case.args, case.in_dims, 0, f"grad of {case.label}")
    size = next(a.shape[d] for a, d in zip(case.args, case.in_dims) if d is not None)
    for g, k in zip(got, argnums):
        one = case.args[k].shape[1:] if case.in_dims[k] is not None else case.args[k].shape
        assert g.shape == (size, *one)


# -- in_dims and out_dims other than 0 ------------------------------------------------------------

PLACED = {  # name: (f(x, w), w's shape from x's example shape)
    "softmax": (lambda x, w: x.softmax(-1) * w, lambda s: s[-1:]),
    "sum_keepdim": (lambda x, w: x.sum(0, keepdim=True) + w, lambda s: (1,)),
    "matmul": (lambda x, w: x @ w, lambda s: (s[-1], 2)),
    "getitem": (lambda x, w: x[..., ::-1] * w[0], lambda s: (2, *s)),
    "transpose": (lambda x, w: x.T * w, lambda s: s[::-1]),
    "two_results": (lambda x, w: (x.exp(), (x * w).sum(-1, keepdim=True)), lambda s: s),
}


@pytest.mark.parametrize("name", PLACED)
@given(data=st.data())
def test_in_dims_and_out_dims_other_than_0(name: str, data) -> None:
    """x batched along axis 0, 1 or -1, w unbatched or batched along its own axis; the results'
    batch axis at 0, 1 or -1."""
    f, w_shape = PLACED[name]
    shape = data.draw(shapes(min_dims=1), label="example shape")
    size = data.draw(SIZES, label="size")
    x_dim = data.draw(st.sampled_from([0, 1, -1]), label="x's in_dim")
    x = mg.tensor(np.moveaxis(data.draw(signed((size, *shape))), 0, x_dim))
    w_dim = data.draw(st.sampled_from([None, 0, 1, -1]), label="w's in_dim")
    w = data.draw(signed(w_shape(shape)), label="w")
    if w_dim is not None:
        w = np.moveaxis(data.draw(signed((size, *w.shape))), 0, w_dim)
    out_dims = data.draw(st.sampled_from([0, 1, -1]), label="out_dims")
    assert_vmap_is_stacked(f, [x, mg.tensor(w)], (x_dim, w_dim), out_dims, name)


# -- random ops -----------------------------------------------------------------------------------


@given(size=st.integers(2, 4), shape=shapes(min_dims=1), p=st.sampled_from([0.25, 0.5, 0.75]),
       seed=st.integers(0, 2**16))
def test_dropout_draws_a_mask_per_example_under_randomness_different(size, shape, p, seed):
    mg.manual_seed(seed)
    x = mg.tensor(np.random.default_rng(seed).uniform(0.5, 2.0, (size, 64, *shape)))
    y = func.vmap(lambda x: F.dropout(x, p, True), randomness="different")(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    kept = y.data != 0
    np.testing.assert_allclose(y.data[kept], x.data[kept] / (1 - p), rtol=1e-15)
    masks = kept.reshape(size, -1)
    assert all(not np.array_equal(masks[0], masks[i]) for i in range(1, size))  # P ~ 1e-13
    assert abs(kept.mean() - (1 - p)) < 0.25
    with pytest.raises(VmapError, match="randomness='different'"):
        func.vmap(lambda x: F.dropout(x, p, True))(x)


@given(size=st.integers(2, 4), rows=st.sampled_from([(), (2,)]), samples=st.integers(1, 3),
       replacement=st.booleans(), seed=st.integers(0, 2**16))
def test_multinomial_draws_valid_ids_per_example_under_randomness_different(
        size, rows, samples, replacement, seed):
    mg.manual_seed(seed)
    rng = np.random.default_rng(seed)
    probs = rng.uniform(0.1, 1.0, (size, *rows, 40))
    probs[..., ::2] = 0.0  # even categories are never drawn
    ids = func.vmap(lambda p: mg.multinomial(p, samples, replacement),
                    randomness="different")(mg.tensor(probs))
    assert ids.shape == (size, *rows, samples) and ids.dtype == mg.int64
    assert ((ids.data >= 0) & (ids.data < 40)).all() and (ids.data % 2 == 1).all()
    if not replacement:
        flat = ids.data.reshape(-1, samples)
        assert all(len(set(r)) == samples for r in flat.tolist())
    with pytest.raises(VmapError, match="randomness"):
        func.vmap(lambda p: mg.multinomial(p, samples, replacement))(mg.tensor(probs))


@pytest.mark.parametrize("name", ["max", "min", "sort", "topk"])
def test_a_named_tuple_result_comes_back_as_that_named_tuple(name: str) -> None:
    """x.max(dim), x.min(dim), x.sort(), x.topk() under vmap: torch.return_types' named tuple,
    its fields stacked."""
    x = mg.tensor(np.arange(24.0).reshape(2, 3, 4) % 7)
    f = {"max": lambda x: x.max(-1), "min": lambda x: x.min(0, keepdim=True),
         "sort": lambda x: x.sort(1, descending=True), "topk": lambda x: x.topk(2)}[name]
    got = func.vmap(f)(x)
    assert type(got).__name__ == name and got._fields == ("values", "indices")
    want = stacked(f, [x], (0,), 0)
    assert_same(got.values, want[0], "values")
    assert_same(got.indices, want[1], "indices")


# -- the fallback: an op without a batching rule --------------------------------------------------


class ScaledPair(mg.Function):
    """scaled_pair: (u, v) = (a * b ** 2, a - b) (no batching rule); da = du * b ** 2 + dv,
    db = 2 du * a * b - dv (a and b broadcast)"""

    def __init__(self, scale: float) -> None:
        self.scale = scale

    def forward(self, a, b):
        return self.scale * a * b ** 2, a - b

    def backward(self, du, dv):
        a, b = self.inputs
        return self.scale * du * b * b + dv, 2 * self.scale * du * a * b - dv


@given(data=st.data())
def test_an_op_without_a_rule_runs_once_per_example_with_a_warning(data) -> None:
    shape_a, shape_b = data.draw(two_shapes(), label="shapes")
    size, which = data.draw(SIZES, label="size"), data.draw(WHICH, label="batched")
    a = mg.tensor(data.draw(signed((size, *shape_a) if which[0] else shape_a), label="a"))
    b = mg.tensor(data.draw(signed((size, *shape_b) if which[1] else shape_b), label="b"))
    def f(a, b):
        return ScaledPair.apply(a, b, scale=1.5)

    with pytest.warns(RuntimeWarning, match="ScaledPair has no batching rule"):
        assert_vmap_is_stacked(f, [a, b], dims_of(which), 0, "ScaledPair")
    with pytest.warns(RuntimeWarning, match="ScaledPair has no batching rule"):
        assert_vmap_is_stacked(func.grad(squares(f), argnums=(0, 1)), [a, b], dims_of(which),
                               0, "grad of ScaledPair")
    with warnings.catch_warnings():  # an op with a rule does not warn
        warnings.simplefilter("error", RuntimeWarning)
        func.vmap(lambda a, b: a * b, dims_of(which))(a, b)


# -- cases that were bugs: scalars' dtypes, a batched bias alone, index_select past axis 0 -------


def test_a_batched_float32_scalar_with_an_unbatched_float64_scalar_keeps_its_precision():
    s = mg.tensor(np.array([0.1, 0.7, 1.3], np.float32))
    w = mg.tensor(np.float64(0.1))
    for f in (lambda s, w: s + w, lambda s, w: s * w, lambda s, w: w - s, lambda s, w: w / s):
        assert_vmap_is_stacked(f, [s, w], (0, None))


@pytest.mark.parametrize("x_shape, size", [((4,), 3), ((2, 4), 5)])
def test_linear_with_only_the_bias_batched(x_shape, size):
    x = mg.tensor(np.linspace(-1, 2, math.prod(x_shape)).reshape(x_shape))
    w = mg.tensor(np.arange(12.0).reshape(3, 4) % 5)  # rows of x @ W.T differ
    b = mg.tensor(np.linspace(0, 1, 3 * size).reshape(size, 3))
    assert_vmap_is_stacked(F.linear, [x, w, b], (None, None, 0))


def test_index_select_with_a_batched_index_along_a_later_axis():
    x = mg.tensor(np.arange(12.0).reshape(3, 4))
    ids = mg.tensor(np.array([[0, 3], [1, 1]]))
    assert_vmap_is_stacked(lambda x, i: x.index_select(1, i), [x, ids], (None, 0))
