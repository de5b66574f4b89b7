"""``mg.compile``: a function or module that traces itself once per signature and then replays.

The first call with a new signature (the shapes and dtypes of the tensor and array arguments,
which of them require grad, the other arguments' values, the grad mode, and the training flags
of the modules involved) traces the function (``trace.py``), runs the passes (``passes.py``)
and keeps the result; later calls with that signature replay the programs. A small cache
keeps the last ``cache_size`` signatures. In an eager graph a compiled call is one node,
``CompiledCall``: its forward runs the forward program and keeps what the backward program
reads; its backward runs the backward program.

A trace is also kept only while what it took as fixed stays so: the names the function's own
code reads from outside (closure variables, globals), and the parameters and options (such as
a dropout probability) of the modules it called; a change traces again. A Python number among
the arguments is baked in, so another value traces again too.

What a compiled function cannot do: ``create_graph=True`` through it raises (its backward is
one replayed program, which records no graph: differentiate the plain function for higher
derivatives). Hooks and ``retain_grad`` work on its arguments and results, not inside it.
Tensors reached through other objects (a helper's globals, a list) are read by identity, so
give them new values in place, as optimizers and ``load_state_dict`` do.

Side effects in Python happen at the tracing call only, since a replay runs no Python. A
function that sets one of the names it reads (a closure variable, a global, an attribute of
the object it is a method of, or of a module it calls; e.g. ``self.state = new_state``) is
caught: the names are set back and it runs eagerly, after one ``TraceWarning`` that names them.
Changes to the contents of objects (appending to a list) are not seen: they happen at the
tracing call, and twice when the trace falls back to eager.
"""

from __future__ import annotations

import ctypes
import functools
import inspect
import os
import sys
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from minigrad.autograd import Function, is_grad_enabled
from minigrad.compile.passes import ALL, PASSES, decompose, merge_repeats, run_passes
from minigrad.compile.program import Program, type_text
from minigrad.compile.trace import Trace, TraceError, flatten, is_tracing, trace, unflatten
from minigrad.nn.module import Module
from minigrad.tensor import Tensor

if TYPE_CHECKING:
    import graphviz


class TraceWarning(UserWarning):
    """Warned once when a compiled function falls back to eager for a signature."""


@dataclass
class Specialization:
    """The compiled form of one signature: the programs as traced (``traced``: forward and
    backward, before the passes) and as run (``forward``, ``backward``), and the time that
    tracing and the passes took.

    ``forward`` returns the function's output arrays, then the values ``backward`` reads;
    ``backward`` takes those values, then one gradient per tracked output.
    """

    signature: str
    trace: Trace
    traced: tuple[Program, Program | None]
    forward: Program
    backward: Program | None
    seconds: float
    bindings: list[Binding]

    def __post_init__(self) -> None:
        self._leaf_keys = [_leaf_key(x) for x in self.trace.leaves]

    def fits(self) -> bool:
        """Whether what the programs assume still holds: the tensors read from outside have
        the traced shapes, dtypes and requires_grad, and the ``bindings`` are unchanged."""
        for x, key in zip(self.trace.leaves, self._leaf_keys):
            if _leaf_key(x) != key:
                return False
        return all(binding.unchanged() for binding in self.bindings)

    def __call__(self, leaves: list) -> Any:
        """Run on the call's tensors and arrays, as one node; nest the results as traced."""
        inputs = [x if isinstance(x, Tensor) else Tensor._wrap(x) for x in leaves]
        outputs = CompiledCall.apply(*inputs, *self.trace.leaves, specialization=self)
        outputs = [y if tracked else y.detach() for y, tracked in zip(outputs, self.trace.tracked)]
        return unflatten(self.trace.out_spec, outputs)

    def __str__(self) -> str:
        parts = [f"signature {self.signature} (traced in {self.seconds * 1e3:.1f} ms)"]
        for title, program in (("forward, as traced", self.traced[0]),
                               ("forward, after the passes", self.forward),
                               ("backward, as traced", self.traced[1]),
                               ("backward, after the passes", self.backward)):
            if program is not None:
                parts.append(f"-- {title}:\n{program}")
        return "\n".join(parts)


class CompiledCall(Function):
    """One call of a compiled function in an eager graph: forward runs the forward program,
    backward runs the backward program on what forward kept."""

    def __init__(self, specialization: Specialization) -> None:
        self.specialization = specialization

    def forward(self, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        spec = self.specialization
        values = spec.forward.run(arrays)
        n = len(spec.trace.tracked)
        if spec.backward is not None:
            self.save_for_backward(*values[n:])
        return tuple(values[:n])

    def backward(self, *grads: Tensor) -> tuple[Tensor | None, ...]:
        spec = self.specialization
        if is_grad_enabled():
            raise RuntimeError(
                f"mg.compile: create_graph=True through a compiled call of {spec.trace.name} is "
                "not supported: its backward is one replayed program, which records no graph. "
                "Differentiate the uncompiled function for higher derivatives."
            )
        tracked = [g.data for g, t in zip(grads, spec.trace.tracked) if t]
        results = spec.backward.run([*self.saved, *tracked])
        return tuple(None if k is None else Tensor._wrap(results[k])
                     for k in spec.trace.grad_of)

    @property
    def name(self) -> str:
        """The label in drawings and errors: the compiled function's name."""
        return f"Compiled[{self.specialization.trace.name}]"


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


@dataclass
class Binding:
    """A name a trace takes as fixed: how messages call it, how to read it and to set it back,
    and its value when it was read."""

    name: str
    read: Callable[[], Any]
    write: Callable[[Any], None]
    value: Any

    def unchanged(self) -> bool:
        """Whether it still holds its value (see ``_same``)."""
        now = self.read()
        return now is self.value or _same(now, self.value)


def _bindings(fn: Callable, modules: list[Module]) -> list[Binding]:
    """What a trace takes as fixed: the names the function's own code reads from outside
    (closure variables, globals), the attributes of the object it is a method of (or that it
    is, if it is a callable object), and the modules' parameters (by identity) and attributes
    (a dropout probability, a nonlinearity...)."""
    owner = getattr(fn, "__self__", None)  # a bound method's object
    code_of = getattr(fn, "__func__", fn)
    if not isinstance(fn, Module) and not hasattr(code_of, "__code__") and callable(fn):
        owner, code_of = fn, type(fn).__call__  # a callable object: its __call__ method
    found: list[Binding] = []
    code = getattr(code_of, "__code__", None)
    if code is not None and not isinstance(fn, Module):
        for name, cell in zip(code.co_freevars, code_of.__closure__ or ()):
            if _has_contents(cell):
                found.append(Binding(name, lambda c=cell: c.cell_contents,
                                     lambda v, c=cell: setattr(c, "cell_contents", v),
                                     cell.cell_contents))
        g = code_of.__globals__
        found += [Binding(name, lambda n=name: g.get(n), lambda v, n=name: g.__setitem__(n, v),
                          g[name]) for name in code.co_names if name in g]
    if owner is not None and not isinstance(owner, Module):
        found += [_attribute(owner, name) for name in vars(owner)]
    for m in modules:
        found.append(Binding(f"the parameters of {type(m).__name__}",
                             lambda m=m: tuple(m._parameters.values()), lambda v: None,
                             tuple(m._parameters.values())))
        found += [_attribute(m, name) for name, value in vars(m).items()
                  if value is None or isinstance(value, (int, float, str, Tensor))]
    return found


def _within_reach(fn: Callable) -> list[Module]:
    """The modules, with their submodules, that ``fn`` is a method of or reads from outside
    (so that tracing can watch them before it meets them)."""
    values = [getattr(fn, "__self__", None), *(b.value for b in _bindings(fn, []))]
    return [m for v in values if isinstance(v, Module) for m in v.modules()]


def _attribute(owner: Any, name: str) -> Binding:
    return Binding(f"{type(owner).__name__}.{name}", lambda: vars(owner).get(name),
                   lambda v: setattr(owner, name, v), vars(owner)[name])


def _restore(watched: list[Binding]) -> list[str]:
    """Set back each of ``watched`` that changed (while tracing); return their names."""
    changed = [binding for binding in watched if not binding.unchanged()]
    for binding in changed:
        binding.write(binding.value)
    return [binding.name for binding in changed]


def _has_contents(cell: Any) -> bool:
    try:
        _ = cell.cell_contents
    except ValueError:  # a variable not assigned yet
        return False
    return True


def _same(now: Any, then: Any) -> bool:
    """Unchanged: numbers and strings by value, tuples item by item, anything else by
    identity."""
    if isinstance(then, tuple):
        return isinstance(now, tuple) and len(now) == len(then) and all(
            a is b for a, b in zip(now, then))
    if isinstance(then, (int, float, str)):
        return type(now) is type(then) and now == then
    return now is then


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
                 cache_size: int) -> None:
        unknown = [p for p in passes if p not in PASSES]
        if unknown:
            raise ValueError(f"mg.compile: unknown passes {unknown}; the passes are {ALL}")
        if "free" in passes and passes[-1] != "free":
            raise ValueError("mg.compile: the free pass must come last: it marks where each "
                             "array is last read, which any later pass would move")
        if cache_size < 1:
            raise ValueError(f"mg.compile: cache_size must be at least 1; got {cache_size}")
        self._fn, self._name, self._passes = fn, name, tuple(passes)
        self._fallback, self._cache_size = fallback, cache_size
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
        modules = {id(m): m for m in [*self._modules.values(), *_within_reach(self._fn)]}
        watched = _bindings(self._fn, list(modules.values()))
        try:
            traced = trace(self._fn, args, kwargs, self._name, self._watch())
            changed = _restore(watched)
            if changed:  # a replay runs no Python, so it would not set them
                raise TraceError(
                    f"{self._name} sets {', '.join(changed)} while tracing, which a replay "
                    "would not do: keep such state outside the compiled function, or pass it "
                    "in and return it")
        except TraceError as e:
            _restore(watched)  # so that running eagerly starts from the state of the call
            if not self._fallback:
                raise
            if str(e) not in self._warned:
                self._warned.add(str(e))
                warnings.warn(f"{e}. Running {self._name} eagerly for this signature.",
                              TraceWarning, stacklevel=3)
            entry: Specialization | str = str(e)
        else:
            for module in traced.modules:
                for m in module.modules():
                    self._modules.setdefault(id(m), m)
            key = key[:3] + (tuple(m.training for m in self._modules.values()),)
            forward, backward = _merged(traced, self._passes)
            backward = backward and run_passes(backward, self._passes)
            forward, backward = _link(forward, backward, traced.grad_slots)
            entry = Specialization(
                _signature_text(key), traced, _link(traced.forward, traced.backward,
                                                    traced.grad_slots),
                run_passes(forward, self._passes), backward, time.perf_counter() - start,
                _bindings(self._fn, list(self._modules.values())))
        self._cache[key] = entry
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return entry

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
                 cache_size: int) -> None:
        super().__init__(module, type(module).__name__, passes, fallback, cache_size)
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
            fallback: bool = True, cache_size: int = 8) -> CompiledFunction:
    """Compile a function of tensors, or a Module, for replay (``torch.compile``'s shape).

    Returns a callable with the same signature (for a Module, an object that behaves like the
    module and shares its parameters). ``passes`` names the passes to run, in order (by default
    ``ALL``: ``"decompose"``, ``"dce"``, ``"cse"``, ``"distribute"``, ``"gather"``, ``"fuse"``,
    ``"free"``; ``()`` for none). A function whose tracing raises ``TraceError`` (it reads a
    value, e.g. ``if x.item() > 0``) runs eagerly for that signature, after one
    ``TraceWarning`` that names the line; with ``fallback=False`` the error is raised.
    ``cache_size`` signatures are kept, the least recently used dropped first.
    """
    if isinstance(fn_or_module, Module):
        return CompiledModule(fn_or_module, passes, fallback, cache_size)
    if not callable(fn_or_module):
        raise TypeError(
            f"mg.compile: expected a function or a Module; got a {type(fn_or_module).__name__}"
        )
    compiled = CompiledFunction(fn_or_module, getattr(fn_or_module, "__qualname__", None)
                                or type(fn_or_module).__name__, passes, fallback, cache_size)
    if inspect.isfunction(fn_or_module) or inspect.ismethod(fn_or_module):
        functools.update_wrapper(compiled, fn_or_module)  # name, docstring, signature
    return compiled
