"""Elementwise ops. Broadcast gradients are reduced to each input's shape by the engine.

Comparisons and sign have no gradient: they are ``NonDifferentiable`` ops, so that a backward
that needs a mask (relu, abs, clip, max) computes it from its inputs by ops, as everything else.
"""

from __future__ import annotations

import numpy as np

from minigrad.autograd import Function, no_grad, tangent_sum
from minigrad.tensor import Tensor, _as_tensor

_F64 = np.dtype(np.float64)


def _promoted(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``y`` in PyTorch's result dtype where NumPy's float64 differs: PyTorch keeps the float
    operand's dtype (int64 with float32 is float32), and a 0-d operand does not widen a float
    tensor of more dimensions (float32 with a 0-d float64 is float32)."""
    if y.dtype is not _F64:
        return y
    floats = [x for x in (a, b) if x.dtype.kind == "f"]
    dtype = np.result_type(*[x.dtype for x in ([x for x in floats if x.ndim] or floats)])
    return y if dtype == _F64 else y.astype(dtype)


def _broadcast_error(op: str, a, b) -> ValueError:
    return ValueError(f"{op}: shapes {a.shape} and {b.shape} do not broadcast together")


class NonDifferentiable(Function):
    """Base of ops without a gradient (comparisons, sign, argmax, random masks).

    They run without recording a node, so their outputs are leaves that never require grad, as
    in PyTorch; a program traced from ops still sees them, since they are ops.
    """

    @classmethod
    def apply(cls, *inputs: Tensor, **options) -> Tensor | tuple[Tensor, ...]:
        """Run the op on tensors; nothing is recorded."""
        with no_grad():
            return super().apply(*inputs, **options)

    def jvp(self, *tangents: Tensor | None) -> None:
        """No tangent: the outputs do not change with the inputs (almost everywhere)."""
        return None


class Add(Function):
    """add: y = a + b; da = dy, db = dy; ẏ = ȧ + ḃ"""

    saved_inputs = slice(0)  # backward reads no input

    def forward(self, a, b):
        try:
            return _promoted(a + b, a, b)
        except ValueError:
            raise _broadcast_error("add", a, b) from None

    def backward(self, gy):
        return gy, gy

    def jvp(self, ta, tb):
        return tangent_sum(ta, tb)


class Sub(Function):
    """sub: y = a - b; da = dy, db = -dy; ẏ = ȧ - ḃ"""

    saved_inputs = slice(0)  # backward reads no input

    def forward(self, a, b):
        try:
            return _promoted(a - b, a, b)
        except ValueError:
            raise _broadcast_error("sub", a, b) from None

    def backward(self, gy):
        _, b = self.inputs
        return gy, (-gy if b.requires_grad else None)

    def jvp(self, ta, tb):
        if tb is None:
            return ta
        return -tb if ta is None else ta - tb


class Mul(Function):
    """mul: y = a * b; da = dy * b, db = dy * a; ẏ = ȧ * b + a * ḃ"""

    def forward(self, a, b):
        try:
            return _promoted(a * b, a, b)
        except ValueError:
            raise _broadcast_error("mul", a, b) from None

    def backward(self, gy):
        a, b = self.inputs
        return (gy * b if a.requires_grad else None), (gy * a if b.requires_grad else None)

    def jvp(self, ta, tb):
        a, b = self.inputs
        return tangent_sum(None if ta is None else ta * b, None if tb is None else a * tb)


class Div(Function):
    """div: y = a / b; da = dy / b, db = -dy * a / b**2; ẏ = (ȧ - y * ḃ) / b"""

    def forward(self, a, b):
        exact = a.dtype.kind in "biu" and b.dtype.kind in "biu"  # integers divide to float32
        try:
            return np.true_divide(a, b, dtype=np.float32) if exact else _promoted(a / b, a, b)
        except ValueError:
            raise _broadcast_error("div", a, b) from None

    def backward(self, gy):
        a, b = self.inputs
        ga = gy / b
        return ga, (-ga * a / b if b.requires_grad else None)

    def jvp(self, ta, tb):
        b = self.inputs[1]
        if tb is None:
            return ta / b
        ytb = self.output() * tb  # y * ḃ / b = a * ḃ / b ** 2
        return (-ytb if ta is None else ta - ytb) / b


class Neg(Function):
    """neg: y = -x; dx = -dy; ẏ = -ẋ"""

    saved_inputs = slice(0)  # backward reads no input

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy

    def jvp(self, tx):
        return -tx


class Pow(Function):
    """pow: y = x ** p for a number p; dx = dy * p * x ** (p - 1); ẏ = ẋ * p * x ** (p - 1)"""

    def __init__(self, exponent: float) -> None:
        self.exponent = exponent

    def forward(self, x):
        return x ** np.asarray(self.exponent, dtype=x.dtype)

    def backward(self, gy):
        (x,) = self.inputs
        p = self.exponent
        return gy * 0 if p == 0 else gy * p * x ** (p - 1)  # x ** 0 is constant, even at x = 0

    def jvp(self, tx):
        p = self.exponent
        return None if p == 0 else tx * p * self.inputs[0] ** (p - 1)


class PowTensor(Function):
    """pow: y = a ** b for a tensor b; da = dy * b * a ** (b - 1), db = dy * y * ln a  (0 where
    a = 0, as in PyTorch); ẏ = ȧ * b * a ** (b - 1) + ḃ * y * ln a"""

    def forward(self, a, b):
        try:
            return np.power(a, b)
        except ValueError:
            raise _broadcast_error("pow", a, b) from None

    def backward(self, gy):
        a, b = self.inputs
        ga = gy * b * a ** (b - 1) if a.requires_grad else None
        gb = None
        if b.requires_grad:
            safe = where(a == 0, 1.0, a)
            gb = gy * self.output() * safe.log()
        return ga, gb

    def jvp(self, ta, tb):
        a, b = self.inputs
        return tangent_sum(
            None if ta is None else ta * b * a ** (b - 1),
            None if tb is None else tb * self.output() * where(a == 0, 1.0, a).log(),
        )


class Exp(Function):
    """exp: y = e ** x; dx = dy * y; ẏ = ẋ * y"""

    saved_inputs = slice(0)  # backward reads the output

    def forward(self, x):
        return np.exp(x)

    def backward(self, gy):
        return gy * self.output()

    def jvp(self, tx):
        return tx * self.output()


class Log(Function):
    """log: y = ln x; dx = dy / x; ẏ = ẋ / x"""

    def forward(self, x):
        return np.log(x)

    def backward(self, gy):
        return gy / self.inputs[0]

    def jvp(self, tx):
        return tx / self.inputs[0]


class Tanh(Function):
    """tanh: y = tanh(x); dx = dy * (1 - y ** 2); ẏ = ẋ * (1 - y ** 2)"""

    saved_inputs = slice(0)  # backward reads the output

    def forward(self, x):
        return np.tanh(x)

    def backward(self, gy):
        return TanhGrad.apply(gy, self.output())

    def jvp(self, tx):
        return TanhGrad.apply(tx, self.output())


class TanhGrad(Function):
    """tanh_grad: z = g * (1 - y ** 2), tanh's backward as one op; dg = dz * (1 - y ** 2),
    dy = -2 dz g y; ż = ġ * (1 - y ** 2) - 2 g y ẏ"""

    def forward(self, g, y):
        return g * (1 - y * y)

    def backward(self, gz):
        g, y = self.inputs
        return gz * (1 - y * y), -2 * gz * g * y

    def jvp(self, tg, ty):
        g, y = self.inputs
        return tangent_sum(None if tg is None else TanhGrad.apply(tg, y),
                           None if ty is None else -2 * g * y * ty)


class Sigmoid(Function):
    """sigmoid: y = 1 / (1 + e ** -x); dx = dy * y * (1 - y); ẏ = ẋ * y * (1 - y)"""

    saved_inputs = slice(0)  # backward reads the output

    @np.errstate(over="ignore")  # e ** -x = inf for x << 0 gives y = 0, as it should
    def forward(self, x):
        return 1 / (1 + np.exp(np.negative(x)))

    def backward(self, gy):
        return SigmoidGrad.apply(gy, self.output())

    def jvp(self, tx):
        return SigmoidGrad.apply(tx, self.output())


class SigmoidGrad(Function):
    """sigmoid_grad: z = g * y * (1 - y), sigmoid's backward as one op; dg = dz * y * (1 - y),
    dy = dz * g * (1 - 2 y); ż = ġ * y * (1 - y) + ẏ * g * (1 - 2 y)"""

    def forward(self, g, y):
        return g * y * (1 - y)

    def backward(self, gz):
        g, y = self.inputs
        return gz * y * (1 - y), gz * g * (1 - 2 * y)

    def jvp(self, tg, ty):
        g, y = self.inputs
        return tangent_sum(None if tg is None else SigmoidGrad.apply(tg, y),
                           None if ty is None else ty * g * (1 - 2 * y))


class Relu(Function):
    """relu: y = max(x, 0); dx = dy * [x > 0]; ẏ = ẋ * [x > 0]"""

    def forward(self, x):
        return np.maximum(x, 0)

    def backward(self, gy):
        return gy * (self.inputs[0] > 0)

    def jvp(self, tx):
        return tx * (self.inputs[0] > 0)


class Sqrt(Function):
    """sqrt: y = x ** 0.5; dx = dy / (2 y); ẏ = ẋ / (2 y)"""

    saved_inputs = slice(0)  # backward reads the output

    def forward(self, x):
        return np.sqrt(x)

    def backward(self, gy):
        return gy / (2 * self.output())

    def jvp(self, tx):
        return tx / (2 * self.output())


class Abs(Function):
    """abs: y = |x|; dx = dy * sign(x); ẏ = ẋ * sign(x)"""

    def forward(self, x):
        return np.abs(x)

    def backward(self, gy):
        return gy * Sign.apply(self.inputs[0])

    def jvp(self, tx):
        return tx * Sign.apply(self.inputs[0])


class Clip(Function):
    """clip: y = min(max(x, lo), hi); dx = dy * [lo <= x <= hi] = dy * [y == x]; ẏ = ẋ * [y == x]"""

    def __init__(self, lo: float | None, hi: float | None) -> None:
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"Clip: lo ({lo}) must not exceed hi ({hi})")
        self.lo, self.hi = lo, hi

    def forward(self, x):
        return np.clip(x, self.lo, self.hi)

    def backward(self, gy):
        return gy * Compare.apply(self.inputs[0], self.output(), op="==")

    def jvp(self, tx):
        return tx * Compare.apply(self.inputs[0], self.output(), op="==")


class Where(Function):
    """where: y = a where cond else b; da = dy * cond, db = dy * (1 - cond)  (cond: no gradient);
    ẏ = ȧ where cond else ḃ"""

    saved_inputs = slice(1)  # backward reads cond only

    def forward(self, cond, a, b):
        return np.where(cond, a, b)

    def backward(self, gy):
        cond, a, b = self.inputs
        zero = Tensor._wrap(np.zeros((), gy.dtype))
        return (
            None,
            Where.apply(cond, gy, zero) if a.requires_grad else None,
            Where.apply(cond, zero, gy) if b.requires_grad else None,
        )

    def jvp(self, tc, ta, tb):
        if ta is None and tb is None:  # the condition's tangent, if any, changes nothing
            return None
        cond, a, b = self.inputs
        if ta is None:  # a zero of the branch's dtype, so that the tangent takes y's dtype
            ta = Tensor._wrap(np.zeros((), a.dtype))
        elif tb is None:
            tb = Tensor._wrap(np.zeros((), b.dtype))
        return Where.apply(cond, ta, tb)


class Cast(Function):
    """cast: y = x as dtype; dx = dy as x's dtype; ẏ = ẋ as dtype (none for a non-float dtype)"""

    saved_inputs = slice(0)  # backward reads no input

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype

    def forward(self, x):
        return x.astype(self.dtype)

    def backward(self, gy):
        return gy.astype(self.inputs[0].dtype)

    def jvp(self, tx):
        return tx.astype(self.dtype) if np.dtype(self.dtype).kind in "fc" else None


class Clone(Function):
    """clone: y = a copy of x; dx = dy; ẏ = ẋ"""

    saved_inputs = slice(0)  # backward reads no input

    def forward(self, x):
        return x.copy()

    def backward(self, gy):
        return gy

    def jvp(self, tx):
        return tx


class Detach(NonDifferentiable):
    """detach: y = x (the same array), cut from the graph; no gradient"""

    view = True

    def forward(self, x):
        return x


class Sign(NonDifferentiable):
    """sign: y = -1, 0 or 1 where x < 0, x = 0 or x > 0; no gradient"""

    def forward(self, x):
        return np.sign(x)


class Compare(NonDifferentiable):
    """compare: y = (a op b) as booleans, op one of < <= > >= == !=; no gradient (a step)"""

    ufuncs = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
              "==": np.equal, "!=": np.not_equal}

    def __init__(self, op: str) -> None:
        self.op = op

    def forward(self, a, b):
        ufunc = self.ufuncs[self.op]
        try:
            return ufunc(a, b)
        except ValueError:
            raise _broadcast_error(ufunc.__name__, a, b) from None


class Elementwise(NonDifferentiable):
    """elementwise: y = NumPy's ``op`` of the inputs (floor_divide, remainder, isnan, isinf,
    isfinite, bitwise_and, bitwise_or, bitwise_xor, invert); no gradient"""

    def __init__(self, op: str) -> None:
        self.op = op

    def forward(self, *xs):
        try:
            return getattr(np, self.op)(*xs)
        except ValueError:
            raise _broadcast_error(self.op, *xs) from None
        except TypeError:
            dtypes = " and ".join(str(x.dtype) for x in xs)
            raise TypeError(f"{self.op}: not defined for dtype {dtypes}") from None


def logical(a, op: str, b=None) -> Tensor:
    """``&``, ``|``, ``^`` or ``~`` (NumPy's bitwise ``op``) of bool or integer tensors, as
    PyTorch allows them; floating-point operands raise."""
    operands = [_as_tensor(a, b)] + ([] if b is None else [_as_tensor(b, a)])
    for x in operands:
        if x.dtype.kind not in "biu":
            raise TypeError(
                f"{op}: needs bool or integer tensors; got dtype {x.dtype} (shape {x.shape}). "
                "Compare first (x > 0) to get a mask"
            )
    return Elementwise.apply(*operands, op=op)


def masked_fill(x: Tensor, mask, value) -> Tensor:
    """``value`` where ``mask`` (bool, broadcast to ``x``'s shape) is true, else ``x``."""
    mask = _as_tensor(mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"masked_fill: the mask must be a bool tensor; got dtype {mask.dtype}")
    if np.broadcast_shapes(mask.shape, x.shape) != x.shape:
        raise ValueError(
            f"masked_fill: the mask of shape {mask.shape} does not broadcast to the tensor's "
            f"shape {x.shape}"
        )
    value = _as_tensor(value, x)
    if value.ndim:
        raise ValueError(f"masked_fill: value must be a number or a 0-d tensor; got shape "
                         f"{value.shape}")
    return Where.apply(mask, value.astype(x.dtype), x)


def compare(a, op: str, b) -> Tensor:
    """``a op b`` elementwise (``op`` one of < <= > >= == !=), as booleans without gradient; a
    Python number takes the other operand's dtype."""
    a = _as_tensor(a, b)
    return Compare.apply(a, _as_tensor(b, a), op=op)


def eq(a, b) -> Tensor:
    """Elementwise ``a == b`` as booleans, as ``torch.eq`` (``Tensor.__eq__`` stays identity)."""
    return compare(a, "==", b)


def ne(a, b) -> Tensor:
    """Elementwise ``a != b`` as booleans, as ``torch.ne``."""
    return compare(a, "!=", b)


def where(cond, a, b) -> Tensor:
    """Pick ``a`` where ``cond`` is true and ``b`` elsewhere, broadcasting all three. ``cond``
    is an input of the op (with no gradient), so a traced program reads it at every call."""
    if isinstance(cond, Tensor):
        cond = cond.astype(bool)
    else:
        cond = Tensor._wrap(np.asarray(cond, dtype=bool))
    a = _as_tensor(a, b)
    b = _as_tensor(b, a)
    try:
        np.broadcast_shapes(cond.shape, a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"where: cond {cond.shape}, a {a.shape} and b {b.shape} do not broadcast together"
        ) from None
    return Where.apply(cond, a, b)


def _select(a, b, keep_a: str, op: str) -> Tensor:
    """``a`` where ``a keep_a b`` holds, else ``b``; a Python number takes the other's dtype."""
    a = _as_tensor(a, b)
    b = _as_tensor(b, a)
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise _broadcast_error(op, a, b) from None
    return Where.apply(Compare.apply(a, b, op=keep_a), a, b)


def maximum(a, b) -> Tensor:
    """Elementwise maximum; at ties the gradient goes to ``a``."""
    return _select(a, b, ">=", "maximum")


def minimum(a, b) -> Tensor:
    """Elementwise minimum; at ties the gradient goes to ``a``."""
    return _select(a, b, "<=", "minimum")


def exp(x) -> Tensor:
    """e ** x."""
    return Exp.apply(_as_tensor(x))


def log(x) -> Tensor:
    """Natural logarithm."""
    return Log.apply(_as_tensor(x))


def tanh(x) -> Tensor:
    """Hyperbolic tangent."""
    return Tanh.apply(_as_tensor(x))


def sigmoid(x) -> Tensor:
    """Logistic sigmoid, without overflow."""
    return Sigmoid.apply(_as_tensor(x))


def relu(x) -> Tensor:
    """max(x, 0)."""
    return Relu.apply(_as_tensor(x))


def sqrt(x) -> Tensor:
    """Square root."""
    return Sqrt.apply(_as_tensor(x))
