"""Tensor: an ndarray, its gradient, and the node that made it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from minigrad import random as _random

Shape = tuple[int, ...]


def _as_array(data: Any, dtype=None) -> np.ndarray:
    """NumPy array for ``data``: float data defaults to float32, but a float64 array stays so.

    In a (nested) list, a one-element Tensor counts as its value, as in ``torch.tensor``; a
    float64 tensor there keeps the result float64.
    """
    if isinstance(data, Tensor):
        data = data.data
    tensor_dtypes: list[np.dtype] = []
    array = None
    if isinstance(data, (list, tuple)):
        first = data
        while isinstance(first, (list, tuple)) and first:
            first = first[0]
        if not isinstance(first, Tensor):  # NumPy would stack tensors where torch.tensor refuses
            try:
                array = np.asarray(data, dtype=dtype)
            except (TypeError, ValueError):  # NumPy cannot read one-element tensors in a list
                pass
        if array is None:
            data = _values(data, tensor_dtypes)
            try:
                array = np.asarray(data, dtype=dtype)
            except ValueError as e:
                raise ValueError(f"tensor: nested lists must be rectangular, with the same "
                                 f"length at each depth ({e})") from None
    if array is None:
        array = np.asarray(data, dtype=dtype)
    given = isinstance(data, (np.ndarray, np.generic)) or np.float64 in tensor_dtypes
    if dtype is None and array.dtype == np.float64 and not given:
        array = array.astype(np.float32)
    return array


def _values(data: Any, tensor_dtypes: list[np.dtype]) -> Any:
    """``data`` with every Tensor in its nested lists replaced by its one value; the tensors'
    dtypes are appended to ``tensor_dtypes``."""
    if isinstance(data, (list, tuple)):
        return [_values(x, tensor_dtypes) for x in data]
    if not isinstance(data, Tensor):
        return data
    if data.size != 1:
        raise ValueError(
            f"tensor: a list may hold tensors of one element only (each becomes a number); "
            f"got one of shape {data.shape}. To join tensors use mg.stack(tensors) (new axis) "
            "or mg.concat(tensors) (existing axis)."
        )
    tensor_dtypes.append(data.dtype)
    return data.data.reshape(())


class Tensor:
    """An n-dimensional array that can record the ops applied to it and be differentiated.

    ``data`` is the NumPy array, ``grad`` the accumulated gradient (a Tensor or None),
    ``grad_fn`` the Function node that produced it (None for leaves) and ``output_nr`` which of
    that node's outputs it is. ``name`` (None unless set, e.g. ``c = (f * c + i * g).named("c")``)
    labels the tensor in ``draw_graph`` and ``print_graph``; nothing else reads it.
    """

    __slots__ = (
        "data", "grad", "requires_grad", "grad_fn", "output_nr", "hooks", "retains_grad", "name",
        "__weakref__",
    )
    __array_ufunc__ = None  # make `ndarray op Tensor` call the Tensor's reflected operator

    def __init__(self, data: Any, dtype=None, requires_grad: bool = False) -> None:
        self.data = _as_array(data, dtype)
        self.grad: Tensor | None = None
        self.grad_fn = None
        self.output_nr = 0
        self.hooks: dict | None = None
        self.retains_grad = False
        self.name: str | None = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _wrap(cls, data: np.ndarray) -> Tensor:
        """A fresh leaf around an op's raw output, skipping the constructor's checks."""
        t = cls.__new__(cls)
        t.data = data if type(data) is np.ndarray else np.asarray(data)
        t.grad = None
        t.requires_grad = False
        t.grad_fn = None
        t.output_nr = 0
        t.hooks = None
        t.retains_grad = False
        t.name = None
        return t

    # -- attributes -----------------------------------------------------------------------------

    @property
    def shape(self) -> Shape:
        """The array's shape."""
        return self.data.shape

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return self.data.ndim

    @property
    def size(self) -> int:
        """Number of elements."""
        return self.data.size

    @property
    def dtype(self) -> np.dtype:
        """The array's dtype."""
        return self.data.dtype

    @property
    def is_leaf(self) -> bool:
        """True for tensors that no recorded op produced (their ``.grad`` gets filled)."""
        return self.grad_fn is None

    @property
    def T(self) -> Tensor:
        """The tensor with its axes reversed."""
        return self.transpose()

    def requires_grad_(self, flag: bool = True) -> Tensor:
        """Set ``requires_grad`` on a leaf, in place; only floating-point data can require grad."""
        if flag and self.data.dtype.kind not in "fc":
            raise TypeError(
                f"only floating-point tensors can require grad; got dtype {self.data.dtype} "
                f"(shape {self.shape}). Convert it first, e.g. mg.tensor(x, dtype=np.float32)."
            )
        if not flag and self.grad_fn is not None:
            raise RuntimeError("requires_grad can only be turned off on leaves; use detach()")
        self.requires_grad = flag
        return self

    def named(self, name: str) -> Tensor:
        """Set ``name`` (shown by ``draw_graph`` and ``print_graph``) and return this tensor, so
        that a step can name what it makes as it goes: ``h = (o * c.tanh()).named("h")``."""
        if not isinstance(name, str):
            raise TypeError(f"Tensor.named: name must be a str; got {type(name).__name__}")
        self.name = name
        return self

    # -- autograd -------------------------------------------------------------------------------

    def backward(
        self, gradient: Any = None, retain_graph: bool = False, create_graph: bool = False
    ) -> None:
        """Accumulate the gradient of this tensor into the ``.grad`` of every leaf it depends on.

        ``gradient`` (same shape as this tensor) is required unless the tensor has one element.
        The graph's saved arrays are freed unless ``retain_graph=True``; ``create_graph=True``
        records the backward pass itself, so the gradients can be differentiated again.
        """
        from minigrad.autograd import backward

        backward(self, gradient, retain_graph, create_graph)

    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's data, cut from the graph."""
        return _ew.Detach.apply(self)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def numpy(self) -> np.ndarray:
        """The underlying NumPy array (shared, not copied)."""
        return self.data

    def item(self) -> float | int | bool:
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element; got shape {self.shape}")
        return self.data.item()

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def retain_grad(self) -> None:
        """Keep the gradient of this non-leaf tensor in ``.grad`` after backward."""
        if self.grad_fn is None:
            return
        self.retains_grad = True
        self.grad_fn.hooked = True

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]):
        """Call ``hook(grad)`` when this tensor's gradient is computed; a returned tensor
        replaces the gradient. Returns a handle whose ``remove()`` takes the hook away."""
        from minigrad.autograd import RemovableHandle

        if not self.requires_grad:
            raise RuntimeError(
                f"cannot register a hook on a tensor (shape {self.shape}) that does not "
                "require grad"
            )
        if self.hooks is None:
            self.hooks = {}
        handle = RemovableHandle(self.hooks)
        self.hooks[handle.id] = hook
        if self.grad_fn is not None:
            self.grad_fn.hooked = True
        return handle

    def astype(self, dtype) -> Tensor:
        """This tensor converted to ``dtype`` (differentiable between float dtypes)."""
        if np.dtype(dtype) == self.dtype:
            return self
        return _ew.Cast.apply(self, dtype=np.dtype(dtype))

    # -- arithmetic -----------------------------------------------------------------------------

    def __add__(self, other) -> Tensor:
        return _ew.Add.apply(self, _as_tensor(other, self))

    def __radd__(self, other) -> Tensor:
        return _ew.Add.apply(_as_tensor(other, self), self)

    def __sub__(self, other) -> Tensor:
        return _ew.Sub.apply(self, _as_tensor(other, self))

    def __rsub__(self, other) -> Tensor:
        return _ew.Sub.apply(_as_tensor(other, self), self)

    def __mul__(self, other) -> Tensor:
        return _ew.Mul.apply(self, _as_tensor(other, self))

    def __rmul__(self, other) -> Tensor:
        return _ew.Mul.apply(_as_tensor(other, self), self)

    def __truediv__(self, other) -> Tensor:
        return _ew.Div.apply(self, _as_tensor(other, self))

    def __rtruediv__(self, other) -> Tensor:
        return _ew.Div.apply(_as_tensor(other, self), self)

    def __neg__(self) -> Tensor:
        return _ew.Neg.apply(self)

    def __pow__(self, exponent) -> Tensor:
        if isinstance(exponent, Tensor):
            raise TypeError(
                f"Pow takes a Python number as exponent; got a Tensor of shape {exponent.shape}. "
                "Use (y * x.log()).exp() for a tensor exponent."
            )
        return _ew.Pow.apply(self, exponent=exponent)

    def __rpow__(self, base) -> Tensor:
        return (self * float(np.log(base))).exp()

    def __matmul__(self, other) -> Tensor:
        return _la.MatMul.apply(self, _as_tensor(other, self))

    def __rmatmul__(self, other) -> Tensor:
        return _la.MatMul.apply(_as_tensor(other, self), self)

    # Comparisons are ops without gradient. == and != keep Python's identity test, so that
    # tensors stay hashable by identity (minigrad.ops.elementwise.eq and ne compare elements).
    def __lt__(self, other) -> Tensor:
        return _ew.compare(self, "<", other)

    def __le__(self, other) -> Tensor:
        return _ew.compare(self, "<=", other)

    def __gt__(self, other) -> Tensor:
        return _ew.compare(self, ">", other)

    def __ge__(self, other) -> Tensor:
        return _ew.compare(self, ">=", other)

    def __getitem__(self, index) -> Tensor:
        return _sh.getitem(self, index)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise ValueError(
                f"the truth value of a tensor of shape {self.shape} is ambiguous; use .any() or "
                ".all() on .data"
            )
        return bool(self.data)

    def __repr__(self) -> str:
        body = np.array2string(self.data, prefix="tensor(", separator=", ")
        extra = ""
        if self.data.dtype != np.float32:
            extra += f", dtype={self.data.dtype}"
        if self.grad_fn is not None:
            extra += f", grad_fn={self.grad_fn.name}"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    # -- elementwise ----------------------------------------------------------------------------

    def exp(self) -> Tensor:
        """e ** x."""
        return _ew.Exp.apply(self)

    def log(self) -> Tensor:
        """Natural logarithm."""
        return _ew.Log.apply(self)

    def tanh(self) -> Tensor:
        """Hyperbolic tangent."""
        return _ew.Tanh.apply(self)

    def sigmoid(self) -> Tensor:
        """Logistic sigmoid 1 / (1 + e ** -x), without overflow."""
        return _ew.Sigmoid.apply(self)

    def relu(self) -> Tensor:
        """max(x, 0)."""
        return _ew.Relu.apply(self)

    def sqrt(self) -> Tensor:
        """Square root."""
        return _ew.Sqrt.apply(self)

    def abs(self) -> Tensor:
        """Absolute value."""
        return _ew.Abs.apply(self)

    def clip(self, lo: float | None = None, hi: float | None = None) -> Tensor:
        """Limit values to [lo, hi]; the gradient is zero where a bound is active."""
        return _ew.Clip.apply(self, lo=lo, hi=hi)

    # -- reductions -----------------------------------------------------------------------------

    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Sum over ``axis`` (all axes when None)."""
        return _rd.Sum.apply(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Mean over ``axis`` (all axes when None)."""
        return _rd.mean(self, axis, keepdims)

    def max(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Maximum over ``axis``; ties share the gradient equally."""
        return _rd.Max.apply(self, axis=axis, keepdims=keepdims)

    def min(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Minimum over ``axis``; ties share the gradient equally."""
        return _rd.Min.apply(self, axis=axis, keepdims=keepdims)

    def argmax(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        """Position of the largest value along ``axis`` (in the flattened tensor when None), as
        an int64 tensor that does not require grad."""
        return _rd.argmax(self, axis, keepdims)

    def argmin(self, axis: int | None = None, keepdims: bool = False) -> Tensor:
        """Position of the smallest value along ``axis`` (in the flattened tensor when None), as
        an int64 tensor that does not require grad."""
        return _rd.argmin(self, axis, keepdims)

    def var(
        self, axis: int | Sequence[int] | None = None, keepdims: bool = False, *,
        correction: float = 1,
    ) -> Tensor:
        """Variance over ``axis``: sum((x - mean) ** 2) / (N - correction), unbiased by default."""
        return _rd.var(self, axis, keepdims, correction)

    def std(
        self, axis: int | Sequence[int] | None = None, keepdims: bool = False, *,
        correction: float = 1,
    ) -> Tensor:
        """Standard deviation over ``axis``: the square root of ``var``."""
        return _rd.std(self, axis, keepdims, correction)

    # -- shape ----------------------------------------------------------------------------------

    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        """The same data with a new shape (one entry may be -1)."""
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = tuple(shape[0])
        return _sh.Reshape.apply(self, shape=shape)

    def unsqueeze(self, axis: int) -> Tensor:
        """A new axis of length 1 at ``axis`` (in [-ndim - 1, ndim])."""
        return _sh.unsqueeze(self, axis)

    def squeeze(self, axis: int | Sequence[int] | None = None) -> Tensor:
        """Drop axes of length 1 (only those among ``axis`` when given; others stay)."""
        return _sh.squeeze(self, axis)

    def flatten(self, start_axis: int = 0, end_axis: int = -1) -> Tensor:
        """Merge the axes from ``start_axis`` to ``end_axis`` (both included) into one."""
        return _sh.flatten(self, start_axis, end_axis)

    def transpose(self, *axes: int | Sequence[int]) -> Tensor:
        """Permute axes as NumPy does (no arguments: reverse them)."""
        if len(axes) == 1 and not isinstance(axes[0], int):
            axes = tuple(axes[0])
        return _sh.Transpose.apply(self, axes=axes or None)

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        """Exchange two axes (PyTorch's ``transpose(dim0, dim1)``)."""
        if not (-self.ndim <= axis1 < self.ndim and -self.ndim <= axis2 < self.ndim):
            raise ValueError(
                f"swapaxes: axes {axis1} and {axis2} must lie in [-{self.ndim}, {self.ndim}) for "
                f"a tensor of shape {self.shape}"
            )
        axes = list(range(self.ndim))
        axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
        return self.transpose(axes)

    def broadcast_to(self, shape: Sequence[int]) -> Tensor:
        """Repeat along new or size-1 axes to ``shape``, as NumPy broadcasting does."""
        return _sh.BroadcastTo.apply(self, shape=tuple(shape))

    def sum_to_size(self, *shape: int | Sequence[int]) -> Tensor:
        """This tensor summed down to ``shape``, the inverse of broadcasting ``shape`` up to
        this tensor's shape (how the engine reduces a broadcast input's gradient)."""
        return _sh.sum_to(self, _shape(shape))

    def split(self, sizes_or_n: int | Sequence[int], axis: int = -1) -> tuple[Tensor, ...]:
        """Cut into ``n`` equal pieces, or pieces of the given sizes, along ``axis``."""
        return _sh.split(self, sizes_or_n, axis)

    def chunk(self, n: int, axis: int = -1) -> tuple[Tensor, ...]:
        """Cut into ``n`` equal pieces along ``axis``."""
        return _sh.split(self, int(n), axis)

    # -- nn -------------------------------------------------------------------------------------

    def softmax(self, axis: int = -1) -> Tensor:
        """exp(x) / sum(exp(x)) along ``axis``, computed stably."""
        return _nn.Softmax.apply(self, axis=axis)

    def log_softmax(self, axis: int = -1) -> Tensor:
        """x - logsumexp(x) along ``axis``, computed stably."""
        return _nn.LogSoftmax.apply(self, axis=axis)


def _as_tensor(x: Any, like: Any = None) -> Tensor:
    """``x`` as a Tensor (itself if it is one); the one place that coerces an op's operands.

    A Python number takes the dtype of ``like`` when that is a Tensor, so a scalar never
    upcasts an array; anything else becomes a tensor as ``mg.tensor`` makes it.
    """
    if isinstance(x, Tensor):
        return x
    if isinstance(like, Tensor) and isinstance(x, (int, float)) and not isinstance(x, bool):
        kind = like.data.dtype.kind
        dtype = like.data.dtype if kind in "fc" else np.result_type(like.data.dtype, x)
        return Tensor._wrap(np.asarray(x, dtype=dtype))
    return Tensor(x)


def tensor(data: Any, dtype=None, requires_grad: bool = False) -> Tensor:
    """Make a leaf tensor. Float data defaults to float32; a float64 array stays float64."""
    return Tensor(data, dtype, requires_grad)


def zeros(*shape: int | Sequence[int], dtype=np.float32, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros."""
    return Tensor(np.zeros(_shape(shape), dtype), requires_grad=requires_grad)


def ones(*shape: int | Sequence[int], dtype=np.float32, requires_grad: bool = False) -> Tensor:
    """A tensor of ones."""
    return Tensor(np.ones(_shape(shape), dtype), requires_grad=requires_grad)


def zeros_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros with ``t``'s shape, and its dtype unless ``dtype`` is given."""
    return _full_like("zeros_like", t, 0, dtype, requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones with ``t``'s shape, and its dtype unless ``dtype`` is given."""
    return _full_like("ones_like", t, 1, dtype, requires_grad)


def _full_like(op: str, t: Tensor, value: float, dtype, requires_grad: bool) -> Tensor:
    if not isinstance(t, Tensor):
        raise TypeError(
            f"{op}: expected a Tensor; got a {type(t).__name__} (for a shape, use mg.zeros or "
            "mg.ones)"
        )
    return Tensor(np.full(t.shape, value, dtype or t.dtype), requires_grad=requires_grad)


def arange(
    start: float, stop: float | None = None, step: float = 1, dtype=None,
    requires_grad: bool = False,
) -> Tensor:
    """Values from ``start`` up to, not including, ``stop`` in steps of ``step``; with one
    argument, from 0 up to it. int64 when every argument is an integer, else float32, as in
    ``torch.arange``."""
    if stop is None:
        start, stop = 0, start
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if (stop - start) * step < 0:
        raise ValueError(
            f"arange: step {step} points away from stop {stop} (start {start}); nothing lies "
            "between them in that direction"
        )
    if dtype is None:
        whole = all(isinstance(v, (int, np.integer)) for v in (start, stop, step))
        dtype = np.int64 if whole else np.float32
    values = np.arange(start, stop, step).astype(dtype)  # the steps in float64, then cast
    return Tensor(values, requires_grad=requires_grad)


def randn(*shape: int | Sequence[int], dtype=np.float32, requires_grad: bool = False) -> Tensor:
    """Standard normal samples from minigrad's generator (see ``manual_seed``)."""
    data = _random.generator().standard_normal(_shape(shape)).astype(dtype)
    return Tensor(data, requires_grad=requires_grad)


def _shape(shape: tuple) -> Shape:
    if len(shape) == 1 and not isinstance(shape[0], int):
        return tuple(shape[0])
    return tuple(shape)


# The op families import Tensor from this module, so they are bound last.
from minigrad.ops import elementwise as _ew  # noqa: E402
from minigrad.ops import linalg as _la  # noqa: E402
from minigrad.ops import nn as _nn  # noqa: E402
from minigrad.ops import reduce as _rd  # noqa: E402
from minigrad.ops import shape as _sh  # noqa: E402
