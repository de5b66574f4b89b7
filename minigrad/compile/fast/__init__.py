"""The speed work of ``mg.compile``, apart from its core: read the core first.

Every module here makes programs faster without changing what they compute (the tests hold
each to the eager engine and to ``reference.py``), and each was kept for a figure measured by
``benchmarks/passes.py``, which times the compiled training step of a language model
(Embedding -> recurrent layer -> Linear; "big": vocabulary 1000, hidden 256, batch 20, 35
steps; "tiny": vocabulary 50, hidden 32, batch 1) with all passes and with each of these left
out, for an LSTM and for the minimal gated unit of ``examples/custom_cell.py`` (MGU), a user's
cell that splits its weight at every step. Milliseconds per step, with -> without:

- ``decompose.py``: cross-entropy split into the softmax's terms, so that the backward program
  reads the exponentials forward computed. Big LSTM: 21.8 against 23.2.
- ``rewrites.py``: ``gather``, a recurrent weight's gradient summed over the steps as one
  matmul (big LSTM: 21.8 against 25.6; tiny: 0.46 against 0.55); ``distribute``, sums moved
  inside concatenations and transposes so that ``gather`` finds them (big MGU: 16.5 against
  31.3; tiny MGU: 0.87 against 1.10).
- ``numba.py`` and ``fastmath.py``: each fused kernel as one loop compiled to machine code,
  with exp, tanh and sigmoid on float32 in arithmetic that vectorizes. Big LSTM: 21.8 against
  24.7; tiny: 0.46 against 1.16.
- ``lowering.py``: views, splits, matmuls and simple elementwise ops written out as NumPy code
  instead of calls of the ops, and stacks filled in place. Big LSTM: 21.8 against 22.8; tiny:
  0.46 against 0.55.
- ``malloc.py``: glibc keeps freed memory for the next call. Big LSTM: no page fault a step
  instead of 1,547, 29.6 ms against 32.9 (``benchmarks/page_faults.py``).

One run's figures (2026-12-04, the project's 2-core benchmark machine with NumPy 2.4), best of
15 steps; the machine is shared, and figures move by 5-10% from run to run.
"""
