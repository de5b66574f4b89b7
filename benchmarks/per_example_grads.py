"""Per-example gradients of an LSTM classifier: ``vmap(grad(loss))`` against a loop of ``grad``.

    python benchmarks/per_example_grads.py [--repeats 5] [--batch 64] [--steps 20] ...

The model is ``minigrad.models.SequenceClassifier`` (embedding 32, one LSTM layer of 64,
``pooling='last'``, no lengths: the last step's hidden state goes to a linear layer with 3
classes) over a vocabulary of 50 ids, in float32; a batch is ids ``(B, T)`` int64 and labels
``(B,)``. ``loss(params, ids_i, label_i)`` is the cross-entropy of ONE example, the model called
with ``mg.func.functional_call`` on ``ids_i[None]`` (a batch of one); ``params`` is the dict of
its detached parameters. Rows:

  minigrad vmap      ``vmap(grad(loss), in_dims=(None, 0, 0))(params, ids, labels)``: every call
                     traces ``grad(loss)`` on the first example and replays its ops on the batch
                     (the trace is part of the time)
  minigrad loop      ``grad(loss)`` once per example, in Python
  torch loop         ``torch.func.grad`` once per example, on the same weights in an
                     ``nn.Embedding`` + ``nn.LSTM`` + ``nn.Linear`` model (CPU, its default
                     number of threads)
  torch vmap         ``torch.func.vmap(torch.func.grad(...))``; if torch refuses to batch its
                     fused LSTM, the reason is printed instead of a time

Each figure is the best of ``--repeats`` runs after one warm-up, in milliseconds per batch (the
runs of all rows interleaved, so that they see the same background load), with the speedup
over the minigrad loop; twice: with the garbage collector off while the clock runs, as
``timeit`` does, and on, as in a training script (the loops make many short-lived objects, so
the collector costs them more). Objects alive before the timing (torch's among them) are
frozen out of the collector's reach, and each run starts after a collection. Below the table:
the largest difference between the vmap and the loop results over every parameter's
per-example gradient (and, with torch, between minigrad and torch). Without PyTorch the torch
rows are skipped.
"""

from __future__ import annotations

import argparse
import gc
import platform
import re
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

import minigrad as mg
from minigrad import func
from minigrad.models import SequenceClassifier
from minigrad.nn import functional as F

Row = tuple[str, Callable[[], Any] | None, str]  # label, run (None: not timed), note


def seconds(run: Callable[[], object], collector: bool) -> float:
    """Wall time of one ``run()`` after a collection, with the garbage collector on or off
    while the clock runs; what ``run`` returns is freed after the clock stops."""
    gc.collect()
    if not collector:
        gc.disable()
    result = None
    try:
        start = time.perf_counter()
        result = run()
        return time.perf_counter() - start
    finally:
        gc.enable()
        del result


def batch(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray]:
    """Token ids ``(B, T)`` and labels ``(B,)``, both int64."""
    rng = np.random.default_rng(args.seed)
    return (rng.integers(0, args.vocab, (args.batch, args.steps)).astype(np.int64),
            rng.integers(0, args.classes, args.batch).astype(np.int64))


def minigrad_rows(args: argparse.Namespace, ids: np.ndarray, labels: np.ndarray
                  ) -> tuple[SequenceClassifier, list[Row], dict[str, np.ndarray]]:
    """The model, the two minigrad rows, and the per-example gradients of each (NumPy arrays
    ``(B, *shape)`` by parameter name; ``main`` prints how far apart they are)."""
    mg.manual_seed(args.seed)
    model = SequenceClassifier(args.vocab, args.embed, args.hidden, args.classes)
    params = {name: p.detach() for name, p in model.named_parameters()}
    ids_t, labels_t = mg.tensor(ids), mg.tensor(labels)

    def loss(params: dict, ids_i: mg.Tensor, label_i: mg.Tensor) -> mg.Tensor:
        logits = func.functional_call(model, params, (ids_i[None],))  # a batch of one
        return F.cross_entropy(logits, label_i[None])

    per_example = func.vmap(func.grad(loss), in_dims=(None, 0, 0))
    one = func.grad(loss)

    def vmapped() -> dict[str, mg.Tensor]:
        return per_example(params, ids_t, labels_t)

    def loop() -> list[dict[str, mg.Tensor]]:
        return [one(params, ids_t[b], labels_t[b]) for b in range(args.batch)]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        by_vmap = {name: g.data for name, g in vmapped().items()}
    note = "; ".join(sorted({str(w.message).split(";")[0] for w in caught}))
    by_loop = {name: np.stack([g[name].data for g in loop()]) for name in params}
    return model, [("minigrad  vmap(grad(loss))", vmapped, note),
                   ("minigrad  loop of grad(loss)", loop, "")], {
        "vmap": by_vmap, "loop": by_loop}


def torch_rows(torch: Any, model: SequenceClassifier, args: argparse.Namespace,
               ids: np.ndarray, labels: np.ndarray) -> tuple[list[Row], dict[str, np.ndarray]]:
    """The torch rows on the same weights, and torch's per-example gradients (by minigrad's
    parameter names)."""
    from torch import nn
    from torch.func import functional_call, grad, vmap

    class Classifier(nn.Module):
        """What SequenceClassifier(pooling='last') does without lengths: time-major LSTM over
        the embeddings, the last step's hidden state into the linear layer."""

        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Embedding(args.vocab, args.embed)
            self.lstm = nn.LSTM(args.embed, args.hidden)
            self.out = nn.Linear(args.hidden, args.classes)

        def forward(self, ids: Any) -> Any:
            states, _ = self.lstm(self.embed(ids.T))  # (T, B, H)
            return self.out(states[-1])

    net = Classifier()
    names = {n.replace("forward_layers.0.", "lstm."): n for n, _ in model.named_parameters()}
    with torch.no_grad():
        for name, p in net.named_parameters():  # same layout and gate order (i, f, g, o)
            p.copy_(torch.from_numpy(dict(model.named_parameters())[names[name]].data))
    params = {name: p.detach() for name, p in net.named_parameters()}
    ids_t, labels_t = torch.from_numpy(ids), torch.from_numpy(labels)

    def loss(params: dict, ids_i: Any, label_i: Any) -> Any:
        logits = functional_call(net, params, (ids_i[None],))
        return nn.functional.cross_entropy(logits, label_i[None])

    one = grad(loss)

    def loop() -> list[dict]:
        return [one(params, ids_t[b], labels_t[b]) for b in range(args.batch)]

    def vmapped() -> dict:
        return vmap(grad(loss), in_dims=(None, 0, 0))(params, ids_t, labels_t)

    by_loop = loop()
    rows: list[Row] = [("torch     loop of torch.func.grad", loop, "")]
    label = "torch     vmap(torch.func.grad)"
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            vmapped()
    except Exception as e:  # noqa: BLE001 - any refusal is the result to print
        reason = str(e).strip().splitlines()[0] if str(e).strip() else ""
        rows.append((label, None, f"{type(e).__name__}: {reason}"))
    else:
        found = [re.search(r"batching rule for (\S+?)[.\s]", str(w.message)) for w in caught]
        fallback = sorted({m.group(1) for m in found if m})
        rows.append((label, vmapped, f"no batching rule for {', '.join(fallback)}: torch runs "
                     "it once per example" if fallback else ""))
    grads = {names[name]: torch.stack([g[name] for g in by_loop]).numpy() for name in params}
    return rows, grads


def max_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> tuple[float, str]:
    """The largest absolute difference over all parameters, and the parameter where it is."""
    gaps = {name: float(np.max(np.abs(a[name].astype(np.float64) - b[name]))) for name in a}
    worst = max(gaps, key=gaps.__getitem__)
    return gaps[worst], worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs; the best one counts")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="sequence length T")
    parser.add_argument("--embed", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=50)
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        import torch
        import torch.func
    except ImportError:
        torch = None

    ids, labels = batch(args)
    model, rows, grads = minigrad_rows(args, ids, labels)
    if torch is not None:
        more, grads["torch"] = torch_rows(torch, model, args, ids, labels)
        rows += more

    warnings.filterwarnings("ignore", message=".*batching rule")  # said once, in the note
    gc.collect()
    gc.freeze()  # what exists now (torch, the models) is no collection's work
    best = {(label, on): float("inf") for label, run, _ in rows if run is not None
            for on in (False, True)}
    for _ in range(args.repeats):
        for label, run, _ in rows:
            for on in (False, True):
                if run is not None:
                    best[label, on] = min(best[label, on], seconds(run, on))

    print(f"Per-example gradients of an LSTM classifier: batch {args.batch}, T {args.steps}, "
          f"embedding {args.embed}, hidden {args.hidden}, vocabulary {args.vocab}, "
          f"{args.classes} classes, float32; best of {args.repeats}")
    print(f"Python {platform.python_version()}, NumPy {np.__version__}" + (
        f", torch {torch.__version__} ({torch.get_num_threads()} threads)" if torch else
        "; PyTorch not installed: the torch rows are skipped"))
    print()
    loop = "minigrad  loop of grad(loss)"
    print(f"{'':<36}{'GC off: ms/batch':>18}{'vs loop':>9}{'GC on: ms/batch':>18}{'vs loop':>9}")
    for label, run, note in rows:
        if run is None:
            print(f"{label:<36}{'-':>18}{'-':>9}{'-':>18}{'-':>9}   {note}")
            continue
        cells = ""
        for on in (False, True):
            ms = best[label, on] * 1e3
            cells += f"{ms:>18.2f}{best[loop, on] * 1e3 / ms:>8.1f}x"
        print(f"{label:<36}{cells}" + (f"   ({note})" if note else ""))
    print()
    gap, where = max_difference(grads["vmap"], grads["loop"])
    print(f"max |vmap - loop| over all parameters' per-example gradients: {gap:.2e} ({where})")
    if "torch" in grads:
        gap, where = max_difference(grads["vmap"], grads["torch"])
        print(f"max |minigrad vmap - torch loop|, same weights:              {gap:.2e} ({where})")


if __name__ == "__main__":
    main()
