"""Code generation: a program becomes one straight-line Python function.

Interpreting a program (``reference.interpret``) costs Python's time per instruction: fetch
the instruction, gather its input arrays from a table of slots, store its outputs. The
generated function does the same work with none of that: each slot is a local variable, each
instruction one line that calls its function, and ``del`` lets go of an array where the
``free`` pass says nothing reads it any more. An instruction that the ``lower`` pass
(``fast/lowering.py``) wrote out as NumPy code gets those lines instead of a call.
``Program.code`` shows the source; an LSTM cell's step, for instance::

    def program(inputs):
        s0, s1, s2, s3, s4, s8, = inputs
        inputs.clear()
        s45 = s1 @ s4.T
        del s4
        s14, s20, s22, = fused_3c67bddaad_3(s45, s8, s2)
        del s8, s45
        return [s22, s20, s14]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from minigrad.compile.program import Instr, Program


def call(ins: Instr, args: Sequence[str], outs: Sequence[str], fn: str,
         extra: Sequence[str] = ()) -> str:
    """The line that calls ``ins``'s function, named ``fn``, on ``args`` (and ``extra``
    arguments) into ``outs``."""
    target = f"{', '.join(outs)}," if ins.unpack else outs[0]
    return f"{target} = {fn}({', '.join([*args, *extra])})"


def generate(program: Program) -> tuple[str, dict[str, Any]]:
    """The source of ``program`` as a function ``program(inputs)`` that returns the list of
    output arrays, and the names it needs (NumPy, the constants, the functions it calls).
    ``inputs`` is a list that the function empties once it has named its arrays."""
    namespace: dict[str, Any] = {"np": np}
    names = {s: f"c{s}" for s in program.constants}  # constants are names in the namespace
    namespace.update({f"c{s}": array for s, array in program.constants.items()})
    lines = []
    if program.inputs:  # the list is the function's own: emptied, it holds no array alive
        lines += [f"{', '.join(f's{s}' for s in program.inputs)}, = inputs", "inputs.clear()"]
    for k, ins in enumerate(program.instrs):
        args = [names.get(s, f"s{s}") for s in ins.inputs]
        outs = [f"s{s}" for s in ins.outputs]
        fn = f"{ins.label}_{k}"  # two kernels of one source may differ in shape
        code = ins.lower(args, outs, fn) if ins.lower else None
        if code is None:
            code = [call(ins, args, outs, fn)]
        namespace[fn] = ins.fn
        lines += code
        freed = [f"s{s}" for s in ins.frees if s not in names]
        if freed:
            lines.append(f"del {', '.join(freed)}")
    lines.append(f"return [{', '.join(names.get(s, f's{s}') for s in program.outputs)}]")
    source = "def program(inputs):\n" + "".join(f"    {line}\n" for line in lines)
    return source, namespace


def build(program: Program) -> tuple[str, Callable[[Sequence[np.ndarray]], list[np.ndarray]]]:
    """The generated source of ``program`` and the function compiled from it."""
    source, namespace = generate(program)
    exec(compile(source, "<minigrad program>", "exec"), namespace)
    return source, namespace["program"]
