"""Tag, classify and write sentences: the N -> N, N -> 1 and 1 -> N shapes of sequence models.

    python examples/tagging.py                     # about a minute on 2 cores
    python examples/tagging.py --tag-epochs 5 --plot curves/
    python examples/tagging.py --eager             # without mg.compile

The data is ``minigrad.data.sentiment``: generated sentences of 1-3 phrases such as "the plot
was honestly terribly exciting , and the acting felt not very good", where a phrase's
sentiment is decided by its last word (flipped by a negation). Every token is tagged with its
phrase's sentiment.

- N -> N, tagging (``SequenceTagger``): before a phrase's deciding word a left-to-right LSTM
  can only guess (a fair coin), so the best it can expect is about 0.56 per-token accuracy
  (``CAUSAL_TAG_ACCURACY``; a run lands a little above or below by luck); a bidirectional LSTM
  reads the deciding word from the right. With one layer it stops near 0.94 (the intensifiers
  of negated phrases need an XOR of its two directions, see the table); with two layers it
  reaches 1.
- N -> 1, classification (``SequenceClassifier``): the sentiment of the sentence's first
  phrase, from the last state or the mean of the states, left-to-right or bidirectional. The
  last state of a left-to-right LSTM must carry it past the later phrases, a long way back for
  the gradient, and after two epochs it is right about two times in three; the mean of the
  states and the backward direction's last state sit right after it and reach about 1.0.
- 1 -> N, generation (vec2seq): a ``Decoder`` started from a feature vector by a
  ``FeatureEncoder``, as image captioning does. The feature is a bag of words (how often
  each word occurs, no order) and the decoder writes a sentence with those words.
- N -> M, seq2seq, is ``examples/addition.py`` ("16+75" -> "91") and ``examples/dates.py``.

The ``Trainer`` runs every training step compiled (``mg.compile(step)``); ``--eager`` runs the
plain engine instead (``Trainer(..., compile=False)``). A compiled step traces once per batch
shape, so each batch is cut to its longest sentence rounded up to a multiple of ``WIDTH_STEP``:
a handful of shapes instead of one per sentence length (the models never read the padding, so
the losses are the same). The batches are cut before the step, which gets the arrays and
computes its loss and its count with ops only.
"""

from __future__ import annotations

import os

# A small LSTM's matrices are too small for BLAS threads to pay off, and on a busy machine the
# threads spin against each other, so use one unless told.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import re
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

import minigrad as mg
from minigrad.data import CAUSAL_TAG_ACCURACY, INTENSIFIERS, TAG_PAD, Vocab, sentiment
from minigrad.models.classify import SequenceClassifier, SequenceTagger
from minigrad.models.seq2seq import Decoder, FeatureEncoder, Seq2Seq
from minigrad.nn import Module
from minigrad.train import History, Trainer

WIDTH_STEP = 8
"""Batch widths are multiples of this (see ``batch_width``)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; the defaults run in about a minute."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sentences", type=int, default=10_000,
                   help="sentences, 20%% held out (default: %(default)s)")
    p.add_argument("--embed", type=int, default=32, help="embedding size (default: %(default)s)")
    p.add_argument("--hidden", type=int, default=64,
                   help="LSTM hidden size per direction (default: %(default)s)")
    p.add_argument("--batch", type=int, default=64,
                   help="sentences per batch (default: %(default)s)")
    p.add_argument("--lr", type=float, default=1e-2,
                   help="Adam learning rate (default: %(default)s)")
    p.add_argument("--tag-epochs", type=int, default=2,
                   help="epochs of each tagger (default: %(default)s)")
    p.add_argument("--cls-epochs", type=int, default=2,
                   help="epochs of each classifier (default: %(default)s)")
    p.add_argument("--gen-epochs", type=int, default=4,
                   help="epochs of the vec2seq decoder (default: %(default)s)")
    p.add_argument("--gen-hidden", type=int, default=128,
                   help="hidden size of the decoder (default: %(default)s)")
    p.add_argument("--gen-lr", type=float, default=5e-3,
                   help="Adam learning rate of the decoder (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of initialization and batches (default: %(default)s)")
    p.add_argument("--plot", type=Path, help="save each model's training curves in this folder")
    p.add_argument("--no-progress", action="store_true", help="plain lines, no progress bar")
    p.add_argument("--eager", action="store_true",
                   help="train with the eager engine instead of mg.compile")
    args = p.parse_args(argv)
    for option in ("sentences", "embed", "hidden", "batch", "lr", "tag_epochs", "cls_epochs",
                   "gen_epochs", "gen_hidden", "gen_lr"):
        if not getattr(args, option) > 0:
            p.error(f"--{option.replace('_', '-')} must be positive; got {getattr(args, option)}")
    return args


def length_batches(lengths: np.ndarray, batch_size: int, seed: int) -> list[np.ndarray]:
    """Index batches of sentences of about the same length (little padding), in random
    order; the same ``seed`` gives the same batches."""
    rng = np.random.default_rng(seed)
    order = np.argsort(lengths + rng.random(len(lengths)), kind="stable")
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def batch_width(lengths: np.ndarray) -> int:
    """The width to cut a batch of sentences of these ``lengths`` to: the longest, rounded up
    to a multiple of ``WIDTH_STEP`` (few widths: few traces of a compiled step)."""
    return -(-int(lengths.max()) // WIDTH_STEP) * WIDTH_STEP


def fit(name: str, model: Module, args: argparse.Namespace, epochs: int, lengths: np.ndarray,
        batch: Callable[[np.ndarray], tuple], step: Callable,
        evaluate: Callable[[], dict[str, float]], lr: float, unit: str) -> History:
    """Train ``model`` with Adam and gradient clipping (the step compiled unless
    ``args.eager``) on the batches ``batch(indices)`` makes of ``length_batches``; print a
    header and save the curves."""
    params = sum(p.numel() for p in model.parameters())
    print(f"\n== {name}: {params:,} parameters, {epochs} epochs, "
          f"{'eager' if args.eager else 'compiled'} training step")
    mg.manual_seed(args.seed)
    trainer = Trainer(model, mg.optim.Adam(model.parameters(), lr=lr), clip_norm=5.0,
                      progress="lines" if args.no_progress else True, unit=unit,
                      compile=not args.eager)
    history = trainer.fit(epochs, lambda: [batch(idx) for idx in length_batches(
        lengths, args.batch, args.seed + trainer.epoch)], step, evaluate)
    if args.plot:
        args.plot.mkdir(parents=True, exist_ok=True)
        history.plot(args.plot / (re.sub(r"\W+", "_", name).strip("_") + ".png"))
    return history


def bag_of_words(ids: np.ndarray, vocab: Vocab) -> np.ndarray:
    """Rows of ids ``(B, T)`` -> word counts ``(B, V)``, the specials of ``vocab`` not
    counted."""
    bags = np.zeros((len(ids), len(vocab)), np.float32)
    np.add.at(bags, (np.arange(len(ids))[:, None], ids), 1)
    bags[:, [vocab.pad_id, vocab.unk_id, vocab.bos_id, vocab.eos_id]] = 0
    return bags


def with_bos_eos(tokens: np.ndarray, lengths: np.ndarray, vocab: Vocab) -> np.ndarray:
    """Sentences ``(B, T)`` of ``lengths`` tokens -> decoder targets ``<s> w1 .. wn </s>`` then
    padding, with ``vocab``'s special ids."""
    targets = np.full((len(tokens), tokens.shape[1] + 2), vocab.pad_id, np.int64)
    targets[:, 0] = vocab.bos_id
    inside = np.arange(tokens.shape[1]) < lengths[:, None]
    targets[:, 1:-1] = np.where(inside, tokens, vocab.pad_id)
    targets[np.arange(len(tokens)), lengths + 1] = vocab.eos_id
    return targets


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    data = sentiment(args.sentences)
    vocab_size = len(data.vocab)
    tokens, lengths = data.train_tokens, data.train_lengths
    labels, test_labels = data.train_tags[:, 0], data.test_tags[:, 0]  # the first phrase's
    bound = data.causal_bound("test")
    print(f"data: {len(tokens):,} training and {len(data.test_tokens):,} test sentences, "
          f"{vocab_size} words, {lengths.mean():.1f} tokens on average (longest "
          f"{lengths.max()})\nexample: {data.vocab.decode_text(tokens[0])!r}\n"
          f"  tags  : {' '.join(str(t) for t in data.train_tags[0, :lengths[0]])}\n"
          f"  label : {labels[0]} (the first phrase's sentiment)\n"
          f"a left-to-right tagger must guess each phrase's sentiment until its last word: the "
          f"best it can\nexpect is {bound:.3f} per-token accuracy on this test split "
          f"({CAUSAL_TAG_ACCURACY:.3f} averaged over generated data),\nand luck moves a run a "
          f"little either way")

    def tag_batch(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        width = batch_width(lengths[idx])
        return tokens[idx, :width], data.train_tags[idx, :width], lengths[idx]

    def cls_batch(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return tokens[idx, :batch_width(lengths[idx])], labels[idx], lengths[idx]

    # -- N -> N: tagging, left-to-right vs bidirectional, one or two layers
    tagging = {}
    intensifiers = np.isin(data.test_tokens, data.vocab.encode(INTENSIFIERS))
    for bidirectional, layers in ((False, 1), (True, 1), (True, 2)):
        name = f"tagger {'bi' if bidirectional else 'uni'}LSTM x{layers}"
        mg.manual_seed(args.seed)
        tagger = SequenceTagger(vocab_size, args.embed, args.hidden, 2, num_layers=layers,
                                bidirectional=bidirectional, pad_id=data.vocab.pad_id)

        def tag_step(batch, model=tagger):
            words, tags, sizes = batch
            return model.loss(words, tags, sizes), sizes.sum()

        t0 = time.perf_counter()
        history = fit(name, tagger, args, args.tag_epochs, lengths, tag_batch, tag_step,
                      lambda model=tagger: {"test_acc": model.accuracy(
                          data.test_tokens, data.test_tags, data.test_lengths)},
                      args.lr, "tok")
        wrong = tagger.predict(data.test_tokens, data.test_lengths) != data.test_tags
        wrong &= data.test_tags != TAG_PAD
        errors = f"{(wrong & intensifiers).sum()} of {wrong.sum()} on intensifiers"
        tagging[name] = (history.metrics["test_acc"], errors, time.perf_counter() - t0)

    # -- N -> 1: classification of the first phrase's sentiment, direction x pooling
    classification = {}
    for bidirectional in (False, True):
        for pooling in ("last", "mean"):
            name = f"classifier {'bi' if bidirectional else 'uni'}LSTM, {pooling}"
            mg.manual_seed(args.seed)
            classifier = SequenceClassifier(vocab_size, args.embed, args.hidden, 2,
                                            bidirectional=bidirectional, pooling=pooling,
                                            pad_id=data.vocab.pad_id)

            def cls_step(batch, model=classifier):
                words, targets, sizes = batch
                return model.loss(words, targets, sizes), len(targets)

            t0 = time.perf_counter()
            history = fit(name, classifier, args, args.cls_epochs, lengths, cls_batch, cls_step,
                          lambda model=classifier: {"test_acc": model.accuracy(
                              data.test_tokens, test_labels, data.test_lengths)},
                          args.lr, "sent")
            classification[name] = (history.metrics["test_acc"], time.perf_counter() - t0)

    # -- 1 -> N: vec2seq, a bag of words -> a sentence with those words
    bags = bag_of_words(tokens, data.vocab)
    test_bags = bag_of_words(data.test_tokens, data.vocab)
    targets = with_bos_eos(tokens, lengths, data.vocab)
    max_len = int(max(lengths.max(), data.test_lengths.max())) + 1
    mg.manual_seed(args.seed)
    writer = Seq2Seq(FeatureEncoder(vocab_size, args.gen_hidden),
                     Decoder(vocab_size, args.embed, args.gen_hidden, bos_id=data.vocab.bos_id,
                             eos_id=data.vocab.eos_id, pad_id=data.vocab.pad_id))

    def gen_batch(idx):
        width = batch_width(lengths[idx] + 2)  # <s> and </s>
        return bags[idx], targets[idx, :width], lengths[idx]

    def gen_step(batch):
        features, sentences, sizes = batch
        return writer.loss(features, sentences), sizes.sum() + len(sizes)  # words and </s>

    def gen_evaluate():
        written = writer.generate(test_bags, max_len)
        same_bag = (bag_of_words(written, data.vocab) == test_bags).all(axis=1)
        return {"same_bag": float(same_bag.mean())}

    t0 = time.perf_counter()
    history = fit("vec2seq bag of words -> sentence", writer, args, args.gen_epochs, lengths,
                  gen_batch, gen_step, gen_evaluate, args.gen_lr, "tok")
    generation = (history.metrics["same_bag"], time.perf_counter() - t0)
    written = writer.generate(test_bags[:4], max_len)
    print("\nsamples (test sentences; the decoder saw only their bag of words):")
    for i, row in enumerate(written):
        print(f"  bag    : {' '.join(sorted(data.vocab.decode(data.test_tokens[i])))}\n"
              f"  wrote  : {data.vocab.decode_text(row)}\n"
              f"  source : {data.vocab.decode_text(data.test_tokens[i])}")

    print(f"\nN -> N tagging, per-token test accuracy (expected best of a left-to-right "
          f"tagger: {bound:.3f}):")
    print(f"  {'model':<20} {'per epoch':<18} {'final':>6} {'time':>6}   test errors")
    for name, (acc, errors, seconds) in tagging.items():
        print(f"  {name:<20} {' '.join(f'{a:.3f}' for a in acc):<18} {acc[-1]:>6.3f} "
              f"{seconds:>5.0f}s   {errors}")
    print("  (in 'not very good' the tag of 'very' is negation XOR polar word: one biLSTM layer\n"
          "   has the negation in its forward half and the polar word in its backward half, and\n"
          "   a linear output layer cannot take their XOR; a second layer can)")
    print("\nN -> 1 classification of the first phrase's sentiment, test accuracy:")
    print(f"  {'model':<32} {'per epoch':<20} {'final':>6} {'time':>6}")
    for name, (acc, seconds) in classification.items():
        print(f"  {name:<32} {' '.join(f'{a:.3f}' for a in acc):<20} {acc[-1]:>6.3f} "
              f"{seconds:>5.0f}s")
    print("  (the last state of a left-to-right LSTM must carry the first phrase's sentiment\n"
          "   past the later phrases; the mean of the states and the backward direction's last\n"
          "   state hold it a few steps after reading it)")
    best_tagger = max(tagging, key=lambda k: tagging[k][0][-1])
    best_classifier = max(classification, key=lambda k: classification[k][0][-1])
    shapes = [
        ("1 -> N", "bag of words -> sentence", "FeatureEncoder + Decoder",
         f"same bag {generation[0][-1]:.3f}"),
        ("N -> 1", "sentence -> 1st phrase's label", best_classifier,
         f"accuracy {classification[best_classifier][0][-1]:.3f}"),
        ("N -> M", "'16+75' -> '91'", "Seq2Seq (examples/addition.py)", "run that example"),
        ("N -> N", "sentence -> per-token tags", best_tagger,
         f"accuracy {tagging[best_tagger][0][-1]:.3f}"),
    ]
    print("\nthe four shapes:")
    for row in shapes:
        print(f"  {row[0]:<7} {row[1]:<31} {row[2]:<32} {row[3]}")
    print(f"\n{time.perf_counter() - start:.0f}s in all")


if __name__ == "__main__":
    main()
