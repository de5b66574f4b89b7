"""The textbook compiler: trace a function into a program, drop dead code, interpret it.

Read this before the rest of ``compile/``. A compiler for an autograd library needs three ideas:

1. **Tracing.** Run the function once and write down every op it applies: which op, with
   which options, on which values. Values are numbered *slots*; the record is a ``Program``
   (``program.py``), a straight list of instructions ``outputs = Op(inputs)``. Python's control
   flow is gone from it: the program is what this one run did.
2. **Passes.** Rewrite the program into one that computes the same outputs with less work.
   The simplest is dead-code elimination: an instruction that no output depends on goes.
3. **Running it.** The meaning of a program is the interpreter below: fill the input slots,
   run each instruction's op on the arrays in its input slots, read the outputs.

Backward needs no idea of its own. Every op's backward is written with ops, so running
``mg.grad(..., create_graph=True)`` inside the traced function records backward's ops like any
others: trace a function that returns its gradients and you have the backward program.

The real compiler (``compiled.py``) does the same with what makes it safe and fast around it:
a tracer that refuses to let Python read a traced value (which a program would bake in),
guards that notice when what the trace took as fixed changes, NumPy code on array arguments,
more passes (``pipeline.py``) and code generation instead of this loop (``codegen.py``). The
tests hold it to this one: same outputs and gradients on random expressions, on every cell and
on a language model's training step. What this one leaves out: a function that reads a
value in Python (``if x.item() > 0``), writes a tensor in place, or makes a tensor from a
traced value without an op, is replayed with what that run saw.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from minigrad import random
from minigrad.autograd import Function
from minigrad.compile.program import Instr, Program
from minigrad.tensor import Tensor


def trace(fn: Callable[..., Any], *args: Tensor) -> tuple[Program, list[Tensor], Any]:
    """Run ``fn(*args)`` once and record every op it applies.

    Returns the program, the tensors ``fn`` read from outside its arguments (parameters, and
    the constants it made, such as the ``1`` of ``1 - z``), and how its result nests tensors.
    The program's inputs are the arguments' arrays, then those tensors' arrays, read anew at
    every run; its outputs are the tensors ``fn`` returns (one tensor, or tuples and lists of
    them), flattened in order.
    """
    slots: dict[int, int] = {}  # id of an array -> the slot that holds it
    values: dict[int, np.ndarray] = {}  # slot -> its array (kept alive, so ids stay unique)
    instrs: list[Instr] = []
    outside: list[Tensor] = []
    outside_slots: list[int] = []

    def new_slot(array: np.ndarray) -> int:
        s = len(values)
        values[s], slots[id(array)] = array, s
        return s

    def slot_of(x: Tensor) -> int:
        """The slot of ``x``'s array; a new input if the function did not make it."""
        s = slots.get(id(x.data))
        if s is None:
            s = new_slot(x.data)
            outside.append(x)
            outside_slots.append(s)
        return s

    apply = Function.__dict__["apply"]  # the real one, put back at the end

    def recording_apply(cls: type[Function], *xs: Tensor, **options: Any) -> Any:
        reads = tuple(slot_of(x) for x in xs if isinstance(x, Tensor))
        state = random.generator().bit_generator.state
        ys = apply.__func__(cls, *xs, **options)  # run the op as eager does
        drew = random.generator().bit_generator.state != state  # never merged nor dropped
        made = tuple(new_slot(y.data) for y in (ys if type(ys) is tuple else (ys,)))
        instrs.append(Instr(cls.__name__, cls(**options).forward, reads, made,
                            type(ys) is tuple, cls, options, impure=drew))
        return ys

    arguments = [new_slot(x.data) for x in args]
    Function.apply = classmethod(recording_apply)
    try:
        result = fn(*args)
    finally:
        Function.apply = apply
    outputs = [slot_of(y) for y in _leaves(result)]
    meta = {s: (a.shape, a.dtype) for s, a in values.items()}
    program = Program(instrs, arguments + outside_slots, outputs, {}, meta)
    return program, outside, _nesting(result)


def dead_code_elimination(program: Program) -> Program:
    """Drop every instruction whose outputs no output depends on.

    Walk backwards from the outputs, keeping an instruction if it makes a value still needed
    (and then needing its inputs). Random draws stay: dropping one would shift the numbers the
    later ones draw. Tracing records every op, also those whose results the function dropped
    (the unused pieces of a ``chunk``); backward records gradients that no input needs.
    """
    live = set(program.outputs)
    kept = []
    for ins in reversed(program.instrs):
        if ins.impure or live.intersection(ins.outputs):
            kept.append(ins)
            live.update(ins.inputs)
    constants = {s: a for s, a in program.constants.items() if s in live}
    return Program(kept[::-1], program.inputs, program.outputs, constants, program.meta)


def interpret(program: Program, arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Run ``program`` on ``arrays`` (one per input slot), one instruction at a time, and
    return its output arrays. This is what a program means; ``Program.run`` does the same
    through generated code."""
    env = {**dict(zip(program.inputs, arrays)), **program.constants}
    for ins in program.instrs:
        result = ins.fn(*[env[s] for s in ins.inputs])
        env.update(zip(ins.outputs, result if ins.unpack else (result,)))
        for s in ins.frees:  # where the ``free`` pass says nothing reads it any more
            del env[s]
    return [env[s] for s in program.outputs]


def compile(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` traced at its first call for each signature (the shapes and dtypes of its
    tensor arguments), then run by ``interpret`` after dead-code elimination.

    The results are tensors without a graph: for gradients, compile a function that returns
    them, ``lambda x: mg.grad(loss(x), [x, *params], create_graph=True)``.
    """
    programs: dict[tuple, tuple[Program, list[Tensor], Any]] = {}

    def compiled(*args: Tensor) -> Any:
        key = tuple((x.shape, x.dtype) for x in args)
        if key not in programs:
            program, outside, nesting = trace(fn, *args)
            programs[key] = (dead_code_elimination(program), outside, nesting)
        program, outside, nesting = programs[key]
        arrays = interpret(program, [x.data for x in (*args, *outside)])
        return _rebuild(nesting, iter(map(Tensor, arrays)))

    return compiled


def _leaves(result: Any) -> list[Tensor]:
    """The tensors in ``result`` (a tensor, or tuples and lists of them), in order."""
    if isinstance(result, Tensor):
        return [result]
    return [y for part in result for y in _leaves(part)]


def _nesting(result: Any) -> Any:
    """How ``result`` nests its tensors: None for a tensor, else its type and its parts'."""
    if isinstance(result, Tensor):
        return None
    return type(result), [_nesting(part) for part in result]


def _rebuild(nesting: Any, tensors: Iterator[Tensor]) -> Any:
    """The inverse of ``_leaves``: ``nesting`` filled with ``tensors`` in order."""
    if nesting is None:
        return next(tensors)
    kind, parts = nesting
    return kind(_rebuild(part, tensors) for part in parts)
