"""The ``lower`` pass: instructions written out as NumPy code instead of calls of their ops.

What it buys: an op's ``forward`` called through the generated code costs a Python call, the
op's checks and an object per instruction; a reshape, a transpose, a split or a matmul written
as one line of NumPy costs none of that. The tiny language-model step of
``benchmarks/passes.py``, where the cost per instruction dominates, takes 0.46 ms with it and
0.55 ms without (big: 21.8 and 22.8 ms).

The pass sets each instruction's ``lower`` (``program.py``), which code generation
(``codegen.py``) calls for its lines:

- views and single NumPy calls (reshape, transpose, split, unbind, concatenate, stack, a
  matmul or a linear map of matrices, and the elementwise ops of ``kernels.EXPRESSIONS``) are
  written as that call (``RULES``);
- a matrix summed along one axis is its product with a vector of ones, which BLAS runs on
  every core;
- a stack whose parts are made by concatenations (plain, or taken into kernels) is allocated
  before its first part is made, and each part written into its place, which saves copying
  them (an LSTM's backward stacks its gate gradients this way).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial

import numpy as np

from minigrad.compile.codegen import call
from minigrad.compile.kernels import EXPRESSIONS, QUIET
from minigrad.compile.program import Instr, Meta, Program
from minigrad.ops.linalg import Linear, MatMul
from minigrad.ops.reduce import Sum, normalize_axes
from minigrad.ops.shape import Concat, Reshape, Split, Stack, Transpose, Unbind

Rule = Callable[[Instr, list[str], list[str], dict[int, Meta]], "list[str] | None"]


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
    out = f", out={into}" if into else ""  # written in place in a stack
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


RULES: dict[type, Rule] = {
    Reshape: _reshape, Transpose: _transpose, MatMul: _matmul, Linear: _linear, Split: _split,
    Unbind: _unbind, Concat: _concat, Stack: _stack, Sum: _sum,
    **{op: _elementwise for op in EXPRESSIONS},
}
"""The ops written out as NumPy code, each by a function that returns the lines (or None for
shapes it leaves to the op's own function)."""


def lower(program: Program) -> Program:
    """Give each instruction that has a rule, or makes a part of a stack filled in place, the
    lines that write it out."""
    places, allocated = stacked_in_place(program), set()
    instrs = []
    for ins in program.instrs:
        into = {}  # the parts of stacks this instruction makes -> where in the stack they go
        allocate = []  # a stack whose first part this instruction makes
        for s in ins.outputs:
            if s in places:
                stack, at = places[s]
                if stack not in allocated:
                    allocate.append(stack)
                    allocated.add(stack)
                into[s] = f"s{stack}[{at}]"
        if ins.op is Stack and ins.outputs[0] in allocated:
            rule = None  # its parts are in it already: no line at all
        elif into or ins.op in RULES:
            rule = partial(_write, ins, program.meta, into,
                           [(s, *program.meta[s]) for s in allocate])
        else:
            instrs.append(ins)
            continue
        instrs.append(replace(ins, lower=rule or _nothing))
    return replace(program, instrs=instrs)


def _nothing(args: list[str], outs: list[str], fn: str) -> list[str]:
    return []


def _write(ins: Instr, meta: dict[int, Meta], into: dict[int, str],
           allocate: list[tuple[int, tuple[int, ...], np.dtype]], args: list[str],
           outs: list[str], fn: str) -> list[str] | None:
    """The lines of ``ins``: the stacks it starts allocated first, then its rule's lines, or
    the call of its function writing its joins where ``into`` says."""
    lines = [f"s{stack} = np.empty({shape}, np.{dtype.name})" for stack, shape, dtype in allocate]
    if ins.op is Concat:
        return lines + _concat(ins, args, outs, meta, into.get(ins.outputs[0]))
    rule = RULES.get(ins.op)
    code = rule(ins, args, outs, meta) if rule else None
    if code is None:
        joins = ins.kernel.joins if ins.kernel else {}
        extra = [f"j{m}={into[j]}" for m, j in enumerate(joins) if j in into]
        code = [call(ins, args, outs, fn, extra)]
    return lines + code


def stacked_in_place(program: Program) -> dict[int, tuple[int, int]]:
    """The parts of stacks that can be written straight into the stack, ``{part: (stack,
    index)}``: the stack (along a new first axis) is allocated before its first part is made,
    and each part is made in its place instead of being copied there by the stack. A part
    qualifies if a concatenation makes it, on its own or taken into a fused kernel (its
    ``joins``): both can write into a given array."""
    joined = {s for ins in program.instrs
              for s in (ins.outputs[:1] if ins.op is Concat else
                        ins.kernel.joins if ins.kernel else ())}
    places = {}
    for ins in program.instrs:
        parts = ins.inputs
        if (ins.op is Stack and ins.options["axis"] == 0 and len(set(parts)) == len(parts)
                and all(s in joined and s not in places for s in parts)):
            places.update({s: (ins.outputs[0], at) for at, s in enumerate(parts)})
    return places
