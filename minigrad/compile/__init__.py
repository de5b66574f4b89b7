"""mg.compile: trace a function once, then replay it as a flat program of array operations.

Read in this order. The core, which is all the ideas:

- ``reference.py``: the textbook compiler in one page: trace a function into a program, drop
  dead code, interpret it. The rest is held to it by the tests.
- ``program.py``: the IR: ``Instr`` (one op over numbered array slots) and ``Program``
  (instructions, inputs, outputs, constants), printed one line per instruction, drawn with
  Graphviz, interpreted (``Program.interpret``) or run through generated code (``run``).
- ``trace.py``: the real tracer: the function runs on stand-ins that refuse to let Python read
  a value, and the backward program is recorded through ``mg.grad(create_graph=True)``;
  ``arrays.py`` records NumPy code on array arguments.
- ``passes.py``: the generic passes: dead-code elimination, common subexpressions, elementwise
  fusion into kernels (``kernels.py``), freeing each buffer after its last reader.
- ``check.py``: the rules every program keeps, checked after every pass in the tests.
- ``pipeline.py``: the one function that runs the passes, in order, on both programs.
- ``codegen.py``: a program as one straight-line Python function.
- ``compiled.py``: ``compile`` itself: one trace per signature, a small cache, and a compiled
  call as one node of the eager graph; ``guards.py`` keeps replays honest.

The speed work, in ``fast/``: each module says what it buys, with the figure that justified
it: splitting cross-entropy (``decompose.py``), a recurrent weight's gradient as one matmul
(``rewrites.py``), kernels as numba loops (``numba.py``, with ``fastmath.py``), instructions
written as NumPy code (``lowering.py``), and the allocator setting (``malloc.py``).

``from minigrad.compile import TraceError, TraceWarning, VerifyError`` to catch or filter
what tracing and ``verify=True`` report.
"""

from minigrad.compile.compiled import (
    CompiledCall,
    CompiledFunction,
    CompiledModule,
    Specialization,
    TraceWarning,
    compile,
)
from minigrad.compile.guards import VerifyError
from minigrad.compile.pipeline import ALL, PASSES
from minigrad.compile.program import Instr, Program
from minigrad.compile.trace import Traced, TraceError, is_tracing

__all__ = [
    "ALL", "CompiledCall", "CompiledFunction", "CompiledModule", "Instr", "PASSES", "Program",
    "Specialization", "TraceError", "TraceWarning", "Traced", "VerifyError", "compile",
    "is_tracing",
]
