"""mg.compile: trace a function once, then replay it as a flat program of array operations.

The stages, one module each, in the order a call goes through them:

- ``trace.py``: run the function once on stand-ins for its tensors and record every op it
  applies (the forward program) and, through ``mg.grad(..., create_graph=True)``, every op
  its backward applies (the backward program). Reading a value in Python raises
  ``TraceError``, naming the line.
- ``program.py``: the IR those programs are written in: ``Instr`` (one op over numbered array
  slots) and ``Program`` (instructions, inputs, outputs, constants), printed one line per
  instruction, drawn with Graphviz, and replayed on arrays by ``Program.run``.
- ``passes.py``: rewrites of a program, each doing one thing and each switchable: splitting
  cross-entropy into parts that forward and backward share, dead-code elimination,
  common-subexpression elimination, moving sums inside concatenations and transposes (and
  splits inside sums), gathering a weight's gradient over all its uses into one matmul,
  elementwise fusion, and freeing each buffer after its last use.
- ``kernels.py``: the code that fusion generates: NumPy source, or numba loops when numba is
  installed, cached on disk; ``fastmath.py`` gives those loops exp, tanh and sigmoid on
  float32 in arithmetic that vectorizes.
- ``codegen.py``: the last stage: a program becomes one straight-line Python function, which
  ``Program.run`` calls (``Program.code`` shows it).
- ``compiled.py``: ``compile`` itself: one trace per signature, a small cache, and a compiled
  call as one node of the eager graph.

``from minigrad.compile import TraceError, TraceWarning, VerifyError`` to catch or filter
what tracing and ``verify=True`` report.
"""

from minigrad.compile.compiled import (
    CompiledCall,
    CompiledFunction,
    CompiledModule,
    Specialization,
    TraceWarning,
    VerifyError,
    compile,
)
from minigrad.compile.passes import ALL, PASSES
from minigrad.compile.program import Instr, Program
from minigrad.compile.trace import Traced, TraceError, is_tracing

__all__ = [
    "ALL", "CompiledCall", "CompiledFunction", "CompiledModule", "Instr", "PASSES", "Program",
    "Specialization", "TraceError", "TraceWarning", "Traced", "VerifyError", "compile",
    "is_tracing",
]
