"""Function (the op base class), grad mode, name scopes and the reverse-mode engine."""

from __future__ import annotations

import os
import traceback
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np

from minigrad.tensor import Tensor


class _State:
    """Process-wide switches read on every op: grad mode, anomaly mode, current name scope,
    what watches backward (``trace_backward``) and whether the running backward keeps the
    graph (``retain_graph``)."""

    __slots__ = ("grad_enabled", "anomaly", "scope", "observer", "version", "moved", "levels",
                 "retaining")

    def __init__(self) -> None:
        self.version = 0  # the clock that in-place writes stamp tensors with (ops/inplace.py)
        self.moved: dict[int, tuple] = {}  # id of a tensor written in place -> its old place
        self.levels: list = []  # forward mode's open levels, each holding tangents (func/)
        self.grad_enabled = True
        self.anomaly = False
        self.scope = ""
        self.observer = None  # called as observer(fn, grad_outputs, grad_inputs) by backward
        self.retaining = True  # False inside a backward that frees the graph as it goes


_state = _State()
_wrap = Tensor._wrap
_ref = weakref.ref
_NONE = type(None)
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class AnomalyError(RuntimeError):
    """Raised under ``detect_anomaly()`` when an op's forward or backward yields NaN or inf."""


class GraphFreedError(RuntimeError):
    """Raised when backward runs a second time through a graph whose saved arrays were freed."""


# ----------------------------------------------------------------------------------------------
# grad mode, anomaly mode, name scopes


@contextmanager
def _switched(switch: str, value) -> Iterator[None]:
    """Set one of the process-wide switches in ``_state`` for the block, restoring it after."""
    previous = getattr(_state, switch)
    setattr(_state, switch, value)
    try:
        yield
    finally:
        setattr(_state, switch, previous)


def no_grad():
    """Context manager (or decorator) under which ops record no graph."""
    return _switched("grad_enabled", False)


def enable_grad():
    """Context manager (or decorator) that turns graph recording back on inside ``no_grad``."""
    return _switched("grad_enabled", True)


def set_grad_enabled(enabled: bool):
    """Context manager that sets grad mode to ``enabled``."""
    return _switched("grad_enabled", enabled)


def is_grad_enabled() -> bool:
    """Whether ops currently record the graph."""
    return _state.grad_enabled


def detect_anomaly():
    """Record where each op is created and raise as soon as a forward or backward yields NaN/inf."""
    return _switched("anomaly", True)


def observe_backward(observer):
    """Call ``observer(fn, grad_outputs, grad_inputs)`` for every node backward visits inside
    the block (what ``mg.trace_backward`` is built on)."""
    return _switched("observer", observer)


class name_scope:
    """Tag every op created inside with ``name`` (nested scopes join with dots), for drawing.

    A class rather than a generator: recurrent layers enter one scope per time step.
    """

    __slots__ = ("name", "previous")

    def __init__(self, name: str) -> None:
        self.name = name

    def __enter__(self) -> None:
        self.previous = _state.scope
        _state.scope = f"{self.previous}.{self.name}" if self.previous else self.name

    def __exit__(self, *exc_info) -> None:
        _state.scope = self.previous


# ----------------------------------------------------------------------------------------------
# Function


class Function:
    """Base class of every op.

    Subclasses define ``forward(*arrays)`` on NumPy arrays and ``backward(*grad_outputs)`` with
    Tensor ops, and are called as ``MyOp.apply(*tensors, **options)``. Keyword options go to
    ``__init__``. ``forward`` may keep arrays for backward with ``save_for_backward``; the engine
    frees them after backward unless ``retain_graph=True``. The node holds its inputs strongly
    and its outputs weakly (``self.output(i)``), so a graph never forms a reference cycle.

    A backward skips the gradient of an input that needs none by asking the input itself,
    ``a.requires_grad`` (``needs_input_grad`` gives all of them, PyTorch's name).

    ``saved_inputs`` says which inputs backward reads (all by default; ``slice(0)`` for none),
    so that backward can raise if one was written in place since (see ``ops/inplace.py``);
    outputs read with ``self.output()`` are checked there. ``view = True`` marks an op whose
    output views its first input's array (reshape, slicing...): they share a version.
    """

    inputs: tuple[Tensor, ...] = ()
    saved_inputs = slice(None)
    view = False
    version = 0  # the in-place clock when the node was recorded
    saved: tuple | None = ()  # None once backward has freed it
    hooked = False
    scope = ""
    trace: list | None = None

    @classmethod
    def apply(cls, *inputs: Tensor, **options) -> Tensor | tuple[Tensor, ...]:
        """Run the op on tensors and, in grad mode, record it in the graph."""
        record = False
        arrays = []
        for x in inputs:
            if not isinstance(x, Tensor):
                raise TypeError(
                    f"{cls.__name__}.apply takes Tensors; got a {type(x).__name__} "
                    "(wrap it with mg.tensor)"
                )
            arrays.append(x.data)
            if x.requires_grad:
                record = True
        fn = cls(**options) if options else cls()
        raw = fn.forward(*arrays)
        outputs = tuple(map(_wrap, raw)) if type(raw) is tuple else _wrap(raw)
        if cls.view:
            _share_version(inputs[0], outputs)
        if record and _state.grad_enabled:
            fn.inputs = inputs
            fn.version = _state.version
            fn.scope = _state.scope
            if type(outputs) is tuple:
                fn._record_outputs(outputs)
            else:  # the common case, kept short: one output, whose index is 0
                fn.outputs = (_ref(outputs),)
                outputs.requires_grad = True
                outputs.grad_fn = fn
        if _state.anomaly:
            fn.trace = traceback.extract_stack()[:-1]
            for i, y in enumerate(outputs if type(outputs) is tuple else (outputs,)):
                _check_finite(fn, y.data, f"forward output {i}")
        if _state.levels:  # forward mode: tangents flow through the op's jvp rule
            _push_tangents(fn, inputs, outputs if type(outputs) is tuple else (outputs,))
        return outputs

    def _record_outputs(self, outputs: tuple[Tensor, ...]) -> None:
        self.outputs = tuple([_ref(y) for y in outputs])
        self.output_meta = [(y.data.shape, y.data.dtype) for y in outputs]  # to zero-fill grads
        for i, y in enumerate(outputs):
            y.requires_grad = True
            y.grad_fn = self
            y.output_nr = i

    @property
    def needs_input_grad(self) -> tuple[bool, ...]:
        """For each input, whether backward must compute its gradient."""
        return tuple([x.requires_grad for x in self.inputs])

    def forward(self, *arrays: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        """Compute the op's output(s) from input arrays."""
        raise NotImplementedError(f"{type(self).__name__} must define forward")

    def backward(self, *grad_outputs: Tensor) -> Tensor | tuple[Tensor | None, ...]:
        """Map output gradients to input gradients, written with Tensor ops."""
        raise NotImplementedError(f"{type(self).__name__} does not define backward")

    def jvp(self, *tangents: Tensor | None) -> Tensor | tuple[Tensor | None, ...] | None:
        """Forward mode: the tangent of each output from the tangents of the inputs (None where
        an input has none, which counts as zero), written with Tensor ops like ``backward``,
        so that it composes with reverse mode. Reads ``self.inputs`` and ``self.output()``."""
        raise NotImplementedError(
            f"{type(self).__name__} defines no jvp rule, which forward mode (mg.func.jvp, "
            "jacfwd, hessian) needs: add a jvp(self, *tangents) method giving the output's "
            "tangent from the inputs' tangents, or differentiate it in reverse mode (jacrev)"
        )

    def save_for_backward(self, *values) -> None:
        """Keep what backward needs beyond the inputs (arrays, or the axes and sizes forward
        worked out), as ``self.saved``; freed after backward."""
        self.saved = values

    def take_saved(self) -> tuple:
        """``self.saved``, handed over: inside a backward that frees the graph (no
        ``retain_graph``) the node lets go of it now rather than after ``backward`` returns,
        so that a backward that reads the arrays one after another can drop each after its
        last use (a compiled call's backward program does)."""
        saved = self.saved
        if not _state.retaining:
            self.saved = None
        return saved

    def output(self, i: int = 0) -> Tensor:
        """The i-th output tensor (held weakly; alive whenever backward can reach this node).
        Raises if it was written in place since the node was recorded."""
        y = self.outputs[i]()
        if version(y) > self.version:
            raise modified_error(self, f"output {i}", y)
        return y

    @property
    def name(self) -> str:
        """The op's label, as drawn in graphs and named in errors."""
        return type(self).__name__

    def where(self) -> str:
        """Where this op was created (recorded under ``detect_anomaly``), as text."""
        if self.trace is None:
            return "unknown (run under mg.detect_anomaly() to record it)"
        frames = [f for f in self.trace if not f.filename.startswith(_PACKAGE_DIR)] or self.trace
        return "".join(traceback.format_list(frames[-3:])).rstrip()

    @property
    def freed(self) -> bool:
        """True once a backward without ``retain_graph`` has freed what forward saved."""
        return self.saved is None

    def __repr__(self) -> str:
        return f"<{self.name} at scope {self.scope!r}>" if self.scope else f"<{self.name}>"


def _share_version(x: Tensor, outputs: Tensor | tuple[Tensor, ...]) -> None:
    """Mark ``outputs`` as views of ``x``'s array: an in-place write to any of them is a write
    to all (one version, kept by the tensor that owns the array)."""
    base = x if x._base is None else x._base
    owner = x.data if x.data.base is None else x.data.base  # NumPy's views name the owner
    for y in outputs if type(outputs) is tuple else (outputs,):
        if y.data.base is owner:  # not a copy (NumPy copies for some indexes and reshapes)
            y._base = base


def version(x: Tensor) -> int:
    """The clock tick of the last in-place write to ``x``'s array (0 if never written)."""
    return (x if x._base is None else x._base)._version


def check_saved(fn: Function) -> None:
    """Raise if an input that ``fn``'s backward reads was written in place after ``fn`` was
    recorded (``fn.saved_inputs`` says which inputs it reads; outputs are checked as read)."""
    for k, x in enumerate(fn.inputs[fn.saved_inputs]):
        if version(x) > fn.version:
            raise modified_error(fn, f"input {k + (fn.saved_inputs.start or 0)}", x)


class DualLevel:
    """One forward-mode level: the tangent of each tensor it has seen (the inputs' tangents,
    given; every op's outputs', from its ``jvp`` rule)."""

    def __init__(self) -> None:
        self.tangents: dict[int, tuple[Tensor, Tensor]] = {}  # id -> (tensor, tangent)

    def set(self, x: Tensor, tangent: Tensor) -> None:
        """Give ``x`` its tangent (the level keeps ``x`` alive, so that ids stay unique)."""
        self.tangents[id(x)] = (x, tangent)

    def tangent(self, x: Tensor) -> Tensor | None:
        """``x``'s tangent in this level, None if it has none (a zero tangent)."""
        entry = self.tangents.get(id(x))
        return entry[1] if entry is not None and entry[0] is x else None


@contextmanager
def dual_level(level: DualLevel) -> Iterator[None]:
    """Open ``level`` for forward mode inside the block: ops push their tangents into it."""
    outer = _state.levels
    _state.levels = [*outer, level]
    try:
        yield
    finally:
        _state.levels = outer


def tangent_sum(*terms: Tensor | None) -> Tensor | None:
    """The sum of the tangent terms that are not None (a term is None where an input has no
    tangent, a zero one: ``None if ta is None else ta * b``); None if all are."""
    total = None
    for t in terms:
        if t is not None:
            total = t if total is None else total + t
    return total


def _push_tangents(fn: Function, inputs: tuple[Tensor, ...], outputs: tuple[Tensor, ...]) -> None:
    """Forward mode, for each open level whose tangents reach an input of ``fn``: the outputs'
    tangents from ``fn.jvp``. The rule's own ops carry the other levels' tangents, not their
    own level's (a tangent has no tangent in its own level), so nested levels give second
    derivatives. A tangent is broadcast to its output's shape and cast to its dtype."""
    levels = _state.levels
    for k, level in enumerate(levels):
        known, tangents, found = level.tangents, [], False  # id -> (tensor, its tangent)
        for x in inputs:
            entry = known.get(id(x))
            if entry is not None and entry[0] is x:
                tangents.append(entry[1])
                found = True
            else:
                tangents.append(None)
        if not found:
            continue
        if fn.inputs is not inputs:  # not recorded (no grad needed): the rule reads them too
            fn.inputs, fn.outputs = inputs, tuple(map(_ref, outputs))
            fn.version = _state.version
        _state.levels = levels[:k] + levels[k + 1:] if len(levels) > 1 else _NO_LEVELS
        try:
            result = fn.jvp(*tangents)
        finally:
            _state.levels = levels
        if type(result) is not tuple:
            result = (result,)
        if len(result) != len(outputs):
            raise ValueError(f"{fn.name}.jvp returned {len(result)} tangents for "
                             f"{len(outputs)} outputs")
        for y, t in zip(outputs, result):
            if t is None:
                continue
            ty, yy = t.data, y.data
            if ty.shape != yy.shape:
                if not _broadcasts_to(ty.shape, yy.shape):
                    raise ValueError(f"{fn.name}.jvp returned a tangent of shape {t.shape} for "
                                     f"an output of shape {y.shape}")
                t = t.expand(y.shape)
            if ty.dtype is not yy.dtype and ty.dtype != yy.dtype:
                t = t.astype(yy.dtype)
            known[id(y)] = (y, t)


_NO_LEVELS = ()  # the levels a rule runs in when its own was the only one open


def _broadcasts_to(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    try:
        return np.broadcast_shapes(shape, target) == target
    except ValueError:
        return False


def take_tangents(x: Tensor, result: Tensor) -> None:
    """Forward mode, for an in-place write of ``result`` into ``x`` (or a copy of ``result``
    made outside ops): in every open level, ``x`` now has ``result``'s tangent (or none)."""
    for level in _state.levels:
        t = level.tangent(result)
        if t is None:
            level.tangents.pop(id(x), None)
        else:
            level.set(x, t)


def placed(x: Tensor, version: int) -> Tensor:
    """``x`` as it stood in the graph at the clock tick ``version``: a recorded in-place write
    gives ``x`` a new place in the graph (``ops/inplace.py``) and keeps its old one in a tensor
    of its own, which a node recorded before the write reads instead of ``x``."""
    while True:
        move = _state.moved.get(id(x))
        if move is None or move[0]() is not x or move[1] <= version:
            return x
        before = move[2]()
        if before is None:
            raise RuntimeError(
                f"a tensor of shape {x.shape} was written in place after an op read it, and its "
                "earlier place in the graph is gone: use an out-of-place op")
        x = before


def moved(x: Tensor, before: Tensor) -> None:
    """Note that ``x`` took a new place in the graph at the current clock tick, and that
    ``before`` now stands where it stood (for ``placed``)."""
    key = id(x)
    _state.moved[key] = (weakref.ref(x, lambda _: _state.moved.pop(key, None)), _state.version,
                         _ref(before))


def modified_error(fn: Function, what: str, x: Tensor) -> RuntimeError:
    """The error for a tensor that ``fn`` saved for backward and an in-place op then changed."""
    label = f" ({x.name})" if x.name else ""
    return RuntimeError(
        f"one of the tensors needed for gradient computation has been modified by an in-place "
        f"operation: {what}{label} of {fn.name}, of shape {x.shape} and dtype {x.dtype}, was "
        f"written in place after {fn.name} saved it for backward. Use an out-of-place op "
        "(x = x * 2 instead of x *= 2), or clone() the tensor before changing it."
    )


def _check_finite(fn: Function, array: np.ndarray, what: str) -> None:
    if array.dtype.kind in "fc" and not np.isfinite(array).all():
        kind = "nan" if np.isnan(array).any() else "inf"
        raise AnomalyError(
            f"{fn.name} produced {kind} in its {what} (shape {array.shape}). "
            f"The op was created at:\n{fn.where()}"
        )


# ----------------------------------------------------------------------------------------------
# the engine


def forward_order(roots: Sequence[Tensor]) -> list[Function]:
    """Every op the roots depend on, each after the ops that made its inputs, found without
    recursion; deterministic (inputs are visited left to right). Backward walks it reversed."""
    order: list[Function] = []
    seen: set[Function] = set()
    stack = [(r.grad_fn, False) for r in reversed(roots) if r.grad_fn is not None]
    while stack:
        fn, expanded = stack.pop()
        if expanded:
            order.append(fn)
            continue
        if fn in seen:
            continue
        seen.add(fn)
        stack.append((fn, True))
        for x in reversed(fn.inputs):
            if x.grad_fn is not None and x.grad_fn not in seen:
                stack.append((x.grad_fn, False))
    return order


def _to_input(fn: Function, x: Tensor, g: Tensor) -> Tensor:
    """The gradient ``g`` that ``fn.backward`` returned for input ``x``, reduced to ``x``'s shape
    (summed over the axes that broadcasting added or stretched) and cast to its dtype."""
    if not isinstance(g, Tensor):
        raise TypeError(
            f"{fn.name}.backward must return Tensors (or None); got {type(g).__name__}. "
            "Write backward with Tensor ops so that create_graph=True works."
        )
    if g.shape != x.shape:
        try:
            g = g.sum_to_size(x.shape)
        except ValueError:
            raise ValueError(
                f"{fn.name}.backward returned a gradient of shape {g.shape} for an input of "
                f"shape {x.shape}; expected that shape or one that broadcasts to it"
            ) from None
    if g.dtype != x.dtype:
        g = g.astype(x.dtype)
    return g


class GradientSums:
    """What one backward pass has delivered to each tensor so far, summed at fan-out.

    A non-leaf's gradient waits in its node's slots (one per output) until the engine reaches
    that node; a leaf's waits here until the pass ends. A sum is an op when the backward pass
    is recorded (``create_graph``), else a plain NumPy addition.
    """

    __slots__ = ("nodes", "leaves", "create_graph", "wanted")

    def __init__(self, create_graph: bool, wanted: set[int] | None) -> None:
        self.nodes: dict[Function, list] = {}  # node -> the summed gradient of each output
        self.leaves: dict[int, list] = {}  # id -> [leaf, its summed gradient]
        self.create_graph = create_graph
        self.wanted = wanted  # ids of the leaves to keep (mg.grad); None keeps every leaf

    def add(self, x: Tensor, g: Tensor) -> None:
        """Deliver the gradient ``g`` to ``x``, adding it to what ``x`` has received so far."""
        fn = x.grad_fn
        if fn is not None:
            slots = self.nodes.get(fn)
            if slots is None:
                slots = self.nodes[fn] = [None] * len(fn.outputs)
            prev = slots[x.output_nr]
            slots[x.output_nr] = g if prev is None else self._sum(prev, g)
        elif self.wanted is None or id(x) in self.wanted:
            entry = self.leaves.get(id(x))
            if entry is None:
                self.leaves[id(x)] = [x, g]
            else:
                entry[1] = self._sum(entry[1], g)

    def _sum(self, prev: Tensor, g: Tensor) -> Tensor:
        return prev + g if self.create_graph else _wrap(prev.data + g.data)


def run_backward(
    roots: Sequence[Tensor],
    root_grads: Sequence[Tensor],
    retain_graph: bool,
    create_graph: bool,
    inputs: Sequence[Tensor] | None = None,
) -> dict[int, Tensor]:
    """Propagate ``root_grads`` from ``roots`` through the graph: ``minigrad/reference.py``'s
    loop, with hooks, freeing, anomaly checks and ``mg.grad``'s capture around it.

    With ``inputs=None`` gradients accumulate into the ``.grad`` of every leaf; otherwise they
    are returned (keyed by ``id``) for exactly those tensors and no ``.grad`` is touched.
    """
    wanted = None if inputs is None else {id(x) for x in inputs}
    makers = frozenset() if inputs is None else {x.grad_fn for x in inputs} - {None}
    captured: dict[int, Tensor] = {}
    sums = GradientSums(create_graph, wanted)
    anomaly, observer = _state.anomaly, _state.observer
    order = forward_order(roots)
    # The ops that backward is made of are not checked one by one under anomaly mode: each
    # node's returned gradients are, so a NaN is blamed on the op whose backward made it.
    add, waiting = sums.add, sums.nodes  # bound once: this is the engine's hot loop
    with (_switched("grad_enabled", create_graph), _switched("anomaly", False),
          _switched("retaining", retain_graph)):
        for root, g in zip(roots, root_grads):
            add(root, g)
        for fn in reversed(order):
            grads = waiting.pop(fn, None)
            if grads is None:
                continue  # no gradient flows into this node
            in_grads = _call_backward(fn, grads, retain_graph, anomaly, observer, wanted,
                                      fn in makers, captured)
            for x, g in zip(fn.inputs, in_grads):
                if g is None or not x.requires_grad:
                    continue
                if type(g) is not Tensor or g.data.shape != x.data.shape \
                        or g.data.dtype is not x.data.dtype:  # _to_input compares dtypes fully
                    g = _to_input(fn, x, g)
                producer = x.grad_fn
                if producer is not None and producer not in waiting:  # the first to reach it:
                    slots = waiting[producer] = [None] * len(producer.outputs)  # nothing to sum
                    slots[x.output_nr] = g
                else:
                    add(x, g)
        for x, g in sums.leaves.values():  # a leaf's hooks see its total gradient, once
            if x.hooks:
                g = _hook(x, g)
            if wanted is None:
                x.grad = g if x.grad is None else x.grad + g
            else:
                captured[id(x)] = g
    return captured


def _call_backward(fn: Function, grads: list, retain_graph: bool, anomaly: bool, observer,
                   wanted: set[int] | None, makes_wanted: bool, captured: dict[int, Tensor]
                   ) -> tuple:
    """Run ``fn.backward`` on its outputs' summed gradients: first the outputs' hooks, retained
    and captured gradients (``makes_wanted``: an output is one ``mg.grad`` returns), then
    backward itself, then the checks, the observer and freeing."""
    # all rare; (`None in grads` would call each gradient's elementwise ==)
    if fn.saved is None or fn.hooked or makes_wanted or _NONE in map(type, grads):
        grads = _before_backward(fn, grads, wanted, captured)
    if fn.version < _state.version:  # an in-place op ran since fn was recorded
        check_saved(fn)
        if _state.moved:
            fn.inputs = tuple([placed(x, fn.version) for x in fn.inputs])
    in_grads = fn.backward(*grads)
    if type(in_grads) is not tuple:
        in_grads = (in_grads,)
    if len(in_grads) != len(fn.inputs):
        raise ValueError(
            f"{fn.name}.backward returned {len(in_grads)} gradients for {len(fn.inputs)} inputs"
        )
    if observer is not None:  # mg.trace_backward
        observer(fn, grads, in_grads)
    if anomaly:
        for g in in_grads:
            if g is not None:
                _check_finite(fn, g.data, "backward (gradient for one of its inputs)")
    if not retain_graph:
        fn.saved = None  # free what forward kept; a second backward here raises
    return in_grads


def _hook(t: Tensor, g: Tensor) -> Tensor:
    for h in tuple(t.hooks.values()):
        out = h(g)
        if out is not None:
            g = out
    return g


def _before_backward(fn: Function, grads: list, wanted, captured: dict) -> list:
    """The gradients ``fn.backward`` gets, after checking the node was not freed: non-leaf
    outputs get their hooks, retained ``.grad`` and captured gradients, and an output no
    gradient reached counts as zero."""
    if fn.saved is None:
        raise GraphFreedError(
            f"Trying to backward through {fn.name} a second time, but its saved arrays "
            "were freed by the first backward. Specify retain_graph=True on the first "
            "backward (or mg.grad) if you need to backward through the graph twice. If the "
            "graph comes from a recurrent state carried over from the previous batch "
            "(truncated BPTT), detach the state between batches instead: "
            "state = detach_state(state), from minigrad.models.lm."
        )
    for i, ref in enumerate(fn.outputs):
        y = ref()
        g = grads[i]
        if y is None or g is None:
            continue
        if y.hooks:
            g = grads[i] = _hook(y, g)
        if y.retains_grad and wanted is None:
            y.grad = g if y.grad is None else y.grad + g
        if wanted is not None and id(y) in wanted:
            captured[id(y)] = g
    return [_wrap(np.zeros(*fn.output_meta[i])) if g is None else g for i, g in enumerate(grads)]


def _root_grads(outputs: Sequence[Tensor], grad_outputs) -> list[Tensor]:
    grads = []
    for k, y in enumerate(outputs):
        if not y.requires_grad:
            raise RuntimeError(
                f"element {k} of the outputs (shape {y.shape}) does not require grad and has no "
                "grad_fn: nothing to differentiate"
            )
        g = None if grad_outputs is None else grad_outputs[k]
        if g is None:
            if y.data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs; output {k} has "
                    f"shape {y.shape}. Pass gradient= (or grad_outputs=) of that shape."
                )
            g = np.ones(y.shape, y.dtype)
        g = g if isinstance(g, Tensor) else Tensor._wrap(np.asarray(g, dtype=y.dtype))
        if g.shape != y.shape:
            raise ValueError(
                f"gradient has shape {g.shape} but the output it belongs to has shape {y.shape}"
            )
        grads.append(g)
    return grads


def backward(
    tensor: Tensor, gradient=None, retain_graph: bool = False, create_graph: bool = False
) -> None:
    """Accumulate d tensor / d leaf into every leaf's ``.grad`` (see ``Tensor.backward``)."""
    grads = _root_grads([tensor], None if gradient is None else [gradient])
    run_backward([tensor], grads, retain_graph or create_graph, create_graph)


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs=None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """Return d outputs / d inputs (weighted by ``grad_outputs``) without touching any ``.grad``.

    Like ``torch.autograd.grad``: ``retain_graph`` defaults to ``create_graph``; an input that
    the outputs do not depend on raises unless ``allow_unused=True`` (then its entry is None).
    """
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if isinstance(grad_outputs, (Tensor, np.ndarray)):
        grad_outputs = [grad_outputs]
    for k, x in enumerate(inputs):
        if not x.requires_grad:
            raise RuntimeError(f"input {k} (shape {x.shape}) does not require grad")
    retain = create_graph if retain_graph is None else retain_graph
    captured = run_backward(
        outputs, _root_grads(outputs, grad_outputs), retain, create_graph, inputs
    )
    result = tuple(captured.get(id(x)) for x in inputs)
    for k, g in enumerate(result):
        if g is None and not allow_unused:
            raise RuntimeError(
                f"input {k} (shape {inputs[k].shape}) was not used to compute the outputs; "
                "pass allow_unused=True to get None for it"
            )
    return result


class RemovableHandle:
    """Returned by ``register_hook``; ``remove()`` takes the hook away again."""

    _next_id = 0

    def __init__(self, hooks: dict) -> None:
        self.hooks = hooks
        self.id = RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self) -> None:
        """Remove the hook (a no-op if it is already gone)."""
        self.hooks.pop(self.id, None)

