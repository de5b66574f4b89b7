"""``mg.compile``: a function or module that traces itself once per signature and then replays.

The first call with a new signature (the shapes and dtypes of the tensor and array arguments,
which of them require grad, the other arguments' values, the grad mode, and the training flags
of the modules involved) traces the function (``trace.py``), runs the passes (``passes.py``)
and keeps the result; later calls with that signature replay the programs. A small cache
keeps the last ``cache_size`` signatures. In an eager graph a compiled call is one node,
``CompiledCall``: its forward runs the forward program and keeps what the backward program
reads; its backward runs the backward program.

Guards. A trace is kept only while what it took as fixed stays so; every call checks it
(``Specialization.fits``, about a microsecond per object watched), and a change traces again:

- the names the function's own code reads from outside (for a module, its ``forward``'s):
  its closure variables and globals, and the attributes of the object it is a method of (or
  that it is, for a callable object);
- what those hold, ``DEPTH`` (two) levels down: the items of a list or a dict, the attributes
  of an object (``cfg.scale``, ``layers[0]``, ``self.opts["lr"]``);
- every module it reaches (through those, or by calling it) and every module below: their
  attributes, so that a replaced submodule (``model.cell = GRUCell(...)``), a replaced
  parameter or a changed option (a dropout probability) traces again.

Numbers, strings and None compare by value, anything else by identity. Tensors are read at
every call, so new values given in place (as optimizers and ``load_state_dict`` do) need no
new trace. A Python number among the arguments is baked in, so another value traces again.

NumPy array arguments are NumPy arrays inside the function, as eagerly: NumPy code on them is
recorded and replayed (``trace.py``), and what NumPy returns comes back as NumPy does.

What a replay cannot do, it leaves to eager, after one ``TraceWarning`` that says why (or, with
``fallback=False``, it raises ``TraceError``): a function that reads a value in Python (``if
x.item() > 0``), that writes a tensor in place (``y.add_(1)``, ``y[0] = 0``), that draws random
numbers from ``np.random``, ``random`` or a generator it reaches (a replay would repeat the
numbers drawn while tracing; eager draws afresh), that changes what it reads (``self.state =
h``, ``log.append(y)``: a replay runs no Python), or that reads an array argument's memory
past NumPy's functions (below). What it changed while tracing is set back first, so the
eager run starts from the state of the call.

``verify=True`` (or the environment variable ``MINIGRAD_COMPILE_VERIFY=1``) runs the plain
function beside every replay, on the same arguments and from the same random state (so dropout
draws the same masks), sets back what the eager run changed in what the guards watch, and
raises ``VerifyError`` at the first output that differs, and, when a backward runs through the
call, at the first gradient that differs (eager's from the same upstream gradient). Floats
agree within a relative 1e-5 (float32) or 1e-10 (float64) of the largest magnitude, as the
kernels may add in another order; integers, booleans and the Python values among the results
exactly. It costs an eager call and its backward beside each replay: a debugging aid.

What a replay cannot see, and so what can still make one stale:

- contents deeper than ``DEPTH`` levels below a name, a list or dict of more than
  ``MAX_ITEMS`` items or an object with more attributes (watched by identity only), the
  contents of a set, and the globals of other functions the function calls (a helper's);
- what the function computes in NumPy from an array it reads from outside: computed once,
  when tracing, so a change in place is not seen (rebind the name to a new array, or pass
  the array as an argument);
- code that reads an array argument's memory past NumPy's functions (``table[ids]`` with a
  NumPy ``table``, ``np.take(table, ids)``, ``memoryview``, a numba function): a function
  given arrays is traced a second time with other values in them, and runs eagerly if that
  gives another program, but what comes out the same for both values is not seen;
- any other effect of Python code (printing, files, objects it does not read): it happens at
  the tracing call only.

``verify=True`` catches what these make differ. Also, ``create_graph=True`` through a compiled
call raises (its backward is one replayed program, which records no graph: differentiate the
plain function for higher derivatives), and hooks and ``retain_grad`` work on its arguments
and results, not inside it.
"""

from __future__ import annotations

import ctypes
import functools
import inspect
import os
import pickle
import random as py_random
import sys
import time
import types
import warnings
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from operator import is_
from typing import TYPE_CHECKING, Any

import numpy as np

from minigrad import random
from minigrad.autograd import Function, grad, is_grad_enabled
from minigrad.compile.passes import ALL, PASSES, decompose, merge_repeats, run_passes
from minigrad.compile.program import Program, type_text
from minigrad.compile.trace import (
    DRAW_ADVICE,
    Trace,
    TraceError,
    flatten,
    is_tracing,
    trace,
    unflatten,
)
from minigrad.nn.module import Module
from minigrad.tensor import Tensor

if TYPE_CHECKING:
    import graphviz

DEPTH = 2
"""How many levels of contents below a name the function reads the guards watch."""
MAX_ITEMS = 64
"""A list or dict with more items, or an object with more attributes, is watched by identity
only (modules excepted: all of their attributes are watched)."""


class TraceWarning(UserWarning):
    """Warned once when a compiled function falls back to eager for a signature."""


class VerifyError(AssertionError):
    """``mg.compile(..., verify=True)``: a replay gave an output or a gradient that the eager
    function, run beside it on the same inputs, did not."""


@dataclass
class Specialization:
    """The compiled form of one signature: the programs as traced (``traced``: forward and
    backward, before the passes) and as run (``forward``, ``backward``), the time that
    tracing and the passes took, and the ``watches`` that guard what it took as fixed.

    ``forward`` returns the function's output arrays, then the values ``backward`` reads;
    ``backward`` takes those values, then one gradient per tracked output.
    """

    signature: str
    trace: Trace
    traced: tuple[Program, Program | None]
    forward: Program
    backward: Program | None
    seconds: float
    watches: list[Watch]

    def __post_init__(self) -> None:
        self._leaf_keys = [_leaf_key(x) for x in self.trace.leaves]
        self._constant_outputs: set[int] | None = None

    def fresh(self, outputs: list[np.ndarray]) -> tuple[np.ndarray, ...]:
        """``outputs``, with copies of those that are (views of) the program's constants: a
        replay hands out the same constant arrays each time, and a caller may write into one
        in place (which is found out once, at the first replay)."""
        if self._constant_outputs is None:
            constants = self.forward.constants.values()
            self._constant_outputs = {k for k, y in enumerate(outputs)
                                      if any(np.may_share_memory(y, c) for c in constants)}
        return tuple(y.copy() if k in self._constant_outputs else y
                     for k, y in enumerate(outputs))

    def fits(self) -> bool:
        """Whether what the programs assume still holds: the tensors read from outside have
        the traced shapes, dtypes and requires_grad, and every watch holds what it held."""
        return (list(map(_leaf_key, self.trace.leaves)) == self._leaf_keys
                and all(watch.unchanged() for watch in self.watches))

    def __call__(self, leaves: list) -> Any:
        """Run on the call's tensors and arrays, as one node; nest the results as traced."""
        inputs = [x if isinstance(x, Tensor) else Tensor._wrap(x) for x in leaves]
        outputs = CompiledCall.apply(*inputs, *self.trace.leaves, specialization=self)
        trace = self.trace
        return unflatten(trace.out_spec, map(_result, outputs, trace.kinds, trace.tracked))

    def __str__(self) -> str:
        parts = [f"signature {self.signature} (traced in {self.seconds * 1e3:.1f} ms)"]
        for title, program in (("forward, as traced", self.traced[0]),
                               ("forward, after the passes", self.forward),
                               ("backward, as traced", self.traced[1]),
                               ("backward, after the passes", self.backward)):
            if program is not None:
                parts.append(f"-- {title}:\n{program}")
        return "\n".join(parts)


def _result(y: Tensor, kind: str, tracked: bool) -> Any:
    """An output of a compiled call as eager gives it: a tensor (cut from the graph where
    eager would not track it), a NumPy array or a NumPy scalar."""
    if kind == "array":
        return y.data
    if kind == "scalar":
        return y.data[()]
    return y if tracked else y.detach()


class CompiledCall(Function):
    """One call of a compiled function in an eager graph: forward runs the forward program,
    backward runs the backward program on what forward kept. Under ``verify``, ``eager`` holds
    the tracked outputs of the eager run beside it, whose gradients backward compares."""

    def __init__(self, specialization: Specialization) -> None:
        self.specialization = specialization
        self.eager: list[Tensor] | None = None

    def forward(self, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        spec = self.specialization
        values = spec.forward.run(arrays)
        n = len(spec.trace.tracked)
        if spec.backward is not None:
            self.save_for_backward(*values[n:])
        return spec.fresh(values[:n])

    def backward(self, *grads: Tensor) -> tuple[Tensor | None, ...]:
        spec = self.specialization
        if is_grad_enabled():
            raise RuntimeError(
                f"mg.compile: create_graph=True through a compiled call of {spec.trace.name} is "
                "not supported: its backward is one replayed program, which records no graph. "
                "Differentiate the uncompiled function for higher derivatives."
            )
        tracked = [g for g, t in zip(grads, spec.trace.tracked) if t]
        results = spec.backward.run([*self.saved, *(g.data for g in tracked)])
        results = tuple(None if k is None else Tensor._wrap(results[k])
                        for k in spec.trace.grad_of)
        if self.eager is not None:
            self._verify_gradients(tracked, results)
        return results

    def _verify_gradients(self, grads: list[Tensor], results: tuple[Tensor | None, ...]
                          ) -> None:
        """Compare each input's gradient with the one the eager run's graph gives for the same
        upstream ``grads``; raise VerifyError at the first that differs."""
        eager, self.eager = self.eager, None
        spec = self.specialization
        wrt = [k for k, x in enumerate(self.inputs) if x.requires_grad]
        expected = grad(eager, [self.inputs[k] for k in wrt], grads, allow_unused=True)
        arguments = len(self.inputs) - len(spec.trace.leaves)
        for k, want in zip(wrt, expected):
            x = self.inputs[k]
            zeros = Tensor._wrap(np.zeros(x.shape, x.dtype))
            what = (f"the gradient of argument {k}" if k < arguments else
                    f"the gradient of the tensor of shape {x.shape} that it reads from outside")
            _check_close(zeros if results[k] is None else results[k],
                         zeros if want is None else want, what, spec)

    @property
    def name(self) -> str:
        """The label in drawings and errors: the compiled function's name."""
        return f"Compiled[{self.specialization.trace.name}]"


_RTOL = {np.dtype(np.float16): 1e-3, np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10}
"""The relative tolerance of ``verify`` per dtype; other dtypes must agree exactly."""


def _check_close(got: Any, want: Any, what: str, spec: Specialization) -> None:
    """Raise VerifyError unless ``got`` (from the replay) and ``want`` (from eager), tensors or
    arrays, agree: the same shape, dtype and requires_grad, and values within ``_RTOL`` of the
    largest magnitude for floats, equal otherwise."""
    a, b = (np.asarray(x.data if isinstance(x, Tensor) else x) for x in (got, want))
    if (a.shape, a.dtype) != (b.shape, b.dtype) or (
            isinstance(want, Tensor) and got.requires_grad != want.requires_grad):
        raise _verify_error(spec, what, f"it is {_describe(got)} where eager gives "
                                        f"{_describe(want)}")
    rtol = _RTOL.get(b.dtype, 0.0)
    try:
        if rtol:
            scale = np.abs(b[np.isfinite(b)]).max(initial=1.0)
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale, equal_nan=True)
        else:
            np.testing.assert_array_equal(a, b)
    except AssertionError as e:
        raise _verify_error(spec, what, str(e).strip()) from None


def _describe(x: Any) -> str:
    text = type_text((np.shape(x), np.asarray(x.data if isinstance(x, Tensor) else x).dtype))
    return text + (" requiring grad" if getattr(x, "requires_grad", False) else "")


def _verify_error(spec: Specialization, what: str, detail: str) -> VerifyError:
    return VerifyError(
        f"mg.compile(verify=True): the replay of {spec.trace.name} for the signature "
        f"{spec.signature} differs from eager in {what}: {detail}\nThe program was traced "
        "earlier; something it took as fixed has changed where no guard looks (see \"What a "
        "replay cannot see\" in minigrad/compile/compiled.py), or mg.compile has a bug. Pass "
        "such state as an argument, or call the function uncompiled."
    )


def _merged(traced: Trace, passes: Sequence[str]) -> tuple[Program, Program | None]:
    """The traced programs (decomposed, if ``decompose`` is among the passes), and with
    ``cse``, the forward one with its repeats merged and the backward one reading the slot
    kept for each merged value (so that its own repeats merge too: the transpose of a weight's
    piece that every step's gradient reads), and reading the forward's value wherever it
    repeats a forward instruction."""
    forward, backward = traced.forward, traced.backward
    if "decompose" in passes:
        forward, backward = decompose(forward), backward and decompose(backward)
    if "cse" not in passes or backward is None:
        return forward, backward
    forward, alias = merge_repeats(forward)
    return forward, merge_repeats(backward.renamed(alias), known=forward)[0]


def _link(forward: Program, backward: Program | None,
          grad_slots: list[int]) -> tuple[Program, Program | None]:
    """Join the two programs: the forward values that backward reads (its inputs that are not
    gradients) become forward outputs, after the function's own."""
    if backward is None:
        return forward, None
    made = {s for ins in backward.instrs for s in ins.outputs}
    read = [s for ins in backward.instrs for s in ins.inputs] + backward.outputs
    kept = [s for s in dict.fromkeys(read) if s not in made and s not in backward.constants
            and s not in grad_slots]
    return (replace(forward, outputs=forward.outputs + kept),
            replace(backward, inputs=kept + grad_slots))


class Watch:
    """Values that a trace took as fixed, reached through one object: a function's names
    (closure variables and globals), an object's attributes, a list's or a dict's items, or a
    random generator's state. ``label`` names the object in messages; ``keys`` and ``values``
    are what it held when watching began."""

    def __init__(self, label: str) -> None:
        self.label = label
        keys, values = self.now()
        self.keys, self.values = tuple(keys), tuple(values)

    def now(self) -> tuple[Collection, Collection]:
        """The keys and the values it holds now (views: no copy on the way of every call)."""
        raise NotImplementedError

    def unchanged(self) -> bool:
        """Whether it holds what it held (see ``_same``): what every call checks."""
        keys, values = self.now()
        return _all_same(values, self.values) and _all_same(keys, self.keys)

    def changed(self) -> list[str]:
        """The names of what changed: ``calls``, ``cfg['scale']``, ``Remembers.last``..."""
        keys, values = self.now()
        now, then = dict(zip(keys, values)), dict(zip(self.keys, self.values))
        return [self.name(k) for k in {**then, **now}
                if k not in now or k not in then or not _same(now[k], then[k])]

    def name(self, key: Any) -> str:
        """How messages name the value under ``key``."""
        return f"{self.label}[{key!r}]"

    def restore(self) -> None:
        """Give back the values it held (after tracing changed them)."""
        raise NotImplementedError


class Names(Watch):
    """The names that a function's own code reads from outside: its closure variables (those
    assigned already) and the globals among the names it uses."""

    def __init__(self, code_of: Callable) -> None:
        code = code_of.__code__
        self.cells = {name: cell for name, cell in zip(code.co_freevars, code_of.__closure__ or ())
                      if _has_contents(cell)}
        self.globals = code_of.__globals__
        self.global_names = [name for name in code.co_names if name in self.globals]
        self.names = (*self.cells, *self.global_names)
        super().__init__(code_of.__qualname__)

    def now(self) -> tuple[Collection, Collection]:
        values = [cell.cell_contents for cell in self.cells.values()]
        return self.names, values + [self.globals.get(name, _GONE) for name in self.global_names]

    def name(self, key: Any) -> str:
        return key

    def restore(self) -> None:
        for name, value in zip(self.keys, self.values):
            if name in self.cells:
                self.cells[name].cell_contents = value
            else:
                self.globals[name] = value


class Attributes(Watch):
    """The attributes of an object (``vars(obj)``): a module, the object a method belongs to,
    or any object the function reaches."""

    def __init__(self, obj: Any, label: str) -> None:
        self.obj, self.attributes = obj, vars(obj)  # the object's own dict, kept up to date
        super().__init__(label)

    def now(self) -> tuple[Collection, Collection]:
        return self.attributes.keys(), self.attributes.values()

    def name(self, key: Any) -> str:
        return f"{self.label}.{key}"

    def restore(self) -> None:
        for key in [k for k in self.attributes if k not in self.keys]:
            delattr(self.obj, key)
        for key, value in zip(self.keys, self.values):
            if self.attributes.get(key, _GONE) is not value:
                setattr(self.obj, key, value)  # a module's __setattr__ keeps its registries


class Items(Watch):
    """The items of a list or a dict."""

    def __init__(self, container: list | dict, label: str) -> None:
        self.container = container
        super().__init__(label)

    def now(self) -> tuple[Collection, Collection]:
        c = self.container
        return (c.keys(), c.values()) if isinstance(c, dict) else (range(len(c)), c)

    def restore(self) -> None:
        if isinstance(self.container, dict):
            self.container.clear()
            self.container.update(zip(self.keys, self.values))
        else:
            self.container[:] = self.values


class RandomState(Watch):
    """The state of a random generator: NumPy's ``Generator`` or ``RandomState``, or Python's
    ``random.Random`` (the global ones among them). Compared around tracing only, to tell a
    draw: not a guard."""

    def __init__(self, rng: Any, label: str) -> None:
        self.rng = rng
        super().__init__(label)

    def now(self) -> tuple[Collection, Collection]:
        rng = self.rng
        state = (rng.bit_generator.state if isinstance(rng, np.random.Generator) else
                 rng.get_state(legacy=False) if isinstance(rng, np.random.RandomState) else
                 rng.getstate())
        return (), (pickle.dumps(state),)

    def changed(self) -> list[str]:
        return [self.label]

    def restore(self) -> None:
        state, rng = pickle.loads(self.values[0]), self.rng
        if isinstance(rng, np.random.Generator):
            rng.bit_generator.state = state
        elif isinstance(rng, np.random.RandomState):
            rng.set_state(state)
        else:
            rng.setstate(state)


_GONE = object()  # stands for a global that is no more
_BY_VALUE = (int, float, complex, str, bytes, type(None))
_GENERATORS = (np.random.Generator, np.random.RandomState, py_random.Random)
_OPAQUE = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType,
           types.MethodType, functools.partial)
"""What the guards watch by identity only, never looking inside (with compiled functions)."""


def _same(now: Any, then: Any) -> bool:
    """Unchanged: numbers, strings and None by value (and type), anything else by identity."""
    return now is then or (type(now) is type(then) and isinstance(then, _BY_VALUE)
                           and now == then)


def _all_same(now: Collection, then: tuple) -> bool:
    """``_same`` item by item (identity first: it is what a call checks, and almost always
    holds)."""
    return now is then or (len(now) == len(then) and (all(map(is_, now, then))
                                                      or all(map(_same, now, then))))


def _has_contents(cell: Any) -> bool:
    try:
        _ = cell.cell_contents
    except ValueError:  # a variable not assigned yet
        return False
    return True


def _reach(fn: Callable, modules: Iterable[Module]
           ) -> tuple[list[Watch], dict[int, Module], list[Watch]]:
    """What a trace of ``fn`` takes as fixed, as watches: the names ``fn``'s own code reads
    (for a method, also its object's attributes; for a module, its ``forward``'s names), what
    they hold down to ``DEPTH`` levels, and each module among them or in ``modules``, with
    every module below it. Also returns those modules (by id) and the random generators found
    on the way, after NumPy's and Python's global ones, as watches of their state."""
    watches: list[Watch] = []
    found: dict[int, Module] = {}
    generators: list[Watch] = [RandomState(np.random.random.__self__, "np.random"),
                               RandomState(py_random.random.__self__, "random")]
    seen: set[int] = set()

    def visit(value: Any, label: str, depth: int) -> None:
        if id(value) in seen or isinstance(value, (*_OPAQUE, CompiledFunction)):
            return
        seen.add(id(value))
        if isinstance(value, _GENERATORS):
            generators.append(RandomState(value, label))
        elif isinstance(value, Module):
            found[id(value)] = value
            watch: Watch = Attributes(value, type(value).__name__)
            watches.append(watch)
            for key, item in vars(value).items():  # its registries repeat its attributes
                if item is not value._parameters and item is not value._modules:
                    visit(item, watch.name(key), 1)
        elif depth < DEPTH and _size(value) <= MAX_ITEMS:
            if isinstance(value, tuple):  # cannot change: only its items are watched
                for k, item in enumerate(value):
                    visit(item, f"{label}[{k}]", depth + 1)
                return
            watch = (Items(value, label) if isinstance(value, (list, dict))
                     else Attributes(value, label))
            watches.append(watch)
            for key, item in zip(*watch.now()):
                visit(item, watch.name(key), depth + 1)

    owner = getattr(fn, "__self__", None)  # a bound method's object
    code_of = getattr(fn, "__func__", fn)
    if isinstance(fn, Module):
        owner, code_of = fn, type(fn).forward
    elif not hasattr(code_of, "__code__") and callable(fn):
        owner, code_of = fn, type(fn).__call__  # a callable object: its __call__ method
    if hasattr(code_of, "__code__"):
        names = Names(code_of)
        watches.append(names)
        for name, value in zip(names.keys, names.values):
            visit(value, name, 0)
    if owner is not None:
        visit(owner, type(owner).__name__, 0)
    for module in modules:
        visit(module, type(module).__name__, 0)
    return watches, found, generators


def _size(value: Any) -> int:
    """How many items or attributes a guard would watch in ``value`` (more than
    ``MAX_ITEMS`` for what it does not look inside)."""
    if isinstance(value, (list, tuple, dict)):
        return len(value)
    return len(vars(value)) if hasattr(value, "__dict__") else MAX_ITEMS + 1


def _restore(watches: Iterable[Watch]) -> list[str]:
    """Set back each of ``watches`` that changed (while tracing); return what changed."""
    changed = []
    for watch in watches:
        if not watch.unchanged():
            changed += watch.changed()
            watch.restore()
    return changed


def _leaf_key(x: Tensor | np.ndarray) -> tuple:
    if isinstance(x, Tensor):
        return (x.data.shape, x.data.dtype, x.requires_grad)
    return (x.shape, x.dtype, None)


def _signature_text(key: tuple) -> str:
    leaves = ", ".join(type_text((shape, dtype)) + (" requires_grad" if rg else "")
                       for shape, dtype, rg in key[1])
    text = f"({leaves}), grad {'on' if key[2] else 'off'}"
    if key[3]:
        text += ", modules in " + ("training" if all(key[3]) else "eval" if not any(key[3])
                                   else "mixed") + " mode"
    return text


@functools.cache
def keep_freed_memory(megabytes: int = 64) -> bool:
    """Ask the C library's ``malloc`` to keep up to ``megabytes`` of freed memory at the top of
    the heap instead of giving it back to the system (glibc's ``mallopt(M_TOP_PAD)``), once per
    process; ``mg.compile`` calls it.

    A replayed program allocates and frees the same large arrays at every call. Memory given
    back costs a page fault and a page of zeros per 4 KB when the next call takes it again: the
    big step of ``benchmarks/lstm_lm_step.py``, compiled, faulted in about 1,300 pages (5 MB)
    per step, and took 4 ms longer. Returns False, doing nothing, where ``malloc`` is not
    glibc's or ``MALLOC_TOP_PAD_`` already says what to keep.
    """
    if not sys.platform.startswith("linux") or "MALLOC_TOP_PAD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return mallopt(-2, megabytes << 20) == 1  # -2 is M_TOP_PAD in glibc's malloc.h


class CompiledFunction:
    """What ``mg.compile`` returns for a function: call it as the function.

    ``traces`` lists what was compiled for each signature in the cache (print one to see its
    programs), ``print()`` prints them all, ``kernels()`` gives the source of the generated
    kernels, and ``draw()`` draws a program.
    """

    def __init__(self, fn: Callable, name: str, passes: Sequence[str], fallback: bool,
                 cache_size: int, verify: bool) -> None:
        unknown = [p for p in passes if p not in PASSES]
        if unknown:
            raise ValueError(f"mg.compile: unknown passes {unknown}; the passes are {ALL}")
        if "free" in passes and passes[-1] != "free":
            raise ValueError("mg.compile: the free pass must come last: it marks where each "
                             "array is last read, which any later pass would move")
        if cache_size < 1:
            raise ValueError(f"mg.compile: cache_size must be at least 1; got {cache_size}")
        self._fn, self._name, self._passes = fn, name, tuple(passes)
        self._fallback, self._cache_size, self._verify = fallback, cache_size, verify
        keep_freed_memory()
        self._cache: OrderedDict[tuple, Specialization | str] = OrderedDict()
        self._modules: dict[int, Module] = {}
        self._warned: set[str] = set()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if is_tracing():  # called inside another compiled function: becomes part of its trace
            return self._fn(*args, **kwargs)
        leaves, spec = flatten((args, kwargs))
        key = self._key(spec, leaves)
        entry = self._cache.get(key)
        if entry is None or (isinstance(entry, Specialization) and not entry.fits()):
            entry = self._specialize(key, args, kwargs)
        else:
            self._cache.move_to_end(key)
        if isinstance(entry, str):  # the reason it runs eagerly
            return self._fn(*args, **kwargs)
        if self._verify:
            return self._verified(entry, leaves, args, kwargs)
        return entry(leaves)

    def _key(self, spec: Any, leaves: list) -> tuple:
        return (spec, tuple(_leaf_key(x) for x in leaves), is_grad_enabled(),
                tuple(m.training for m in self._modules.values()))

    def _watch(self) -> list[Tensor]:
        return []

    def _specialize(self, key: tuple, args: tuple, kwargs: dict) -> Specialization | str:
        """Trace one call and run the passes; on a TraceError, raise or fall back to eager."""
        self._cache.pop(key, None)
        start = time.perf_counter()
        watches, reached, generators = _reach(self._fn, list(self._modules.values()))
        self._modules.update(reached)  # the training flags of every module reached: in the key
        try:
            traced = trace(self._fn, args, kwargs, self._name, self._watch())
            changed, drawn = _restore(watches), _restore(generators)
            if drawn:
                raise TraceError(f"{self._name} draws random numbers from {', '.join(drawn)} "
                                 f"while tracing. {DRAW_ADVICE}")
            if changed:  # a replay runs no Python, so it would not set them
                raise TraceError(
                    f"{self._name} sets {', '.join(changed)} while tracing, which a replay "
                    "would not do: keep such state outside the compiled function, or pass it "
                    "in and return it")
            if self._reads_array_memory(traced, args, kwargs, [*watches, *generators]):
                raise TraceError(
                    f"{self._name} reads the values of an array argument where mg.compile "
                    "cannot record it: traced again with other values in its arrays, it gave "
                    "another program. Something reads their memory past NumPy's functions: "
                    "indexing a NumPy array with one (table[ids]: index a tensor instead, "
                    "mg.tensor(table)[ids]), a NumPy function that takes it as a plain "
                    "argument (np.take(table, ids)), memoryview, a numba function")
        except TraceError as e:
            _restore([*watches, *generators])  # so that eager starts from the call's state
            if not self._fallback:
                raise
            if str(e) not in self._warned:
                self._warned.add(str(e))
                warnings.warn(f"{e}. Running {self._name} eagerly for this signature.",
                              TraceWarning, stacklevel=3)
            entry: Specialization | str = str(e)
        else:
            watches, reached, _ = _reach(self._fn, [*self._modules.values(), *traced.modules])
            self._modules.update(reached)
            key = key[:3] + (tuple(m.training for m in self._modules.values()),)
            forward, backward = _merged(traced, self._passes)
            backward = backward and run_passes(backward, self._passes)
            forward, backward = _link(forward, backward, traced.grad_slots)
            entry = Specialization(
                _signature_text(key), traced, _link(traced.forward, traced.backward,
                                                    traced.grad_slots),
                run_passes(forward, self._passes), backward, time.perf_counter() - start,
                watches)
        self._cache[key] = entry
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return entry

    def _reads_array_memory(self, traced: Trace, args: tuple, kwargs: dict,
                            watches: list[Watch]) -> bool:
        """Whether the function, given NumPy arrays, reads their memory where tracing cannot
        see it: then tracing it again with other values in those arrays (the program's inputs
        unchanged) fails or gives another trace. What the second run changed is set back."""
        if not any(isinstance(x, np.ndarray) for x in flatten((args, kwargs))[0]):
            return False
        try:
            again = trace(self._fn, args, kwargs, self._name, self._watch(), perturbed=True)
        except Exception:  # failing on other values tells it too
            return True
        finally:
            _restore(watches)
        return not traced.matches(again)

    def _verified(self, entry: Specialization, leaves: list, args: tuple, kwargs: dict) -> Any:
        """Replay ``entry``, then run the function eagerly on the same arguments from the same
        random state, and raise VerifyError where the results differ. What the eager run
        changed in what the guards watch is set back, and the random state is left where the
        replay left it. The compiled node keeps the eager tracked outputs, so that its
        backward compares the gradients too."""
        rng = random.generator()
        before = rng.bit_generator.state
        result = entry(leaves)
        after = rng.bit_generator.state
        rng.bit_generator.state = before
        try:
            expected = self._fn(*args, **kwargs)
        finally:
            rng.bit_generator.state = after
            _restore(entry.watches)
        (got, got_spec), (want, want_spec) = flatten(result), flatten(expected)
        if got_spec != want_spec or len(got) != len(want):
            raise _verify_error(entry, "the nesting or the Python values of its results",
                                f"{got_spec} where eager gives {want_spec}")
        for k, (a, b) in enumerate(zip(got, want)):
            if isinstance(a, Tensor) != isinstance(b, Tensor):
                raise _verify_error(entry, f"result {k}", f"a {type(a).__name__} where eager "
                                                          f"gives a {type(b).__name__}")
            _check_close(a, b, f"result {k}", entry)
        node = next((y.grad_fn for y in got if isinstance(y, Tensor) and y.requires_grad), None)
        if node is not None:
            node.eager = [y for y in want if isinstance(y, Tensor) and y.requires_grad]
        return result

    # -- looking inside -----------------------------------------------------------------------

    @property
    def traces(self) -> list[Specialization]:
        """The signatures compiled so far (oldest first, at most ``cache_size``)."""
        return [e for e in self._cache.values() if isinstance(e, Specialization)]

    @property
    def fallbacks(self) -> list[str]:
        """Why the signatures in the cache that run eagerly could not be traced."""
        return [e for e in self._cache.values() if isinstance(e, str)]

    def print(self) -> None:
        """Print every compiled signature's programs, before and after the passes."""
        for entry in self.traces:
            print(entry, end="\n\n")
        for reason in self.fallbacks:
            print(f"runs eagerly: {reason}", end="\n\n")

    def kernels(self) -> str:
        """The source of every generated kernel, in the order the programs run them."""
        sources = {}
        for entry in self.traces:
            for program in (entry.forward, entry.backward):
                for ins in program.kernels() if program is not None else ():
                    sources[ins.label] = ins.source
        return "\n\n".join(sources.values())

    def draw(self, program: str = "forward", passes: bool = True,
             trace: int = -1) -> graphviz.Digraph:
        """Draw a program of the ``trace``-th signature: ``"forward"`` or ``"backward"``, after
        the passes or (``passes=False``) as traced."""
        entry = self.traces[trace]
        if program not in ("forward", "backward"):
            raise ValueError(f"draw: program must be 'forward' or 'backward'; got {program!r}")
        index = 0 if program == "forward" else 1
        chosen = (entry.forward, entry.backward)[index] if passes else entry.traced[index]
        if chosen is None:
            raise ValueError(f"draw: the signature {entry.signature} has no backward program")
        return chosen.draw()

    def __repr__(self) -> str:
        return f"<compiled {self._name}: {len(self.traces)} trace(s)>"


class CompiledModule(CompiledFunction):
    """What ``mg.compile`` returns for a Module: calling it runs the compiled forward; every
    other attribute (``parameters()``, ``state_dict()``, submodules, ...) is the module's, so
    that it shares the parameters and can stand in for the module. ``train()`` and ``eval()``
    return the compiled module. Other methods run eagerly: compile one of them on its own,
    as in ``mg.compile(model.loss)``."""

    def __init__(self, module: Module, passes: Sequence[str], fallback: bool,
                 cache_size: int, verify: bool) -> None:
        super().__init__(module, type(module).__name__, passes, fallback, cache_size, verify)
        self.module = module
        self._modules.update((id(m), m) for m in module.modules())

    def _watch(self) -> list[Tensor]:
        return list(self.module.parameters())

    def __getattr__(self, name: str) -> Any:
        if name == "module":  # not set yet
            raise AttributeError(name)
        return getattr(self.module, name)

    def train(self, mode: bool = True) -> CompiledModule:
        """Set the module's training mode; returns the compiled module."""
        self.module.train(mode)
        return self

    def eval(self) -> CompiledModule:
        """Evaluation mode (``train(False)``); returns the compiled module."""
        return self.train(False)

    def __repr__(self) -> str:
        return f"compiled {self.module!r}"


def compile(fn_or_module: Callable | Module, *, passes: Sequence[str] = ALL,
            fallback: bool = True, cache_size: int = 8,
            verify: bool | None = None) -> CompiledFunction:
    """Compile a function of tensors, or a Module, for replay (``torch.compile``'s shape).

    Returns a callable with the same signature (for a Module, an object that behaves like the
    module and shares its parameters). ``passes`` names the passes to run, in order (by default
    ``ALL``: ``"decompose"``, ``"dce"``, ``"cse"``, ``"distribute"``, ``"gather"``, ``"fuse"``,
    ``"free"``; ``()`` for none). A function whose tracing raises ``TraceError`` (it reads a
    value, e.g. ``if x.item() > 0``, draws random numbers outside minigrad or sets what it
    reads) runs eagerly for that signature, after one ``TraceWarning`` that says why; with
    ``fallback=False`` the error is raised. ``cache_size`` signatures are kept, the least
    recently used dropped first. ``verify=True`` runs the function eagerly beside every replay
    and raises ``VerifyError`` where its outputs or gradients differ; None (the default) takes
    it from the environment variable ``MINIGRAD_COMPILE_VERIFY`` (``1``: on).
    """
    if verify is None:
        verify = os.environ.get("MINIGRAD_COMPILE_VERIFY") == "1"
    if isinstance(fn_or_module, Module):
        return CompiledModule(fn_or_module, passes, fallback, cache_size, verify)
    if not callable(fn_or_module):
        raise TypeError(
            f"mg.compile: expected a function or a Module; got a {type(fn_or_module).__name__}"
        )
    compiled = CompiledFunction(fn_or_module, getattr(fn_or_module, "__qualname__", None)
                                or type(fn_or_module).__name__, passes, fallback, cache_size,
                                verify)
    if inspect.isfunction(fn_or_module) or inspect.ismethod(fn_or_module):
        functools.update_wrapper(compiled, fn_or_module)  # name, docstring, signature
    return compiled
