"""Memory and time of backpropagation through time: an LSTM layer, plain, checkpointed, compiled.

    OPENBLAS_NUM_THREADS=1 python benchmarks/memory.py [--steps 100 500 1000 2000 5000]
        [--repeats 3] [--plot PATH] [--batch 16] [--input 32] [--hidden 128] ...

The layer is ``minigrad.models.LSTM(--input, --hidden)`` (32 and 128 by default) in float32
over an input of shape ``(T, --batch, --input)`` (batch 16) that does not require grad, for
each T of ``--steps``; the loss is ``output.mean()``, which keeps nothing beyond the output,
so that what is measured is the layer's own memory (a real model's head, a Linear over every
step, would keep O(T) more that checkpointing the LSTM does not reduce). One training step is
``loss = f(x); loss.backward()`` with the parameters' gradients cleared before. Variants:

  plain        eager, ``checkpoint=None``: backward keeps every step's activations
  checkpoint   eager, ``checkpoint="sqrt"``: segments of ceil(sqrt(T)) steps under
               ``mg.checkpoint``; backward recomputes one segment at a time
  compiled     ``mg.compile`` of the loss (forward and loss traced into one program, backward
               into another, as in ``benchmarks/lstm_lm_step.py``) with ``checkpoint=None``:
               ``mg.checkpoint`` raises inside ``mg.compile`` by design, so there is no
               compiled checkpointed row. Tracing unrolls all T steps and grows faster than
               T (on a busy two-core machine: about 30 s at T=2000, 270 s at T=5000), so this
               row stops at ``--compile-max`` steps (2000 by default; the cells above it print
               ``-``); its "1st s" column is the call that traces and compiles (numba's
               kernels are cached on disk, so a second run pays less)

Columns, per variant:
  MiB    peak traced memory (``tracemalloc``): tracing starts just before the forward, after a
         garbage collection, the model and the input made before; the peak is read after
         backward. NumPy reports its arrays' allocations to tracemalloc, so this is the
         activations, the gradients and the temporaries of one step; not the parameters, the
         input, or memory freed before tracing started
  ms     forward plus backward, in milliseconds: the best of ``--repeats`` runs WITHOUT
         tracemalloc, which slows every allocation down (the runs of the variants interleaved,
         so that they see the same background load; the garbage collector off while the clock
         runs, as ``timeit`` does; the traced run before them is the warm-up)
  ckpt/plain  the checkpointed variant's memory and time over the plain one's; "gc on" is the
         time ratio of runs with the garbage collector on, as a program runs by default (a
         plain graph is more Python objects for the collector to visit, so plain loses more)

The issue's goals for the checkpointed layer are printed below the table against what was
measured: at T=1000 a peak <= 0.2x plain's, at T=5000 <= 0.1x, and a time <= 1.4x plain's.

Below that, for T = ``--report-steps`` (1000), ``mg.memory_report(loss).total`` (what the
graph keeps for backward after the forward, each buffer once) for each variant, next to what
tracemalloc sees held at the same moment in another forward (allocated since it started and
not freed), split from a snapshot into NumPy's arrays, which the report should match, and the
rest (Python objects: the graph's nodes and tensors, which the report does not count); then the
peak, and how much backward added on top of what the forward held. Last, where the
checkpointed graph's total is, by op, and the size of one (T, B, H) array, to read its peak by.

Threads come from the environment. The matmuls here are small ((16, 128) by (128, 512) per
step), and on a busy machine a multithreaded BLAS spins waiting for its second thread: with
other jobs on the two cores, the same step took from 0.4 to 10 s and the ratios meant nothing.
Compare on one thread: ``OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/memory.py``
(the header prints the setting). The peaks do not depend on it.

Every row runs under the allocator setting that ``mg.compile`` makes once per process (glibc
keeps up to 64 MB of freed memory, ``minigrad/compile/fast/malloc.py``), set at the start so
that the eager rows do not time the same work under two settings. A full default run took
90 s on a busy two-core machine with one BLAS thread, a third of it tracing the compiled row.
With ``--plot PATH`` (matplotlib), the peaks against T are drawn to PATH.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import platform
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import minigrad as mg
from minigrad.compile.fast.malloc import keep_freed_memory
from minigrad.models import LSTM

VARIANTS = ("plain", "checkpoint", "compiled")
MiB = 2**20


@dataclass
class Case:
    """One variant at one T: ``loss()`` runs the forward and the loss; ``first`` is the
    seconds of the compiled variant's first call (trace and compile), None for eager."""

    loss: Callable[[], mg.Tensor]
    params: list[mg.Tensor]
    first: float | None = None


@dataclass
class Result:
    """What was measured of one variant at one T."""

    peak: float  # bytes
    held: float  # bytes held after the forward
    seconds: float = math.inf
    seconds_gc: float = math.inf  # the same with the garbage collector on
    first: float | None = None


def make_case(variant: str, x: mg.Tensor, args: argparse.Namespace) -> Case:
    """The layer (same weights for every variant) and its loss function on ``x``."""
    mg.manual_seed(0)
    lstm = LSTM(args.input, args.hidden, checkpoint="sqrt" if variant == "checkpoint" else None)

    def loss_of(x: mg.Tensor) -> mg.Tensor:
        out, _ = lstm(x)
        return out.mean()

    if variant != "compiled":
        return Case(lambda: loss_of(x), list(lstm.parameters()))
    compiled = mg.compile(loss_of, fallback=False)
    start = time.perf_counter()
    compiled(x).backward()  # traces and compiles both programs
    first = time.perf_counter() - start
    return Case(lambda: compiled(x), list(lstm.parameters()), first)


def clear(case: Case) -> None:
    for p in case.params:
        p.grad = None


def traced(case: Case) -> Result:
    """One step under tracemalloc: peak, and what is held after the forward."""
    clear(case)
    gc.collect()
    gc.disable()
    try:
        tracemalloc.start()
        loss = case.loss()
        held = tracemalloc.get_traced_memory()[0]
        loss.backward()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    finally:
        gc.enable()
    del loss
    return Result(peak, held, first=case.first)


def seconds(case: Case, collector: bool = False) -> float:
    """Wall time of one step, without tracemalloc, the garbage collector off (on with
    ``collector``)."""
    clear(case)
    gc.collect()
    if not collector:
        gc.disable()
    loss = None
    try:
        start = time.perf_counter()
        loss = case.loss()
        loss.backward()
        return time.perf_counter() - start
    finally:
        gc.enable()
        del loss


def measure(steps: int, args: argparse.Namespace) -> tuple[dict[str, Result], list[str]]:
    """Every variant at ``steps``: one traced run each, then ``--repeats`` timed rounds; at
    ``--report-steps``, also the memory_report comparison (``report``)."""
    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((steps, args.batch, args.input)).astype(np.float32))
    variants = [v for v in VARIANTS if v != "compiled" or steps <= args.compile_max]
    cases = {v: make_case(v, x, args) for v in variants}
    results = {v: traced(case) for v, case in cases.items()}
    for _ in range(args.repeats):
        for v, case in cases.items():
            results[v].seconds = min(results[v].seconds, seconds(case))
            results[v].seconds_gc = min(results[v].seconds_gc, seconds(case, collector=True))
    return results, report(steps, cases, results, args) if steps == args.report_steps else []


def report(steps: int, cases: dict[str, Case], results: dict[str, Result],
           args: argparse.Namespace) -> list[str]:
    """memory_report(loss).total after the forward of each variant, beside what tracemalloc
    sees held then (another forward, traced up to a snapshot after it: NumPy's arrays apart
    from the rest), the peak and what backward added to the held memory in the traced run;
    then where the checkpointed graph's total is, by op."""
    lines = [f"T={steps}, after the forward: mg.memory_report(loss).total against tracemalloc",
             f"{'':<12}{'report MiB':>12}{'held: arrays':>14}{'other':>8}{'peak MiB':>10}"
             f"{'backward adds':>15}"]
    by_op: dict[str, list[int]] = {}
    for v, case in cases.items():
        clear(case)
        gc.collect()
        tracemalloc.start()
        loss = case.loss()
        snapshot = tracemalloc.take_snapshot()
        tracemalloc.stop()
        arrays = sum(t.size for t in snapshot.traces if t.domain == np.lib.tracemalloc_domain)
        other = sum(t.size for t in snapshot.traces) - arrays
        del snapshot
        kept = mg.memory_report(loss)  # untraced: a report makes Python objects of its own
        r = results[v]
        lines.append(f"{v:<12}{kept.total / MiB:>12.1f}{arrays / MiB:>14.1f}{other / MiB:>8.1f}"
                     f"{r.peak / MiB:>10.1f}{(r.peak - r.held) / MiB:>15.1f}")
        if v == "checkpoint":
            for rec in kept.records:
                count_bytes = by_op.setdefault(rec.op, [0, 0])
                count_bytes[0] += 1
                count_bytes[1] += rec.bytes
        loss.backward()
        del loss, kept
    lines.append("(held: allocated since the forward started and alive after it: NumPy's "
                 "arrays, and other memory,\n Python objects such as the graph's nodes and "
                 "tensors; backward adds: the peak minus what was held\n when backward "
                 "started)")
    if by_op:
        top = sorted(((b, n, op) for op, (n, b) in by_op.items() if b >= 0.05 * MiB),
                     reverse=True)
        size = steps * args.batch * args.hidden * np.dtype(np.float32).itemsize
        lines.append("checkpoint: the report's total by op: " + ", ".join(
            f"{op} {b / MiB:.1f} MiB ({n} op{'s' * (n > 1)})" for b, n, op in top))
        lines.append(f"one (T, B, H) float32 array, the size of the output and of its gradient: "
                     f"{size / MiB:.1f} MiB")
    return lines


def table(all_results: dict[int, dict[str, Result]]) -> list[str]:
    head1 = f"{'':>6}" + f"{'plain':>17}{'checkpoint=sqrt':>23}{'compiled':>24}{'ckpt/plain':>17}"
    head2 = (f"{'T':>6}{'MiB':>9}{'ms':>8}{'k':>6}{'MiB':>9}{'ms':>8}"
             f"{'MiB':>9}{'ms':>8}{'1st s':>7}{'mem':>7}{'time':>7}{'gc on':>7}")
    lines = [head1, head2]
    for steps, res in all_results.items():
        p, c, k = res["plain"], res["checkpoint"], math.ceil(math.sqrt(steps))
        row = (f"{steps:>6}{p.peak / MiB:>9.1f}{p.seconds * 1e3:>8.0f}"
               f"{k:>6}{c.peak / MiB:>9.1f}{c.seconds * 1e3:>8.0f}")
        if "compiled" in res:
            m = res["compiled"]
            row += f"{m.peak / MiB:>9.1f}{m.seconds * 1e3:>8.0f}{m.first:>7.1f}"
        else:
            row += f"{'-':>9}{'-':>8}{'-':>7}"
        row += (f"{c.peak / p.peak:>6.2f}x{c.seconds / p.seconds:>6.2f}x"
                f"{c.seconds_gc / p.seconds_gc:>6.2f}x")
        lines.append(row)
    return lines


def goals(all_results: dict[int, dict[str, Result]]) -> list[str]:
    lines = []
    for steps, bound in ((1000, 0.2), (5000, 0.1)):
        if steps in all_results:
            ratio = all_results[steps]["checkpoint"].peak / all_results[steps]["plain"].peak
            lines.append(f"goal: T={steps} checkpointed peak <= {bound}x plain: {ratio:.2f}x "
                         f"({'met' if ratio <= bound else 'MISSED'})")
    for label, field in (("gc off", "seconds"), ("gc on", "seconds_gc")):
        worst = max(getattr(res["checkpoint"], field) / getattr(res["plain"], field)
                    for res in all_results.values())
        lines.append(f"goal: checkpointed time <= 1.4x plain ({label}): at most {worst:.2f}x "
                     f"over these T ({'met' if worst <= 1.4 else 'MISSED'})")
    return lines


def plot(all_results: dict[int, dict[str, Result]], args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    labels = {"plain": "eager, checkpoint=None", "checkpoint": 'eager, checkpoint="sqrt"',
              "compiled": "mg.compile, checkpoint=None"}
    styles = {"plain": ("o-", "C0"), "checkpoint": ("s-", "C1"), "compiled": ("^--", "C2")}
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
    for v in VARIANTS:
        ts = [t for t, res in all_results.items() if v in res]
        if not ts:
            continue
        peaks = [all_results[t][v].peak / MiB for t in ts]
        style, color = styles[v]
        ax.plot(ts, peaks, style, color=color, label=labels[v])
        ratio = peaks[-1] / (all_results[ts[-1]]["plain"].peak / MiB)
        text = f"{peaks[-1]:.0f} MiB" + ("" if v == "plain" else f" ({ratio:.2f}x plain)")
        ax.annotate(text, (ts[-1], peaks[-1]), textcoords="offset points",
                    xytext=(6, -3), fontsize=9, color=color)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ts = list(all_results)
    ax.set_xticks(ts, [str(t) for t in ts])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_xlim(min(ts) / 1.3, max(ts) * 2.6)
    ax.set_xlabel("sequence length T (steps)")
    ax.set_ylabel("peak traced memory (MiB)")
    ax.set_title(f"LSTM forward + backward: peak memory (batch {args.batch}, input "
                 f"{args.input}, hidden {args.hidden}, float32)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(args.plot)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="+", default=[100, 500, 1000, 2000, 5000],
                        help="sequence lengths T")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs; the best one counts")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--input", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--compile-max", type=int, default=2000,
                        help="the longest T the compiled row traces")
    parser.add_argument("--report-steps", type=int, default=1000,
                        help="the T of the memory_report comparison (one of --steps)")
    parser.add_argument("--plot", default=None, help="save a plot of the peaks to this path")
    args = parser.parse_args()
    keep_freed_memory()  # what mg.compile sets: every row under the same allocator

    start = time.perf_counter()
    all_results, lines = {}, []
    for steps in sorted(args.steps):
        all_results[steps], more = measure(steps, args)
        lines += more
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"LSTM layer, batch {args.batch}, input {args.input}, hidden {args.hidden}, float32; "
          f"loss = output.mean(); peak by tracemalloc, ms best of {args.repeats} untraced")
    print(f"Python {platform.python_version()}, NumPy {np.__version__}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
          f"CPUs this process may use {cpus}")
    print()
    print("\n".join(table(all_results)))
    if any(t > args.compile_max for t in all_results):
        print(f"(compiled: only T <= --compile-max {args.compile_max}; tracing unrolls every "
              "step)")
    print()
    print("\n".join(goals(all_results)))
    if lines:
        print()
        print("\n".join(lines))
    print()
    print(f"whole run: {time.perf_counter() - start:.0f} s")
    if args.plot:
        plot(all_results, args)
        print(f"plot: {args.plot}")


if __name__ == "__main__":
    main()
