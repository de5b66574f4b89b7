"""Per-op overhead of the engine: microseconds per op on a tiny tensor, where NumPy's own work
is negligible and what remains is bookkeeping (Function objects, graph recording, backward).

    python benchmarks/op_overhead.py [--ops 1000] [--repeats 100]

The chain: ``y`` starts as a shape-(1,) float32 leaf that requires grad, then alternates
``y = y * c`` and ``y = y + d`` for ``--ops`` ops, where ``c`` and ``d`` are shape-(1,) float32
tensors that do not require grad (so every op records one node with one differentiable input).

Columns:
  forward     build the chain with graph recording (grad mode on)
  backward    ``y.backward()`` through that chain (built untimed), divided by the number of ops
  no_grad     the same forward under ``no_grad()`` (nothing recorded)
  jvp         the chain in forward mode, ``func.jvp`` (``torch.func.jvp``) from a leaf that does
              not require grad: each op and its jvp rule, divided by the number of ops
The NumPy row runs the same chain on raw float32 arrays: the floor.

Each figure is the best of ``--repeats`` runs (the machine is noisy); the runs of all rows are
interleaved, so that every row sees the same background load, and the garbage collector is off
while the clock runs, as ``timeit`` does. If PyTorch is importable, the same chain runs in it
side by side (float32 CPU tensors of shape (1,)).
"""

from __future__ import annotations

import argparse
import gc
import platform
import time
from collections.abc import Callable

import numpy as np

import minigrad as mg

Timer = Callable[[], float]
COLUMNS = ("forward", "backward", "no_grad", "jvp")


def seconds(run: Callable[[], object]) -> float:
    """Wall time of one ``run()``; what it returns is freed after the clock stops."""
    gc.disable()
    start = time.perf_counter()
    result = run()
    elapsed = time.perf_counter() - start
    gc.enable()
    del result  # only now, so that freeing the chain is not timed
    return elapsed


def chain(y, c, d, n: int):
    """``n`` ops alternating ``y * c`` and ``y + d``; works on minigrad, NumPy and torch."""
    for i in range(n):
        y = y * c if i % 2 == 0 else y + d
    return y


def engine_timers(x, c, d, n: int, no_grad: Callable, jvp: Callable) -> dict[str, Timer]:
    """Timers for forward, backward, no_grad forward and jvp of an autograd engine's chain."""

    def plain():
        with no_grad():
            return chain(x, c, d, n)

    primal, tangent = x.detach(), x.detach() * 0 + 1

    return {
        "forward": lambda: seconds(lambda: chain(x, c, d, n)),
        "backward": lambda: seconds(chain(x, c, d, n).backward),
        "no_grad": lambda: seconds(plain),
        "jvp": lambda: seconds(lambda: jvp(lambda y: chain(y, c, d, n), (primal,), (tangent,))),
    }


def all_timers(n: int) -> dict[str, dict[str, Timer]]:
    """Timers per implementation: minigrad, NumPy and, if importable, PyTorch."""
    timers = {
        "minigrad": engine_timers(
            mg.tensor([1.0], requires_grad=True), mg.tensor([0.999]), mg.tensor([0.001]), n,
            mg.no_grad, mg.func.jvp,
        ),
        "NumPy": {"forward": lambda: seconds(lambda: chain(
            np.array([1.0], np.float32), np.array([0.999], np.float32),
            np.array([0.001], np.float32), n,
        ))},
    }
    try:
        import torch
    except ImportError:
        return timers
    timers["torch " + torch.__version__] = engine_timers(
        torch.tensor([1.0], requires_grad=True), torch.tensor([0.999]), torch.tensor([0.001]), n,
        torch.no_grad, torch.func.jvp,
    )
    return timers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1000, help="length of the chain")
    parser.add_argument("--repeats", type=int, default=100, help="runs; the best one counts")
    args = parser.parse_args()
    timers = all_timers(args.ops)
    best = {(name, col): float("inf") for name, cols in timers.items() for col in cols}
    # jvp after the rest: run among them, its thousands of short-lived tangents slow the
    # other columns down by a fifth
    for group in ([c for c in COLUMNS if c != "jvp"], ["jvp"]):
        for _ in range(args.repeats):
            for name, cols in timers.items():
                for col in group:
                    if col in cols:
                        best[name, col] = min(best[name, col], cols[col]())
    print(f"µs per op: a chain of {args.ops} ops (y * c, y + d alternating) on a (1,) float32 "
          f"tensor, best of {args.repeats}; Python {platform.python_version()}, "
          f"NumPy {np.__version__}")
    if not any(name.startswith("torch") for name in timers):
        print("(PyTorch not installed: no comparison)")
    print(f"{'':<20}" + "".join(f"{col:>10}" for col in COLUMNS))
    for name in timers:
        cells = [best.get((name, col)) for col in COLUMNS]
        print(f"{name:<20}" + "".join(
            f"{'-':>10}" if s is None else f"{s / args.ops * 1e6:10.2f}" for s in cells
        ))


if __name__ == "__main__":
    main()
