"""Matrix multiplication: 1-D, 2-D and batched, with NumPy's broadcasting of batch axes."""

from __future__ import annotations

import numpy as np

from minigrad.autograd import Function, tangent_sum
from minigrad.ops.shape import Transpose
from minigrad.tensor import Tensor, _as_tensor


class MatMul(Function):
    """matmul: y = a @ b; da = dy @ b^T, db = a^T @ dy  (batch axes summed by the engine);
    ẏ = ȧ @ b + a @ ḃ  (each term a matmul as forward's, 1-D operands and batch axes alike)"""

    def forward(self, a, b):
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: needs tensors of 1 or more axes; got {a.shape} @ {b.shape}")
        inner_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if a.shape[-1] != inner_b:
            raise ValueError(
                f"matmul: shapes {a.shape} and {b.shape} do not fit: the last axis of a "
                f"({a.shape[-1]}) must equal the {'only' if b.ndim == 1 else 'second-to-last'} "
                f"axis of b ({inner_b})"
            )
        if a.ndim > 2 and b.ndim == 2:  # one 2-D product over all rows beats a batched loop
            return (a.reshape(-1, a.shape[-1]) @ b).reshape(a.shape[:-1] + b.shape[-1:])
        if a.ndim == b.ndim == 2 and inner_b == 1:  # an outer product: np.matmul is 4x slower
            return np.dot(a, b)
        try:
            return np.matmul(a, b)
        except ValueError:
            raise ValueError(
                f"matmul: the batch axes of {a.shape} and {b.shape} do not broadcast"
            ) from None

    def backward(self, gy):
        a, b = self.inputs
        if a.ndim > 2 and b.ndim == 2:  # as in forward: fold a's batch axes into rows
            return (gy @ _mT(b) if a.requires_grad else None,
                    _mT(a.reshape(-1, a.shape[-1])) @ gy.reshape(-1, gy.shape[-1])
                    if b.requires_grad else None)
        # A vector operand acts as a matrix with one row (a) or one column (b), as in forward.
        a2 = a.reshape(1, -1) if a.ndim == 1 else a
        b2 = b.reshape(-1, 1) if b.ndim == 1 else b
        g = gy.reshape(gy.shape + (1,)) if b.ndim == 1 else gy
        g = g.reshape(g.shape[:-1] + (1,) + g.shape[-1:]) if a.ndim == 1 else g
        ga = gb = None
        if a.requires_grad:
            ga = g @ _mT(b2)
            ga = ga.reshape(ga.shape[:-2] + ga.shape[-1:]) if a.ndim == 1 else ga
        if b.requires_grad:
            gb = _mT(a2) @ g
            gb = gb.reshape(gb.shape[:-1]) if b.ndim == 1 else gb
        return ga, gb

    def jvp(self, ta, tb):
        a, b = self.inputs
        return tangent_sum(None if ta is None else MatMul.apply(ta, b),
                           None if tb is None else MatMul.apply(a, tb))


class Linear(Function):
    """linear: y = x @ W^T + b; dx = dy @ W, dW = dy^T @ x and db = sum(dy), over all rows;
    ẏ = ẋ @ W^T + x @ Ẇ^T + ḃ

    ``b`` is ``(out,)`` or, as PyTorch also accepts, any shape that broadcasts to ``y`` (a
    recurrent cell passes its input projection here, so one op adds it).
    """

    def forward(self, x, w, b=None):
        if w.ndim != 2 or x.ndim == 0 or x.shape[-1] != w.shape[1]:
            raise ValueError(
                f"linear: input of shape {x.shape} does not fit weight of shape {w.shape}: "
                f"expected input (..., {w.shape[-1]}) and a 2-D weight (out, in)"
            )
        if x.ndim <= 2:
            y = x @ w.T
        else:  # one 2-D product over all rows
            y = (x.reshape(-1, x.shape[-1]) @ w.T).reshape(x.shape[:-1] + w.shape[:1])
        if b is not None:
            try:
                y += b
            except ValueError:
                raise ValueError(
                    f"linear: bias of shape {b.shape} does not broadcast to the output shape "
                    f"{y.shape}"
                ) from None
        return y

    def backward(self, gy):
        x, w, *b = self.inputs
        rows = _rows(gy)  # the weight's gradient is one product, not a sum over rows
        gw = _mT(rows) @ _rows(x) if w.requires_grad else None
        gx = gy @ w if x.requires_grad else None
        if not b:
            return gx, gw
        gb = None
        if b[0].requires_grad:
            gb = rows.sum(0) if b[0].shape == w.shape[:1] else gy  # the engine sums a broadcast b
        return gx, gw, gb

    def jvp(self, tx, tw, tb=None):
        x, w = self.inputs[:2]
        return tangent_sum(None if tx is None else Linear.apply(tx, w),
                           None if tw is None else Linear.apply(x, tw),
                           tb)  # (ḃ alone: the engine broadcasts it to y's shape)


def _rows(x: Tensor) -> Tensor:
    """``x`` as a matrix: its last axis stays, all others become rows."""
    return x if x.ndim == 2 else x.reshape(-1, x.shape[-1])


def _mT(x: Tensor) -> Tensor:
    """Swap the last two axes."""
    n = x.ndim
    return Transpose.apply(x, axes=None if n == 2 else (*range(n - 2), n - 1, n - 2))


def matmul(a: Tensor, b: Tensor) -> Tensor:
    """Matrix product with NumPy's rules for 1-D operands and batch broadcasting."""
    return MatMul.apply(_as_tensor(a), _as_tensor(b))


def mm(a: Tensor, b: Tensor) -> Tensor:
    """Product of two matrices (2-D only, as ``torch.mm``)."""
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"mm: needs two matrices; got shapes {a.shape} and {b.shape}")
    return MatMul.apply(a, b)


def bmm(a: Tensor, b: Tensor) -> Tensor:
    """Product of two batches of matrices ``(b, n, m) @ (b, m, p)`` (no broadcasting, as
    ``torch.bmm``)."""
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0]:
        raise ValueError(
            f"bmm: needs two 3-D tensors with the same batch size; got shapes {a.shape} and "
            f"{b.shape}"
        )
    return MatMul.apply(a, b)


class Einsum(Function):
    """einsum: y = einsum(spec, x1, x2, ...); dxi = einsum of dy with the other operands into
    xi's subscripts (a letter only xi has is broadcast back, a repeated one put on the
    diagonal); ẏ = sum_i einsum(spec, x1, ..., ẋi, ..., xn)  (multilinear)

    ``spec`` is explicit ("ij,jk->ik"), with the ellipsis written out (``einsum`` does both).
    """

    def __init__(self, spec: str) -> None:
        self.spec = spec

    def forward(self, *xs):
        return np.einsum(self.spec, *xs, optimize=len(xs) > 2)

    def backward(self, gy):
        ins, out = self.spec.split("->")
        subscripts = ins.split(",")
        grads = []
        for i, x in enumerate(self.inputs):
            if not x.requires_grad:
                grads.append(None)
                continue
            others = [s for j, s in enumerate(subscripts) if j != i]
            known = set(out).union(*others)
            reached = "".join(dict.fromkeys(c for c in subscripts[i] if c in known))
            g = Einsum.apply(gy, *[y for j, y in enumerate(self.inputs) if j != i],
                             spec=f"{','.join([out, *others])}->{reached}")
            grads.append(_spread(g, reached, subscripts[i], x.shape, self.spec))
        return tuple(grads)

    def jvp(self, *txs):
        xs = self.inputs
        return tangent_sum(*[
            None if t is None else Einsum.apply(*xs[:i], t, *xs[i + 1:], spec=self.spec)
            for i, t in enumerate(txs)])


def _spread(g: Tensor, letters: str, target: str, shape: tuple[int, ...], spec: str) -> Tensor:
    """``g`` (subscripts ``letters``) laid out as an operand with subscripts ``target``: a
    letter ``g`` lacks is broadcast (a product with ones), a repeated one goes on the diagonal
    (a product with the identity)."""
    if letters == target:
        return g
    fresh = iter(sorted(set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") - set(spec)))
    parts, factors, seen = [], [], set(letters)
    out = ""
    for c, n in zip(target, shape):
        if c not in seen:  # first sight of a letter g lacks: broadcast along it
            seen.add(c)
            parts.append(c)
            factors.append(Tensor._wrap(np.ones(n, g.dtype)))
            out += c
        elif c in out:  # a repeat: a fresh letter tied to c by the identity
            f = next(fresh)
            parts.append(c + f)
            factors.append(Tensor._wrap(np.eye(n, dtype=g.dtype)))
            out += f
        else:
            out += c
    return Einsum.apply(g, *factors, spec=f"{','.join([letters, *parts])}->{out}")


def einsum(equation: str, *operands: Tensor) -> Tensor:
    """Einstein summation, as ``torch.einsum`` ("bij,bjk->bik"; operands also as one list).
    An implicit output (no "->") lists the letters seen once, in alphabetical order; "..."
    stands for the leading axes; a letter repeated in one operand takes its diagonal."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    operands = tuple(_as_tensor(x) for x in operands)
    spec = equation.replace(" ", "")
    inputs, arrow, out = spec.partition("->")
    subscripts = inputs.split(",")
    if len(subscripts) != len(operands):
        raise ValueError(f"einsum: {equation!r} names {len(subscripts)} operands; got "
                         f"{len(operands)}")
    letters = sorted(set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") - set(spec))
    lead = max((x.ndim - len(s.replace("...", "")) for s, x in zip(subscripts, operands)
                if "..." in s), default=0)
    dots = "".join(letters[:lead])
    for k, (s, x) in enumerate(zip(subscripts, operands)):
        s = s.replace("...", dots[lead - (x.ndim - len(s) + 3):] if "..." in s else "")
        if len(s) != x.ndim:
            raise ValueError(f"einsum: operand {k} has shape {x.shape} but subscripts "
                             f"{subscripts[k]!r}")
        subscripts[k] = s
    if arrow:
        out = out.replace("...", dots)
    else:
        counts = "".join(subscripts)
        out = dots + "".join(sorted(c for c in set(counts) if counts.count(c) == 1
                                    and c not in dots))
    return Einsum.apply(*operands, spec=f"{','.join(subscripts)}->{out}")
