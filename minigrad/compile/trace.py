"""Tracing: run a function once on stand-ins for its tensors and record every op it applies.

While a ``Tracer`` is installed (only then: eager code pays nothing for it), ``Function.apply``
is replaced by ``Tracer.apply``, which runs each op's ``forward`` on real arrays and also
appends an instruction to the program being recorded. The tensors the function sees hold a
``Traced`` object in ``.data`` instead of an array: it knows its shape and dtype and raises
``TraceError`` on anything that reads a value (``if x > 0``, ``x.item()``, ``x.numpy()``,
arithmetic on ``x.data``...), because a value read in Python would be baked into the program
and be wrong at the next call. Tensors that the function reads from outside (parameters, and
any other tensor it did not get as an argument) become inputs of the program, read anew at
every call; tensors it makes from literals (``mg.zeros``, the ``1`` in ``1 - z``) become
constants.

A NumPy array argument arrives as a NumPy array, as it does eagerly: NumPy code on it is
recorded and replayed (``arrays.py``).

Random numbers may only be drawn inside an op's ``forward``, so that replay draws them afresh:
``mg.randn`` in the function raises, and so do the functions of ``np.random`` and ``random``,
which draw from the global state of NumPy and Python (``compiled.py`` also compares the state
of every generator the function can reach before and after tracing, with ``guards.py``).

The backward program is recorded the same way: ``mg.grad`` with ``create_graph=True`` runs
every op's backward, which is written with ops, on stand-ins for the output gradients.
"""

from __future__ import annotations

import os
import random as py_random
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from minigrad import autograd, random
from minigrad.autograd import Function, grad, is_grad_enabled
from minigrad.compile.arrays import (
    TracedArray,
    perturbed_values,
    recorded_conversion,
    refuse,
    traced_source,
)
from minigrad.compile.program import Instr, Meta, Program
from minigrad.nn.module import Module
from minigrad.ops import inplace
from minigrad.tensor import Tensor


class TraceError(RuntimeError):
    """A compiled function did something a traced program cannot replay: it read the value of
    a traced tensor, drew random numbers outside an op, or an op kept data outside its inputs.
    The message names the line; ``mg.compile(..., fallback=True)`` runs such a function eagerly
    instead, after one warning."""


active: Tracer | None = None
_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_MODELS = os.path.join(_PACKAGE, "models")
_NUMPY = os.path.dirname(os.path.abspath(np.__file__))


def is_tracing() -> bool:
    """True while a function is being traced."""
    return active is not None


def user_line() -> str:
    """Where the traced function's own code is: the innermost frame outside minigrad's engine
    (a model in minigrad.models counts as the user's code) and outside NumPy."""
    for frame in reversed(traceback.extract_stack()):
        path = os.path.abspath(frame.filename)
        inside = path.startswith(_PACKAGE + os.sep) and not path.startswith(_MODELS + os.sep)
        if not inside and not path.startswith(_NUMPY + os.sep):
            return f'{frame.filename}:{frame.lineno}: "{frame.line}"'
    return "an unknown line"


_READ_ADVICE = ("A compiled program replays the same ops on new values at every call, so it "
                "cannot depend on a value read in Python: compute it with ops (e.g. mg.where "
                "instead of an `if`) or do it outside the compiled function")
DRAW_ADVICE = ("A compiled program would replay the numbers drawn while tracing at every call: "
               "draw them outside the compiled function and pass them in, or with minigrad "
               "inside an op (as mg.nn.Dropout does), which a replay draws afresh")
"""What to do about random numbers drawn outside minigrad's ops (``compiled.py`` says it too)."""


def error(what: str, advice: str = _READ_ADVICE) -> TraceError:
    name = active.name if active is not None else "the function"
    return TraceError(f"mg.compile cannot trace {name}: {what}, at {user_line()}. {advice}")


# ----------------------------------------------------------------------------------------------
# the stand-in for an array


class Traced:
    """What ``.data`` holds while tracing: the shape and dtype of an array, not its values.

    ``slot`` numbers the value in the program (None for an array an op saved for backward,
    which backward must not read); ``what`` describes it in error messages.
    """

    __slots__ = ("shape", "dtype", "slot", "what")

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype, slot: int | None,
                 what: str) -> None:
        self.shape, self.dtype, self.slot, self.what = shape, dtype, slot, what

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    @property
    def size(self) -> int:
        """Number of elements."""
        return int(np.prod(self.shape, dtype=np.int64))

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d array")
        return self.shape[0]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # protocol probes (copy, NumPy) see a plain object
            raise AttributeError(name)
        raise error(f"`.{name}` reads {self.what}")

    def __repr__(self) -> str:
        return f"Traced({self.shape}, {self.dtype}, {self.what})"

    def __array_function__(self, func: Callable, types: Any, args: tuple, kwargs: dict) -> Any:
        if func in (np.may_share_memory, np.shares_memory):
            return False  # a stand-in holds no memory (and a program writes into no input)
        raise error(f"`np.{func.__name__}` reads {self.what}")


# Everything that would compute with the values raises; NumPy's own functions meet __array__
# or __array_ufunc__ first.
for _name in (
    "__array__", "__array_ufunc__", "__bool__", "__float__", "__int__",
    "__index__", "__complex__", "__iter__", "__getitem__", "__setitem__", "__contains__",
    "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__neg__", "__pos__",
    "__abs__", "__invert__", "__round__", "__add__", "__radd__", "__sub__", "__rsub__",
    "__mul__", "__rmul__", "__truediv__", "__rtruediv__", "__floordiv__", "__rfloordiv__",
    "__mod__", "__rmod__", "__pow__", "__rpow__", "__matmul__", "__rmatmul__", "__and__",
    "__rand__", "__or__", "__ror__", "__xor__", "__rxor__",
):
    setattr(Traced, _name, refuse(_name))
Traced.__hash__ = object.__hash__


def _holds_data(value: Any) -> bool:
    """Whether an op's attribute holds arrays or tensors (directly or in a tuple/list)."""
    if isinstance(value, (tuple, list)):
        return any(_holds_data(v) for v in value)
    return isinstance(value, (np.ndarray, Tensor))


def _hide(value: Any, what: str) -> Any:
    """``value`` with every array in it replaced by a ``Traced`` without a slot."""
    if isinstance(value, (tuple, list)):
        return type(value)(_hide(v, what) for v in value)
    return Traced(value.shape, value.dtype, None, what) if isinstance(value, np.ndarray) else value


# ----------------------------------------------------------------------------------------------
# arguments and results as flat lists: Tensors and arrays are the leaves


Spec = Any  # the nesting of a value with its leaves left out: hashable


def flatten(tree: Any, arrays: bool = True) -> tuple[list, Spec]:
    """The Tensors (and, with ``arrays``, NumPy arrays) in ``tree``, in order, and a hashable
    spec of everything else (tuples, named tuples, lists, dicts, and other values as they are).
    """
    leaves: list = []

    def walk(x: Any) -> Spec:
        if isinstance(x, Traced):
            raise error("returning or passing the array of a traced tensor (use the tensor)")
        if isinstance(x, Tensor) or (arrays and isinstance(x, np.ndarray)):
            leaves.append(x)
            return "*"
        if isinstance(x, (tuple, list)):
            return (type(x), tuple(walk(v) for v in x))
        if isinstance(x, dict):
            return (dict, tuple(x), tuple(walk(v) for v in x.values()))
        try:
            hash(x)
        except TypeError:
            raise TypeError(
                f"mg.compile: a {type(x).__name__} among the arguments or results is not a "
                "Tensor, an array, a tuple, list or dict of them, nor a hashable constant"
            ) from None
        return ("const", x)

    return leaves, walk(tree)


def unflatten(spec: Spec, leaves: Iterable) -> Any:
    """The inverse of ``flatten``: ``spec`` with its leaves taken in order from ``leaves``."""
    it = iter(leaves)

    def build(s: Spec) -> Any:
        if s == "*":
            return next(it)
        if s[0] == "const":
            return s[1]
        if s[0] is dict:
            return dict(zip(s[1], [build(v) for v in s[2]]))
        kind, parts = s
        values = [build(v) for v in parts]
        return kind(*values) if hasattr(kind, "_fields") else kind(values)  # named tuples

    return build(spec)


# ----------------------------------------------------------------------------------------------
# the tracer


_init = Tensor.__dict__["__init__"]
_wrap = Tensor._wrap
_generator = random.generator
_call = Module.__call__
_GRAD = Tensor.__dict__["grad"]  # the slot's descriptor
_EMPTY = np.empty(0)
_GUARDED = {
    "item": "Tensor.item()", "numpy": "Tensor.numpy()", "tolist": "Tensor.tolist()",
    "__bool__": "bool() (an `if`, `while`, `and` or `or` on a tensor)", "__float__": "float()",
    "__int__": "int()", "__index__": "using a tensor as an index", "__array__": "np.asarray()",
}


class Tracer:
    """Records the ops one run of a function applies, as instructions over slots."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.instrs: list[Instr] = []
        self.values: dict[int, np.ndarray] = {}  # slot -> its array in this run
        self.meta: dict[int, Meta] = {}
        self.inputs: list[int] = []  # slots of the arguments, then of the tensors read
        self.leaves: list[Tensor] = []  # the tensors read from outside, in order
        self.constants: dict[int, np.ndarray] = {}
        self.standins: dict[int, Tensor] = {}  # id of a tensor from outside -> its stand-in
        self.swapped: list[tuple[Tensor, np.ndarray]] = []  # their arrays, given back at the end
        self.made: dict[int, Tensor] = {}  # tensors created while tracing (kept: ids stay unique)
        self.const_slots: dict[int, int] = {}  # id of such a tensor -> its constant slot
        self.nodes: list[Function] = []  # the graph nodes recorded, for the backward trace
        self.modules: dict[int, Module] = {}  # every module called
        self.in_op = False  # inside an op's forward, where random draws are replayed
        self.drew = False

    # -- slots and tensors -------------------------------------------------------------------

    def slot(self, array: np.ndarray, what: str) -> Traced:
        """A new slot holding ``array``; returns its stand-in."""
        s = len(self.meta)
        self.values[s] = array
        self.meta[s] = (array.shape, array.dtype)
        return Traced(array.shape, array.dtype, s, what)

    @staticmethod
    def tensor(proxy: Traced, requires_grad: bool = False) -> Tensor:
        """A tensor whose data is ``proxy``."""
        t = _wrap(_EMPTY)
        t.data, t.requires_grad = proxy, requires_grad
        return t

    def argument(self, x: Tensor | np.ndarray, k: int, perturbed: bool = False
                 ) -> Tensor | TracedArray:
        """The stand-in for the ``k``-th array or tensor among the arguments: a program input.
        An array arrives as an array (a TracedArray), as eager code sees it; ``perturbed``
        gives that array other values than the program's input (see ``trace``)."""
        if isinstance(x, np.ndarray):
            what = f"argument {k} (an array)"
            slot = self.slot(x, what).slot
            self.inputs.append(slot)
            return TracedArray.holding(perturbed_values(x) if perturbed else x, slot, what)
        return self.read(x, f"argument {k}", leaf=False)

    def constant(self, array: np.ndarray) -> int:
        """A new slot holding ``array`` as a constant of the program."""
        s = self.slot(array, "a constant").slot
        self.constants[s] = array
        return s

    def proxy(self, array: np.ndarray, dtype: Any = None) -> np.ndarray | Traced:
        """The stand-in of ``array`` if it is a traced array (or NumPy's plain view of one),
        converted to ``dtype`` as NumPy converts it; ``array`` itself if it is not."""
        traced = traced_source(array)
        if traced is None:
            return array
        if dtype is not None and np.dtype(dtype) != traced.dtype:
            traced = traced.astype(dtype)
        return Traced(traced.shape, traced.dtype, traced.slot, traced.what)

    def output(self, y: Tensor | np.ndarray) -> tuple[Tensor | None, int]:
        """What the program returns for ``y``, a tensor or an array among the function's
        results: the tensor that ops record (None for an array), and its slot."""
        if isinstance(y, Tensor):
            return self.value(y)
        traced = traced_source(y)
        return None, self.constant(y) if traced is None else traced.slot

    def read(self, x: Tensor, what: str, leaf: bool = True) -> Tensor:
        """The stand-in for a tensor from outside the function (a program input, read anew at
        every call). Until tracing ends, ``x.data`` holds the stand-in's ``Traced`` too, so
        that Python code reading it raises. An argument gets its own input even when the same
        tensor comes twice (the next call may pass two)."""
        standin = self.standins.get(id(x))
        if standin is not None and leaf:
            return standin
        proxy = self.slot(x.data if standin is None else self.values[standin.data.slot], what)
        self.inputs.append(proxy.slot)
        if leaf:
            self.leaves.append(x)
        new = self.tensor(proxy, x.requires_grad)
        if standin is None:
            self.standins[id(x)] = new
            self.swapped.append((x, x.data))
            x.data = proxy
        return new

    def value(self, x: Tensor) -> tuple[Tensor, int]:
        """What an op records for its input ``x``, and the slot it reads."""
        standin = self.standins.get(id(x))
        if standin is not None:
            return standin, standin.data.slot
        if type(x.data) is Traced:
            return x, x.data.slot
        if id(x) in self.made:
            if x.requires_grad:
                raise error(f"a tensor of shape {x.shape} created inside requires grad, and "
                             "its gradient would be lost; pass it as an argument instead")
            s = self.const_slots.get(id(x))
            if s is None:
                s = self.const_slots[id(x)] = self.constant(x.data)
            return x, s
        standin = self.read(x, f"a tensor of shape {x.shape} read from outside")
        return standin, standin.data.slot

    def prepare_backward(self) -> None:
        """Before recording backward: an array an op saved for backward becomes a ``Traced``
        without a slot (a backward must compute what it needs by ops on the node's inputs and
        outputs), and a hook inside the function is refused (it would run once, at tracing)."""
        for node in self.nodes:
            if node.hooked:
                raise error("a hook or retain_grad() on a tensor inside the compiled "
                             "function (hooks on its arguments and results work)")
            if node.saved:
                node.saved = _hide(node.saved, f"an array that {node.name}.forward saved for "
                                               "backward (read it by ops instead)")

    # -- what is installed while tracing ------------------------------------------------------

    def apply(self, cls: type[Function], inputs: tuple, options: dict) -> Any:
        """``Function.apply`` while tracing: run the op on the real arrays, record it, and
        return tensors whose data are stand-ins."""
        recorded, slots = [], []
        for x in inputs:
            if not isinstance(x, Tensor):
                raise TypeError(f"{cls.__name__}.apply takes Tensors; got a {type(x).__name__} "
                                "(wrap it with mg.tensor)")
            t, s = self.value(x)
            recorded.append(t)
            slots.append(s)
        fn = cls(**options)
        self.in_op, self.drew = True, False
        try:
            raw = fn.forward(*[self.values[s] for s in slots])
        finally:
            self.in_op = False
        for name, value in vars(fn).items():
            if name != "saved" and _holds_data(value):
                raise error(f"{cls.__name__} keeps data in self.{name} instead of taking it "
                             "as an input, so a program would replay it unchanged")
        arrays = raw if type(raw) is tuple else (raw,)
        outputs = tuple(self.tensor(self.slot(np.asarray(a), f"the output of {cls.__name__}"))
                        for a in arrays)
        self.instrs.append(Instr(cls.__name__, cls(**options).forward, tuple(slots),
                                 tuple(y.data.slot for y in outputs), type(raw) is tuple, cls,
                                 dict(options), impure=self.drew))
        if is_grad_enabled() and any(t.requires_grad for t in recorded):
            fn.inputs = tuple(recorded)
            fn._record_outputs(outputs)
            self.nodes.append(fn)
        return outputs if type(raw) is tuple else outputs[0]

    def init(self, t: Tensor, data: Any, dtype: Any = None, requires_grad: bool = False) -> None:
        """``Tensor.__init__`` while tracing: notes that ``t`` was made inside; a tensor made
        from a traced one (or a traced array) shares its slot, as eagerly it shares its array."""
        source = data.data if isinstance(data, Tensor) else data
        if isinstance(source, np.ndarray):
            source = self.proxy(source, dtype)
        if type(source) is Traced:
            if dtype is not None and np.dtype(dtype) != source.dtype:
                raise error(f"converting {source.what} to {np.dtype(dtype)} outside an op "
                             "(use .astype)")
            _init(t, _EMPTY, requires_grad=False)
            t.data = self.alias(source)
        else:
            _init(t, data, dtype, requires_grad)
        self.made[id(t)] = t

    def wrap(self, cls: type[Tensor], data: Any) -> Tensor:
        """``Tensor._wrap`` while tracing: as ``init``."""
        if isinstance(data, np.ndarray):
            data = self.proxy(data)
        if type(data) is Traced:
            return self.tensor(self.alias(data))
        t = _wrap.__func__(cls, data)
        self.made[id(t)] = t
        return t

    @staticmethod
    def alias(proxy: Traced) -> Traced:
        """``proxy``, for a new tensor to share; an array saved for backward cannot be shared."""
        if proxy.slot is None:
            raise error(f"wrapping {proxy.what} in a tensor")
        return proxy

    def generator(self) -> np.random.Generator:
        """``minigrad.random.generator`` while tracing: only an op's forward may draw (replay
        then draws afresh); the instruction is marked impure."""
        if not self.in_op:
            raise error("drawing random numbers outside an op (they would be drawn once and "
                         "replayed unchanged)")
        self.drew = True
        return _generator()

    def call(self, module: Module, *args: Any, **kwargs: Any) -> Any:
        """``Module.__call__`` while tracing: notes the module, whose training flag the
        program depends on."""
        self.modules[id(module)] = module
        return _call(module, *args, **kwargs)

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Install the tracing versions of apply, the tensor constructors, the generator, the
        module call, the value-reading Tensor methods, the functions of ``np.random`` and
        ``random`` that use the global random state, NumPy's conversions (``np.asarray``...)
        and in-place ops; put everything back on exit."""
        global active
        if active is not None:
            raise RuntimeError("mg.compile: already tracing another function")
        patches = [  # functions, not bound methods: a class attribute binds its instance
            (Function, "apply", classmethod(lambda cls, *xs, **kw: self.apply(cls, xs, kw))),
            (Tensor, "__init__", lambda t, *args, **kw: self.init(t, *args, **kw)),
            (Tensor, "_wrap", classmethod(lambda cls, data: self.wrap(cls, data))),
            (autograd, "_wrap", lambda data: self.wrap(Tensor, data)),
            (random, "generator", self.generator),
            (Module, "__call__", lambda module, *args, **kw: self.call(module, *args, **kw)),
            (Tensor, "grad", property(_read_grad, _GRAD.__set__)),
        ]
        patches += [(Tensor, name, _guard(name, Tensor.__dict__[name]))
                    for name in _GUARDED if name in Tensor.__dict__]
        patches += _global_draws()
        patches.append((inplace, "update", _refuse_inplace))
        patches += [(np, name, recorded_conversion(getattr(np, name))) for name in (
            "array", "asarray", "asanyarray", "ascontiguousarray", "asfortranarray")]
        originals = [(owner, name, vars(owner).get(name)) for owner, name, _ in patches]
        for owner, name, value in patches:
            setattr(owner, name, value)
        rng = _generator()
        state = rng.bit_generator.state  # replay must draw what eager would have drawn
        active = self
        try:
            yield
        finally:
            active = None
            rng.bit_generator.state = state
            for owner, name, value in originals:
                if value is None:
                    delattr(owner, name)
                else:
                    setattr(owner, name, value)
            for x, array in self.swapped:
                x.data = array


def _global_draws() -> list[tuple[Any, str, Callable]]:
    """Patches for the functions of ``np.random`` and of ``random`` that use the global
    generator of NumPy or of Python (the methods of that generator: ``np.random.randn``,
    ``random.random``, ``np.random.seed``...), each of which raises naming the line, and for
    ``np.random.default_rng``, which raises when it would seed a generator from the operating
    system."""
    patches: list[tuple[Any, str, Callable]] = []
    for module, prefix in ((np.random, "np.random"), (py_random, "random")):
        state = module.random.__self__
        for name, value in vars(module).items():
            if getattr(value, "__self__", None) is state and name not in ("get_state",
                                                                          "getstate"):
                patches.append((module, name, _refuse_draw(f"{prefix}.{name}()")))
    patches.append((np.random, "default_rng", _seeded_rng))
    return patches


def _refuse_draw(name: str) -> Callable[..., Any]:
    def refused(*args: Any, **kwargs: Any) -> Any:
        raise error(f"{name} uses the global random state", DRAW_ADVICE)

    return refused


_default_rng = np.random.default_rng


def _seeded_rng(seed: Any = None) -> np.random.Generator:
    """``np.random.default_rng`` while tracing: a generator from a seed, as eagerly; without
    one, it raises (a replay would repeat the numbers of one generator seeded once)."""
    if seed is None:
        raise error("np.random.default_rng() seeds a new generator from the operating system",
                     DRAW_ADVICE)
    return _default_rng(seed)


def _refuse_inplace(x: Tensor, name: str, *args: Any) -> Tensor:
    """``minigrad.ops.inplace.update``, the way of every in-place op, while tracing: it
    raises. A program keeps each value in a slot of its own; a write into an array that an op
    recorded before (a tensor made inside) would replay the later value at that op too."""
    what = x.data.what if type(x.data) is Traced else "a tensor made inside"
    raise error(f"in-place op {name} on {what}", "A compiled program records ops that make "
                 "new arrays, not writes into old ones: write it out of place (y = y + 1; "
                 "mg.where or masked_fill for y[i] = v)")


def _read_grad(t: Tensor) -> None:
    raise error("reading .grad (gradients come from backward, after the call: a program "
                 "would replay the one read while tracing)")


def _guard(name: str, method: Callable) -> Callable:
    def guarded(t: Tensor, *args: Any, **kwargs: Any) -> Any:
        if type(t.data) is Traced:
            raise error(f"{_GUARDED[name]} reads {t.data.what}")
        return method(t, *args, **kwargs)

    return guarded


# ----------------------------------------------------------------------------------------------
# one trace


@dataclass
class Trace:
    """What one traced call recorded.

    ``forward`` takes the arrays of the arguments, then of ``leaves`` (the tensors read from
    outside), and returns the arrays of the function's results (``out_spec`` nests them;
    ``tracked`` says which of them eager would track; ``kinds`` whether each is a "tensor", an
    "array" or a NumPy "scalar"). ``backward`` (None without gradients) reads forward
    values and one gradient per tracked output (``grad_slots``) and returns the input
    gradients: ``grad_of[k]`` is the position among its outputs of forward input ``k``'s
    gradient, or None. ``modules`` are the modules the function called. ``values`` holds
    every slot's array in the traced run (for the checker; emptied once the passes ran).
    """

    name: str
    forward: Program
    backward: Program | None
    grad_slots: list[int]
    grad_of: list[int | None]
    leaves: list[Tensor]
    out_spec: Spec
    tracked: list[bool]
    kinds: list[str]
    modules: list[Module]
    values: dict[int, np.ndarray]

    def matches(self, other: Trace) -> bool:
        """Whether ``other`` recorded the same programs (instructions, slots, shapes and
        constants) and results."""
        return ((self.out_spec, self.tracked, self.kinds) == (other.out_spec, other.tracked,
                                                              other.kinds)
                and _same_program(self.forward, other.forward)
                and _same_program(self.backward, other.backward))


def _same_program(p: Program | None, q: Program | None) -> bool:
    if p is None or q is None:
        return p is q
    return ((p.inputs, p.outputs, p.meta, p.constants.keys()) == (q.inputs, q.outputs, q.meta,
                                                                  q.constants.keys())
            and [_instr_key(i) for i in p.instrs] == [_instr_key(i) for i in q.instrs]
            and all(_array_key(p.constants[s]) == _array_key(q.constants[s])
                    for s in p.constants))


def _instr_key(ins: Instr) -> tuple:
    return ins.label, ins.inputs, ins.outputs, repr(ins.options)


def _array_key(array: np.ndarray) -> tuple:
    return array.shape, array.dtype, array.tobytes()


def _program(tracer: Tracer, instrs: list[Instr], inputs: list[int] | None,
             outputs: list[int]) -> Program:
    """A program over the tracer's slots; with ``inputs=None`` its inputs are the slots it
    reads that it neither computes nor holds as constants."""
    read = [s for ins in instrs for s in ins.inputs] + outputs
    made = {s for ins in instrs for s in ins.outputs}
    constants = {s: tracer.constants[s] for s in dict.fromkeys(read) if s in tracer.constants}
    if inputs is None:
        inputs = sorted({s for s in read if s not in made and s not in constants})
    return Program(list(instrs), inputs, outputs, constants, tracer.meta)


def trace(fn: Callable, args: tuple, kwargs: dict, name: str,
          watch: Iterable[Tensor] = (), perturbed: bool = False) -> Trace:
    """Run ``fn(*args, **kwargs)`` once under a tracer and return its programs. The tensors in
    ``watch`` (a module's parameters) are inputs from the start, so that reading their arrays
    raises even before an op uses them.

    With ``perturbed``, the TracedArrays the function sees hold other values than the arrays
    the ops record (``perturbed_values``): what it computes through NumPy's functions is the same,
    so a trace that differs (``Trace.matches``) tells code that read the arrays' memory behind
    NumPy's back (``table[ids]`` with a NumPy ``table``, ``memoryview``, numba), whose result
    the program would keep as a constant."""
    leaves, spec = flatten((args, kwargs))
    tracer = Tracer(name)
    with tracer.installed():
        standins = [tracer.argument(x, k, perturbed) for k, x in enumerate(leaves)]
        for p in watch:
            tracer.read(p, f"a parameter of shape {p.shape}")
        call_args, call_kwargs = unflatten(spec, standins)
        result = fn(*call_args, **call_kwargs)
        outs, out_spec = flatten(result)
        values = [tracer.output(y) for y in outs]
        tracked = [t is not None and t.requires_grad for t, _ in values]
        kinds = ["tensor" if isinstance(y, Tensor) else "scalar" if getattr(y, "scalar", False)
                 else "array" for y in outs]
        n = len(tracer.instrs)
        inputs = [*standins, *(tracer.standins[id(p)] for p in tracer.leaves)]
        wrt = [k for k, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]
        backward, grad_slots, grad_outputs = None, [], {}
        if is_grad_enabled() and wrt and any(tracked):
            tracer.prepare_backward()
            roots = [t for (t, _), track in zip(values, tracked) if track]
            gys = [tracer.tensor(tracer.slot(np.ones(y.shape, y.dtype), f"the gradient of "
                                             f"output {k}")) for k, y in enumerate(roots)]
            grad_slots = [g.data.slot for g in gys]
            grads = grad(roots, [inputs[k] for k in wrt], gys, create_graph=True,
                         allow_unused=True)
            grad_outputs = {k: tracer.value(g)[1] for k, g in zip(wrt, grads) if g is not None}
            backward = _program(tracer, tracer.instrs[n:], None, list(grad_outputs.values()))
        forward = _program(tracer, tracer.instrs[:n], list(tracer.inputs), [s for _, s in values])
    grad_of = [None] * len(forward.inputs)
    for position, k in enumerate(grad_outputs):
        grad_of[k] = position
    return Trace(name, forward, backward, grad_slots, grad_of, list(tracer.leaves), out_spec,
                 tracked, kinds, list(tracer.modules.values()), tracer.values)
