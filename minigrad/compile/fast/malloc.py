"""The allocator setting: freed memory kept for the next call instead of given back.

What it buys: a replayed program allocates and frees the same large arrays at every call.
Memory given back to the system costs a page fault and a page of zeros per 4 KB when the next
call takes it again: the big step of ``benchmarks/lstm_lm_step.py``, compiled, faulted in
about 1,500 pages (6 MB) per step, and took 29.6 ms with this setting, 32.9 ms without
(``benchmarks/page_faults.py``).
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys


@functools.cache
def keep_freed_memory(megabytes: int = 64) -> bool:
    """Ask the C library's ``malloc`` to keep up to ``megabytes`` of freed memory at the top of
    the heap instead of giving it back to the system (glibc's ``mallopt(M_TOP_PAD)``), once per
    process; ``mg.compile`` calls it. Returns False, doing nothing, where ``malloc`` is not
    glibc's or ``MALLOC_TOP_PAD_`` already says what to keep."""
    if not sys.platform.startswith("linux") or "MALLOC_TOP_PAD_" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return mallopt(-2, megabytes << 20) == 1  # -2 is M_TOP_PAD in glibc's malloc.h
