"""Normalise written dates with an attention seq2seq model, and draw where it looks.

    python examples/dates.py                                # about 3 minutes on 2 cores
    python examples/dates.py --epochs 8 --plot attention.png --examples 6
    python examples/dates.py --eager                        # without mg.compile

The data is ``minigrad.data.dates()``: 20,000 distinct dates from 1900..2099, each written in one
of 15 formats ("27 Sep 1994", "9/27/94", "Tuesday, September 27, 1994", "19940927", ...), to be
rewritten as "1994-09-27"; 18,000 to train on and 2,000 held out. The model is an embedding +
LSTM encoder and an ``AttentionDecoder``: at every output step a dot-product attention over
all encoder states picks what to read (Deep Learning from Scratch 2, ch. 8). After every epoch
the held-out exact-match accuracy is measured; at the end the attention weights of a few
held-out dates are saved as heat maps (one row per output character, one column per input
character), in which the model can be seen reading the year, then the month, then the day.
The ``Trainer`` runs the training step compiled (``mg.compile(step)``: traced once per batch
shape, then replayed as a flat program with fused kernels); ``--eager`` runs the plain engine
instead (``Trainer(..., compile=False)``).
"""

from __future__ import annotations

import os

# A small LSTM's matrices are too small for BLAS threads to pay off, and on a busy machine the
# threads spin against each other, so use one unless told otherwise.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import re
import time
from pathlib import Path

import numpy as np

import minigrad as mg
from minigrad.data import Seq2SeqData, dates, minibatches
from minigrad.models.seq2seq import AttentionDecoder, Encoder, Seq2Seq
from minigrad.train import Trainer


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--epochs", type=int, default=5, help="passes over the 18,000 dates")
    p.add_argument("--batch", type=int, default=128, help="dates per batch")
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    p.add_argument("--embed", type=int, default=16, help="character embedding size")
    p.add_argument("--hidden", type=int, default=128, help="LSTM hidden size")
    p.add_argument("--reverse", action="store_true", help="encode each date backwards")
    p.add_argument("--seed", type=int, default=0, help="seed of initialization and shuffling")
    p.add_argument("--plot", type=Path, default=Path("runs/dates_attention.png"),
                   help="where to save the attention heat maps")
    p.add_argument("--examples", type=int, default=4, help="held-out dates in the heat maps")
    p.add_argument("--no-progress", action="store_true", help="plain lines, no progress bar")
    p.add_argument("--eager", action="store_true",
                   help="train with the eager engine instead of mg.compile")
    return p.parse_args(argv)


def varied_examples(data: Seq2SeqData, count: int) -> np.ndarray:
    """Indices of the first ``count`` held-out dates written in different shapes (letters ->
    a, digits -> 0), so the heat maps show different formats."""
    chosen, shapes = [], set()
    for i, text in enumerate(data.decode_source(data.test_src)):
        shape = re.sub("[a-zA-Z]+", "a", re.sub("[0-9]", "0", text))
        if shape not in shapes:
            shapes.add(shape)
            chosen.append(i)
        if len(chosen) == count:
            break
    return np.array(chosen)


def plot_attention(model: Seq2Seq, data: Seq2SeqData, rows: np.ndarray, path: Path) -> None:
    """Save the attention weights of the held-out dates ``rows`` as heat maps (matplotlib)."""
    from matplotlib.figure import Figure

    src = data.test_src[rows]
    ids, weights = model.generate(src, data.test_tgt.shape[1] - 1, return_attention=True)
    cols = min(2, len(rows))
    fig = Figure(figsize=(6 * cols, 3.2 * -(-len(rows) // cols)), layout="constrained")
    axes = fig.subplots(-(-len(rows) // cols), cols, squeeze=False).ravel()
    for ax, source, out, w in zip(axes, src, ids, weights):
        n = int((source != data.src_vocab.pad_id).sum())
        ends = np.flatnonzero(out == data.tgt_vocab.eos_id)
        m = int(ends[0]) + 1 if ends.size else len(out)
        image = ax.imshow(w[:m, :n], cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(n), [c if c != " " else "␣" for c in data.src_vocab.decode(source[:n])])
        ax.set_yticks(range(m), data.tgt_vocab.decode(out[:m], strip_specials=False))
        ax.set(xlabel="input", ylabel="output", title=f"{data.decode_source(source)[0]} -> "
               f"{data.decode_target(out)[0]}")
    for ax in axes[len(rows):]:
        ax.set_axis_off()
    fig.colorbar(image, ax=axes.tolist(), shrink=0.8, label="attention weight")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    data = dates()
    print(f"dates: {len(data.train_src):,} training and {len(data.test_src):,} held-out dates, "
          f"e.g. {data.decode_source(data.train_src[0])[0]!r} -> "
          f"{data.decode_target(data.train_tgt[0])[0]!r}; batch {args.batch}, lr {args.lr:g}, "
          f"embed {args.embed}, hidden {args.hidden}, OPENBLAS_NUM_THREADS="
          f"{os.environ['OPENBLAS_NUM_THREADS']}; {'eager' if args.eager else 'compiled'} "
          "training step")

    mg.manual_seed(args.seed)
    sv, tv = data.src_vocab, data.tgt_vocab  # the models get their special ids from them
    model = Seq2Seq(Encoder(len(sv), args.embed, args.hidden, reverse=args.reverse,
                            pad_id=sv.pad_id),
                    AttentionDecoder(len(tv), args.embed, args.hidden, bos_id=tv.bos_id,
                                     eos_id=tv.eos_id, pad_id=tv.pad_id))
    trainer = Trainer(model, mg.optim.Adam(model.parameters(), lr=args.lr), clip_norm=5.0,
                      progress="lines" if args.no_progress else True, unit="tok",
                      compile=not args.eager)

    def epoch_batches() -> list[tuple[np.ndarray, np.ndarray]]:
        return minibatches(data.train_src, data.train_tgt, args.batch, args.seed + trainer.epoch)

    def step(batch: tuple[np.ndarray, np.ndarray]) -> tuple[mg.Tensor, mg.Tensor]:
        """The batch's loss and its number of target tokens (not padding), both computed with
        ops, so that the Trainer can compile the step."""
        src, tgt = batch
        return model.loss(src, tgt), mg.ne(tgt[:, 1:], tv.pad_id).sum()

    history = trainer.fit(args.epochs, epoch_batches, step, evaluate=lambda: {
        "accuracy": model.accuracy(data.test_src, data.test_tgt)})

    print("\nepoch  train loss  held-out accuracy  seconds")
    for e, (loss, acc, sec) in enumerate(zip(history.train_loss, history.metrics["accuracy"],
                                             history.epoch_seconds), 1):
        print(f"{e:5d}  {loss:10.4f}  {100 * acc:16.2f}%  {sec:7.1f}")

    rows = varied_examples(data, args.examples)
    answers = data.decode_target(model.generate(data.test_src[rows], data.test_tgt.shape[1] - 1))
    print()
    for text, answer, want in zip(data.decode_source(data.test_src[rows]), answers,
                                  data.decode_target(data.test_tgt[rows])):
        print(f"  {text:>29} -> {answer} {'ok' if answer == want else f'(wrong: {want})'}")
    plot_attention(model, data, rows, args.plot)
    print(f"\nattention heat maps saved to {args.plot}; {time.perf_counter() - start:.0f}s in all")


if __name__ == "__main__":
    main()
