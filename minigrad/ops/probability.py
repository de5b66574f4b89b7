"""Ops on probabilities: softmax, log_softmax, cross-entropy and its gradient (computed
stably); the ops without gradient that read class targets and embedding ids, draw dropout masks
and sample from a multinomial. (The parts ``mg.compile`` splits cross-entropy into live beside
that pass, in ``minigrad/compile/fast/decompose.py``.)"""

from __future__ import annotations

import numpy as np

from minigrad import random
from minigrad.autograd import Function, tangent_sum
from minigrad.ops.elementwise import NonDifferentiable
from minigrad.ops.reduce import normalize_axes
from minigrad.tensor import Tensor


class Softmax(Function):
    """softmax: y = exp(x - max x) / sum exp(x - max x); dx = y * (dy - sum(dy * y));
    ẏ = y * (ẋ - sum(ẋ * y))"""

    saved_inputs = slice(0)  # backward reads the output

    def __init__(self, axis: int = -1) -> None:
        self.axis = axis

    def forward(self, x):
        normalize_axes(self.axis, x.ndim, "softmax")
        e = np.exp(x - x.max(axis=self.axis, keepdims=True))
        return e / e.sum(axis=self.axis, keepdims=True)

    def backward(self, gy):
        y = self.output()
        return y * (gy - (gy * y).sum(self.axis, keepdims=True))

    def jvp(self, tx):
        y = self.output()
        return y * (tx - (tx * y).sum(self.axis, keepdims=True))


class LogSoftmax(Function):
    """log_softmax: y = x - logsumexp(x); dx = dy - exp(y) * sum(dy); ẏ = ẋ - sum(ẋ * exp(y))"""

    saved_inputs = slice(0)  # backward reads the output

    def __init__(self, axis: int = -1) -> None:
        self.axis = axis

    def forward(self, x):
        normalize_axes(self.axis, x.ndim, "log_softmax")
        shifted = x - x.max(axis=self.axis, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=self.axis, keepdims=True))

    def backward(self, gy):
        return gy - self.output().exp() * gy.sum(self.axis, keepdims=True)

    def jvp(self, tx):
        return tx - (tx * self.output().exp()).sum(self.axis, keepdims=True)


def softmax(x: Tensor, dim: int = -1, *, axis: int | None = None) -> Tensor:
    """Softmax along ``dim``."""
    return Softmax.apply(x, axis=dim if axis is None else axis)


def log_softmax(x: Tensor, dim: int = -1, *, axis: int | None = None) -> Tensor:
    """Log-softmax along ``dim``."""
    return LogSoftmax.apply(x, axis=dim if axis is None else axis)


def _hits(t: np.ndarray, axis: int) -> tuple:
    """The index of the target entries of logits with classes on ``axis``:
    ``x[_hits(t, axis)]`` has the target's shape and picks ``x[..., t, ...]`` at each
    target position."""
    grids = np.indices(t.shape, sparse=True)  # the target's own positions, per axis
    return (*grids[:axis], t, *grids[axis:])


class ClassTargets(NonDifferentiable):
    """class_targets: (t', w) = (t with ignored entries set to 0, [t != ignore] / count for the
    mean or [t != ignore] otherwise), after checking 0 <= t < classes; no gradient"""

    def __init__(self, classes: int, ignore_index: int | None, mean: bool, dtype: np.dtype) -> None:
        self.classes, self.ignore_index, self.mean, self.dtype = classes, ignore_index, mean, dtype

    def forward(self, t):
        n = self.classes
        valid = np.ones(t.shape, bool) if self.ignore_index is None else t != self.ignore_index
        bad = t[valid & ((t < 0) | (t >= n))]
        if bad.size:
            raise IndexError(
                f"cross_entropy: target {bad.flat[0]} is out of range for {n} classes "
                f"(valid ids are 0..{n - 1})"
            )
        w = valid.astype(self.dtype)
        if self.mean:
            with np.errstate(divide="ignore", invalid="ignore"):  # no valid target: nan, as torch
                w /= w.sum()
        return (t if self.ignore_index is None else np.where(valid, t, 0)), w


class OneHot(NonDifferentiable):
    """one_hot: y = 1 at class t along axis, 0 elsewhere; no gradient"""

    def __init__(self, classes: int, axis: int, dtype: np.dtype) -> None:
        self.classes, self.axis, self.dtype = classes, axis, dtype

    def forward(self, t):
        y = np.zeros(t.shape[:self.axis] + (self.classes,) + t.shape[self.axis:], self.dtype)
        y[_hits(t, self.axis)] = 1
        return y


def _softmax_terms(x: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(m, e, total)``: the max ``m`` of ``x`` along ``axis`` (kept as a length-1 axis),
    ``e = exp(x - m)`` and its sum ``total``, from which softmax is ``e / total`` and logsumexp
    ``m + log(total)``, without overflow."""
    m = x.max(axis=axis, keepdims=True)
    e = np.subtract(x, m)  # then exponentiated in place: logits are big
    np.exp(e, out=e)
    return m, e, e.sum(axis=axis)


def _cross_entropy_of_terms(m: np.ndarray, total: np.ndarray, x: np.ndarray, hits: tuple,
                            w: np.ndarray, axis: int, reduction: str) -> np.ndarray:
    """cross-entropy ``w * (m + log(total) - x[t])`` (summed unless ``reduction`` is 'none'),
    from ``_softmax_terms`` and the target entries ``hits``."""
    loss = (np.log(total) - (x[hits] - np.squeeze(m, axis))) * w
    return loss if reduction == "none" else np.asarray(loss.sum(), x.dtype)


def _scaled_softmax_minus_onehot(
    e: np.ndarray, total: np.ndarray, hits: tuple, scale: np.ndarray, axis: int,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """cross-entropy's dx = scale * (e / total - onehot(t)) in one pass over the logits, from
    ``e = exp(x - max x)``, its sum ``total`` along ``axis`` and the target entries ``hits``;
    ``out=e`` writes it over ``e``."""
    dx = np.multiply(e, np.expand_dims(scale / total, axis), out=out)
    dx[hits] -= scale
    return dx


class CrossEntropy(Function):
    """cross_entropy: y = sum w * (logsumexp(x) - x[t]); dx = w * dy * (softmax(x) - onehot(t));
    ẏ = sum(ẋ * w * (softmax(x) - onehot(t)))

    The targets ``t`` and their weights ``w`` (of the target's shape, 0 at ignored targets and
    1 / count for the mean) are inputs without gradient (nor tangent), made by
    ``ClassTargets``. Backward is one op, ``CrossEntropyGrad``, whether or not it is recorded;
    so is most of the tangent: the gradient for dy = 1, then summed against ẋ.
    """

    def __init__(self, axis: int, reduction: str) -> None:
        self.axis, self.reduction = axis, reduction

    def forward(self, x, t, w):
        m, _, total = _softmax_terms(x, self.axis)
        return _cross_entropy_of_terms(m, total, x, _hits(t, self.axis), w, self.axis,
                                       self.reduction)

    def backward(self, gy):
        x, t, w = self.inputs
        dx = CrossEntropyGrad.apply(x, t, w, gy, axis=self.axis, reduction=self.reduction)
        return dx, None, None

    def jvp(self, tx, tt, tw):
        if tx is None:  # t and w have no gradient, so no tangent either
            return None
        x, t, w = self.inputs
        none = self.reduction == "none"
        ones = Tensor._wrap(np.ones(t.shape if none else (), x.dtype))  # dy = 1: the loss's shape
        dx = CrossEntropyGrad.apply(x, t, w, ones, axis=self.axis, reduction=self.reduction)
        return (tx * dx).sum(self.axis if none else None)


class CrossEntropyGrad(Function):
    """cross_entropy_grad: y = s * (p - onehot(t)), p = softmax(x), s = w * g;
    dx = s * p * (dy - sum(dy * p)), dg = sum(dy * (p - onehot(t)) * w);
    ẏ = s * p * (ẋ - sum(ẋ * p)) + w * ġ * (p - onehot(t))

    Cross-entropy's backward: its gradient as one op, computed in one pass over the logits,
    whose own backward gives second derivatives. ``g`` is the gradient of the loss (a scalar
    for 'mean' and 'sum', the target's shape for 'none'); ``w`` and ``g`` broadcast along the
    class axis. ``t`` and ``w`` get no gradient.
    """

    def __init__(self, axis: int, reduction: str) -> None:
        self.axis, self.reduction = axis, reduction

    def forward(self, x, t, w, g):
        _, e, total = _softmax_terms(x, self.axis)
        hits = _hits(t, self.axis)
        return _scaled_softmax_minus_onehot(e, total, hits, w * g, self.axis, e)

    def backward(self, gy):
        x, t, w, g = self.inputs
        p = x.softmax(self.axis)
        w = w.unsqueeze(self.axis)
        none = self.reduction == "none"
        gx = gg = None
        if x.requires_grad:
            s = w * (g.unsqueeze(self.axis) if none else g)
            gx = s * p * (gy - (gy * p).sum(self.axis, keepdims=True))
        if g.requires_grad:
            onehot = OneHot.apply(t, classes=x.shape[self.axis], axis=self.axis, dtype=x.dtype)
            gg = (gy * (p - onehot) * w).sum(self.axis if none else None)
        return gx, None, None, gg

    def jvp(self, tx, tt, tw, tg):
        x, t, w, g = self.inputs
        tangent_x = tangent_g = None
        if tx is not None:  # backward's map for dx, applied to ẋ (it is symmetric)
            p = x.softmax(self.axis)
            s = (w * g).unsqueeze(self.axis)
            tangent_x = s * p * (tx - (tx * p).sum(self.axis, keepdims=True))
        if tg is not None:  # y is linear in g: ġ's term is this op of ġ
            tangent_g = CrossEntropyGrad.apply(x, t, w, tg, axis=self.axis,
                                               reduction=self.reduction)
        return tangent_sum(tangent_x, tangent_g)


class DropoutMask(NonDifferentiable):
    """dropout_mask: m = [u >= p] / (1 - p), u ~ U[0, 1) of x's shape from minigrad's generator,
    drawn afresh at every call; no gradient"""

    def __init__(self, p: float) -> None:
        self.p = p

    def forward(self, x):
        keep = random.generator().random(x.shape, dtype=np.float32) >= self.p
        return keep.astype(x.dtype) / (1 - self.p)


class EmbeddingIds(NonDifferentiable):
    """embedding_ids: y = ids, after checking 0 <= ids < num_embeddings; no gradient"""

    def __init__(self, num_embeddings: int) -> None:
        self.num_embeddings = num_embeddings

    def forward(self, ids):
        n = self.num_embeddings
        bad = ids[(ids < 0) | (ids >= n)]
        if bad.size:
            raise IndexError(
                f"Embedding: id {bad.flat[0]} is out of range for num_embeddings={n} "
                f"(valid ids are 0..{n - 1})"
            )
        return ids


class Multinomial(NonDifferentiable):
    """multinomial: y = n int64 category ids per row of probabilities p (rows need not sum to
    1), drawn from minigrad's generator at every call, with or without replacement; no
    gradient"""

    def __init__(self, num_samples: int, replacement: bool) -> None:
        self.num_samples, self.replacement = num_samples, replacement

    def forward(self, p):
        rows = p.reshape(-1, p.shape[-1]).astype(np.float64)
        if (rows < 0).any() or not np.isfinite(rows).all():
            raise ValueError("multinomial: probabilities must be finite and non-negative")
        if not self.replacement and ((rows > 0).sum(1) < self.num_samples).any():
            raise ValueError(f"multinomial: cannot draw {self.num_samples} samples without "
                             "replacement from a row with fewer non-zero probabilities")
        if (rows.sum(1) <= 0).any():
            raise ValueError("multinomial: a row of probabilities sums to 0")
        rng = random.generator()
        draws = [rng.choice(len(r), self.num_samples, self.replacement, r / r.sum())
                 for r in rows]
        return np.asarray(draws, np.int64).reshape(p.shape[:-1] + (self.num_samples,))


def multinomial(input: Tensor, num_samples: int, replacement: bool = False) -> Tensor:
    """``num_samples`` category ids per row of ``input`` (1-D or 2-D, non-negative weights),
    as ``torch.multinomial``, from minigrad's generator."""
    if input.ndim not in (1, 2) or input.dtype.kind != "f":
        raise ValueError(f"multinomial: needs a 1-D or 2-D float tensor of probabilities; got "
                         f"shape {input.shape} and dtype {input.dtype}")
    if num_samples <= 0:
        raise ValueError(f"multinomial: num_samples must be positive; got {num_samples}")
    return Multinomial.apply(input, num_samples=num_samples, replacement=replacement)
