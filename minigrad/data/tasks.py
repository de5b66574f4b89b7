"""Generated tasks, all offline and seeded: integer addition and date normalisation as
seq2seq pairs, and phrase sentiment as tagging and classification."""

from __future__ import annotations

import datetime
import random
import re
import string
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from minigrad.data.batching import pad_batch
from minigrad.data.text import _check_count
from minigrad.data.vocab import TAG_PAD, Vocab, _tokenize


@dataclass(frozen=True, eq=False)
class Seq2SeqData:
    """Seq2seq data: int64 sources ``(N, S)`` padded at the end with ``<pad>`` and targets
    ``(N, T)`` written ``<s> ... </s>`` then padded, for a train and a test split, with the
    vocabularies that encode them (their ``pad_id``, ``bos_id`` and ``eos_id`` are the ids the
    models need). ``addition`` and ``dates`` generate it; ``from_pairs`` builds it from your own
    (question, answer) strings."""

    train_src: np.ndarray
    train_tgt: np.ndarray
    test_src: np.ndarray
    test_tgt: np.ndarray
    src_vocab: Vocab
    tgt_vocab: Vocab

    @classmethod
    def from_pairs(
        cls, pairs: Iterable[tuple[str, str]], test_fraction: float = 0.1, level: str = "char",
        src_vocab: Vocab | None = None, tgt_vocab: Vocab | None = None,
        src_len: int | None = None, tgt_len: int | None = None, order: str = "frequency",
    ) -> Seq2SeqData:
        """Seq2seq data from your own ``(question, answer)`` string pairs, e.g.
        ``Seq2SeqData.from_pairs([("16+75", "91"), ("2+2", "4"), ...])``.

        The last ``round(len(pairs) * test_fraction)`` pairs, in the order given, are the test
        split and the others train (shuffle them first if their order means something). A
        vocabulary not given is built from its side of all the pairs with ``Vocab.build(...,
        level=level, order=order)``; a vocabulary of your own encodes the tokens it lacks as
        ``<unk>``. Sources are padded with ``<pad>`` to ``src_len`` tokens, targets written
        ``<s> answer </s>`` and padded to ``tgt_len`` (by default, the longest of each). Every
        question needs a token; an answer may be empty.
        """
        op = "Seq2SeqData.from_pairs"
        pairs = list(pairs)
        if not pairs:
            raise ValueError(f"{op}: no pairs given")
        for i, pair in enumerate(pairs):
            if not (isinstance(pair, tuple | list) and len(pair) == 2
                    and all(isinstance(text, str) for text in pair)):
                raise TypeError(f"{op}: pair {i} must be two strings (question, answer); "
                                f"got {pair!r}")
        n_test = _test_size(op, len(pairs), test_fraction)
        questions, answers = zip(*pairs)
        if src_vocab is None:
            src_vocab = Vocab.build(_tokens(questions, level), level=level, order=order)
        if tgt_vocab is None:
            tgt_vocab = Vocab.build(_tokens(answers, level), level=level, order=order)
        src = [src_vocab.encode(q) for q in questions]
        tgt = [np.concatenate(([tgt_vocab.bos_id], tgt_vocab.encode(a), [tgt_vocab.eos_id]))
               for a in answers]
        empty = [i for i, ids in enumerate(src) if len(ids) == 0]
        if empty:
            raise ValueError(f"{op}: the question of pair {empty[0]} ({questions[empty[0]]!r}) "
                             "holds no token; every question needs one")
        for name, seqs, length in (("src_len", src, src_len), ("tgt_len", tgt, tgt_len)):
            longest = int(np.argmax([len(ids) for ids in seqs]))
            if length is not None and len(seqs[longest]) > length:
                raise ValueError(f"{op}: {name}={length} is too short: pair {longest} needs "
                                 f"{len(seqs[longest])} tokens")
        src = pad_batch(src, src_vocab.pad_id, src_len)
        tgt = pad_batch(tgt, tgt_vocab.pad_id, tgt_len)
        k = len(pairs) - n_test
        return cls(src[:k], tgt[:k], src[k:], tgt[k:], src_vocab, tgt_vocab)

    def decode_source(self, ids: ArrayLike) -> list[str]:
        """Source rows ``(N, S)`` (or one row) -> strings, padding dropped."""
        return [self.src_vocab.decode_text(row) for row in np.atleast_2d(ids)]

    def decode_target(self, ids: ArrayLike) -> list[str]:
        """Target or predicted rows ``(N, T)`` (or one row) -> strings: what follows an optional
        leading ``<s>``, up to the first ``</s>`` (or the end), padding dropped."""
        return [self.tgt_vocab.decode_text(self._until_eos(row)) for row in np.atleast_2d(ids)]

    def _until_eos(self, row: np.ndarray) -> np.ndarray:
        if len(row) and row[0] == self.tgt_vocab.bos_id:
            row = row[1:]
        stops = np.flatnonzero(row == self.tgt_vocab.eos_id)
        return row[: stops[0]] if stops.size else row


def _tokens(texts: Iterable[str], level: str) -> list[str]:
    """Every token of ``texts`` at ``level``, in order."""
    if level not in ("char", "word"):
        raise ValueError(f"Seq2SeqData.from_pairs: level must be 'char' or 'word', got {level!r}")
    return [tok for text in texts for tok in _tokenize(text, level)]


def _test_size(op: str, n: int, test_fraction: float) -> int:
    _check_count(op, "n", n)
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"{op}: test_fraction must be in [0, 1), got {test_fraction}")
    n_test = round(n * test_fraction)
    if n_test == n:
        raise ValueError(f"{op}: n={n} with test_fraction={test_fraction} leaves no training data")
    return n_test


def _operands(rng: np.random.Generator, max_digits: int, size: int) -> np.ndarray:
    digits = rng.integers(1, max_digits + 1, size)
    return rng.integers(np.where(digits == 1, 0, 10 ** (digits - 1)), 10**digits)


def addition(
    n: int = 50_000, max_digits: int = 3, test_fraction: float = 0.1, seed: int = 1984
) -> Seq2SeqData:
    """Integer addition as text, after Deep Learning from Scratch 2, ch. 7: sources like
    ``"16+75"``, targets ``"91"``, character level.

    Each operand draws its number of digits uniformly from 1..``max_digits``, then a value
    uniformly among the numbers with that many digits (0..9 for one digit). Questions are
    distinct (a repeat is drawn again), so fewer short questions survive than drawn, and the
    splits share none: train is the first ``n - round(n * test_fraction)`` in draw order, test
    the rest (45,000 / 5,000 by default, as in the book). Sources are padded to
    ``2 * max_digits + 1`` and targets to ``max_digits + 3`` tokens.
    """
    _check_count("addition", "max_digits", max_digits)
    _test_size("addition", n, test_fraction)
    base = 10**max_digits
    if n > base**2:
        raise ValueError(
            f"addition: only {base**2} distinct questions have operands of at most "
            f"{max_digits} digits, asked for n={n}"
        )
    rng = np.random.default_rng(seed)
    keys = np.empty(0, dtype=np.int64)
    while len(keys) < n:
        draws = 2 * (n - len(keys)) + 16
        keys = np.concatenate([keys, _operands(rng, max_digits, draws) * base + _operands(
            rng, max_digits, draws)])
        _, first = np.unique(keys, return_index=True)
        keys = keys[np.sort(first)]
    a, b = np.divmod(keys[:n], base)
    return Seq2SeqData.from_pairs(
        [(f"{x}+{y}", str(x + y)) for x, y in zip(a.tolist(), b.tolist())], test_fraction,
        src_vocab=Vocab("+" + string.digits, "char"), tgt_vocab=Vocab(string.digits, "char"),
        src_len=2 * max_digits + 1, tgt_len=max_digits + 3,
    )


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_DIRECTIVE = re.compile(r"%(-?.)")
_CASES = {"title": str, "lower": str.lower, "upper": str.upper}

DATE_FORMATS: tuple[tuple[str, str], ...] = (
    ("%B %-d, %Y", "lower"),      # september 27, 1994
    ("%B %-d, %Y", "title"),      # September 27, 1994
    ("%b %-d, %Y", "title"),      # Sep 27, 1994
    ("%A, %B %-d, %Y", "title"),  # Tuesday, September 27, 1994
    ("%-d %b %Y", "title"),       # 27 Sep 1994
    ("%-d %B %Y", "lower"),       # 27 september 1994
    ("%a, %d %b %Y", "title"),    # Tue, 27 Sep 1994
    ("%a %-d %b %Y", "lower"),    # tue 27 sep 1994
    ("%d-%b-%y", "upper"),        # 27-SEP-94
    ("%-m/%-d/%y", "title"),      # 9/27/94
    ("%m/%d/%Y", "title"),        # 09/27/1994
    ("%d.%m.%Y", "title"),        # 27.09.1994
    ("%-d.%-m.%y", "title"),      # 27.9.94
    ("%Y %m %d", "title"),        # 1994 09 27
    ("%Y%m%d", "title"),          # 19940927
)
"""The written forms of ``dates``: (pattern, case) for ``format_date``. The separator says
the order, so no string is ambiguous: "/" month first, "." day first, spaces or none year
first."""


def format_date(day: datetime.date, pattern: str, case: str = "title") -> str:
    """Write ``day`` in English whatever the locale. ``pattern`` uses strftime's ``%Y %y %m %d
    %B %b %A %a`` (``%-m``, ``%-d``: no zero padding); ``case`` is ``"title"`` (names
    capitalized), ``"lower"`` or ``"upper"``."""
    month, weekday = _MONTHS[day.month - 1], _WEEKDAYS[day.weekday()]
    fields = {
        "Y": f"{day.year:04d}", "y": f"{day.year % 100:02d}", "m": f"{day.month:02d}",
        "-m": str(day.month), "d": f"{day.day:02d}", "-d": str(day.day),
        "B": month, "b": month[:3], "A": weekday, "a": weekday[:3],
    }
    if case not in _CASES:
        raise ValueError(f"format_date: case must be one of {sorted(_CASES)}, got {case!r}")
    unknown = set(_DIRECTIVE.findall(pattern)) - fields.keys()
    if unknown:
        raise ValueError(f"format_date: unknown directives {sorted(unknown)} in {pattern!r}")
    return _CASES[case](_DIRECTIVE.sub(lambda m: fields[m.group(1)], pattern))


def dates(n: int = 20_000, test_fraction: float = 0.1, seed: int = 1994) -> Seq2SeqData:
    """Date normalisation: a date written in one of ``DATE_FORMATS`` (e.g. ``"27 Sep 1994"``,
    ``"9/27/94"``, ``"Tuesday, September 27, 1994"``) -> ISO ``"1994-09-27"``, character
    level.

    The dates are distinct, drawn uniformly from 1900-01-01..2099-12-31 (so train and test share
    none), each written in a format drawn uniformly from those that can hold it. Two-digit years
    follow strptime's ``%y`` rule: 69..99 -> 1969..1999 and 00..68 -> 2000..2068, so formats with
    a two-digit year are only used for dates in 1969..2068. Train is the first
    ``n - round(n * test_fraction)`` examples, test the rest.
    """
    _test_size("dates", n, test_fraction)
    first = datetime.date(1900, 1, 1).toordinal()
    n_days = datetime.date(2099, 12, 31).toordinal() - first + 1
    if n > n_days:
        raise ValueError(f"dates: only {n_days} distinct dates lie in 1900..2099, asked for n={n}")
    rng = random.Random(seed)
    four_digit = [fmt for fmt in DATE_FORMATS if "%y" not in fmt[0]]
    pairs = []
    for offset in rng.sample(range(n_days), n):
        day = datetime.date.fromordinal(first + offset)
        pattern, case = rng.choice(DATE_FORMATS if 1969 <= day.year <= 2068 else four_digit)
        pairs.append((format_date(day, pattern, case), day.isoformat()))
    literals = {ch for pattern, _ in DATE_FORMATS for ch in _DIRECTIVE.sub("", pattern)}
    src_chars = sorted(set(string.ascii_letters + string.digits) | literals)
    return Seq2SeqData.from_pairs(pairs, test_fraction, src_vocab=Vocab(src_chars, "char"),
                                  tgt_vocab=Vocab(string.digits + "-", "char"))


def reverse_source(data: Seq2SeqData) -> Seq2SeqData:
    """A copy of ``data`` with every source sequence reversed and its padding kept at the end
    (the "reversed input" trick of Sutskever et al., 2014); targets are shared, not copied."""

    def reverse(src: np.ndarray) -> np.ndarray:
        lengths = (src != data.src_vocab.pad_id).sum(axis=1, keepdims=True)
        cols = np.arange(src.shape[1])
        return np.take_along_axis(src, np.where(cols < lengths, lengths - 1 - cols, cols), axis=1)

    return Seq2SeqData(
        reverse(data.train_src), data.train_tgt, reverse(data.test_src), data.test_tgt,
        data.src_vocab, data.tgt_vocab,
    )


# ---------------------------------------------------------------- tagging / sentiment

SUBJECTS = ("the movie", "the film", "the plot", "the acting", "the music", "the ending",
            "the cast", "the script", "this story", "the dialogue")
VERBS = ("was", "is", "seemed", "felt", "looked", "sounded")
FILLERS = ("honestly", "i", "think", "overall", "in", "my", "opinion", "frankly", "at", "times",
           "yesterday", "again", "for", "me", "somehow", "on", "whole", "admittedly", "mostly")
NEGATIONS = ("not", "never", "hardly")
INTENSIFIERS = ("very", "really", "terribly", "awfully", "extremely", "incredibly", "quite", "so")
POSITIVE = ("exciting", "good", "great", "wonderful", "brilliant", "fun", "moving", "superb",
            "clever", "charming")
NEGATIVE = ("boring", "bad", "awful", "dull", "terrible", "weak", "tedious", "poor", "clumsy",
            "bland")
CONNECTIVES = (("and",), (",",), (",", "and"), ("while",))
MAX_PHRASES, MAX_FILLERS, MAX_INTENSIFIERS, P_NEGATION = 3, 4, 2, 0.5


_SENTIMENT_WORDS = sorted(
    {word for group in (SUBJECTS, VERBS, FILLERS, NEGATIONS, INTENSIFIERS, POSITIVE, NEGATIVE)
     for entry in group for word in entry.split()} | {word for c in CONNECTIVES for word in c}
)
# Expected counts per sentence (a count uniform on lo..hi has mean (lo + hi) / 2); a phrase is
# subject (2 words) + verb + fillers + negation + intensifiers + polar word.
_PHRASES = (1 + MAX_PHRASES) / 2
_TOKENS = _PHRASES * (2 + 1 + MAX_FILLERS / 2 + P_NEGATION + MAX_INTENSIFIERS / 2 + 1) + (
    _PHRASES - 1
) * sum(map(len, CONNECTIVES)) / len(CONNECTIVES)
CAUSAL_TAG_ACCURACY = 0.5 + 0.5 * _PHRASES / _TOKENS
"""Best expected per-token accuracy of a left-to-right tagger on ``sentiment`` (about 0.562)."""


@dataclass(frozen=True, eq=False)
class SentimentData:
    """Word-level tagging and classification data from ``sentiment``: ``*_tokens`` ``(N, L)``
    ids padded with ``<pad>``; ``*_tags`` ``(N, L)`` per-token sentiment (0 negative,
    1 positive) padded with ``TAG_PAD`` (-100); ``*_lengths`` ``(N,)``; ``*_labels`` ``(N,)``
    the sentence sentiment; ``vocab`` encodes the words (give the models its padding id,
    ``pad_id=data.vocab.pad_id``), ``tag_names`` names the classes."""

    train_tokens: np.ndarray
    train_tags: np.ndarray
    train_lengths: np.ndarray
    train_labels: np.ndarray
    test_tokens: np.ndarray
    test_tags: np.ndarray
    test_lengths: np.ndarray
    test_labels: np.ndarray
    vocab: Vocab
    tag_names: tuple[str, str] = ("negative", "positive")

    def causal_bound(self, split: str = "test") -> float:
        """Best expected per-token tag accuracy of a left-to-right tagger on ``split``: right on
        each phrase's deciding word, a coin flip before it (see ``sentiment``)."""
        if split not in ("train", "test"):
            raise ValueError(f"SentimentData.causal_bound: split must be 'train' or 'test', "
                             f"got {split!r}")
        tokens, lengths = getattr(self, f"{split}_tokens"), getattr(self, f"{split}_lengths")
        polar = np.isin(tokens, self.vocab.encode(POSITIVE + NEGATIVE))
        return float(0.5 + 0.5 * polar.sum() / lengths.sum())


def _phrase(rng: random.Random, first: bool) -> tuple[list[str], int]:
    words = [] if first else list(rng.choice(CONNECTIVES))
    words += rng.choice(SUBJECTS).split() + [rng.choice(VERBS)]
    words += [rng.choice(FILLERS) for _ in range(rng.randint(0, MAX_FILLERS))]
    negated = rng.random() < P_NEGATION
    if negated:
        words.append(rng.choice(NEGATIONS))
    words += [rng.choice(INTENSIFIERS) for _ in range(rng.randint(0, MAX_INTENSIFIERS))]
    positive = rng.random() < 0.5
    words.append(rng.choice(POSITIVE if positive else NEGATIVE))
    return words, int(positive != negated)


def sentiment(n: int = 10_000, test_fraction: float = 0.2, seed: int = 2013) -> SentimentData:
    """Generated sentences whose sentiment is decided by their last words, with per-token tags.

    A sentence is 1..3 phrases (uniform), each after the first opened by a connective
    (``and``, ``,``, ``, and``, ``while``)::

        the movie was [0-4 fillers] [not|never|hardly] [0-2 intensifiers] exciting|boring...

    e.g. ``the plot was honestly terribly exciting , and the acting felt not very good``.
    A phrase's sentiment is its final polar word's (10 positive, 10 negative adjectives, a fair
    coin), flipped by a negation (probability 1/2). Every token of a phrase, connective
    included, is tagged with that sentiment; the sentence label is the last phrase's. Fillers
    and intensifiers (``terribly``, ``awfully`` ...) carry no sentiment.

    The polar word is drawn last and independently, so before reading it a left-to-right tagger
    faces a fair coin whatever it has read (earlier phrases and negations included): its best
    expected per-token accuracy is 1/2 + 1/2 * E[phrases] / E[tokens] = 1/2 + 1/2 * 2 / 16.25
    = 0.562 (``CAUSAL_TAG_ACCURACY``; ``SentimentData.causal_bound`` measures it on a split).
    A bidirectional tagger can reach 1.0, and so can a left-to-right classifier of the sentence
    label, which is known once the last word is read. Sentences are distinct, so train (the
    first ``n - round(n * test_fraction)``) and test share none.
    """
    n_test = _test_size("sentiment", n, test_fraction)
    rng = random.Random(seed)
    seen: set[str] = set()
    sentences, tags, labels = [], [], []
    while len(sentences) < n:
        words, word_tags = [], []
        for i in range(rng.randint(1, MAX_PHRASES)):
            phrase, tag = _phrase(rng, first=i == 0)
            words += phrase
            word_tags += [tag] * len(phrase)
        key = " ".join(words)
        if key not in seen:
            seen.add(key)
            sentences.append(words)
            tags.append(word_tags)
            labels.append(word_tags[-1])
    vocab = Vocab(_SENTIMENT_WORDS, "word")
    tokens = pad_batch([vocab.encode(words) for words in sentences], vocab.pad_id)
    tag_arr = pad_batch(tags, TAG_PAD, tokens.shape[1])
    lengths = np.array([len(words) for words in sentences], dtype=np.int64)
    label_arr = np.array(labels, dtype=np.int64)
    k = n - n_test
    return SentimentData(tokens[:k], tag_arr[:k], lengths[:k], label_arr[:k],
                         tokens[k:], tag_arr[k:], lengths[k:], label_arr[k:], vocab)
