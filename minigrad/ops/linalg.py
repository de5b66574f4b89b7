"""Matrix multiplication: 1-D, 2-D and batched, with NumPy's broadcasting of batch axes."""

from __future__ import annotations

import numpy as np

from minigrad.autograd import Function
from minigrad.ops.shape import Transpose
from minigrad.tensor import Tensor, _as_tensor


class MatMul(Function):
    """matmul: y = a @ b; da = dy @ b^T, db = a^T @ dy  (batch axes summed by the engine)"""

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
        need_a, need_b = self.needs_input_grad
        ga = gb = None
        if need_a:
            ga = g @ _mT(b2)
            ga = ga.reshape(ga.shape[:-2] + ga.shape[-1:]) if a.ndim == 1 else ga
        if need_b:
            gb = _mT(a2) @ g
            gb = gb.reshape(gb.shape[:-1]) if b.ndim == 1 else gb
        return ga, gb


class Linear(Function):
    """linear: y = x @ W^T + b; dx = dy @ W, dW = dy^T @ x and db = sum(dy), over all rows

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
        x, w = self.inputs[:2]
        rows, x_rows = _rows(gy), _rows(x)  # the weight's gradient is one product, not a sum
        if not w.requires_grad:
            dw = None
        else:
            dw = _mT(rows) @ x_rows
        grads = (gy @ w if x.requires_grad else None, dw)
        if len(self.inputs) == 3:
            b = self.inputs[2]
            db = rows.sum(0) if b.shape == w.shape[:1] else gy  # the engine sums a broadcast b
            grads += (db if b.requires_grad else None,)
        return grads


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
