"""What each of mg.compile's speed passes buys: the language-model step with each switched off.

    python benchmarks/passes.py [--repeats 20] [--configs big tiny]

Times the compiled training step of ``lstm_lm_step.py`` (Embedding -> LSTM -> Linear,
cross-entropy, SGD; its "big" and "tiny" configurations, and the same with the minimal gated
unit of ``examples/custom_cell.py``, a user's cell that splits its weight) with all the passes of
``minigrad.compile.pipeline.ALL``, then with each pass of ``minigrad/compile/fast/`` left out
in turn, then with the generic passes alone (dce, cse, fuse, free) and with none. Prints the
best and median milliseconds per step; the machine is shared, so compare rows of one run.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lstm_lm_step import CONFIGS, FusedMGU, measure, minigrad_step  # noqa: E402

from minigrad.compile.pipeline import ALL, GENERIC  # noqa: E402
from minigrad.models import LSTMCell  # noqa: E402

FAST = [name for name in ALL if name not in GENERIC]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    args = parser.parse_args()
    rows = [("all passes", ALL)]
    rows += [(f"without {name}", tuple(p for p in ALL if p != name)) for name in FAST]
    rows += [("generic only", GENERIC), ("no passes", ())]
    for config in args.configs:
        for cell, cell_type in (("LSTM", LSTMCell), ("MGU", FusedMGU)):
            print(f"{f'{config} {cell}, ms per step':<24} {'best':>6} {'median':>7}")
            for label, passes in rows:
                step = minigrad_step(CONFIGS[config], True, cell_type, passes)
                best, median, _ = measure(step, args.repeats)
                print(f"  {label:<22} {best:>6.2f} {median:>7.2f}")


if __name__ == "__main__":
    main()
