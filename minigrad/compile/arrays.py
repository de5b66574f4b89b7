"""NumPy array arguments while tracing: recorded, so that a replay computes them again.

A NumPy array argument arrives as a NumPy array, as it does eagerly: a ``TracedArray``, which
holds the call's values and knows its slot. NumPy computing with it (``ids == 0``,
``ids.reshape(-1)``, ``ids[:, 1:]``, ``np.where``, ``lengths.sum()``) is recorded by
``numpy_call`` as an instruction that makes the same NumPy call again at every replay
(``NumPyCall``), and gives TracedArrays in turn; an op (or ``mg.tensor``) takes one as a program
input. Reading its values in Python (``.tolist()``, ``int()``, an ``if``) raises ``TraceError``,
like reading a tensor's, and so does writing into it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from minigrad.compile import trace as tracing
from minigrad.compile.program import Instr
from minigrad.tensor import Tensor

if TYPE_CHECKING:
    from minigrad.compile.trace import Traced, Tracer


def refuse(name: str, does: str = "reads") -> Callable[..., Any]:
    def refused(self: Traced | TracedArray, *args: Any, **kwargs: Any) -> Any:
        raise tracing.error(f"`{name}` {does} {self.what}")

    return refused


class TracedArray(np.ndarray):
    """What a NumPy array argument is while tracing: an array with the call's values, so that
    eager code sees what it would see (``isinstance(ids, np.ndarray)``, ``ids.shape``,
    ``len(ids)``), which also knows its ``slot`` in the program (None for a view that NumPy
    made of it on its own) and what it is (``what``, for messages).

    NumPy computing with it (a ufunc such as ``ids == 0`` or ``lengths.sum()``, a NumPy
    function such as ``np.where``, a method such as ``ids.reshape(-1)`` or ``ids[:, 1:]``) is
    recorded by ``Tracer.numpy_call`` and gives TracedArrays; where NumPy gives a scalar
    (``lengths.sum()``) it is a 0-d TracedArray here (``scalar`` says so), and a NumPy scalar
    again when the compiled function returns it. Reading the values in Python raises
    ``TraceError``, and so does writing into them (``ids[0] = 1``, ``ids += 1``), which a
    replay would not do.
    """

    slot: int | None
    what: str
    scalar: bool

    @classmethod
    def holding(cls, values: np.ndarray | np.generic, slot: int, what: str) -> TracedArray:
        """A TracedArray with a copy of ``values``. It owns its memory, so that the plain view
        ``np.asarray`` makes of it has it as ``base``, where ``_traced`` finds it."""
        array = np.ndarray.__new__(cls, np.shape(values), np.asarray(values).dtype)
        np.ndarray.__setitem__(array, Ellipsis, values)
        array.slot, array.what, array.scalar = slot, what, isinstance(values, np.generic)
        return array

    def __array_finalize__(self, source: Any) -> None:
        self.slot, self.what, self.scalar = None, "a view of an array argument", False

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        name = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"
        if "out" in kwargs or method == "at":
            raise tracing.error(f"np.{name} writes into {self.what} in place, which a replay would "
                         "not do")
        return numpy_call(_tracer(), getattr(ufunc, method), name, inputs, kwargs)

    def __array_function__(self, func: Callable, types: Any, args: tuple, kwargs: dict) -> Any:
        return numpy_call(_tracer(), func, func.__name__, args, kwargs)

    @property
    def T(self) -> TracedArray:
        """The array with its axes reversed (recorded, as ``transpose()``)."""
        return self.transpose()


def _tracer() -> Tracer:
    if tracing.active is None:
        raise tracing.TraceError("mg.compile: an array argument of a compiled function was "
                                 "kept and used after its trace ended; use the arrays of each "
                                 "call")
    return tracing.active


def _recorded(name: str) -> Callable[..., Any]:
    method = getattr(np.ndarray, name)

    def recorded(self: TracedArray, *args: Any, **kwargs: Any) -> Any:
        return numpy_call(_tracer(), method, name.strip("_"), (self, *args), kwargs)

    return recorded


# The methods that compute are recorded (ufuncs and NumPy's functions reach __array_ufunc__
# and __array_function__); those that read the values in Python or write into them raise.
for _name in (
    "__getitem__", "all", "any", "argmax", "argmin", "argsort", "astype", "clip", "compress",
    "copy", "cumprod", "cumsum", "diagonal", "dot", "flatten", "max", "mean", "min", "nonzero",
    "prod", "ravel", "repeat", "reshape", "round", "squeeze", "std", "sum", "swapaxes", "take",
    "transpose", "var", "view",
):
    setattr(TracedArray, _name, _recorded(_name))
for _name in (
    "__bool__", "__int__", "__float__", "__complex__", "__index__", "__iter__", "__contains__",
    "__repr__", "__str__", "__format__", "__copy__", "__deepcopy__", "__reduce__",
    "__reduce_ex__", "item", "tolist", "tobytes", "tofile", "dump", "dumps",
):
    setattr(TracedArray, _name, refuse(_name))
for _name in ("__setitem__", "fill", "put", "sort", "partition", "resize", "byteswap"):
    setattr(TracedArray, _name, refuse(_name, "writes into"))
for _name in ("data", "flat", "ctypes"):  # the buffer, an iterator, a pointer: values again
    setattr(TracedArray, _name, property(refuse(_name)))

_SHAPE_ONLY = (np.shape, np.ndim, np.size)
"""NumPy functions that return a Python value that depends on shapes only."""
_VALUE_SHAPED = (np.nonzero, np.argwhere, np.flatnonzero, np.unique, np.compress, np.extract,
                 np.bincount, np.ndarray.nonzero, np.ndarray.compress)
"""NumPy functions whose result's shape depends on the values (see ``_shaped_by_values``)."""


class _Array:
    """Stands where an array goes among the arguments of a recorded NumPy call."""

    def __repr__(self) -> str:
        return "<array>"


_ARRAY = _Array()


def _map_arrays(tree: Any, fn: Callable[[Any], Any]) -> Any:
    """``tree`` (tuples, lists and dicts) with ``fn`` applied to each array, tensor and
    ``_ARRAY`` in it, in order."""
    if isinstance(tree, (np.ndarray, Tensor)) or tree is _ARRAY:
        return fn(tree)
    if type(tree) in (tuple, list):
        return type(tree)(_map_arrays(v, fn) for v in tree)
    if type(tree) is dict:
        return {k: _map_arrays(v, fn) for k, v in tree.items()}
    return tree


def _fill(template: tuple[tuple, dict], arrays: Iterable[np.ndarray]) -> tuple[tuple, dict]:
    """The arguments of a recorded NumPy call, with ``arrays`` in the places of ``_ARRAY``."""
    it = iter(arrays)
    return _map_arrays(template, lambda _: next(it))


@dataclass
class NumPyCall:
    """What an instruction recorded from NumPy code runs: ``func`` on the arguments
    ``template`` (with ``_ARRAY`` where the instruction's input arrays go), returning arrays
    (a NumPy scalar as a 0-d array). A result whose shape differs from the one traced
    (``shapes``) raises: it depends on the values, so the program after it cannot be right."""

    func: Callable
    name: str
    template: tuple[tuple, dict]
    shapes: list[tuple[int, ...]]

    def __post_init__(self) -> None:
        arrays: list = []
        _map_arrays(self.template, arrays.append)
        self._at = [k for k, a in enumerate(self.template[0]) if a is _ARRAY]
        self._flat = len(self._at) == len(arrays)  # all positional: no walk of _fill needed

    def __call__(self, *arrays: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        if self._flat:
            args, kwargs = list(self.template[0]), self.template[1]
            for k, array in zip(self._at, arrays):
                args[k] = array
        else:
            args, kwargs = _fill(self.template, arrays)
        raw = self.func(*args, **kwargs)
        many = isinstance(raw, (tuple, list))
        results = tuple(np.asarray(r) for r in raw) if many else (np.asarray(raw),)
        if [r.shape for r in results] != self.shapes:
            raise RuntimeError(
                f"mg.compile: np.{self.name} gave arrays of shapes "
                f"{[r.shape for r in results]} at a replay, {self.shapes} when traced: their "
                "shape depends on the values, which a program cannot follow. Compute it "
                "outside the compiled function")
        return results if many else results[0]


def _shaped_by_values(func: Callable, args: tuple) -> bool:
    """Whether the shape of what ``func(*args)`` gives depends on the values of the traced
    arrays among ``args`` (``np.nonzero``, indexing with a boolean mask, ...)."""
    if func in _VALUE_SHAPED or (func is np.where and len(args) == 1):
        return True
    index: list = []
    if func is np.ndarray.__getitem__:
        _map_arrays(args[1], index.append)
    return any(isinstance(a, TracedArray) and a.dtype == bool for a in index)


def traced_source(array: np.ndarray) -> TracedArray | None:
    """The TracedArray that ``array`` is, or is a plain view of (what ``np.asarray`` makes of
    one); None for an array with no traced array behind it."""
    source = array
    while not isinstance(source, TracedArray):
        source = source.base
        if not isinstance(source, np.ndarray):
            return None
    if source.slot is None or (source is not array and not _whole_view(array, source)):
        raise tracing.error(f"NumPy made a view of {source.what} that mg.compile cannot follow (as "
                     "np.asarray(x)[1:] is); index or reshape the array itself")
    return source


def perturbed_values(values: np.ndarray) -> np.ndarray:
    """Other values of the shape and dtype of ``values``, for ``trace(..., perturbed=True)``:
    each ``v`` becomes ``min + max - v``, which keeps a valid index valid and changes every
    value but a midpoint (all equal: ``v + 1``); booleans flip; arrays of other kinds stay."""
    if values.dtype == bool:
        return ~values
    if values.dtype.kind not in "iuf" or values.size == 0:
        return values
    low, high = values.min(), values.max()
    return values + values.dtype.type(1) if low == high else (low - values) + high


def _whole_view(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether ``a`` and ``b`` show the same memory the same way."""
    return (a.shape, a.dtype, a.strides, a.__array_interface__["data"]) == (
        b.shape, b.dtype, b.strides, b.__array_interface__["data"])


def numpy_call(tracer: Tracer, func: Callable, name: str, args: tuple, kwargs: dict) -> Any:
    """``func(*args, **kwargs)``, a NumPy call that reads traced arrays: run it on their
    values and record an instruction that makes it again at every replay. Its arrays come
    back as TracedArrays; other arrays among the arguments are constants of the program."""
    slots: list[int] = []
    sources: list[TracedArray] = []

    def take(x: np.ndarray | Tensor) -> _Array:
        if isinstance(x, Tensor):
            raise tracing.error(f"np.{name} reads the values of a tensor (use tensor ops on it)")
        source = traced_source(x)
        if source is not None:
            sources.append(source)
        slots.append(tracer.constant(x) if source is None else source.slot)
        return _ARRAY

    template = _map_arrays((args, kwargs), take)
    what = sources[0].what if sources else "an array argument"
    if _shaped_by_values(func, args):
        raise tracing.error(f"the shape of what np.{name} gives depends on the values of {what}")
    call_args, call_kwargs = _fill(template, [tracer.values[s] for s in slots])
    raw = func(*call_args, **call_kwargs)
    for source in sources:
        if raw is tracer.values[source.slot]:
            return source  # NumPy gave the array back (np.asarray): nothing to record
    many = isinstance(raw, (tuple, list))
    results = raw if many else (raw,)
    if not all(isinstance(r, (np.ndarray, np.generic)) for r in results):
        if func in _SHAPE_ONLY:
            return raw
        raise tracing.error(f"np.{name} gives a {type(raw).__name__} computed from {what}, a "
                     "Python value")
    outputs = [tracer.slot(np.asarray(r), f"the result of np.{name}") for r in results]
    call = NumPyCall(func, name, template, [p.shape for p in outputs])
    label = "np_" + re.sub(r"\W", "_", name)  # a Python name: codegen calls it so
    tracer.instrs.append(Instr(label, call, tuple(slots), tuple(p.slot for p in outputs),
                             many, options={"args": template}))
    arrays = [TracedArray.holding(r, p.slot, p.what) for r, p in zip(results, outputs)]
    if not many:
        return arrays[0]
    return type(raw)(*arrays) if hasattr(type(raw), "_fields") else type(raw)(arrays)


def recorded_conversion(convert: Callable) -> Callable[..., Any]:
    """``convert`` (``np.asarray``, ``np.array``...) while tracing: NumPy's conversions do not
    dispatch to a TracedArray (``np.asarray`` would give a plain view of it, which NumPy would
    then compute with unseen), so given one, they are recorded like the functions that do."""
    def converted(*args: Any, **kwargs: Any) -> Any:
        found: list[bool] = []
        _map_arrays((args, kwargs), lambda x: found.append(isinstance(x, TracedArray)))
        if any(found):
            return numpy_call(_tracer(), convert, convert.__name__, args, kwargs)
        return convert(*args, **kwargs)

    return converted
