"""The last stage: a program becomes one straight-line Python function.

Replaying a program instruction by instruction in a loop costs Python's time per instruction:
fetch the instruction, gather its input arrays from a table of slots, store its outputs. The
generated function does the same work with none of that: each slot is a local variable, each
instruction one line, and ``del`` lets go of an array where the ``free`` pass says nothing
reads it any more. Ops whose work is a view or one NumPy call (reshape, transpose, split,
matmul, concatenate, a matrix's sum along one axis...) are written out as that call
(``LOWERED``); every other instruction calls its function. A stack whose parts are made by
concatenations (plain, or taken into kernels) is allocated first and each part written into
its place (``stacked_in_place``), which saves copying them. ``Program.code`` shows the
source; an LSTM cell's step, for instance::

    def program(inputs):
        s0, s1, s2, s3, s4, s8, = inputs
        s45 = s1 @ s4.T
        del s4
        s14, s20, s22, = fused_3c67bddaad_3(s45, s8, s2)
        del s8, s45
        return [s22, s20, s14]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from minigrad.compile.kernels import EXPRESSIONS, QUIET
from minigrad.compile.program import Instr, Meta
from minigrad.ops.linalg import Linear, MatMul
from minigrad.ops.reduce import Sum, normalize_axes
from minigrad.ops.shape import Concat, Reshape, Split, Stack, Transpose, Unbind

if TYPE_CHECKING:
    from minigrad.compile.program import Program

Lowering = Callable[[Instr, list[str], list[str], dict[int, Meta]], "list[str] | None"]


def _reshape(ins: Instr, args: list[str], outs: list[str], meta: dict) -> list[str]:
    return [f"{outs[0]} = {args[0]}.reshape({meta[ins.outputs[0]][0]})"]


def _transpose(ins: Instr, args: list[str], outs: list[str], meta: dict) -> list[str]:
    axes = ins.options["axes"]
    return [f"{outs[0]} = {args[0]}.transpose({'' if axes is None else tuple(axes)})"]


def _matmul(ins: Instr, args: list[str], outs: list[str], meta: dict) -> list[str] | None:
    (a, _), (b, _) = meta[ins.inputs[0]], meta[ins.inputs[1]]
    if len(a) != 2 or len(b) != 2 or b[0] == 1:  # the op's own reshapes and outer products
        return None
    return [f"{outs[0]} = {args[0]} @ {args[1]}"]


def _linear(ins: Instr, args: list[str], outs: list[str], meta: dict) -> list[str] | None:
    if len(meta[ins.inputs[0]][0]) > 2:
        return None
    lines = [f"{outs[0]} = {args[0]} @ {args[1]}.T"]
    return lines + [f"{outs[0]} += {args[2]}"] if len(args) == 3 else lines


def _split(ins: Instr, args: list[str], outs: list[str], meta: dict) -> list[str]:
    ndim = len(meta[ins.inputs[0]][0])
    lead = ":, " * (ins.options["axis"] % ndim)
    pieces, start = [], 0
    for size in ins.options["sizes"]:
        pieces.append(f"{args[0]}[{lead}{start}:{start + size}]")
        start += size
    return [f"{', '.join(outs)} = {', '.join(pieces)}"]


def _unbind(ins: Instr, args: list[str], outs: list[str], meta: dict) -> list[str] | None:
    if ins.options["axis"] % len(meta[ins.inputs[0]][0]) != 0:
        return None
    return [f"{', '.join(outs)}, = {args[0]}"]  # iterating an array yields its rows, as views


def _concat(ins: Instr, args: list[str], outs: list[str], meta: dict,
            into: str | None = None) -> list[str]:
    out = f", out={into}" if into else ""  # written in place in a stack (stacked_in_place)
    return [f"{outs[0]} = np.concatenate(({', '.join(args)},), axis={ins.options['axis']}{out})"]


def _stack(ins: Instr, args: list[str], outs: list[str], meta: dict) -> list[str] | None:
    ndim = len(meta[ins.inputs[0]][0])
    axis = ins.options["axis"] % (ndim + 1)
    if axis == ndim:
        return None
    # joining along an existing axis and splitting it in two is stacking, and about 3x faster
    return [f"{outs[0]} = np.concatenate(({', '.join(args)},), axis={axis})"
            f".reshape({meta[ins.outputs[0]][0]})"]


def _sum(ins: Instr, args: list[str], outs: list[str], meta: dict) -> list[str] | None:
    shape, dtype = meta[ins.inputs[0]]
    axes = normalize_axes(ins.options["axis"], len(shape), "sum")
    if len(shape) != 2 or len(axes) != 1 or dtype not in (np.float32, np.float64):
        return None
    # a matrix summed along one axis is its product with ones, which BLAS runs on every core
    ones = f"np.ones({shape[axes[0]]}, np.{dtype.name})"
    product = f"{ones} @ {args[0]}" if axes[0] == 0 else f"{args[0]} @ {ones}"
    kept = f".reshape({meta[ins.outputs[0]][0]})" if ins.options["keepdims"] else ""
    return [f"{outs[0]} = ({product}){kept}" if kept else f"{outs[0]} = {product}"]


def _elementwise(ins: Instr, args: list[str], outs: list[str], meta: dict) -> list[str] | None:
    if ins.op in QUIET:
        return None
    return [f"{outs[0]} = " + EXPRESSIONS[ins.op].format(*args, **ins.options)]


LOWERED: dict[type, Lowering] = {
    Reshape: _reshape, Transpose: _transpose, MatMul: _matmul, Linear: _linear, Split: _split,
    Unbind: _unbind, Concat: _concat, Stack: _stack, Sum: _sum,
    **{op: _elementwise for op in EXPRESSIONS},
}
"""The ops written out as NumPy code, each by a function that returns the lines (or None for
shapes it leaves to the op's own function)."""


def generate(program: Program) -> tuple[str, dict[str, Any]]:
    """The source of ``program`` as a function ``program(inputs)`` that returns the list of
    output arrays, and the names it needs (NumPy, the constants, the functions it calls)."""
    namespace: dict[str, Any] = {"np": np}
    names: dict[int, str] = {}
    for s, array in program.constants.items():
        names[s] = f"c{s}"
        namespace[f"c{s}"] = array
    lines = []
    if program.inputs:
        lines.append(f"{', '.join(f's{s}' for s in program.inputs)}, = inputs")
    places, allocated = stacked_in_place(program), set()
    for k, ins in enumerate(program.instrs):
        args = [names.get(s, f"s{s}") for s in ins.inputs]
        outs = [f"s{s}" for s in ins.outputs]
        into = {}  # the parts of stacks this instruction makes -> where in the stack they go
        for s in ins.outputs:
            if s in places:
                stack, at = places[s]
                if stack not in allocated:  # before its first part is made
                    shape, dtype = program.meta[stack]
                    lines.append(f"s{stack} = np.empty({shape}, np.{dtype.name})")
                    allocated.add(stack)
                into[s] = f"s{stack}[{at}]"
        lowering = LOWERED.get(ins.op)
        if ins.op is Stack and ins.outputs[0] in allocated:
            code = []  # its parts are in it already
        elif ins.op is Concat:
            code = _concat(ins, args, outs, program.meta, into.get(ins.outputs[0]))
        else:
            code = lowering(ins, args, outs, program.meta) if lowering else None
        if code is None:
            fn = f"{ins.label}_{k}"  # two kernels of one source may differ in shape
            namespace[fn] = ins.fn
            target = f"{', '.join(outs)}," if ins.unpack else outs[0]
            args += [f"j{m}={into[j]}" for m, j in enumerate(_joins(ins)) if j in into]
            code = [f"{target} = {fn}({', '.join(args)})"]
        lines += code
        freed = [f"s{s}" for s in ins.frees if s not in names]
        if freed:
            lines.append(f"del {', '.join(freed)}")
    lines.append(f"return [{', '.join(names.get(s, f's{s}') for s in program.outputs)}]")
    source = "def program(inputs):\n" + "".join(f"    {line}\n" for line in lines)
    return source, namespace


def stacked_in_place(program: Program) -> dict[int, tuple[int, int]]:
    """The parts of stacks that can be written straight into the stack, ``{part: (stack,
    index)}``: the stack (along a new first axis) is allocated before its first part is made,
    and each part is made in its place instead of being copied there by the stack. A part
    qualifies if a concatenation makes it, on its own or taken into a fused kernel (its
    ``joins``): both can write into a given array. An LSTM's backward stacks its gate gradients
    this way, for the input projection's gradient."""
    joined = {s for ins in program.instrs
              for s in (ins.outputs[:1] if ins.op is Concat else _joins(ins))}
    places = {}
    for ins in program.instrs:
        parts = ins.inputs
        if (ins.op is Stack and ins.options["axis"] == 0 and len(set(parts)) == len(parts)
                and all(s in joined and s not in places for s in parts)):
            places.update({s: (ins.outputs[0], at) for at, s in enumerate(parts)})
    return places


def _joins(ins: Instr) -> list[int]:
    """The concatenations a fused kernel took in (``fuse``'s joins), in the order of its
    ``j0, j1, ...`` arguments."""
    return [c.outputs[0] for c in ins.fused if c.op is Concat]


def build(program: Program) -> tuple[str, Callable[[list[np.ndarray]], list[np.ndarray]]]:
    """The generated source of ``program`` and the function compiled from it."""
    source, namespace = generate(program)
    exec(compile(source, "<minigrad program>", "exec"), namespace)
    return source, namespace["program"]
