"""The program checker: what every program must satisfy, before and after every pass.

A pass that breaks one of these rules makes a program that may still run, and give wrong
numbers, or fail far from the pass that broke it. The tests run ``check`` after every pass of
every program they compile (``pipeline.CHECK``), so that the pass is named where it happens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from minigrad import random
from minigrad.compile.program import Program, type_text


class ProgramError(AssertionError):
    """A program broke a rule of ``check``."""


def check(program: Program, arrays: Sequence[np.ndarray] | None = None, after: str = ""
          ) -> dict[int, np.ndarray]:
    """Raise ``ProgramError`` unless ``program`` is well formed:

    - every slot it reads is defined before: an input, a constant, or the output of an earlier
      instruction; and not read after an instruction that freed it;
    - every slot is written once, and inputs and constants never;
    - every slot has a shape and a dtype (``meta``), and each constant has its slot's;
    - the outputs are defined and never freed.

    With ``arrays`` (one per input) it also interprets the program and checks that every
    array an instruction makes has its slot's shape and dtype; it then returns every slot's
    array (else an empty dict). ``after`` names the pass that made the program, for the
    message.
    """
    where = f" after the {after} pass" if after else ""

    def fail(message: str) -> None:
        raise ProgramError(f"mg.compile: a program{where} is malformed: {message}\n{program}")

    defined = set(program.inputs) | set(program.constants)
    if len(defined) != len(program.inputs) + len(program.constants):
        fail("a slot is both an input and a constant, or an input twice")
    for s, array in program.constants.items():
        if program.meta.get(s) != (array.shape, array.dtype):
            fail(f"constant s{s} is {type_text((array.shape, array.dtype))}, its slot says "
                 f"{program.meta.get(s)}")
    freed: dict[int, str] = {}
    for ins in program.instrs:
        for s in ins.inputs:
            if s in freed:
                fail(f"{ins.text()} reads s{s}, which {freed[s]} freed")
            if s not in defined:
                fail(f"{ins.text()} reads s{s}, which nothing defined before")
        for s in ins.outputs:
            if s in defined:
                fail(f"{ins.text()} writes s{s}, which is defined already")
            if s not in program.meta:
                fail(f"{ins.text()} writes s{s}, which has no shape and dtype")
            defined.add(s)
        for s in ins.frees:
            if s in program.outputs:
                fail(f"{ins.text()} frees s{s}, an output")
            freed[s] = ins.text()
    for s in program.outputs:
        if s not in defined or s in freed:
            fail(f"output s{s} is {'freed' if s in freed else 'never defined'}")
    if arrays is None:
        return {}
    rng = random.generator()
    state = rng.bit_generator.state  # a check draws no number for good
    try:
        return _interpret_checking(program, arrays, fail)
    finally:
        rng.bit_generator.state = state


def _interpret_checking(program: Program, arrays: Sequence[np.ndarray], fail: Callable
                        ) -> dict[int, np.ndarray]:
    """Interpret ``program`` on ``arrays``, checking the shape and dtype of every array made;
    return every slot's array."""
    env = {**dict(zip(program.inputs, arrays)), **program.constants}
    for s in program.inputs:
        if (env[s].shape, env[s].dtype) != program.meta[s]:
            fail(f"input s{s} is given {type_text((env[s].shape, env[s].dtype))}, its slot "
                 f"says {type_text(program.meta[s])}")
    for ins in program.instrs:
        result = ins.fn(*[env[s] for s in ins.inputs])
        results = result if ins.unpack else (result,)
        if len(results) != len(ins.outputs):
            fail(f"{ins.text()} made {len(results)} arrays for {len(ins.outputs)} slots")
        for s, array in zip(ins.outputs, results):
            array = np.asarray(array)
            if (array.shape, array.dtype) != program.meta[s]:
                fail(f"{ins.text()} made {type_text((array.shape, array.dtype))} for s{s}, "
                     f"which says {type_text(program.meta[s])}")
            env[s] = array
    return env
