"""What keeps a replay honest: guards checked before it, and ``verify=True`` beside it.

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
The same watches tell, after tracing, what the function changed (``_restore``): a replay runs
no Python, so a function that sets what it reads runs eagerly instead.

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

``verify=True`` (or the environment variable ``MINIGRAD_COMPILE_VERIFY=1``) catches what these
make differ: it runs the plain function beside every replay, on the same arguments and from the
same random state (so dropout draws the same masks), sets back what the eager run changed in
what the guards watch, and raises ``VerifyError`` at the first output that differs, and, when a
backward runs through the call, at the first gradient that differs (eager's from the same
upstream gradient). Floats agree within a relative 1e-5 (float32) or 1e-10 (float64) of the
largest magnitude, as the kernels may add in another order; integers, booleans and the Python
values among the results exactly. It costs an eager call and its backward beside each replay:
a debugging aid.
"""

from __future__ import annotations

import functools
import pickle
import random as py_random
import types
from collections.abc import Callable, Collection, Iterable
from operator import is_
from typing import Any

import numpy as np

from minigrad.compile.program import type_text
from minigrad.nn.module import Module
from minigrad.tensor import Tensor

DEPTH = 2
"""How many levels of contents below a name the function reads the guards watch."""
MAX_ITEMS = 64
"""A list or dict with more items, or an object with more attributes, is watched by identity
only (modules excepted: all of their attributes are watched)."""


class VerifyError(AssertionError):
    """``mg.compile(..., verify=True)``: a replay gave an output or a gradient that the eager
    function, run beside it on the same inputs, did not."""


_RTOL = {np.dtype(np.float16): 1e-3, np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-10}
"""The relative tolerance of ``verify`` per dtype; other dtypes must agree exactly."""


def check_close(got: Any, want: Any, what: str, replay: str) -> None:
    """Raise VerifyError unless ``got`` (from the replay) and ``want`` (from eager), tensors or
    arrays, agree: the same shape, dtype and requires_grad, and values within ``_RTOL`` of the
    largest magnitude for floats, equal otherwise."""
    a, b = (np.asarray(x.data if isinstance(x, Tensor) else x) for x in (got, want))
    if (a.shape, a.dtype) != (b.shape, b.dtype) or (
            isinstance(want, Tensor) and got.requires_grad != want.requires_grad):
        raise verify_error(replay, what, f"it is {_describe(got)} where eager gives "
                                        f"{_describe(want)}")
    rtol = _RTOL.get(b.dtype, 0.0)
    try:
        if rtol:
            scale = np.abs(b[np.isfinite(b)]).max(initial=1.0)
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * scale, equal_nan=True)
        else:
            np.testing.assert_array_equal(a, b)
    except AssertionError as e:
        raise verify_error(replay, what, str(e).strip()) from None


def _describe(x: Any) -> str:
    text = type_text((np.shape(x), np.asarray(x.data if isinstance(x, Tensor) else x).dtype))
    return text + (" requiring grad" if getattr(x, "requires_grad", False) else "")


def verify_error(replay: str, what: str, detail: str) -> VerifyError:
    """The error of ``verify=True`` for a difference in ``what`` in ``replay`` ("the replay of
    f for the signature ...")."""
    return VerifyError(
        f"mg.compile(verify=True): {replay} differs from eager in {what}: {detail}\nThe "
        "program was traced earlier; something it took as fixed has changed where no guard "
        "looks (see \"What a replay cannot see\" in minigrad/compile/guards.py), or "
        "mg.compile has a bug. Pass such state as an argument, or call the function "
        "uncompiled."
    )


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


def reach(fn: Callable, modules: Iterable[Module], opaque: tuple[type, ...] = ()
          ) -> tuple[list[Watch], dict[int, Module], list[Watch]]:
    """What a trace of ``fn`` takes as fixed, as watches: the names ``fn``'s own code reads
    (for a method, also its object's attributes; for a module, its ``forward``'s names), what
    they hold down to ``DEPTH`` levels, and each module among them or in ``modules``, with
    every module below it. Also returns those modules (by id) and the random generators found
    on the way, after NumPy's and Python's global ones, as watches of their state. What is
    an instance of ``opaque`` is watched by identity only (compiled functions)."""
    watches: list[Watch] = []
    found: dict[int, Module] = {}
    generators: list[Watch] = [RandomState(np.random.random.__self__, "np.random"),
                               RandomState(py_random.random.__self__, "random")]
    seen: set[int] = set()

    def visit(value: Any, label: str, depth: int) -> None:
        if id(value) in seen or isinstance(value, (*_OPAQUE, *opaque)):
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


def restore(watches: Iterable[Watch]) -> list[str]:
    """Set back each of ``watches`` that changed (while tracing); return what changed."""
    changed = []
    for watch in watches:
        if not watch.unchanged():
            changed += watch.changed()
            watch.restore()
    return changed

