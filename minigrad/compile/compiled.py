"""``mg.compile``: a function or module that traces itself once per signature and then replays.

The first call with a new signature (the shapes and dtypes of the tensor and array arguments,
which of them require grad, the other arguments' values, the grad mode, and the training flags
of the modules involved) traces the function (``trace.py``), runs the passes (``pipeline.py``)
and keeps the result; later calls with that signature replay the programs. A small cache
keeps the last ``cache_size`` signatures. In an eager graph a compiled call is one node,
``CompiledCall``: its forward runs the forward program and keeps what the backward program
reads; its backward runs the backward program.

What the trace took as fixed is guarded (``guards.py``): every call checks it, and a change
traces again.

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

``verify=True`` runs the plain function beside every replay and raises ``VerifyError`` where
they differ (``guards.py``). ``create_graph=True`` through a compiled call raises (its
backward is one replayed program, which records no graph: differentiate the plain function for
higher derivatives), and hooks and ``retain_grad`` work on its arguments and results, not
inside it.
"""

from __future__ import annotations

import functools
import inspect
import os
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from minigrad import random
from minigrad.autograd import Function, grad, is_grad_enabled
from minigrad.compile.fast.malloc import keep_freed_memory
from minigrad.compile.guards import Watch, check_close, reach, restore, verify_error
from minigrad.compile.pipeline import ALL, PASSES, link, optimize
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

    from minigrad.viz.explore import Explorer


class TraceWarning(UserWarning):
    """Warned once when a compiled function falls back to eager for a signature."""


@dataclass
class Specialization:
    """The compiled form of one signature: the programs as traced (``traced``: forward and
    backward before the passes, linked as the pipeline links them, so that forward also
    returns what backward reads) and as run (``forward``, ``backward``), the time that
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
    passes: tuple[str, ...] = ALL

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

    def stages(self) -> list[tuple[str, Program, Program | None]]:
        """The programs as traced and after each step of the pipeline, as ``(stage, forward,
        backward)``: the passes run again on the trace, as they ran when it was compiled."""
        stages: list[tuple[str, Program, Program | None]] = []
        optimize(self.trace, self.passes, watch=lambda *stage: stages.append(stage))
        return stages

    @property
    def replay(self) -> str:
        """What ``verify``'s errors call it: the replay of which function, for which signature."""
        return f"the replay of {self.trace.name} for the signature {self.signature}"

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
        arrays = [*self.take_saved(), *(g.data for g in tracked)]
        results = spec.backward.run(arrays, consume=True)  # each array dies after its last use
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
            check_close(zeros if results[k] is None else results[k],
                        zeros if want is None else want, what, spec.replay)

    def jvp(self, *tangents: Tensor | None) -> None:
        """Forward mode through a compiled call: not supported (its programs carry no
        tangents)."""
        raise NotImplementedError(
            f"mg.func.jvp through a compiled call of {self.specialization.trace.name}: its "
            "programs carry no tangents. Take the jvp of the uncompiled function")

    @property
    def name(self) -> str:
        """The label in drawings and errors: the compiled function's name."""
        return f"Compiled[{self.specialization.trace.name}]"


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
        if list(passes) != [p for p in ALL if p in passes]:
            raise ValueError(f"mg.compile: the passes run in the pipeline's order, {ALL}; got "
                             f"{tuple(passes)}")
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
        watches, reached, generators = reach(self._fn, list(self._modules.values()),
                                             (CompiledFunction,))
        self._modules.update(reached)  # the training flags of every module reached: in the key
        try:
            traced = trace(self._fn, args, kwargs, self._name, self._watch())
            changed, drawn = restore(watches), restore(generators)
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
            restore([*watches, *generators])  # so that eager starts from the call's state
            if not self._fallback:
                raise
            if str(e) not in self._warned:
                self._warned.add(str(e))
                warnings.warn(f"{e}. Running {self._name} eagerly for this signature.",
                              TraceWarning, stacklevel=3)
            entry: Specialization | str = str(e)
        else:
            watches, reached, _ = reach(self._fn, [*self._modules.values(), *traced.modules],
                                         (CompiledFunction,))
            self._modules.update(reached)
            key = key[:3] + (tuple(m.training for m in self._modules.values()),)
            forward, backward = optimize(traced, self._passes)
            traced.values.clear()  # the arrays of the tracing call, which only checks read
            entry = Specialization(
                _signature_text(key), traced, link(traced.forward, traced.backward,
                                                   traced.grad_slots),
                forward, backward, time.perf_counter() - start, watches, self._passes)
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
            restore(watches)
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
            restore(entry.watches)
        (got, got_spec), (want, want_spec) = flatten(result), flatten(expected)
        if got_spec != want_spec or len(got) != len(want):
            raise verify_error(entry.replay, "the nesting or the Python values of its results",
                                f"{got_spec} where eager gives {want_spec}")
        for k, (a, b) in enumerate(zip(got, want)):
            if isinstance(a, Tensor) != isinstance(b, Tensor):
                raise verify_error(entry.replay, f"result {k}",
                                   f"a {type(a).__name__} where eager gives a {type(b).__name__}")
            check_close(a, b, f"result {k}", entry.replay)
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

    def explore(self, trace: int = -1) -> Explorer:
        """A page to step through the ``trace``-th signature's programs as traced and after
        each pass (a slider across the pipeline; a fused kernel opens to its source):
        ``.save("passes.html")``, or the last line of a notebook cell. Needs Graphviz's
        ``dot``, as ``draw`` does."""
        from minigrad.compile.explore import explore_program

        return explore_program(self.traces[trace])

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
    module and shares its parameters). ``passes`` names the passes to run, in the pipeline's
    order (``pipeline.py``; by default ``ALL``: ``"decompose"``, ``"dce"``, ``"cse"``,
    ``"distribute"``, ``"gather"``, ``"fuse"``, ``"numba"``, ``"lower"``, ``"free"``; ``()``
    for none). A function whose tracing raises ``TraceError`` (it reads a
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
