"""The speed work of ``mg.compile``, apart from its core: read the core first.

Every module here makes programs faster without changing what they compute (the tests hold
each to the eager engine and to ``reference.py``), and each was kept for a figure measured by
``benchmarks/passes.py``, which times the compiled training step of a language model
(Embedding -> LSTM -> Linear; "big": vocabulary 1000, hidden 256, batch 20, 35 steps; "tiny":
vocabulary 50, hidden 32, batch 1) with all passes and with each of these left out:

- ``decompose.py``: cross-entropy split into the softmax's terms, so that the backward program
  reads the exponentials forward computed. Big: 30.2 -> 28.0 ms a step.
- ``rewrites.py``: ``distribute`` (sums moved inside concatenations and transposes, splits
  inside sums) and ``gather`` (a recurrent weight's gradient, summed over the steps, as one
  matmul). Big: 31.7 -> 28.0 ms, tiny: 0.59 -> 0.47 ms; ``distribute`` for a cell that splits
  its weight (the minimal gated unit, tiny: 1.23 -> 1.01 ms).
- ``numba.py`` and ``fastmath.py``: each fused kernel as one loop compiled to machine code,
  with exp, tanh and sigmoid on float32 in arithmetic that vectorizes. Big: 31.5 -> 28.0 ms,
  tiny: 1.19 -> 0.47 ms.
- ``lowering.py``: views, splits, matmuls and simple elementwise ops written out as NumPy code
  instead of calls of the ops, and stacks filled in place. Tiny: 0.59 -> 0.47 ms.
- ``malloc.py``: glibc keeps freed memory for the next call. Big: 1,281 page faults a step
  without it, none with it (``benchmarks/page_faults.py``).

The figures are one run's, on the project's 2-core benchmark machine, shared and noisy (5-10%).
"""
