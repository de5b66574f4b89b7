"""Page faults and time per replayed step, with and without the allocator setting of
``minigrad/compile/fast/malloc.py``.

    python benchmarks/page_faults.py [--steps 20]

A compiled language-model step (the "big" configuration of ``lstm_lm_step.py``: vocabulary
1000, embedding 128, hidden 256, batch 20, 35 steps) allocates and frees the same large arrays
at every call. Each row runs it in a fresh process: once as ``mg.compile`` sets glibc's
``M_TOP_PAD`` (64 MB of freed memory kept at the top of the heap), once with glibc's default
(128 KB, set through ``MALLOC_TOP_PAD_``, which ``mg.compile`` then leaves alone). It prints
the minor page faults per step (each a 4 KB page the system zeroes and maps again) and the
median milliseconds per step. Linux with glibc only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

STEP = """
import resource, statistics, time
import numpy as np
import minigrad as mg
from minigrad.models import RNNLM
mg.manual_seed(0)
model = RNNLM(1000, 128, 256)
loss = mg.compile(model.loss, fallback=False)
ids = np.random.default_rng(0).integers(0, 1000, (2, 35, 20))
times = []
for k in range({warmup} + {steps}):
    if k == {warmup}:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    model.zero_grad()
    loss(*ids)[0].backward()
    times.append(time.perf_counter() - start)
faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / {steps}
print(faults, statistics.median(times[{warmup}:]) * 1e3)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="steps measured (default: 20)")
    args = parser.parse_args()
    if not sys.platform.startswith("linux"):
        sys.exit("page_faults.py: Linux with glibc only")
    script = STEP.format(warmup=3, steps=args.steps)
    print(f"{'malloc top pad':<28} {'faults/step':>12} {'ms/step':>9}")
    for label, pad in (("64 MB (set by mg.compile)", None), ("128 KB (glibc's default)",
                                                               str(128 * 1024))):
        env = {k: v for k, v in os.environ.items() if k != "MALLOC_TOP_PAD_"}
        if pad is not None:
            env["MALLOC_TOP_PAD_"] = pad
        run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                             env=env, check=True)
        faults, ms = map(float, run.stdout.split())
        print(f"{label:<28} {faults:>12.0f} {ms:>9.2f}")


if __name__ == "__main__":
    main()
