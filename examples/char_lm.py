"""Train a character-level LSTM language model, then let it write.

    python examples/char_lm.py                       # about 2 minutes on 2 cores
    python examples/char_lm.py --text FILE --minutes 10 --hidden 256 --plot curves.png

The default corpus is Python's own help pages (``pydoc_data.topics``, about 465k characters of
English and code that ship with CPython). The text is cut into ``--batch`` parallel streams
read ``--bptt`` characters at a time (truncated backpropagation through time): the LSTM's
state is carried from one chunk to the next and detached, so gradients flow back at most
``--bptt`` steps. After every epoch the validation perplexity is printed: a uniform guess over
the 107 symbols scores 107, the default two-minute run gets to about 3.7, and more minutes go
lower. Training stops after ``--epochs`` or ``--minutes``, whichever comes first; then the
model writes samples at a low and a higher temperature.

The training step runs compiled (``mg.compile(model.loss)``): traced once per input signature,
then replayed as a flat program with fused kernels, about 15% faster here and equal to the
eager step (the tests check it); ``--eager`` runs the plain engine instead. The step itself,
which carries the state from chunk to chunk, runs as given (``Trainer(..., compile=False)``).
"""

from __future__ import annotations

import os

# A small LSTM's matrices are too small for BLAS threads to pay off, and on a busy machine the
# threads spin against each other (5-8x slower on a shared 2-core box), so use one unless told.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path

import minigrad as mg
from minigrad.data import BPTTBatches, Vocab, default_corpus, load_text, split_text
from minigrad.models.lm import RNNLM, detach_state
from minigrad.train import Trainer


def checked(kind: type, ok: Callable[[float], bool], expected: str) -> Callable[[str], float]:
    """An argparse type: a ``kind`` number (int or float) for which ``ok(value)`` holds;
    ``expected`` says which numbers those are, for argparse's error message."""

    def parse(text: str) -> float:
        value = kind(text)  # a ValueError becomes argparse's "invalid int value: 'x'"
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {expected}; got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


count = checked(int, lambda v: v > 0, "a positive integer")
positive = checked(float, lambda v: v > 0, "a positive number")
non_negative = checked(float, lambda v: v >= 0, ">= 0")
probability = checked(float, lambda v: 0 <= v < 1, "in [0, 1)")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; the defaults are the README's two-minute demo. Every value is checked
    here, so a bad one stops the run before training rather than after it."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--text", type=Path,
                   help="UTF-8 text file to learn (default: Python's help pages, pydoc topics)")
    p.add_argument("--chars", type=count, help="use only the first CHARS characters of the text")
    p.add_argument("--embed", type=count, default=64, help="embedding size (default: %(default)s)")
    p.add_argument("--hidden", type=count, default=128,
                   help="LSTM hidden size (default: %(default)s)")
    p.add_argument("--layers", type=count, default=1,
                   help="number of LSTM layers (default: %(default)s)")
    p.add_argument("--dropout", type=probability, default=0.0,
                   help="dropout probability (default: %(default)s)")
    p.add_argument("--tie", action="store_true", help="tie the embedding and output weights "
                   "(needs --embed equal to --hidden)")
    p.add_argument("--batch", type=count, default=32,
                   help="parallel streams per batch (default: %(default)s)")
    p.add_argument("--bptt", type=count, default=64,
                   help="characters per truncated-BPTT chunk (default: %(default)s)")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam",
                   help="optimizer (default: %(default)s)")
    p.add_argument("--lr", type=positive, help="learning rate (default: 1e-2 Adam, 4.0 SGD)")
    p.add_argument("--clip", type=non_negative, default=5.0,
                   help="gradient norm clip, 0 for none (default: %(default)s)")
    p.add_argument("--epochs", type=count, default=20,
                   help="passes over the training text (default: %(default)s)")
    p.add_argument("--minutes", type=positive, default=2.0,
                   help="training time budget; it may cut the last epoch short "
                   "(default: %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of initialization and sampling (default: %(default)s)")
    p.add_argument("--checkpoint", type=Path, help="save model + optimizer here every epoch")
    p.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    p.add_argument("--plot", type=Path, help="save the training curves as a PNG here")
    p.add_argument("--prefix", default="The ",
                   help="text the samples start from (default: %(default)r)")
    p.add_argument("--sample-length", type=count, default=300,
                   help="characters per sample (default: %(default)s)")
    p.add_argument("--temperatures", type=positive, nargs="+", default=[0.5, 0.8],
                   help="one sample at each sampling temperature (default: 0.5 0.8)")
    p.add_argument("--no-progress", action="store_true", help="plain lines, no progress bar")
    p.add_argument("--eager", action="store_true",
                   help="train with the eager engine instead of mg.compile")
    args = p.parse_args(argv)
    if args.resume and args.checkpoint is None:
        p.error("--resume needs --checkpoint")
    if args.tie and args.embed != args.hidden:
        p.error(f"--tie needs --embed == --hidden; got {args.embed} and {args.hidden}")
    if not args.prefix:
        p.error("--prefix must hold at least one character")
    return args


class StatefulStep:
    """Truncated BPTT over one epoch's chunks: each chunk starts from the previous chunk's
    final state, detached, so the state carries on while gradients stop at the chunk."""

    def __init__(self, model: RNNLM, chunks: BPTTBatches, compiled: bool) -> None:
        self.chunks, self.state = chunks, None
        self.loss = mg.compile(model.loss) if compiled else model.loss

    def batches(self) -> BPTTBatches:
        """An epoch's chunks, in stream order; the state starts from zeros."""
        self.state = None
        return self.chunks

    def __call__(self, chunk) -> tuple[mg.Tensor, int]:
        x, y = chunk
        loss, state = self.loss(x, y, detach_state(self.state))
        self.state = state
        return loss, y.size


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    try:  # a missing, empty or too short text ends the run with its message, not a traceback
        text = load_text(args.text) if args.text else default_corpus()
        text = text[: args.chars]
        train_text, valid_text, _ = split_text(text, valid_fraction=0.1)
        vocab = Vocab.from_text(text, "char")
        train = BPTTBatches(vocab.encode(train_text), args.batch, args.bptt)
        valid = BPTTBatches(vocab.encode(valid_text), args.batch, args.bptt)
    except (OSError, ValueError) as err:
        raise SystemExit(f"char_lm: {err}") from None
    print(f"text: {len(train_text):,} training and {len(valid_text):,} validation characters, "
          f"{len(vocab)} symbols; {len(train)} chunks of ({args.bptt}, {args.batch}) per epoch")

    mg.manual_seed(args.seed)
    model = RNNLM(len(vocab), args.embed, args.hidden, args.layers, cell="lstm",
                  dropout=args.dropout, tie_weights=args.tie)
    if args.optimizer == "adam":
        optimizer = mg.optim.Adam(model.parameters(), lr=args.lr or 1e-2)
    else:
        optimizer = mg.optim.SGD(model.parameters(), lr=args.lr or 4.0)
    # The classic language-model schedule: divide the lr by 4 when validation stops improving.
    scheduler = mg.optim.ReduceLROnPlateau(optimizer, factor=0.25, patience=0, threshold=0)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"model: {args.layers}-layer LSTM, embed {args.embed}, hidden {args.hidden}, "
          f"{n_params:,} parameters; {args.optimizer} lr {optimizer.param_groups[0]['lr']:g}; "
          f"{'eager' if args.eager else 'compiled'} training step")

    # The step carries the LSTM's state from chunk to chunk, which a replay of a compiled step
    # cannot do: StatefulStep compiles model.loss itself and the Trainer runs the step as given.
    trainer = Trainer(model, optimizer, clip_norm=args.clip or None, scheduler=scheduler,
                      checkpoint=args.checkpoint,
                      progress="lines" if args.no_progress else True,
                      perplexity=True, unit="tok", compile=False)
    if args.resume:
        try:  # a missing or damaged checkpoint ends the run with its message
            trainer.resume(args.checkpoint)
        except (OSError, ValueError) as err:
            raise SystemExit(f"char_lm: cannot resume: {err}") from None
        print(f"resumed from {args.checkpoint} after epoch {trainer.epoch}")
    step = StatefulStep(model, train, compiled=not args.eager)
    # fit trains that many more epochs; --epochs counts the whole run, resumed epochs included
    history = trainer.fit(max(0, args.epochs - trainer.epoch), step.batches, step,
                          evaluate=lambda: {"valid_ppl": model.perplexity(valid)},
                          monitor="valid_ppl", time_limit=args.minutes * 60)

    for temperature in args.temperatures:
        ids = model.generate(vocab.encode(args.prefix), args.sample_length,
                             temperature=temperature, seed=args.seed)
        print(f"\n--- sample at temperature {temperature} ---\n{vocab.decode_text(ids)}")
    if args.plot:
        history.plot(args.plot)
        print(f"\ncurves saved to {args.plot}")

    ppl = history.metrics["valid_ppl"]
    steps = sum(map(len, history.step_loss))
    print(f"\nsummary: {trainer.epoch} epochs ({steps} steps) | train loss "
          f"{history.train_loss[0]:.3f} -> {history.train_loss[-1]:.3f} | validation "
          f"perplexity {ppl[0]:.2f} -> {ppl[-1]:.2f} (best {min(ppl):.2f}, "
          f"{math.log2(min(ppl)):.2f} bits/char) | {time.perf_counter() - start:.0f}s in all")


if __name__ == "__main__":
    main()
