"""The pipeline: from a trace to the two programs a compiled call runs, each pass once, in order.

``optimize(trace, passes)`` takes the forward and backward programs that tracing recorded
(``trace.py``) and runs the passes named in ``passes`` (by default all of them), in this order:

1. ``decompose`` (``fast/decompose.py``), on both programs: cross-entropy split into the
   softmax's terms and the rest, so that the next step can share the terms.
2. ``cse`` (``passes.py``): forward's repeated instructions merged; then backward's, where
   backward also reads forward's slot wherever it repeats a forward instruction.
3. ``remat`` (``passes.py``): backward recomputes the forward values that one or two
   elementwise instructions make from values it keeps anyway, rather than keep them.
4. Backward first, because it decides what forward must keep: ``dce``, ``distribute`` and
   ``gather`` (``fast/rewrites.py``), ``fuse``, ``numba`` (``fast/numba.py``), ``lower``
   (``fast/lowering.py``), ``free``.
5. Link: forward also returns the values backward reads (``link``).
6. Forward: the same passes as backward in step 4.

``dce``, ``cse``, ``remat``, ``fuse`` and ``free`` are the generic passes (``passes.py``):
any program gains from them. The others are the speed work of ``fast/``, each bought by a
benchmark figure given in its module. With ``CHECK`` set (the tests set it), ``check.py``'s
checker runs on the programs as traced and after every pass, and names the pass that broke a
rule.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from minigrad.compile import passes
from minigrad.compile.check import check
from minigrad.compile.fast import decompose, lowering, numba, rewrites
from minigrad.compile.passes import read_from_outside
from minigrad.compile.program import Program

if TYPE_CHECKING:
    from minigrad.compile.trace import Trace

PASSES: dict[str, Callable[..., Program]] = {
    "decompose": decompose.decompose,
    "dce": passes.dead_code_elimination,
    "cse": passes.common_subexpressions,
    "remat": passes.rematerialize,
    "distribute": rewrites.distribute,
    "gather": rewrites.gather,
    "fuse": passes.fuse,
    "numba": numba.compile_kernels,
    "lower": lowering.lower,
    "free": passes.free,
}
"""Every pass by name, in the order the pipeline runs them. Each takes a program and returns
one, except ``remat``, which takes backward and its forward and returns backward."""
ALL: tuple[str, ...] = tuple(PASSES)
GENERIC: tuple[str, ...] = ("dce", "cse", "remat", "fuse", "free")
TWO_PROGRAMS = ("decompose", "cse", "remat")  # run by ``optimize`` itself, on both programs
CHECK = False
"""Run the checker before and after every pass (the tests set it)."""


Watch = Callable[[str, Program, "Program | None"], None]


def optimize(trace: Trace, names: Sequence[str] = ALL, watch: Watch | None = None
             ) -> tuple[Program, Program | None]:
    """The forward and backward programs of ``trace`` after the passes in ``names``, linked:
    forward returns the function's results, then what backward reads; backward takes those
    values, then one gradient per tracked output. ``watch(stage, forward, backward)``, if
    given, sees the programs as traced (stage ``"tracing"``) and after each step (``"cse"``,
    ``"fuse: backward"``, ``"link"``, ``"fuse: forward"``...): what ``explore`` shows."""
    unknown = [name for name in names if name not in PASSES]
    if unknown:
        raise ValueError(f"mg.compile: unknown passes {unknown}; the passes are {ALL}")
    forward, backward = trace.forward, trace.backward

    def checked(after: str, forward: Program, backward: Program | None, on: str = "") -> None:
        _checked(trace.values, after, forward, backward)
        if watch is not None:
            watch(f"{after}: {on}" if on else after, forward, backward)

    checked("tracing", forward, backward)
    if "decompose" in names:
        forward, backward = decompose.decompose(forward), backward and decompose.decompose(backward)
        checked("decompose", forward, backward)
    if "cse" in names:
        forward, alias = passes.merge_repeats(forward)
        if backward is not None:  # which then reads forward values it did not read before
            backward = passes.merge_repeats(backward.renamed(alias), known=forward)[0]
            backward = replace(backward, inputs=read_from_outside(backward))
        checked("cse", forward, backward)
    if "remat" in names and backward is not None:
        backward = passes.rematerialize(backward, forward)
        checked("remat", forward, backward)
    rest = [name for name in ALL if name in names and name not in TWO_PROGRAMS]
    for name in rest if backward is not None else ():
        backward = PASSES[name](backward)
        checked(name, forward, backward, on="backward")
    forward, backward = link(forward, backward, trace.grad_slots)
    checked("link", forward, backward)
    for name in rest:
        forward = PASSES[name](forward)
        checked(name, forward, backward, on="forward")
    return forward, backward


def _checked(values: dict[int, np.ndarray], after: str, forward: Program,
             backward: Program | None) -> None:
    """With ``CHECK``, check both programs, running them on the arrays of the tracing call
    (``values``; backward also reads what forward computes; none once the call is compiled,
    when ``explore`` runs the passes again)."""
    if CHECK and values:
        made = check(forward, [values[s] for s in forward.inputs], after)
        if backward is not None:
            known = {**values, **made}
            check(backward, [known[s] for s in backward.inputs], after)


def link(forward: Program, backward: Program | None,
         grad_slots: list[int]) -> tuple[Program, Program | None]:
    """Join the two programs: the forward values that backward reads (its inputs that are not
    gradients) become forward outputs, after the function's own."""
    if backward is None:
        return forward, None
    kept = [s for s in read_from_outside(backward) if s not in grad_slots]
    return (replace(forward, outputs=forward.outputs + kept),
            replace(backward, inputs=kept + grad_slots))
