"""Time one training step of an LSTM language model: forward, backward and an SGD update.

    python benchmarks/lstm_lm_step.py [--repeats 20]

Model: Embedding(V -> E) -> LSTM(E -> H) -> Linear(H -> V), cross-entropy over every step,
float32. Two configurations: "big" (V=1000, E=128, H=256, batch 20, 35 steps) and "tiny"
(V=50, E=16, H=32, batch 1, 35 steps). Prints the best and median milliseconds per step and
the peak memory that tracemalloc sees during one step (NumPy reports its allocations to it).
The "MGU" rows replace the LSTM by the user cell of ``examples/custom_cell.py`` (a minimal
gated unit written on ``Cell``), eager and compiled.
The "compiled" row runs the same loss through ``mg.compile``; its "1st call" column is the
time of the call that traces it and compiles its kernels (numba's are cached on disk, so a
second run of this script pays less). If PyTorch is importable, the same steps run side by
side in it: once with the LSTM cell written from the same ops as ours, once with its fused
``nn.LSTM``. If JAX is importable (``pip install jax``, CPU build; not a dependency of
minigrad), a reference row runs the same step as one ``jax.jit`` function with the LSTM as a
``lax.scan``; its "1st call" column is the time JAX takes to trace and compile it.

Threads come from the environment: compare like with like, e.g.
``OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/lstm_lm_step.py`` (NumPy's BLAS
and PyTorch each on one thread). On a busy machine, multithreaded BLAS mostly spins.
JAX ignores these variables, and ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false`` did not keep
it (jax 0.10.2) from computing on two threads at once; it sizes its thread pool from the CPUs
the process may use, so for a one-core comparison of every row pin the process as well:
``OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 taskset -c 0 python benchmarks/lstm_lm_step.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from functools import partial

import numpy as np

import minigrad as mg
from minigrad.compile import ALL
from minigrad.models import LSTMCell, Recurrent
from minigrad.nn import functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
from custom_cell import FusedMGU  # noqa: E402  (a user's cell, as the example writes it)

CONFIGS = {
    "big": dict(vocab=1000, embed=128, hidden=256, batch=20, steps=35),
    "tiny": dict(vocab=50, embed=16, hidden=32, batch=1, steps=35),
}


class LanguageModel(mg.nn.Module):
    """Embedding -> a recurrent layer of ``cell`` (an LSTM by default) -> Linear, every step."""

    def __init__(self, vocab: int, embed: int, hidden: int, cell: type = LSTMCell) -> None:
        super().__init__()
        self.embed = mg.nn.Embedding(vocab, embed)
        self.rnn = Recurrent(cell, embed, hidden)
        self.out = mg.nn.Linear(hidden, vocab)

    def forward(self, ids: np.ndarray) -> mg.Tensor:
        h, _ = self.rnn(self.embed(ids))
        return self.out(h)


def minigrad_step(cfg: dict, compiled: bool = False, cell: type = LSTMCell,
                  passes: tuple[str, ...] = ALL) -> Callable[[], None]:
    """One training step of minigrad's model on fixed random data; with ``compiled``, the
    loss (forward and backward) runs as programs traced by ``mg.compile`` (with ``passes``)
    at the first call."""
    mg.manual_seed(0)
    model = LanguageModel(cfg["vocab"], cfg["embed"], cfg["hidden"], cell)
    opt = mg.optim.SGD(model.parameters(), lr=0.1)
    rng = np.random.default_rng(0)
    x = rng.integers(0, cfg["vocab"], (cfg["steps"], cfg["batch"]))
    y = rng.integers(0, cfg["vocab"], (cfg["steps"], cfg["batch"]))

    def loss_of(x: np.ndarray, y: np.ndarray) -> mg.Tensor:
        return F.cross_entropy(model(x).reshape(-1, cfg["vocab"]), y.reshape(-1))

    loss_fn = mg.compile(loss_of, passes=passes, fallback=False) if compiled else loss_of

    def step() -> None:
        loss = loss_fn(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def torch_steps(cfg: dict) -> dict[str, Callable[[], None]]:
    """The same step in PyTorch: the LSTM cell from ops, and the fused nn.LSTM."""
    import torch

    torch.manual_seed(0)
    V, E, H = cfg["vocab"], cfg["embed"], cfg["hidden"]
    x = torch.randint(0, V, (cfg["steps"], cfg["batch"]))
    y = torch.randint(0, V, (cfg["steps"], cfg["batch"]))

    def ops_lstm(emb: torch.Tensor, cell: torch.nn.LSTMCell) -> torch.Tensor:
        h = c = torch.zeros(emb.shape[1], H)
        xp = emb @ cell.weight_ih.T + cell.bias_ih
        outs = []
        for t in range(emb.shape[0]):
            i, f, g, o = (xp[t] + h @ cell.weight_hh.T + cell.bias_hh).chunk(4, dim=-1)
            c = f.sigmoid() * c + i.sigmoid() * g.tanh()
            h = o.sigmoid() * c.tanh()
            outs.append(h)
        return torch.stack(outs)

    def make(fused: bool) -> Callable[[], None]:
        embed, out = torch.nn.Embedding(V, E), torch.nn.Linear(H, V)
        rnn = torch.nn.LSTM(E, H) if fused else torch.nn.LSTMCell(E, H)
        params = [*embed.parameters(), *rnn.parameters(), *out.parameters()]
        opt = torch.optim.SGD(params, lr=0.1)

        def step() -> None:
            emb = embed(x)
            h = rnn(emb)[0] if fused else ops_lstm(emb, rnn)
            loss = torch.nn.functional.cross_entropy(out(h).reshape(-1, V), y.reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()

        return step

    return {"torch, LSTM from ops": make(False), "torch, fused nn.LSTM": make(True)}


def jax_step(cfg: dict) -> Callable[[], None]:
    """The same step in JAX: the LSTM as a ``lax.scan`` over time (the four gates from one
    matmul per step, the input projection of all steps at once, b_ih and b_hh folded into one
    bias), then ``value_and_grad`` and the SGD update, all in one ``jax.jit`` that takes the
    parameters (donated) and returns the new ones with the loss."""
    import jax
    import jax.numpy as jnp

    V, E, H = cfg["vocab"], cfg["embed"], cfg["hidden"]
    keys = jax.random.split(jax.random.key(0), 4)
    params = {"embed": jax.random.normal(keys[0], (V, E)),
              "w_ih": jax.random.uniform(keys[1], (E, 4 * H), minval=-H**-0.5, maxval=H**-0.5),
              "w_hh": jax.random.uniform(keys[2], (H, 4 * H), minval=-H**-0.5, maxval=H**-0.5),
              "b": jnp.zeros(4 * H),
              "w_out": jax.random.uniform(keys[3], (H, V), minval=-H**-0.5, maxval=H**-0.5),
              "b_out": jnp.zeros(V)}
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.integers(0, V, (cfg["steps"], cfg["batch"])))
    y = jnp.asarray(rng.integers(0, V, (cfg["steps"], cfg["batch"])))

    def loss_of(p: dict, x: jax.Array, y: jax.Array) -> jax.Array:
        def lstm_step(state: tuple, xp_t: jax.Array) -> tuple:
            h, c = state
            i, f, g, o = jnp.split(xp_t + h @ p["w_hh"], 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (h, c), h

        xp = p["embed"][x] @ p["w_ih"] + p["b"]
        zeros = jnp.zeros((x.shape[1], H))
        _, hs = jax.lax.scan(lstm_step, (zeros, zeros), xp)
        logp = jax.nn.log_softmax(hs @ p["w_out"] + p["b_out"])
        return -jnp.take_along_axis(logp, y[..., None], axis=-1).mean()

    @partial(jax.jit, donate_argnums=0)
    def train(p: dict, x: jax.Array, y: jax.Array) -> tuple[dict, jax.Array]:
        loss, grads = jax.value_and_grad(loss_of)(p, x, y)
        return jax.tree.map(lambda w, dw: w - 0.1 * dw, p, grads), loss

    def step() -> None:
        nonlocal params
        params, _ = jax.block_until_ready(train(params, x, y))

    return step


def measure(step: Callable[[], None], repeats: int) -> tuple[float, float, float]:
    """Best and median ms per step over ``repeats`` runs, and peak MiB of one step."""
    step()  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    tracemalloc.start()
    step()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return min(times), statistics.median(times), peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    try:
        import torch
    except ImportError:
        torch = None
        print("(PyTorch not installed: no PyTorch rows)")
    try:
        import jax
    except ImportError:
        jax = None
        print("(JAX not installed: no JAX row)")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"threads: OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}, "
          f"torch {torch.get_num_threads() if torch else '-'}, "
          f"CPUs this process may use {cpus}")
    print(f"{'config':<6} {'implementation':<24} {'best ms':>8} {'median ms':>10} {'peak MiB':>9} "
          f"{'1st call s':>10}")
    for name, cfg in CONFIGS.items():
        runs = {"minigrad": minigrad_step(cfg), "minigrad, compiled": minigrad_step(cfg, True),
                "minigrad MGU": minigrad_step(cfg, cell=FusedMGU),
                "minigrad MGU, compiled": minigrad_step(cfg, True, FusedMGU)}
        if torch is not None:
            runs.update(torch_steps(cfg))
        if jax is not None:
            runs["jax, jit + lax.scan"] = jax_step(cfg)
        for label, step in runs.items():
            first = "-"
            if "compiled" in label or "jit" in label:  # tracing and compiling
                start = time.perf_counter()
                step()
                first = f"{time.perf_counter() - start:.2f}"
            best, median, peak = measure(step, args.repeats)
            peak_text = f"{peak:9.1f}" if label.startswith("minigrad") else f"{'-':>9}"
            print(f"{name:<6} {label:<24} {best:8.2f} {median:10.2f} {peak_text} {first:>10}")


if __name__ == "__main__":
    main()
