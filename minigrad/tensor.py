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
    if data.numel() != 1:
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
        "_version", "_base", "__weakref__",
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
        self._version = 0  # when an in-place op last wrote the array (see ops/inplace.py)
        self._base: Tensor | None = None  # the tensor whose array this one views, if any
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
        t._version = 0
        t._base = None
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

    def size(self, dim: int | None = None) -> Shape | int:
        """The shape, as PyTorch's ``size()``; ``size(d)`` is the length of axis ``d``."""
        return self.data.shape if dim is None else self.data.shape[_sh.check_dim(self, dim, "size")]

    def numel(self) -> int:
        """Number of elements."""
        return self.data.size

    def dim(self) -> int:
        """Number of dimensions (``ndim``)."""
        return self.data.ndim

    @property
    def dtype(self) -> np.dtype:
        """The array's dtype."""
        return self.data.dtype

    @property
    def device(self) -> str:
        """Always ``"cpu"``: minigrad computes with NumPy."""
        return "cpu"

    def is_floating_point(self) -> bool:
        """Whether the dtype is a floating-point one."""
        return self.data.dtype.kind == "f"

    @property
    def is_leaf(self) -> bool:
        """True for tensors that no recorded op produced (their ``.grad`` gets filled)."""
        return self.grad_fn is None

    @property
    def T(self) -> Tensor:
        """The tensor with its axes reversed."""
        return _sh.Transpose.apply(self, axes=None)

    @property
    def mT(self) -> Tensor:
        """The tensor with its last two axes swapped (a batch of matrices transposed)."""
        return self.transpose(-2, -1)

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
        """The underlying NumPy array (shared, not copied). As in PyTorch, a tensor that
        requires grad raises: take ``detach().numpy()`` (or ``.data``)."""
        if self.requires_grad:
            raise RuntimeError(
                f"Can't call numpy() on a tensor (shape {self.shape}) that requires grad. "
                "Use tensor.detach().numpy() instead."
            )
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

    # -- conversion, as PyTorch names it ------------------------------------------------------

    def to(self, *args: Any, dtype=None, device: str | None = None, copy: bool = False) -> Tensor:
        """``to(dtype)``, ``to("cpu")``, ``to(other)`` (other's dtype) or ``to("cpu", dtype)``:
        this tensor itself when nothing changes (a copy with ``copy=True``)."""
        for a in args:
            if isinstance(a, Tensor):
                dtype = a.dtype
            elif isinstance(a, str) and a not in _DTYPE_NAMES:
                device = a
            else:
                dtype = a
        _check_device("to", device)
        y = self if dtype is None else self.astype(dtype)
        return y.clone() if copy and y is self else y

    def float(self) -> Tensor:
        """As float32."""
        return self.astype(np.float32)

    def double(self) -> Tensor:
        """As float64."""
        return self.astype(np.float64)

    def half(self) -> Tensor:
        """As float16."""
        return self.astype(np.float16)

    def long(self) -> Tensor:
        """As int64."""
        return self.astype(np.int64)

    def int(self) -> Tensor:
        """As int32."""
        return self.astype(np.int32)

    def bool(self) -> Tensor:
        """As bool."""
        return self.astype(np.bool_)

    def type_as(self, other: Tensor) -> Tensor:
        """As ``other``'s dtype."""
        return self.astype(other.dtype)

    def cpu(self) -> Tensor:
        """This tensor (minigrad has only the CPU)."""
        return self

    def contiguous(self) -> Tensor:
        """This tensor if its array is laid out row by row, else a copy that is (so that
        ``view`` can reshape it)."""
        if type(self.data) is not np.ndarray or self.data.flags.c_contiguous:
            return self  # (mg.compile's stand-ins have no layout: reshape decides at replay)
        return self.clone()

    def clone(self) -> Tensor:
        """A copy with its own array; the gradient flows back to this tensor."""
        return _ew.Clone.apply(self)

    def tolist(self) -> Any:
        """The values as nested Python lists (a number for a 0-d tensor)."""
        return self.data.tolist()

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

    def __floordiv__(self, other) -> Tensor:
        return _ew.Elementwise.apply(self, _as_tensor(other, self), op="floor_divide")

    def __rfloordiv__(self, other) -> Tensor:
        return _ew.Elementwise.apply(_as_tensor(other, self), self, op="floor_divide")

    def __mod__(self, other) -> Tensor:
        return _ew.Elementwise.apply(self, _as_tensor(other, self), op="remainder")

    def __neg__(self) -> Tensor:
        return _ew.Neg.apply(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return self.abs()

    def __pow__(self, exponent) -> Tensor:
        return self.pow(exponent)

    def __rpow__(self, base) -> Tensor:
        return _ew.PowTensor.apply(_as_tensor(base, self), self)

    def __matmul__(self, other) -> Tensor:
        return _la.MatMul.apply(self, _as_tensor(other, self))

    def __rmatmul__(self, other) -> Tensor:
        return _la.MatMul.apply(_as_tensor(other, self), self)

    def pow(self, exponent) -> Tensor:
        """``self ** exponent`` for a number or a tensor exponent."""
        if isinstance(exponent, Tensor):
            return _ew.PowTensor.apply(self, exponent)
        return _ew.Pow.apply(self, exponent=exponent)

    def add(self, other, alpha: float = 1) -> Tensor:
        """``self + alpha * other``."""
        return self + (other if alpha == 1 else _as_tensor(other, self) * alpha)

    def sub(self, other, alpha: float = 1) -> Tensor:
        """``self - alpha * other``."""
        return self - (other if alpha == 1 else _as_tensor(other, self) * alpha)

    def mul(self, other) -> Tensor:
        """``self * other``."""
        return self * other

    def div(self, other, rounding_mode: str | None = None) -> Tensor:
        """``self / other``; ``rounding_mode="floor"`` floors the quotient (no gradient)."""
        if rounding_mode is None:
            return self / other
        if rounding_mode != "floor":
            raise ValueError(f"div: rounding_mode must be None or 'floor'; got {rounding_mode!r}")
        return self // other

    def matmul(self, other: Tensor) -> Tensor:
        """Matrix product (``self @ other``)."""
        return self @ other

    def mm(self, other: Tensor) -> Tensor:
        """Product of two matrices."""
        return _la.mm(self, other)

    def bmm(self, other: Tensor) -> Tensor:
        """Product of two batches of matrices, ``(b, n, m) @ (b, m, p)``."""
        return _la.bmm(self, other)

    # Comparisons are elementwise ops without gradient, returning bool tensors, as in PyTorch.
    # A tensor stays hashable by identity, so tensors can key dicts and fill sets.
    def __eq__(self, other) -> Tensor:
        return _ew.compare(self, "==", other) if _comparable(other) else NotImplemented

    def __ne__(self, other) -> Tensor:
        return _ew.compare(self, "!=", other) if _comparable(other) else NotImplemented

    __hash__ = object.__hash__

    def __lt__(self, other) -> Tensor:
        return _ew.compare(self, "<", other)

    def __le__(self, other) -> Tensor:
        return _ew.compare(self, "<=", other)

    def __gt__(self, other) -> Tensor:
        return _ew.compare(self, ">", other)

    def __ge__(self, other) -> Tensor:
        return _ew.compare(self, ">=", other)

    def eq(self, other) -> Tensor:
        """Elementwise ``==``, as bools."""
        return _ew.compare(self, "==", other)

    def ne(self, other) -> Tensor:
        """Elementwise ``!=``, as bools."""
        return _ew.compare(self, "!=", other)

    def lt(self, other) -> Tensor:
        """Elementwise ``<``, as bools."""
        return _ew.compare(self, "<", other)

    def le(self, other) -> Tensor:
        """Elementwise ``<=``, as bools."""
        return _ew.compare(self, "<=", other)

    def gt(self, other) -> Tensor:
        """Elementwise ``>``, as bools."""
        return _ew.compare(self, ">", other)

    def ge(self, other) -> Tensor:
        """Elementwise ``>=``, as bools."""
        return _ew.compare(self, ">=", other)

    # Logic on bool (and integer) tensors: &, |, ^, ~, elementwise and without gradient.
    def __and__(self, other) -> Tensor:
        return _ew.logical(self, "bitwise_and", other)

    def __rand__(self, other) -> Tensor:
        return _ew.logical(other, "bitwise_and", self)

    def __or__(self, other) -> Tensor:
        return _ew.logical(self, "bitwise_or", other)

    def __ror__(self, other) -> Tensor:
        return _ew.logical(other, "bitwise_or", self)

    def __xor__(self, other) -> Tensor:
        return _ew.logical(self, "bitwise_xor", other)

    def __rxor__(self, other) -> Tensor:
        return _ew.logical(other, "bitwise_xor", self)

    def __invert__(self) -> Tensor:
        return _ew.logical(self, "invert")

    def logical_not(self) -> Tensor:
        """Elementwise not, as bools."""
        return _ew.logical(self.astype(bool), "invert")

    def logical_and(self, other) -> Tensor:
        """Elementwise and of the truth values, as bools."""
        return _ew.logical(self.astype(bool), "bitwise_and", _as_tensor(other).astype(bool))

    def logical_or(self, other) -> Tensor:
        """Elementwise or of the truth values, as bools."""
        return _ew.logical(self.astype(bool), "bitwise_or", _as_tensor(other).astype(bool))

    def isnan(self) -> Tensor:
        """Where the value is NaN, as bools."""
        return _ew.Elementwise.apply(self, op="isnan")

    def isinf(self) -> Tensor:
        """Where the value is +-inf, as bools."""
        return _ew.Elementwise.apply(self, op="isinf")

    def isfinite(self) -> Tensor:
        """Where the value is neither NaN nor +-inf, as bools."""
        return _ew.Elementwise.apply(self, op="isfinite")

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
                ".all()"
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

    # -- in place (see minigrad/ops/inplace.py for the rules and the version check) --------------

    def add_(self, other, alpha: float = 1) -> Tensor:
        """``self += alpha * other``, in place."""
        return _ip.update(self, "add_", lambda x, o: x.add(o, alpha), other)

    def sub_(self, other, alpha: float = 1) -> Tensor:
        """``self -= alpha * other``, in place."""
        return _ip.update(self, "sub_", lambda x, o: x.sub(o, alpha), other)

    def mul_(self, other) -> Tensor:
        """``self *= other``, in place."""
        return _ip.update(self, "mul_", Tensor.__mul__, other)

    def div_(self, other) -> Tensor:
        """``self /= other``, in place."""
        return _ip.update(self, "div_", Tensor.__truediv__, other)

    __iadd__ = add_
    __isub__ = sub_
    __imul__ = mul_
    __itruediv__ = div_

    def zero_(self) -> Tensor:
        """Fill with zeros, in place."""
        return self.fill_(0)

    def fill_(self, value) -> Tensor:
        """Fill with ``value`` (a number or a one-element tensor), in place."""
        return _ip.update(self, "fill_", lambda x, v: v.astype(x.dtype).expand(x.shape), value)

    def copy_(self, src) -> Tensor:
        """Copy ``src`` (broadcast to this shape, cast to this dtype) into this tensor."""
        return _ip.update(self, "copy_", lambda x, s: s.astype(x.dtype).expand(x.shape), src)

    def clamp_(self, min: float | None = None, max: float | None = None) -> Tensor:
        """``clamp``, in place."""
        return _ip.update(self, "clamp_", lambda x: x.clamp(min, max))

    def masked_fill_(self, mask, value) -> Tensor:
        """``masked_fill``, in place."""
        return _ip.update(self, "masked_fill_", lambda x, m: x.masked_fill(m, value), mask)

    def __setitem__(self, index, value) -> None:
        _ip.update(self, "__setitem__", lambda x, v: _sh.setitem(x, index, v), value)

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

    def neg(self) -> Tensor:
        """-x."""
        return _ew.Neg.apply(self)

    def sign(self) -> Tensor:
        """-1, 0 or 1 by the sign of x (no gradient)."""
        return _ew.Sign.apply(self)

    def square(self) -> Tensor:
        """x * x."""
        return self * self

    def clamp(self, min: float | None = None, max: float | None = None) -> Tensor:
        """Limit values to [min, max]; the gradient is zero where a bound is active."""
        return _ew.Clip.apply(self, lo=min, hi=max)

    clip = clamp

    def masked_fill(self, mask, value) -> Tensor:
        """``value`` where the bool ``mask`` (broadcast to this shape) is true, else this tensor;
        ``value`` is a number or a 0-d tensor."""
        return _ew.masked_fill(self, mask, value)

    # -- reductions -----------------------------------------------------------------------------

    def sum(self, dim: Dims = None, keepdim: bool = False, *, axis: Dims = None,
            keepdims: bool | None = None, dtype=None) -> Tensor:
        """Sum over ``dim`` (all axes when None); bools and integers sum to int64."""
        x = self if dtype is None else self.astype(dtype)
        if dtype is None and x.dtype.kind in "biu":
            x = x.astype(np.int64)
        return _rd.Sum.apply(x, axis=_dims(dim, axis), keepdims=_keep(keepdim, keepdims))

    def mean(self, dim: Dims = None, keepdim: bool = False, *, axis: Dims = None,
             keepdims: bool | None = None, dtype=None) -> Tensor:
        """Mean over ``dim`` (all axes when None); integers need ``dtype``, as in PyTorch."""
        x = self if dtype is None else self.astype(dtype)
        if x.dtype.kind not in "fc":
            raise TypeError(f"mean: could not infer the output dtype from input dtype {x.dtype}; "
                            "pass dtype=mg.float32 or convert with .float()")
        return _rd.mean(x, _dims(dim, axis), _keep(keepdim, keepdims))

    def max(self, dim: int | Tensor | None = None, keepdim: bool = False, *,
            axis: int | None = None, keepdims: bool | None = None) -> Tensor | tuple:
        """The largest element (ties share the gradient); with ``dim``, the named tuple
        ``(values, indices)`` along it (the gradient goes to the index); with a tensor, the
        elementwise maximum."""
        if isinstance(dim, Tensor):
            return _ew.maximum(self, dim)
        return _rd.extreme(self, "max", _dims(dim, axis), _keep(keepdim, keepdims))

    def min(self, dim: int | Tensor | None = None, keepdim: bool = False, *,
            axis: int | None = None, keepdims: bool | None = None) -> Tensor | tuple:
        """As ``max``, for the smallest."""
        if isinstance(dim, Tensor):
            return _ew.minimum(self, dim)
        return _rd.extreme(self, "min", _dims(dim, axis), _keep(keepdim, keepdims))

    def amax(self, dim: Dims = None, keepdim: bool = False, *, axis: Dims = None,
             keepdims: bool | None = None) -> Tensor:
        """Maximum over ``dim`` (one axis or several); ties share the gradient equally."""
        return _rd.Max.apply(self, axis=_dims(dim, axis), keepdims=_keep(keepdim, keepdims))

    def amin(self, dim: Dims = None, keepdim: bool = False, *, axis: Dims = None,
             keepdims: bool | None = None) -> Tensor:
        """Minimum over ``dim`` (one axis or several); ties share the gradient equally."""
        return _rd.Min.apply(self, axis=_dims(dim, axis), keepdims=_keep(keepdim, keepdims))

    def argmax(self, dim: int | None = None, keepdim: bool = False, *, axis: int | None = None,
               keepdims: bool | None = None) -> Tensor:
        """Position of the largest value along ``dim`` (in the flattened tensor when None), as
        an int64 tensor that does not require grad."""
        return _rd.argmax(self, _dims(dim, axis), _keep(keepdim, keepdims))

    def argmin(self, dim: int | None = None, keepdim: bool = False, *, axis: int | None = None,
               keepdims: bool | None = None) -> Tensor:
        """Position of the smallest value along ``dim`` (in the flattened tensor when None), as
        an int64 tensor that does not require grad."""
        return _rd.argmin(self, _dims(dim, axis), _keep(keepdim, keepdims))

    def var(self, dim: Dims = None, unbiased: bool | None = None, keepdim: bool = False, *,
            correction: float | None = None, axis: Dims = None,
            keepdims: bool | None = None) -> Tensor:
        """Variance over ``dim``: sum((x - mean) ** 2) / (N - correction); unbiased
        (correction 1) by default, ``unbiased=False`` or ``correction=0`` for the mean square."""
        return _rd.var(self, _dims(dim, axis), _keep(keepdim, keepdims),
                       _correction(unbiased, correction))

    def std(self, dim: Dims = None, unbiased: bool | None = None, keepdim: bool = False, *,
            correction: float | None = None, axis: Dims = None,
            keepdims: bool | None = None) -> Tensor:
        """Standard deviation over ``dim``: the square root of ``var``."""
        return _rd.std(self, _dims(dim, axis), _keep(keepdim, keepdims),
                       _correction(unbiased, correction))

    def logsumexp(self, dim: Dims = None, keepdim: bool = False, *, axis: Dims = None,
                  keepdims: bool | None = None) -> Tensor:
        """log(sum(exp(x))) over ``dim``, computed without overflow."""
        return _rd.logsumexp(self, _dims(dim, axis), _keep(keepdim, keepdims))

    def norm(self, p: float | str = "fro", dim: Dims = None, keepdim: bool = False) -> Tensor:
        """The ``p``-norm over ``dim`` (all axes when None): 2 or "fro", 1, or inf."""
        return _rd.norm(self, p, dim, keepdim)

    def all(self, dim: Dims = None, keepdim: bool = False, *, axis: Dims = None,
            keepdims: bool | None = None) -> Tensor:
        """Whether every element along ``dim`` (all when None) is true, as bools."""
        return _rd.Logical.apply(self, op="all", axis=_dims(dim, axis),
                                 keepdims=_keep(keepdim, keepdims))

    def any(self, dim: Dims = None, keepdim: bool = False, *, axis: Dims = None,
            keepdims: bool | None = None) -> Tensor:
        """Whether some element along ``dim`` (all when None) is true, as bools."""
        return _rd.Logical.apply(self, op="any", axis=_dims(dim, axis),
                                 keepdims=_keep(keepdim, keepdims))

    def sort(self, dim: int = -1, descending: bool = False) -> tuple[Tensor, Tensor]:
        """The named tuple ``(values, indices)`` of the values sorted along ``dim``."""
        return _rd.sort(self, dim, descending)

    def argsort(self, dim: int = -1, descending: bool = False) -> Tensor:
        """The indices that sort the values along ``dim``."""
        return _rd.sort(self, dim, descending).indices

    def topk(self, k: int, dim: int = -1, largest: bool = True,
             sorted: bool = True) -> tuple[Tensor, Tensor]:
        """The named tuple ``(values, indices)`` of the ``k`` largest (or smallest) values along
        ``dim``, in order."""
        return _rd.topk(self, k, dim, largest)

    # -- shape ----------------------------------------------------------------------------------

    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        """The same data with a new shape (one entry may be -1); a copy where a view cannot
        express it."""
        return _sh.Reshape.apply(self, shape=_shape(shape))

    def view(self, *shape: int | Sequence[int]) -> Tensor:
        """The same data with a new shape, sharing the array: raises where that needs a copy
        (after a transpose), as PyTorch does; ``reshape`` copies then."""
        return _sh.view(self, _shape(shape))

    def t(self) -> Tensor:
        """A matrix transposed (a 0-d or 1-d tensor as it is)."""
        if self.ndim > 2:
            raise ValueError(f"t: expects a tensor with at most 2 dimensions; got shape "
                             f"{self.shape} (use transpose or mT)")
        return self.T

    def view_as(self, other: Tensor) -> Tensor:
        """Viewed with ``other``'s shape."""
        return self.view(other.shape)

    def reshape_as(self, other: Tensor) -> Tensor:
        """Reshaped to ``other``'s shape."""
        return self.reshape(other.shape)

    def unsqueeze(self, dim: int) -> Tensor:
        """A new axis of length 1 at ``dim`` (in [-ndim - 1, ndim])."""
        return _sh.unsqueeze(self, dim)

    def squeeze(self, dim: Dims = None) -> Tensor:
        """Drop axes of length 1 (only those among ``dim`` when given; others stay)."""
        return _sh.squeeze(self, dim)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Merge the axes from ``start_dim`` to ``end_dim`` (both included) into one."""
        return _sh.flatten(self, start_dim, end_dim)

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        """Swap two axes (PyTorch's meaning; ``permute`` reorders all of them)."""
        return _sh.transpose(self, dim0, dim1)

    swapaxes = transpose

    def permute(self, *dims: int | Sequence[int]) -> Tensor:
        """Reorder the axes: axis ``i`` of the result is axis ``dims[i]`` of this tensor."""
        return _sh.permute(self, _shape(dims))

    def expand(self, *sizes: int | Sequence[int]) -> Tensor:
        """Repeat along new leading axes or axes of length 1, without copying (-1 keeps an
        axis)."""
        return _sh.expand(self, _shape(sizes))

    def expand_as(self, other: Tensor) -> Tensor:
        """Expanded to ``other``'s shape."""
        return self.expand(other.shape)

    def broadcast_to(self, shape: Sequence[int]) -> Tensor:
        """Repeat along new or size-1 axes to ``shape``, as NumPy broadcasting does."""
        return _sh.BroadcastTo.apply(self, shape=tuple(shape))

    def repeat(self, *sizes: int | Sequence[int]) -> Tensor:
        """Tile: axis ``i`` repeated ``sizes[i]`` times (PyTorch's ``repeat``)."""
        return _sh.repeat(self, _shape(sizes))

    def flip(self, dims: int | Sequence[int]) -> Tensor:
        """The values in reverse order along ``dims``."""
        return _sh.flip(self, dims)

    def sum_to_size(self, *shape: int | Sequence[int]) -> Tensor:
        """This tensor summed down to ``shape``, the inverse of broadcasting ``shape`` up to
        this tensor's shape (how the engine reduces a broadcast input's gradient)."""
        return _sh.sum_to(self, _shape(shape))

    def split(self, split_size_or_sections: int | Sequence[int], dim: int | None = None, *,
              axis: int | None = None) -> tuple[Tensor, ...]:
        """Pieces of ``split_size`` along ``dim`` (0 by default; the last piece may be
        shorter), or pieces of the given sizes."""
        return _sh.split(self, split_size_or_sections, _dims(dim, axis, 0))

    def chunk(self, chunks: int, dim: int | None = None, *,
              axis: int | None = None) -> tuple[Tensor, ...]:
        """At most ``chunks`` pieces along ``dim`` (0 by default), each ceil(length / chunks)
        long but the last (PyTorch's ``chunk``)."""
        return _sh.chunk(self, chunks, _dims(dim, axis, 0))

    def unbind(self, dim: int = 0) -> tuple[Tensor, ...]:
        """The slices along ``dim``, each without that axis."""
        return _sh.unbind(self, dim)

    def narrow(self, dim: int, start: int, length: int) -> Tensor:
        """The slice ``start:start + length`` along ``dim``."""
        dim = _sh.check_dim(self, dim, "narrow")
        return self[(slice(None),) * dim + (slice(start, start + length),)]

    def index_select(self, dim: int, index: Tensor) -> Tensor:
        """The entries at the integer positions ``index`` (1-D) along ``dim``."""
        return _sh.index_select(self, dim, index)

    def gather(self, dim: int, index: Tensor) -> Tensor:
        """``y[i][j][k] = x[index[i][j][k]][j][k]`` for ``dim`` 0 (and so on): the entries that
        ``index`` points to along ``dim``."""
        return _sh.gather(self, dim, index)

    def multinomial(self, num_samples: int, replacement: bool = False) -> Tensor:
        """``num_samples`` category ids per row of these probabilities (see
        ``mg.multinomial``)."""
        return _probability.multinomial(self, num_samples, replacement)

    def new_zeros(self, *size: int | Sequence[int]) -> Tensor:
        """Zeros of ``size``, with this tensor's dtype."""
        return zeros(*size, dtype=self.dtype)

    def new_ones(self, *size: int | Sequence[int]) -> Tensor:
        """Ones of ``size``, with this tensor's dtype."""
        return ones(*size, dtype=self.dtype)

    def new_full(self, size: Sequence[int], fill_value: Any) -> Tensor:
        """``fill_value`` in every entry of ``size``, with this tensor's dtype."""
        return full(size, fill_value, dtype=self.dtype)

    # -- nn -------------------------------------------------------------------------------------

    def softmax(self, dim: int | None = None, *, axis: int | None = None) -> Tensor:
        """exp(x) / sum(exp(x)) along ``dim`` (the last by default), computed stably."""
        return _probability.Softmax.apply(self, axis=_dims(dim, axis, -1))

    def log_softmax(self, dim: int | None = None, *, axis: int | None = None) -> Tensor:
        """x - logsumexp(x) along ``dim`` (the last by default), computed stably."""
        return _probability.LogSoftmax.apply(self, axis=_dims(dim, axis, -1))


Dims = int | Sequence[int] | None


def _dims(dim: Any, axis: Any, default: Any = None) -> Any:
    """``dim``, or its NumPy spelling ``axis`` (PyTorch accepts both; giving both is an
    error), or ``default`` when neither is given."""
    if axis is None:
        return default if dim is None else dim
    if dim is not None:
        raise TypeError(f"got both dim={dim!r} and axis={axis!r}; they name the same argument")
    return axis


def _keep(keepdim: bool, keepdims: bool | None) -> bool:
    """``keepdim``, or its NumPy spelling ``keepdims``."""
    return keepdim if keepdims is None else keepdims


def _correction(unbiased: bool | None, correction: float | None) -> float:
    """The ``correction`` of var and std: 1 unless ``unbiased=False`` or given."""
    if unbiased is not None and correction is not None:
        raise TypeError("var/std: give unbiased or correction, not both")
    if correction is not None:
        return correction
    return 0 if unbiased is False else 1


def _comparable(other: Any) -> bool:
    """Whether ``==`` with ``other`` compares elements (else Python falls back to identity)."""
    return isinstance(other, (Tensor, np.ndarray, np.generic, int, float, bool, list, tuple))


_DTYPE_NAMES = {"float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
                "bool"}


def _check_device(op: str, device: Any) -> None:
    if device is not None and str(device) != "cpu":
        raise ValueError(f"{op}: minigrad runs on the CPU only; got device {device!r}")


def _as_tensor(x: Any, like: Any = None) -> Tensor:
    """``x`` as a Tensor (itself if it is one); the one place that coerces an op's operands.

    A Python number takes the dtype of ``like`` when that is a Tensor, so a scalar never
    upcasts an array, with PyTorch's two exceptions: a float with an integer or bool tensor is
    float32, an int with a bool tensor int64. Anything else becomes a tensor as ``mg.tensor``
    makes it.
    """
    if isinstance(x, Tensor):
        return x
    if isinstance(like, Tensor) and isinstance(x, (int, float)) and not isinstance(x, bool):
        dtype = like.data.dtype
        if dtype.kind not in "fc" and isinstance(x, float):
            dtype = np.dtype(np.float32)
        elif dtype.kind == "b":
            dtype = np.dtype(np.int64)
        return Tensor._wrap(np.asarray(x, dtype=dtype))
    return Tensor(x)


def tensor(data: Any, dtype=None, device: str | None = None,
           requires_grad: bool = False) -> Tensor:
    """Make a leaf tensor holding a copy of ``data`` (as ``torch.tensor``; ``from_numpy``
    shares the array instead). Float data defaults to float32; a float64 array stays float64."""
    _check_device("tensor", device)
    t = Tensor(data, dtype, requires_grad)
    source = data.data if isinstance(data, Tensor) else data
    if isinstance(source, np.ndarray) and np.may_share_memory(t.data, source):
        t.data = t.data.copy()
    return t


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor that shares ``array`` (writes through either show in both), with its dtype."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray; got a {type(array).__name__}")
    return Tensor._wrap(array)


def zeros(*size: int | Sequence[int], dtype=None, device: str | None = None,
          requires_grad: bool = False) -> Tensor:
    """A tensor of zeros (float32 unless ``dtype`` is given)."""
    return full(_shape(size), 0, dtype=dtype or np.float32, device=device,
                requires_grad=requires_grad)


def ones(*size: int | Sequence[int], dtype=None, device: str | None = None,
         requires_grad: bool = False) -> Tensor:
    """A tensor of ones (float32 unless ``dtype`` is given)."""
    return full(_shape(size), 1, dtype=dtype or np.float32, device=device,
                requires_grad=requires_grad)


empty = zeros  # NumPy's uninitialized memory would only make results depend on chance


def full(size: Sequence[int], fill_value: Any, dtype=None, device: str | None = None,
         requires_grad: bool = False) -> Tensor:
    """``fill_value`` in every entry; the dtype follows it as in ``torch.full`` (a float gives
    float32, an int int64, a bool bool) unless ``dtype`` is given."""
    _check_device("full", device)
    if dtype is None:
        dtype = (np.bool_ if isinstance(fill_value, (bool, np.bool_)) else np.int64
                 if isinstance(fill_value, (int, np.integer)) else np.float32)
    size = (size,) if isinstance(size, (int, np.integer)) else tuple(size)
    return Tensor(np.full(size, fill_value, dtype), requires_grad=requires_grad)


def eye(n: int, m: int | None = None, dtype=None, requires_grad: bool = False) -> Tensor:
    """The ``n`` by ``m`` (default ``n``) identity matrix, float32 unless ``dtype`` is given."""
    return Tensor(np.eye(n, m, dtype=dtype or np.float32), requires_grad=requires_grad)


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


def linspace(start: float, end: float, steps: int, dtype=None,
             requires_grad: bool = False) -> Tensor:
    """``steps`` values from ``start`` to ``end``, both included, evenly spaced (float32
    unless ``dtype`` is given)."""
    if steps < 0:
        raise ValueError(f"linspace: steps must be non-negative; got {steps}")
    values = np.linspace(start, end, steps).astype(dtype or np.float32)
    return Tensor(values, requires_grad=requires_grad)


def randn(*size: int | Sequence[int], dtype=None, device: str | None = None,
          requires_grad: bool = False) -> Tensor:
    """Standard normal samples from minigrad's generator (see ``manual_seed``)."""
    _check_device("randn", device)
    data = _random.generator().standard_normal(_shape(size)).astype(dtype or np.float32)
    return Tensor(data, requires_grad=requires_grad)


def rand(*size: int | Sequence[int], dtype=None, device: str | None = None,
         requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) from minigrad's generator."""
    _check_device("rand", device)
    data = _random.generator().random(_shape(size)).astype(dtype or np.float32)
    return Tensor(data, requires_grad=requires_grad)


def randint(low: int, high: int | Sequence[int] | None = None, size: Sequence[int] | None = None,
            dtype=None, device: str | None = None) -> Tensor:
    """Integers drawn uniformly from [low, high) (int64): ``randint(high, size)`` or
    ``randint(low, high, size)``, as ``torch.randint``."""
    _check_device("randint", device)
    if size is None:
        if high is None:
            raise TypeError("randint: expected randint(high, size) or randint(low, high, size)")
        low, high, size = 0, low, high
    if high <= low:
        raise ValueError(f"randint: high ({high}) must be greater than low ({low})")
    data = _random.generator().integers(low, high, tuple(size), dtype=dtype or np.int64)
    return Tensor(data)


def zeros_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros with ``t``'s shape, and its dtype unless ``dtype`` is given."""
    return _full_like("zeros_like", t, 0, dtype, requires_grad)


def ones_like(t: Tensor, dtype=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones with ``t``'s shape, and its dtype unless ``dtype`` is given."""
    return _full_like("ones_like", t, 1, dtype, requires_grad)


def full_like(t: Tensor, fill_value: Any, dtype=None, requires_grad: bool = False) -> Tensor:
    """``fill_value`` with ``t``'s shape, and its dtype unless ``dtype`` is given."""
    return _full_like("full_like", t, fill_value, dtype, requires_grad)


def _method_function(name: str) -> Callable[..., Any]:
    method = getattr(Tensor, name)

    def function(input: Any, *args: Any, **kwargs: Any) -> Any:
        return method(_as_tensor(input), *args, **kwargs)

    function.__name__ = function.__qualname__ = name
    function.__doc__ = f"``mg.{name}(x, ...)`` is ``x.{name}(...)``: " + (method.__doc__ or "")
    return function


# torch.* functions that are also Tensor methods: mg.sum(x, 1) is x.sum(1).
FUNCTIONS = {name: _method_function(name) for name in (
    "abs", "all", "amax", "amin", "any", "argmax", "argmin", "argsort", "chunk", "clamp",
    "clip", "clone", "flatten", "flip", "gather", "index_select", "isfinite", "isinf", "isnan",
    "logical_and", "logical_not", "logical_or", "logsumexp", "masked_fill", "max", "mean",
    "min", "narrow", "neg", "norm", "numel", "permute", "pow", "reshape", "sign", "sort",
    "square", "squeeze", "std", "sum", "topk", "transpose", "unsqueeze", "var",
)}


def _shape(shape: tuple) -> Shape:
    if len(shape) == 1 and not isinstance(shape[0], int):
        return tuple(shape[0])
    return tuple(shape)


# The op families import Tensor from this module, so they are bound last.
from minigrad.ops import elementwise as _ew  # noqa: E402
from minigrad.ops import inplace as _ip  # noqa: E402
from minigrad.ops import linalg as _la  # noqa: E402
from minigrad.ops import probability as _probability  # noqa: E402
from minigrad.ops import reduce as _rd  # noqa: E402
from minigrad.ops import shape as _sh  # noqa: E402
