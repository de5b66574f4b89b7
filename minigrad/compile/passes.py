"""Passes: each takes a ``Program`` and returns a new one that computes the same outputs, and
does one thing. ``mg.compile(fn, passes=("dce",))`` picks them by name (``PASSES``).

- ``dce``: dead-code elimination. Tracing records every op the function applied, also those
  whose results it then dropped (the unused pieces of a ``chunk``, a final state nobody
  reads); backward records the gradients of values no input needs. Walking backwards from the
  outputs keeps what they depend on.
- ``fuse``: elementwise fusion. A run of elementwise instructions (``Sigmoid``, ``Mul``,
  ``Add``...) over arrays of one shape becomes one generated kernel (see ``kernels.py``) that
  reads the run's inputs once and writes only the values used after it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace

from minigrad.compile.kernels import fusible, make_kernel
from minigrad.compile.program import Instr, Program


def dead_code_elimination(program: Program) -> Program:
    """Drop every instruction whose outputs no output depends on (random draws stay: dropping
    one would shift the numbers the later ones draw)."""
    live = set(program.outputs)
    kept = []
    for ins in reversed(program.instrs):
        if ins.impure or live.intersection(ins.outputs):
            kept.append(ins)
            live.update(ins.inputs)
    constants = {s: a for s, a in program.constants.items() if s in live}
    return replace(program, instrs=kept[::-1], constants=constants)


def fuse(program: Program) -> Program:
    """Replace groups of elementwise instructions of one output shape, each joined to the next
    by data, with one kernel per group.

    Instructions are visited in order; one joins the groups of the instructions that made its
    inputs when the kernel can take the place of its last member: no instruction outside the
    group, before that place, may read a value the group makes.
    """
    instrs = program.instrs
    readers: dict[int, list[int]] = defaultdict(list)  # slot -> positions that read it
    maker: dict[int, int] = {}  # slot -> the position that makes it
    for k, ins in enumerate(instrs):
        for s in ins.inputs:
            readers[s].append(k)
        for s in ins.outputs:
            maker[s] = k
    group_of: dict[int, list[int]] = {}  # position -> the positions of its group, in order

    def closed(members: list[int], end: int) -> bool:
        return all(r in members or r > end
                   for m in members for s in instrs[m].outputs for r in readers[s])

    for k, ins in enumerate(instrs):
        if not fusible(ins):
            continue
        shape = program.meta[ins.outputs[0]][0]
        members = [k]
        for s in ins.inputs:
            group = group_of.get(maker.get(s, -1))
            if group is None or group[0] in members or program.meta[
                    instrs[group[0]].outputs[0]][0] != shape:
                continue
            if closed(sorted(members + group), k):
                members = sorted(members + group)
        for m in members:
            group_of[m] = members

    result = []
    for k, ins in enumerate(instrs):
        group = group_of.get(k)
        if group is None or len(group) == 1:
            result.append(ins)
        elif k == group[-1]:
            result.append(_kernel([instrs[m] for m in group], group, readers, program))
    return replace(program, instrs=result)


def _kernel(members: list[Instr], positions: list[int], readers: dict[int, list[int]],
            program: Program) -> Instr:
    """One instruction that runs ``members`` as a generated kernel. Its inputs are what they
    read from outside; its outputs what is read outside or is a program output."""
    made = {s for ins in members for s in ins.outputs}
    inputs = list(dict.fromkeys(s for ins in members for s in ins.inputs if s not in made))
    outputs = [s for ins in members for s in ins.outputs
               if s in program.outputs or any(r not in positions for r in readers[s])]
    outputs = outputs or list(members[-1].outputs)
    kernel = make_kernel(members, inputs, outputs, program.meta)
    return Instr(kernel.name, kernel.fn, tuple(inputs), tuple(outputs), len(outputs) > 1,
                 source=kernel.source, fused=tuple(members))


PASSES: dict[str, Callable[[Program], Program]] = {
    "dce": dead_code_elimination,
    "fuse": fuse,
}
ALL: tuple[str, ...] = tuple(PASSES)


def run_passes(program: Program, names: Sequence[str]) -> Program:
    """``program`` after each named pass, in order."""
    for name in names:
        program = PASSES[name](program)
    return program
