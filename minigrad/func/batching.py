"""Batching rules: how each op runs on a whole batch at once, for ``vmap``.

``vmap`` traces its function on one example, then replays the recorded ops on the batch
(``vectorize.py``). Each op that reads a batched value is replayed by its rule here, the way
JAX's ``vmap_rules`` and torch.func's batching rules work: the rule gets the op's class and
options as traced (for one example), the inputs (a batched one carries the batch on a new
axis 0; an unbatched one is as the example saw it) and which are batched, and returns the
outputs for the whole batch, batch axis first, written with ops. So a replay keeps a graph:
``grad(vmap(f))`` and ``jvp(vmap(f))`` work, and an outer ``vmap`` records the replay.

Most rules do one of four things:

- **pointwise** ops (and those that only need their inputs' shapes to agree) broadcast as
  NumPy does: a batched input gets axes of length 1 after its batch axis, up to the rank of
  the widest input, so that it lines up with the others from the right;
- ops with an **axis** option get it moved past the batch axis (a negative axis counts from
  the end, so it stays);
- ops whose options name a **shape** get the batch size in front of it;
- **joins** (concat, stack, cross-entropy's inputs) repeat an unbatched input along the batch
  (a view, not a copy).

An op without a rule (a user's ``Function``) runs once per example, with a warning; register
one in ``RULES`` to batch it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from minigrad.autograd import Function
from minigrad.ops import elementwise as ew
from minigrad.ops import linalg, probability, reduce
from minigrad.ops import shape as sh
from minigrad.tensor import Tensor


class VmapError(ValueError):
    """What ``vmap`` cannot batch, or arguments that do not fit it, with the reason."""


Outputs = Tensor | tuple[Tensor, ...]
Rule = Callable[[type, dict, list[Tensor], list[bool], int], Outputs]
"""``rule(op, options, inputs, batched, size) -> outputs``, every output batched (axis 0)."""


# -- helpers ------------------------------------------------------------------------------------


def rank(x: Tensor, batched: bool) -> int:
    """The number of axes of one example of ``x``."""
    return x.ndim - batched


def lift(x: Tensor, batched: bool, ndim: int) -> Tensor:
    """A batched ``x`` with axes of length 1 after its batch axis, so that one example has
    ``ndim`` axes: it then broadcasts against unbatched inputs as one example would."""
    missing = ndim - rank(x, batched)
    if not batched or missing <= 0:
        return x
    return sh.Reshape.apply(x, shape=(x.shape[0], *(1,) * missing, *x.shape[1:]))


def expand(x: Tensor, batched: bool, size: int) -> Tensor:
    """``x`` with a batch axis: an unbatched one repeated ``size`` times (a view)."""
    return x if batched else sh.BroadcastTo.apply(x, shape=(size, *x.shape))


def shift(axis: int) -> int:
    """An example's axis, counted in the batch: past the batch axis (from the end: unchanged)."""
    return axis + 1 if axis >= 0 else axis


def shift_all(axis: int | Sequence[int] | None, ndim: int) -> int | tuple[int, ...]:
    """``shift`` for an axis option that may be a sequence, or None (all of an example's
    ``ndim`` axes)."""
    if axis is None:
        return tuple(range(1, ndim + 1))
    if isinstance(axis, (int, np.integer)):
        return shift(int(axis))
    return tuple(shift(a) for a in axis)


def move_to_front(x: Tensor, axis: int) -> Tensor:
    """``x`` with axis ``axis`` moved to the front (the others keep their order)."""
    axis %= x.ndim
    if axis == 0:
        return x
    order = (axis, *(a for a in range(x.ndim) if a != axis))
    return sh.Transpose.apply(x, axes=order)


def move_from_front(x: Tensor, axis: int) -> Tensor:
    """The inverse of ``move_to_front``: axis 0 of ``x`` goes to ``axis``."""
    axis %= x.ndim
    if axis == 0:
        return x
    order = list(range(1, x.ndim))
    order.insert(axis, 0)
    return sh.Transpose.apply(x, axes=tuple(order))


# -- the rules ----------------------------------------------------------------------------------


def pointwise(op: type, options: dict, xs: list[Tensor], batched: list[bool], size: int
              ) -> Outputs:
    """Elementwise ops, and ops that read only their inputs' shapes (a dropout mask): the
    inputs lined up by ``lift``, then the op as it is."""
    ndim = max(rank(x, b) for x, b in zip(xs, batched))
    xs = [lift(x, b, ndim) for x, b in zip(xs, batched)]
    floats = {x.dtype for x in xs if x.dtype.kind == "f"}
    if len(floats) > 1 and any(b and x.ndim == 1 for x, b in zip(xs, batched)):
        xs = _promoted_as_one_example(op, options, xs, batched)  # a batch of scalars
    return op.apply(*xs, **options)


def _promoted_as_one_example(op: type, options: dict, xs: list[Tensor], batched: list[bool]
                             ) -> list[Tensor]:
    """The inputs, floats cast up to the dtype that one example's op gives: a 0-d operand
    does not widen a tensor's float dtype (``_promoted``), and in the batch it is not 0-d."""
    examples = [np.ones((1,) * (x.ndim - b), x.dtype) for x, b in zip(xs, batched)]
    dtype = np.asarray(op(**options).forward(*examples)).dtype
    return [ew.Cast.apply(x, dtype=dtype) if x.dtype.kind == "f" and dtype.kind == "f"
            and np.can_cast(x.dtype, dtype, "safe") and x.dtype != dtype else x for x in xs]


def rows(op: type, options: dict, xs: list[Tensor], batched: list[bool], size: int
         ) -> Outputs:
    """Ops that treat axis 0 as independent rows (they check ids row by row): the batch
    folded into the rows, and unfolded from each output."""
    xs = [expand(x, b, size) for x, b in zip(xs, batched)]
    ys = op.apply(*[sh.Reshape.apply(x, shape=(-1, *x.shape[2:])) for x in xs], **options)
    unfold = [sh.Reshape.apply(y, shape=(size, -1, *y.shape[1:]))
              for y in (ys if type(ys) is tuple else (ys,))]
    return tuple(unfold) if type(ys) is tuple else unfold[0]


def along_axis(op: type, options: dict, xs: list[Tensor], batched: list[bool], size: int
               ) -> Outputs:
    """One input and an ``axis`` option (None for all axes): softmax, sum, max, all/any,
    argsort, one_hot, split, unbind."""
    (x,) = xs
    return op.apply(x, **{**options, "axis": shift_all(options.get("axis"), x.ndim - 1)})


def arg_extreme(op: type, options: dict, xs: list[Tensor], batched: list[bool], size: int
                ) -> Outputs:
    """argmax/argmin: with ``axis=None``, a position in the flattened example."""
    (x,) = xs
    if options["axis"] is not None:
        return along_axis(op, options, xs, batched, size)
    flat = op.apply(sh.Reshape.apply(x, shape=(size, -1)), axis=1, keepdims=False)
    ones = (1,) * (x.ndim - 1) if options["keepdims"] else ()
    return sh.Reshape.apply(flat, shape=(size, *ones))


def joined(op: type, options: dict, xs: list[Tensor], batched: list[bool], size: int
           ) -> Outputs:
    """concat and stack: every input batched, the axis shifted."""
    xs = [expand(x, b, size) for x, b in zip(xs, batched)]
    return op.apply(*xs, axis=shift(options["axis"]))


def reshape(op: type, options: dict, xs: list[Tensor], batched: list[bool], size: int
            ) -> Outputs:
    """reshape: the batch size in front of the new shape."""
    shape = options["shape"]
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    return sh.Reshape.apply(xs[0], shape=(size, *shape))


def transpose(op: type, options: dict, xs: list[Tensor], batched: list[bool], size: int
              ) -> Outputs:
    """transpose: the batch axis stays first, the example's axes are permuted after it."""
    (x,) = xs
    axes = options["axes"]
    order = range(x.ndim - 1, 0, -1) if axes is None else (shift(a % (x.ndim - 1)) for a in axes)
    return sh.Transpose.apply(x, axes=(0, *order))


def broadcast_to(op: type, options: dict, xs: list[Tensor], batched: list[bool], size: int
                 ) -> Outputs:
    """broadcast_to: lined up with the target shape, then broadcast with the batch in front."""
    shape = tuple(options["shape"])
    return sh.BroadcastTo.apply(lift(xs[0], True, len(shape)), shape=(size, *shape))


def sum_to(op: type, options: dict, xs: list[Tensor], batched: list[bool], size: int
           ) -> Outputs:
    """sum_to: the example's extra leading axes summed first (not the batch axis), then the
    stretched ones."""
    (x,) = xs
    shape = tuple(options["shape"])
    lead = x.ndim - 1 - len(shape)
    if lead:
        x = reduce.Sum.apply(x, axis=tuple(range(1, 1 + lead)))
    return sh.SumTo.apply(x, shape=(size, *shape))


def _parts(index: Any) -> tuple:
    return index if type(index) is tuple else (index,)


def _advanced(part: Any) -> bool:
    return part is sh.ARRAY or isinstance(part, (list, int, np.integer))


def _batch_last(index: Any) -> Any:
    """An example's index, for a tensor whose batch axis is last: with an ellipsis (which
    would take the batch axis too) a full slice goes after it; without one the batch axis is
    among the trailing axes that the index leaves alone."""
    parts = _parts(index)
    return (*parts, slice(None)) if Ellipsis in parts else index


def _batched_index(op: type, options: dict, xs: list[Tensor], batched: list[bool], size: int
                   ) -> tuple[Any, list[Tensor]]:
    """For getitem and index_add with batched index arrays: the index with the batch's own
    positions ``arange(size)`` put in front, and its arrays lined up with them. NumPy puts the
    axes of adjacent index arrays where the arrays are; that stays true with ``arange`` in
    front only when the arrays lead the example's index."""
    parts = _parts(options["index"])
    lead = next((k for k, p in enumerate(parts) if not _advanced(p)), len(parts))
    if any(p is sh.ARRAY or isinstance(p, list) for p in parts[lead:]):
        raise VmapError(f"vmap: {op.__name__} with an index array that differs across the "
                         f"batch is batched only where the index arrays come first "
                         f"(x[ids], x[ids, j]); got the index {options['index']!r}")
    arrays = [(a, b) for a, b in zip(xs[1:], batched[1:])]
    if any(b and a.dtype.kind == "b" for a, b in arrays):
        raise VmapError(f"vmap: {op.__name__} with a boolean mask that differs across the "
                         "batch: each example would pick a different number of entries")
    ndim = max(rank(a, b) for a, b in arrays)
    positions = Tensor._wrap(np.arange(size).reshape(size, *(1,) * ndim))
    return (sh.ARRAY, *parts), [positions, *[lift(a, b, ndim) for a, b in arrays]]


def getitem(op: type, options: dict, xs: list[Tensor], batched: list[bool], size: int
            ) -> Outputs:
    """x[index]: with the index the same for every example, the example's index on ``x`` with
    its batch axis moved last (where no index reaches it), then moved back; with index arrays
    that differ, one advanced index over the batch and the example's positions together."""
    x, *arrays = xs
    if not any(batched[1:]):
        last = move_from_front(x, -1)
        y = sh.GetItem.apply(last, *arrays, index=_batch_last(options["index"]))
        return move_to_front(y, -1)
    index, arrays = _batched_index(op, options, xs, batched, size)
    return sh.GetItem.apply(expand(x, batched[0], size), *arrays, index=index)


def index_add(op: type, options: dict, xs: list[Tensor], batched: list[bool], size: int
              ) -> Outputs:
    """index_add (getitem's backward): as ``getitem``, into zeros with the batch's axis."""
    x, *arrays = xs
    shape = tuple(options["shape"])
    if not any(batched[1:]):
        last = move_from_front(x, -1)
        y = sh.IndexAdd.apply(last, *arrays, index=_batch_last(options["index"]),
                              shape=(*shape, size))
        return move_to_front(y, -1)
    index, arrays = _batched_index(op, options, xs, batched, size)
    return sh.IndexAdd.apply(expand(x, batched[0], size), *arrays, index=index,
                             shape=(size, *shape))


def matmul(op: type, options: dict, xs: list[Tensor], batched: list[bool], size: int
           ) -> Outputs:
    """a @ b: a batched vector operand becomes a matrix (a row for a, a column for b) and
    loses that axis after; batched operands get length-1 batch axes to line up with the
    other's batch axes; NumPy's matmul broadcasts the rest."""
    (a, b), (ba, bb) = xs, batched
    row = ba and a.ndim == 2
    column = bb and b.ndim == 2
    if row:
        a = sh.Reshape.apply(a, shape=(size, 1, a.shape[1]))
    if column:
        b = sh.Reshape.apply(b, shape=(size, b.shape[1], 1))
    ndim = max(rank(a, ba), rank(b, bb))
    y = linalg.MatMul.apply(lift(a, ba, ndim), lift(b, bb, ndim))
    if not (row or column):
        return y
    shape = list(y.shape)
    if column:
        shape.pop()
    if row:  # a's row axis: last but one, unless b had no last axis (1-D) or lost it
        shape.pop(-1 if column or b.ndim == 1 else -2)
    return sh.Reshape.apply(y, shape=tuple(shape))


def linear(op: type, options: dict, xs: list[Tensor], batched: list[bool], size: int
           ) -> Outputs:
    """x @ W^T + b: one op when only x is batched; with a batched weight or bias, a matmul
    (batched when x or W is) and an add."""
    if not any(batched[1:]):
        return linalg.Linear.apply(*xs)
    (x, w, *bias), (bx, bw, *bb) = xs, batched
    if bx or bw:
        wt = sh.Transpose.apply(w, axes=(0, 2, 1) if bw else None)
        y = matmul(linalg.MatMul, {}, [x, wt], [bx, bw], size)
    else:
        y = linalg.Linear.apply(x, w)
    if not bias:
        return y
    return pointwise(ew.Add, {}, [y, bias[0]], [bx or bw, bb[0]], size)


def einsum(op: type, options: dict, xs: list[Tensor], batched: list[bool], size: int
           ) -> Outputs:
    """einsum: a letter of its own for the batch, on the batched operands and the output."""
    spec = options["spec"]
    letter = next(c for c in "zyxwvutsrqponmlkjihgfedcbaZYXWVUTSRQPONMLKJIHGFEDCBA"
                  if c not in spec)
    ins, out = spec.split("->")
    ins = [letter + s if b else s for s, b in zip(ins.split(","), batched)]
    return linalg.Einsum.apply(*xs, spec=f"{','.join(ins)}->{letter}{out}")


def class_targets(op: type, options: dict, xs: list[Tensor], batched: list[bool], size: int
                  ) -> Outputs:
    """class_targets: the weights of the mean divided by each example's own count."""
    t, w = probability.ClassTargets.apply(xs[0], **{**options, "mean": False})
    if not options["mean"]:
        return t, w
    count = reduce.Sum.apply(w, axis=tuple(range(1, w.ndim)), keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):  # no valid target: nan, as eagerly
        return t, ew.Div.apply(w, count)


def _per_example_sum(y: Tensor) -> Tensor:
    return reduce.Sum.apply(y, axis=tuple(range(1, y.ndim))) if y.ndim > 1 else y


def cross_entropy(op: type, options: dict, xs: list[Tensor], batched: list[bool], size: int
                  ) -> Outputs:
    """cross_entropy: the loss of every target entry ('none'), summed per example."""
    xs = [expand(x, b, size) for x, b in zip(xs, batched)]
    y = probability.CrossEntropy.apply(*xs, axis=shift(options["axis"]), reduction="none")
    return y if options["reduction"] == "none" else _per_example_sum(y)


def cross_entropy_grad(op: type, options: dict, xs: list[Tensor], batched: list[bool],
                       size: int) -> Outputs:
    """cross_entropy_grad: as 'none', each example's loss gradient ``g`` spread over its
    target entries."""
    x, t, w, g = [expand(x, b, size) for x, b in zip(xs, batched)]
    if options["reduction"] != "none":
        g = sh.Reshape.apply(g, shape=(size, *(1,) * (t.ndim - 1)))
    return probability.CrossEntropyGrad.apply(x, t, w, g, axis=shift(options["axis"]),
                                              reduction="none")


RULES: dict[type, Rule] = {
    **dict.fromkeys([ew.Add, ew.Sub, ew.Mul, ew.Div, ew.Neg, ew.Pow, ew.PowTensor, ew.Exp,
                     ew.Log, ew.Tanh, ew.TanhGrad, ew.Sigmoid, ew.SigmoidGrad, ew.Relu, ew.Sqrt,
                     ew.Abs, ew.Clip, ew.Where, ew.Cast, ew.Clone, ew.Detach, ew.Sign,
                     ew.Compare, ew.Elementwise, probability.DropoutMask,
                     probability.EmbeddingIds, probability.Multinomial, sh.IndexInRange],
                    pointwise),
    **dict.fromkeys([reduce.Sum, reduce.Max, reduce.Min, reduce.Logical, reduce.ArgSort,
                     probability.Softmax, probability.LogSoftmax, probability.OneHot, sh.Split,
                     sh.Unbind], along_axis),
    reduce.ArgMax: arg_extreme, reduce.ArgMin: arg_extreme,
    sh.Concat: joined, sh.Stack: joined,
    sh.Reshape: reshape, sh.Transpose: transpose, sh.BroadcastTo: broadcast_to,
    sh.SumTo: sum_to, sh.GetItem: getitem, sh.IndexAdd: index_add,
    linalg.MatMul: matmul, linalg.Linear: linear, linalg.Einsum: einsum,
    probability.ClassTargets: class_targets, probability.CrossEntropy: cross_entropy,
    probability.CrossEntropyGrad: cross_entropy_grad,
}
"""The batching rule of each op; a model's own ops add theirs (``models/classify.py``)."""


def one_by_one(op: type, options: dict, xs: list[Tensor], batched: list[bool], size: int
               ) -> Outputs:
    """The fallback for an op without a rule: the op once per example, the results stacked
    (slow: it warns)."""
    warnings.warn(f"vmap: {op.__name__} has no batching rule, so it runs once per example "
                  f"({size} times); register one in minigrad.func.batching.RULES",
                  RuntimeWarning, stacklevel=2)
    runs = [op.apply(*[sh.GetItem.apply(x, index=k) if b else x for x, b in zip(xs, batched)],
                     **options) for k in range(size)]
    if type(runs[0]) is not tuple:
        return sh.Stack.apply(*runs, axis=0)
    return tuple(sh.Stack.apply(*outputs, axis=0) for outputs in zip(*runs))


def rule_of(op: type) -> Rule:
    """The rule that batches ``op``: its own, or its nearest base class's, or the fallback."""
    for cls in op.__mro__:
        if cls in RULES:
            return RULES[cls]
        if cls is Function:
            break
    return one_by_one

