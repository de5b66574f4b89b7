"""vmap: a function of one example, run on a whole batch at once.

Built as a transformation of a traced program, not with batched tensors. ``vmap(f)(xs)``

1. **traces** ``f`` on the first example: every op it applies is recorded, with its options
   as they are for one example, over numbered values (as ``mg.compile``'s reference tracer
   does, ``compile/reference.py``);
2. **replays** the recorded ops on the batch: an op that reads no batched value runs as it
   is, one that does runs by its batching rule (``batching.py``), which says how the op runs
   with a batch axis added.

Why a trace: inside ``f``, every tensor is one example, with the example's shape; so is every
op, including the ones that ``grad`` records for backward. Backward reduces a broadcast
gradient to an input's shape (``sum_to``), and that shape is the example's: the replay of
``vmap(grad(loss))`` keeps the batch axis where eager backward over a batch would sum it away.
That is what per-example gradients need, and it leaves the engine and the tensors as they are.
The replay is made of ops, so a transform outside ``vmap`` (``grad``, ``jvp``, another
``vmap``) differentiates or batches it in turn.

What a trace cannot see, it refuses: reading a batched value in Python (``.item()``, an
``if`` on a tensor), an in-place op, and random numbers unless ``randomness="different"``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from minigrad import autograd, random
from minigrad.autograd import Function
from minigrad.compile.pipeline import PASSES
from minigrad.compile.program import Instr, Meta, Program
from minigrad.compile.trace import _GUARDED, is_tracing
from minigrad.func import batching
from minigrad.func.batching import VmapError, expand, move_from_front, move_to_front
from minigrad.func.trees import tree_flatten, tree_unflatten
from minigrad.ops import inplace
from minigrad.ops.shape import Concat
from minigrad.tensor import Tensor

_TENSOR_MODULE = sys.modules[Tensor.__module__]  # (``minigrad.tensor`` is also a function)
_ENGINE_APPLY = Function.__dict__["apply"]  # the engine's own: a trace records through it
_GENERATOR = random.generator  # the real ones: the trace puts its own in their place
_PUSH_TANGENTS = autograd._push_tangents
RANDOMNESS = ("error", "different")


class _Recorder:
    """Numbers the tensors of one trace and records the ops applied to them."""

    def __init__(self, randomness: str) -> None:
        self.instrs: list[Instr] = []
        self.meta: dict[int, Meta] = {}
        self.outside: dict[int, Tensor] = {}  # number -> a tensor read from outside
        self.batched: set[int] = set()
        self.numbers: dict[int, int] = {}  # id of a tensor -> its number
        self.arrays: dict[int, int] = {}  # id of an array -> the number of its tensor
        self.alive: list[Any] = []  # what the ids above name, kept so that they stay unique
        self.randomness = randomness
        self.in_op = False  # inside an op's forward, where random draws are replayed
        self.drew = False  # whether that op drew random numbers
        self.pending: tuple | None = None  # an op that ran and is not recorded yet

    def new(self, x: Tensor, batched: bool) -> int:
        n = len(self.meta)
        self.numbers[id(x)], self.arrays[id(x.data)] = n, n
        self.alive += [x, x.data]
        self.meta[n] = (x.shape, x.dtype)
        if batched:
            self.batched.add(n)
        return n

    def known(self, x: Tensor) -> int | None:
        """``x``'s number: its own, or that of the tensor whose array it wraps (None if the
        trace has not seen it)."""
        n = self.numbers.get(id(x))
        return self.arrays.get(id(x.data)) if n is None else n

    def number(self, x: Tensor) -> int:
        """``x``'s number, or a new one for a tensor read from outside."""
        n = self.known(x)
        if n is None:
            n = self.new(x, batched=False)
            self.outside[n] = x
        return n

    def is_batched(self, x: Tensor) -> bool:
        return self.known(x) in self.batched

    def apply(self, op: type, inputs: tuple, options: dict) -> Any:
        """``Function.apply`` while tracing: run the op and record it."""
        numbers = tuple(self.number(x) for x in inputs if isinstance(x, Tensor))
        self.pending, self.in_op, self.drew = (op, options, numbers), True, False
        try:
            ys = _ENGINE_APPLY.__func__(op, *inputs, **options)
        finally:
            self.in_op = False
        if self.pending is not None:  # not recorded yet: no tangents were pushed
            self.record(ys if type(ys) is tuple else (ys,), type(ys) is tuple)
        return ys

    def push_tangents(self, fn: Function, inputs: tuple, outputs: tuple) -> None:
        """The engine's ``_push_tangents`` while tracing: the op is recorded first, so that
        the ops of its jvp rule, which read its outputs, come after it."""
        self.in_op = False
        self.record(outputs, len(outputs) > 1)
        _PUSH_TANGENTS(fn, inputs, outputs)

    def record(self, ys: tuple, unpack: bool) -> None:
        """Record the pending op, which made ``ys``."""
        (op, options, numbers), self.pending, drew = self.pending, None, self.drew
        if drew and self.randomness == "error":
            raise VmapError(f"vmap: {op.__name__} draws random numbers, and "
                            "randomness='error' (the default, as torch.func.vmap's): pass "
                            "randomness='different' to draw each example's own")
        batched = drew or any(n in self.batched for n in numbers)
        outputs = tuple(self.new(y, batched) for y in ys)
        self.instrs.append(Instr(op.__name__, op(**options).forward, numbers, outputs, unpack,
                                 op, dict(options), impure=drew))

    def generator(self) -> np.random.Generator:
        """``minigrad.random.generator`` while tracing: only an op's forward may draw, so
        that the replay draws afresh."""
        self.drew = True
        if not self.in_op:
            raise VmapError("vmap: random numbers drawn outside an op (mg.randn...) would be "
                            "the same for every example: draw them outside vmap and pass "
                            "them in")
        return _GENERATOR()

    @contextmanager
    def installed(self) -> Iterator[None]:
        """Record ops, refuse what a replay could not repeat; put everything back on exit.
        Forward-mode levels are set aside: the replay carries the tangents."""
        recorder = self

        def refused_read(name: str) -> Callable:
            method = Tensor.__dict__[name]

            def guarded(t: Tensor, *args: Any, **kwargs: Any) -> Any:
                if recorder.is_batched(t):
                    raise VmapError(
                        f"vmap: {_GUARDED[name]} reads a value that differs across the batch "
                        f"(a tensor of shape {t.shape} per example); a traced function "
                        "cannot depend on it: compute it with ops (mg.where for an `if`)")
                return method(t, *args, **kwargs)

            return guarded

        as_array = _TENSOR_MODULE._as_array

        def refused_copy(data: Any, dtype: Any = None) -> np.ndarray:
            if isinstance(data, Tensor) and recorder.is_batched(data):
                raise VmapError(f"vmap: a tensor made from a value that differs across the "
                                f"batch (shape {data.shape} per example) without an op: use "
                                "x.clone() or x.detach()")
            return as_array(data, dtype)

        def refused_inplace(x: Tensor, name: str, *args: Any) -> Tensor:
            raise VmapError(f"vmap: in-place op {name} on a tensor of shape {x.shape} inside "
                            "the function: write it out of place (y = y + 1; mg.where)")

        record = classmethod(lambda op, /, *xs, **kw: self.apply(op, xs, kw))
        patches = [(Function, "apply", record),
                   (random, "generator", self.generator), (inplace, "update", refused_inplace),
                   (autograd, "_push_tangents", self.push_tangents),
                   (_TENSOR_MODULE, "_as_array", refused_copy)]
        patches += [(Tensor, name, refused_read(name)) for name in _GUARDED
                    if name in Tensor.__dict__]
        originals = [(owner, name, vars(owner)[name]) for owner, name, _ in patches]
        for owner, name, value in patches:
            setattr(owner, name, value)
        levels, autograd._state.levels = autograd._state.levels, []
        try:
            yield
        finally:
            autograd._state.levels = levels
            for owner, name, value in originals:
                setattr(owner, name, value)


def trace(f: Callable[..., Any], args: tuple, kwargs: dict, leaves: list[Tensor],
          batched: list[bool], randomness: str) -> tuple[Program, dict[int, Tensor], Any]:
    """Run ``f(*args, **kwargs)`` once and record its ops as a program (``compile``'s IR).
    ``leaves`` are the tensors among the arguments, ``batched`` says which of them are one
    example of a batch. Returns the program, whose inputs are the leaves, then the tensors
    ``f`` read from outside (parameters, constants it made); those tensors, by input slot; and
    the tree shape of ``f``'s result."""
    recorder = _Recorder(randomness)
    arguments = [recorder.new(x, b) for x, b in zip(leaves, batched)]
    with recorder.installed():
        result = f(*args, **kwargs)
    try:
        outputs, out_shape = tree_flatten(result)
    except TypeError:
        raise VmapError(f"vmap: the function must return tensors, or tuples, lists and dicts "
                        f"of them; got a {type(result).__name__}") from None
    results = [recorder.number(y) for y in outputs]
    program = Program(recorder.instrs, arguments + list(recorder.outside), results, {},
                      recorder.meta)
    return program, recorder.outside, out_shape


OPTIMIZE = ("dce", "distribute", "gather")
"""The compiler's passes that a replay gains from: dead code (the pieces of a ``chunk`` that
a function drops) out, and a recurrent weight's per-example gradient as one matmul over the
steps instead of a sum of one outer product per step (``distribute`` first, for a cell that
splits its weight). Per-example gradients of an LSTM classifier (batch 64, T 20, hidden 64)
replay in about 15 ms instead of 60 without them; ``cse`` costs more than it saves there."""


def replay(program: Program, arguments: list[Tensor], batched: list[bool], size: int
           ) -> list[tuple[Tensor, bool]]:
    """Run ``program`` (one example's) on the whole batch: ``arguments`` fill its inputs,
    those marked ``batched`` with the batch on axis 0. An instruction that reads no batched
    value runs as it is; one that does (or draws random numbers: each example draws its own)
    by its batching rule. Returns each output and whether it is batched."""
    values = dict(zip(program.inputs, arguments))
    is_batched = {s for s, b in zip(program.inputs, batched) if b}
    for ins in program.instrs:
        xs = [values[s] for s in ins.inputs]
        flags = [s in is_batched for s in ins.inputs]
        if ins.impure:
            xs, flags = [expand(x, b, size) for x, b in zip(xs, flags)], [True] * len(xs)
        if any(flags):
            ys = batching.rule_of(ins.op)(ins.op, ins.options, xs, flags, size)
            is_batched.update(ins.outputs)
        else:
            ys = ins.op.apply(*xs, **ins.options)
        for s, y in zip(ins.outputs, ys if type(ys) is tuple else (ys,)):
            values[s] = _checked(ins, y, program.meta[s], size if any(flags) else None)
    return [(values[s], s in is_batched) for s in program.outputs]


def _checked(ins: Instr, y: Tensor, meta: Meta, size: int | None) -> Tensor:
    """``y`` after a check that it is what one example's op made, with the batch in front: a
    rule that got it wrong raises here rather than giving wrong numbers later. A wider float
    dtype is rounded to the example's, as the example's op rounds it (a 0-d float64 operand
    does not widen a float32 tensor, and in the batch it is not 0-d); a narrower one raises."""
    shape, dtype = meta
    expected = shape if size is None else (size, *shape)
    if y.shape != expected or not np.can_cast(dtype, y.dtype, "safe"):
        raise RuntimeError(f"vmap: the batching rule of {ins.label} gave {y.dtype} of shape "
                           f"{y.shape}; one example's op gave {dtype} of shape {shape}, so "
                           f"the batch needs {dtype} of shape {expected}")
    return y if y.dtype == dtype else y.astype(dtype)


def vmap(func: Callable[..., Any], in_dims: Any = 0, out_dims: Any = 0,
         randomness: str = "error", *, chunk_size: int | None = None) -> Callable[..., Any]:
    """``func`` mapped over a batch axis of its arguments, as ``torch.func.vmap``.

    ``in_dims`` says which axis of each positional argument is the batch: an int (or None,
    not batched) for all of them, or a tuple with one entry per argument, each an int, None,
    or a tree like the argument's. An argument with None passes through untouched (it may be
    anything); keyword arguments too. ``out_dims`` says where the batch axis goes in each
    result: an int, or a tuple with one entry per result; None for a result that does not
    depend on the batch (a batched one raises). ``randomness``: "error" raises on random
    numbers (PyTorch's default), "different" draws each example's own. ``chunk_size`` runs
    the batch that many examples at a time.

    ``func`` is traced on the first example and its ops replayed on the whole batch by their
    batching rules (``minigrad/func/batching.py``); an op without one runs once per example,
    with a warning. Composes with ``grad``, ``jvp``, ``jacrev`` and itself (nested).
    """
    if randomness not in RANDOMNESS:
        raise ValueError(f"vmap: randomness must be one of {RANDOMNESS} ('same' is not "
                         f"supported); got {randomness!r}")
    if chunk_size is not None and (type(chunk_size) is not int or chunk_size < 1):
        raise ValueError(f"vmap: chunk_size must be a positive int or None; got {chunk_size!r}")

    def mapped(*args: Any, **kwargs: Any) -> Any:
        if is_tracing():
            raise VmapError("vmap inside a function that mg.compile traces is not supported: "
                            "call vmap outside the compiled function")
        dims = _in_dims(in_dims, args)
        leaves, shapes, size = _arguments(args, dims)
        if chunk_size is None or chunk_size >= size:
            chunks = [_run(func, args, kwargs, dims, shapes, leaves, size, randomness)]
        else:
            chunks = [_run(func, args, kwargs, dims, shapes,
                           [(x[s:s + chunk_size] if b else x, b) for x, b in leaves],
                           min(chunk_size, size - s), randomness)
                      for s in range(0, size, chunk_size)]
        out_shape = chunks[0][1]
        outputs = [_placed([(*chunk[0][j], chunk[2]) for chunk in chunks], d)
                   for j, d in enumerate(_out_dims(out_dims, out_shape))]
        return tree_unflatten(out_shape, outputs)

    mapped.__name__ = f"vmap({getattr(func, '__name__', 'f')})"
    mapped.__doc__ = func.__doc__
    return mapped


def _run(func: Callable[..., Any], args: tuple, kwargs: dict, dims: list[Any],
         shapes: list[Any], leaves: list[tuple[Tensor, bool]], size: int, randomness: str
         ) -> tuple:
    """Trace ``func`` on the first example of ``leaves`` (each argument tensor, batch first if
    batched) and replay it on all ``size`` of them: the results, each with whether it is
    batched; the results' tree shape; and ``size``."""
    examples = [Tensor._wrap(x.data[0]) if b else x for x, b in leaves]
    call, rest = [], iter(examples)
    for a, d, shape in zip(args, dims, shapes):
        call.append(a if d is None else tree_unflatten(shape, [next(rest) for _ in
                                                                 range(_count(shape))]))
    flags = [b for _, b in leaves]
    program, outside, out_shape = trace(func, tuple(call), kwargs, examples, flags, randomness)
    for name in OPTIMIZE:
        program = PASSES[name](program)
    arguments = [x for x, _ in leaves] + list(outside.values())
    return (replay(program, arguments, flags + [False] * len(outside), size), out_shape,
            size)


def _count(shape: Any) -> int:
    """How many tensors a tree of ``shape`` holds."""
    if shape is None:
        return 1
    return sum(_count(s) for s in shape[-1])


def _in_dims(in_dims: Any, args: tuple) -> list[Any]:
    """One in_dims entry per positional argument."""
    if in_dims is None or isinstance(in_dims, int):
        return [in_dims] * len(args)
    if not isinstance(in_dims, tuple):
        raise VmapError(f"vmap: in_dims must be an int, None or a tuple; got "
                        f"{type(in_dims).__name__}")
    if len(in_dims) != len(args):
        raise VmapError(f"vmap: in_dims has {len(in_dims)} entries for {len(args)} positional "
                        "arguments: give one per argument")
    return list(in_dims)


def _arguments(args: tuple, dims: list[Any]) -> tuple[list[tuple[Tensor, bool]], list, int]:
    """The tensors of the arguments that do not pass through (in_dims not None), each with
    whether it is batched (then with its batch axis moved first); each argument's tree shape;
    and the batch size."""
    leaves, shapes, sizes = [], [], {}
    for k, (a, d) in enumerate(zip(args, dims)):
        if d is None:
            shapes.append(None)
            continue
        try:
            found, shape = tree_flatten(a)
        except TypeError:
            raise VmapError(f"vmap: in_dims {d!r} for argument {k}, a {type(a).__name__}: only "
                            "tensors (and tuples, lists and dicts of them) can be batched; "
                            "give it None") from None
        shapes.append(shape)
        for x, axis in zip(found, _leaf_dims(d, a, k)):
            if axis is None:
                leaves.append((x, False))
                continue
            if not -x.ndim <= axis < x.ndim:
                raise VmapError(f"vmap: in_dims {axis} for argument {k}, a tensor of shape "
                                f"{x.shape}: out of range for its {x.ndim} axes")
            sizes[f"argument {k} of shape {x.shape} (in_dim {axis})"] = x.shape[axis]
            leaves.append((move_to_front(x, axis), True))
    if not sizes:
        raise VmapError("vmap: no argument is batched: give at least one tensor an int in "
                        "in_dims")
    if len(set(sizes.values())) > 1:
        listed = "; ".join(f"{what}: {n}" for what, n in sizes.items())
        raise VmapError(f"vmap: the batched arguments disagree on the batch size: {listed}")
    size = next(iter(sizes.values()))
    if size == 0:
        raise VmapError("vmap: the batch is empty (size 0): there is no example to trace")
    return leaves, shapes, size


def _leaf_dims(d: Any, a: Any, k: int) -> list[int | None]:
    """The in_dim of each tensor of argument ``k``, in order: ``d`` for all of them, or
    ``d`` a tree like ``a`` (tuples, lists and dicts of ints and None)."""
    if d is None or isinstance(d, int):
        return [d] * len(tree_flatten(a)[0])
    if isinstance(d, dict) and isinstance(a, dict) and list(d) == list(a):
        return [x for key in a for x in _leaf_dims(d[key], a[key], k)]
    if isinstance(d, (tuple, list)) and isinstance(a, (tuple, list)) and len(d) == len(a):
        return [x for dk, ak in zip(d, a) for x in _leaf_dims(dk, ak, k)]
    raise VmapError(f"vmap: in_dims {d!r} for argument {k} does not fit its structure (a "
                    f"{type(a).__name__}): give an int, None, or a tree like the argument")


def _out_dims(out_dims: Any, out_shape: Any) -> list[int | None]:
    """The out_dim of each result tensor, in order."""
    if out_dims is None or isinstance(out_dims, int):
        return [out_dims] * _count(out_shape)
    if not isinstance(out_dims, tuple) or out_shape is None or len(out_dims) != len(
            out_shape[-1]):
        raise VmapError(f"vmap: out_dims {out_dims!r} does not fit the results: give an int, "
                        "None, or a tuple with one entry per result")
    return [d for d, part in zip(out_dims, out_shape[-1]) for _ in range(_count(part))]


def _placed(parts: list[tuple[Tensor, bool, int]], out_dim: int | None) -> Tensor:
    """A result from its chunks (each the tensor, whether it is batched, the chunk's size):
    the batch axis at ``out_dim`` (an unbatched result repeated along it), or with ``out_dim``
    None, the result itself, which must not depend on the batch."""
    if out_dim is None:
        if any(b for _, b, _ in parts):
            raise VmapError("vmap: out_dims None for a result that differs across the batch: "
                            "give it an int")
        return parts[0][0]
    chunks = [expand(y, b, n) for y, b, n in parts]
    y = chunks[0] if len(chunks) == 1 else Concat.apply(*chunks, axis=0)
    if not -y.ndim <= out_dim < y.ndim:
        raise VmapError(f"vmap: out_dims {out_dim} is out of range for a result of "
                        f"{y.ndim - 1} axes per example (the batch axis goes in 0..{y.ndim - 1})")
    return move_from_front(y, out_dim)
