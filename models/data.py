"""Data for sequence models, all offline: vocabularies, truncated-BPTT batches for language
models, and generated tasks (integer addition, date normalisation, phrase sentiment tagging).

Pure NumPy and the standard library. Every generator takes a seed and returns the same arrays
for the same seed.
"""

from __future__ import annotations

import datetime
import os
import random
import re
import string
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from numpy.typing import ArrayLike

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<s>", "</s>"
SPECIALS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(4)
TAG_PAD = -100
"""Padding value of tag arrays: PyTorch's default ``ignore_index`` for cross-entropy."""

_WORD = re.compile(r"\w+(?:'\w+)*|[^\w\s]")


def _tokenize(text: str, level: str) -> list[str]:
    return list(text) if level == "char" else _WORD.findall(text)


class Vocab:
    """A token <-> id mapping whose first ids are the specials ``<pad>``=0, ``<unk>``=1,
    ``<s>``=2 and ``</s>``=3, followed by ``tokens`` in the order given.

    ``level`` says how text becomes tokens and back: ``"char"`` (one token per character,
    joined with "") or ``"word"`` (see ``tokenize``, joined with " "). Specials inside
    ``tokens`` are skipped, so ``Vocab(v.itos, v.level)`` rebuilds ``v``.
    """

    def __init__(self, tokens: Iterable[str] = (), level: str = "word") -> None:
        if level not in ("char", "word"):
            raise ValueError(f"Vocab: level must be 'char' or 'word', got {level!r}")
        self.level = level
        self.itos: list[str] = list(SPECIALS)
        self.stoi: dict[str, int] = {tok: i for i, tok in enumerate(SPECIALS)}
        for tok in tokens:
            if tok in SPECIALS:
                continue
            if not isinstance(tok, str) or not tok:
                raise TypeError(f"Vocab: tokens must be non-empty strings, got {tok!r}")
            if level == "char" and len(tok) != 1:
                raise ValueError(f"Vocab: a char-level token must be one character, got {tok!r}")
            if tok in self.stoi:
                raise ValueError(f"Vocab: duplicate token {tok!r}")
            self.stoi[tok] = len(self.itos)
            self.itos.append(tok)

    @classmethod
    def build(
        cls, tokens: Iterable[str], min_freq: int = 1, max_size: int | None = None,
        level: str = "word",
    ) -> Vocab:
        """Vocabulary of a token stream: the tokens seen at least ``min_freq`` times, most
        frequent first (ties in token order), at most ``max_size`` of them besides the specials.
        """
        if min_freq < 1:
            raise ValueError(f"Vocab.build: min_freq must be >= 1, got {min_freq}")
        if max_size is not None and max_size < 0:
            raise ValueError(f"Vocab.build: max_size must be >= 0 or None, got {max_size}")
        counts = Counter(tok for tok in tokens if tok not in SPECIALS)
        kept = [tok for tok, count in counts.items() if count >= min_freq]
        kept.sort(key=lambda tok: (-counts[tok], tok))
        return cls(kept[:max_size], level)

    @classmethod
    def from_text(
        cls, text: str, level: str = "char", min_freq: int = 1, max_size: int | None = None
    ) -> Vocab:
        """``Vocab.build`` over the tokens of ``text`` at the given level."""
        if level not in ("char", "word"):
            raise ValueError(f"Vocab.from_text: level must be 'char' or 'word', got {level!r}")
        return cls.build(_tokenize(text, level), min_freq, max_size, level)

    pad_id = property(lambda self: PAD_ID, doc="Id of ``<pad>`` (0).")
    unk_id = property(lambda self: UNK_ID, doc="Id of ``<unk>`` (1), given to unknown tokens.")
    bos_id = property(lambda self: BOS_ID, doc="Id of ``<s>`` (2), the start of a target.")
    eos_id = property(lambda self: EOS_ID, doc="Id of ``</s>`` (3), the end of a target.")

    def __len__(self) -> int:
        return len(self.itos)

    def __repr__(self) -> str:
        return f"Vocab(level={self.level!r}, size={len(self)})"

    def tokenize(self, text: str) -> list[str]:
        """Text -> tokens. ``"char"``: ``list(text)``. ``"word"``: the regex
        ``\\w+(?:'\\w+)*|[^\\w\\s]``, i.e. runs of letters, digits and ``_`` (an inner
        apostrophe keeps "don't" whole) and every other non-space character on its own;
        whitespace is dropped and case is kept."""
        return _tokenize(text, self.level)

    def encode(self, tokens: str | Iterable[str]) -> np.ndarray:
        """Tokens -> 1-D int64 ids, unknown tokens -> ``<unk>``; a str is tokenized first."""
        if isinstance(tokens, str):
            tokens = self.tokenize(tokens)
        return np.array([self.stoi.get(tok, UNK_ID) for tok in tokens], dtype=np.int64)

    def decode(self, ids: ArrayLike, strip_specials: bool = True) -> list[str]:
        """1-D ids -> tokens; ``strip_specials`` drops ``<pad>``, ``<s>`` and ``</s>``
        (``<unk>`` stays: it stands for a real token)."""
        ids = np.asarray(ids)
        if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
            raise ValueError(
                f"Vocab.decode: expected a 1-D integer array, got shape {ids.shape} {ids.dtype}"
            )
        bad = (ids < 0) | (ids >= len(self))
        if bad.any():
            raise ValueError(f"Vocab.decode: id {ids[bad][0]} is outside [0, {len(self)})")
        skip = {PAD_ID, BOS_ID, EOS_ID} if strip_specials else set()
        return [self.itos[i] for i in ids.tolist() if i not in skip]

    def decode_text(self, ids: ArrayLike, strip_specials: bool = True) -> str:
        """1-D ids -> text: ``decode`` joined with "" (char level) or " " (word level)."""
        return ("" if self.level == "char" else " ").join(self.decode(ids, strip_specials))


# ---------------------------------------------------------------- text corpora


def default_corpus() -> str:
    """Python's own help pages (``pydoc_data.topics``, about 465k characters of English prose
    and code that ship with CPython): the topic texts joined by newlines in sorted-key order."""
    from pydoc_data.topics import topics  # imported here: a large module few callers need

    return "\n".join(topics[key] for key in sorted(topics))


def load_text(path: str | os.PathLike) -> str:
    """The UTF-8 text of a file; FileNotFoundError if it is missing, ValueError if it is empty
    (or only whitespace) or not UTF-8."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load_text: no such file: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"load_text: {path} is not UTF-8 text ({err})") from err
    if not text.strip():
        raise ValueError(f"load_text: {path} is empty")
    return text


S = TypeVar("S", bound=Sequence)


def split_text(text: S, valid_fraction: float = 0.1, test_fraction: float = 0.0) -> tuple[S, S, S]:
    """Cut ``text`` (a str, list or 1-D array) into contiguous ``(train, valid, test)`` parts in
    that order; valid and test hold ``round(len(text) * fraction)`` items (test is empty when
    ``test_fraction`` is 0). A split asked for but too small to hold one item is an error."""
    for name, frac in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= frac < 1.0:
            raise ValueError(f"split_text: {name} must be in [0, 1), got {frac}")
    if valid_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"split_text: valid_fraction + test_fraction must be < 1, got "
            f"{valid_fraction} + {test_fraction}"
        )
    n = len(text)
    if n == 0:
        raise ValueError("split_text: text is empty")
    n_valid, n_test = round(n * valid_fraction), round(n * test_fraction)
    n_train = n - n_valid - n_test
    for name, frac, size in (
        ("train", 1.0, n_train), ("valid", valid_fraction, n_valid), ("test", test_fraction, n_test)
    ):
        if frac > 0 and size == 0:
            raise ValueError(
                f"split_text: a text of length {n} is too short: the {name} split would be empty"
            )
    return text[:n_train], text[n_train : n_train + n_valid], text[n_train + n_valid :]


# ---------------------------------------------------------------- truncated BPTT


def _check_count(op: str, name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise TypeError(f"{op}: {name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{op}: {name} must be >= 1, got {value}")


def _id_stream(op: str, ids: ArrayLike) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.size == 0:
        raise ValueError(f"{op}: ids is empty (no text to batch)")
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{op}: expected 1-D integer ids, got shape {ids.shape} {ids.dtype}")
    return ids.astype(np.int64, copy=False)


def batchify(ids: ArrayLike, batch_size: int) -> np.ndarray:
    """Cut a 1-D id stream into ``batch_size`` parallel streams, the columns of an int64 array
    ``(N, B)`` with ``N = len(ids) // B``: column b is ``ids[b*N:(b+1)*N]``, read top to bottom.
    The last ``len(ids) % B`` ids are dropped."""
    ids = _id_stream("batchify", ids)
    _check_count("batchify", "batch_size", batch_size)
    n = len(ids) // batch_size
    if n == 0:
        raise ValueError(
            f"batchify: {len(ids)} ids cannot fill {batch_size} streams: "
            f"need at least batch_size = {batch_size} ids"
        )
    return np.ascontiguousarray(ids[: n * batch_size].reshape(batch_size, n).T)


class BPTTBatches:
    """Truncated-BPTT chunks of a corpus: ``batchify(ids, batch_size)`` read ``bptt`` rows at a
    time. Iterating yields int64 pairs ``(x, y)`` of shape ``(T, B)``, ``T = bptt`` except that
    the last chunk may be shorter, with ``y`` the next token of ``x`` (``y[t] = x[t + 1]``
    within a chunk, and the last ``y`` row is the next chunk's first ``x`` row). Each stream
    continues from one chunk to the next, so a model carries its (detached) hidden state over.
    ``len()`` is the number of chunks; iteration can be repeated (one pass per epoch).
    """

    def __init__(self, ids: ArrayLike, batch_size: int, bptt: int) -> None:
        ids = _id_stream("BPTTBatches", ids)
        _check_count("BPTTBatches", "batch_size", batch_size)
        _check_count("BPTTBatches", "bptt", bptt)
        if len(ids) < 2 * batch_size:
            raise ValueError(
                f"BPTTBatches: a corpus of {len(ids)} tokens is too short for one "
                f"(2, {batch_size}) chunk: need at least 2 * batch_size = {2 * batch_size} tokens"
            )
        self.data = batchify(ids, batch_size)
        self.batch_size = batch_size
        self.bptt = bptt

    def __len__(self) -> int:
        return -(-(len(self.data) - 1) // self.bptt)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        last = len(self.data) - 1
        for i in range(0, last, self.bptt):
            t = min(self.bptt, last - i)
            yield self.data[i : i + t].copy(), self.data[i + 1 : i + 1 + t].copy()


def pad_batch(seqs: Sequence[ArrayLike], pad_id: int, length: int | None = None) -> np.ndarray:
    """Stack 1-D id sequences into an int64 array ``(len(seqs), length)``, each padded at the
    end with ``pad_id``; ``length`` defaults to the longest sequence."""
    arrays = [np.asarray(seq, dtype=np.int64) for seq in seqs]
    for i, arr in enumerate(arrays):
        if arr.ndim != 1:
            raise ValueError(f"pad_batch: sequence {i} must be 1-D, got shape {arr.shape}")
        if length is not None and len(arr) > length:
            raise ValueError(f"pad_batch: sequence {i} has length {len(arr)} > length={length}")
    if length is None:
        length = max((len(arr) for arr in arrays), default=0)
    elif length < 0:
        raise ValueError(f"pad_batch: length must be >= 0, got {length}")
    out = np.full((len(arrays), length), pad_id, dtype=np.int64)
    for i, arr in enumerate(arrays):
        out[i, : len(arr)] = arr
    return out


# ---------------------------------------------------------------- seq2seq tasks


@dataclass(frozen=True, eq=False)
class Seq2SeqData:
    """A generated seq2seq task: int64 sources ``(N, S)`` padded at the end with ``<pad>`` and
    targets ``(N, T)`` written ``<s> ... </s>`` then padded, for a train and a test split, with
    the vocabularies that encode them."""

    train_src: np.ndarray
    train_tgt: np.ndarray
    test_src: np.ndarray
    test_tgt: np.ndarray
    src_vocab: Vocab
    tgt_vocab: Vocab

    def decode_source(self, ids: ArrayLike) -> list[str]:
        """Source rows ``(N, S)`` (or one row) -> strings, padding dropped."""
        return [self.src_vocab.decode_text(row) for row in np.atleast_2d(ids)]

    def decode_target(self, ids: ArrayLike) -> list[str]:
        """Target or predicted rows ``(N, T)`` (or one row) -> strings: what follows an optional
        leading ``<s>``, up to the first ``</s>`` (or the end), padding dropped."""
        return [self.tgt_vocab.decode_text(_until_eos(row)) for row in np.atleast_2d(ids)]


def _until_eos(row: np.ndarray) -> np.ndarray:
    if len(row) and row[0] == BOS_ID:
        row = row[1:]
    stops = np.flatnonzero(row == EOS_ID)
    return row[: stops[0]] if stops.size else row


def _test_size(op: str, n: int, test_fraction: float) -> int:
    _check_count(op, "n", n)
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"{op}: test_fraction must be in [0, 1), got {test_fraction}")
    n_test = round(n * test_fraction)
    if n_test == n:
        raise ValueError(f"{op}: n={n} with test_fraction={test_fraction} leaves no training data")
    return n_test


def _seq2seq(
    sources: list[str], targets: list[str], n_test: int, src_vocab: Vocab, tgt_vocab: Vocab,
    src_len: int | None = None, tgt_len: int | None = None,
) -> Seq2SeqData:
    src = pad_batch([src_vocab.encode(s) for s in sources], PAD_ID, src_len)
    tgt = pad_batch(
        [np.concatenate(([BOS_ID], tgt_vocab.encode(t), [EOS_ID])) for t in targets],
        PAD_ID, tgt_len,
    )
    k = len(sources) - n_test
    return Seq2SeqData(src[:k], tgt[:k], src[k:], tgt[k:], src_vocab, tgt_vocab)


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
    n_test = _test_size("addition", n, test_fraction)
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
    pairs = list(zip(a.tolist(), b.tolist()))
    return _seq2seq(
        [f"{x}+{y}" for x, y in pairs], [str(x + y) for x, y in pairs], n_test,
        Vocab("+" + string.digits, "char"), Vocab(string.digits, "char"),
        2 * max_digits + 1, max_digits + 3,
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
    n_test = _test_size("dates", n, test_fraction)
    first = datetime.date(1900, 1, 1).toordinal()
    n_days = datetime.date(2099, 12, 31).toordinal() - first + 1
    if n > n_days:
        raise ValueError(f"dates: only {n_days} distinct dates lie in 1900..2099, asked for n={n}")
    rng = random.Random(seed)
    four_digit = [fmt for fmt in DATE_FORMATS if "%y" not in fmt[0]]
    sources, targets = [], []
    for offset in rng.sample(range(n_days), n):
        day = datetime.date.fromordinal(first + offset)
        pattern, case = rng.choice(DATE_FORMATS if 1969 <= day.year <= 2068 else four_digit)
        sources.append(format_date(day, pattern, case))
        targets.append(day.isoformat())
    literals = {ch for pattern, _ in DATE_FORMATS for ch in _DIRECTIVE.sub("", pattern)}
    src_chars = sorted(set(string.ascii_letters + string.digits) | literals)
    return _seq2seq(
        sources, targets, n_test, Vocab(src_chars, "char"), Vocab(string.digits + "-", "char")
    )


def reverse_source(data: Seq2SeqData) -> Seq2SeqData:
    """A copy of ``data`` with every source sequence reversed and its padding kept at the end
    (the "reversed input" trick of Sutskever et al., 2014); targets are shared, not copied."""

    def reverse(src: np.ndarray) -> np.ndarray:
        lengths = (src != PAD_ID).sum(axis=1, keepdims=True)
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
    the sentence sentiment; ``vocab`` encodes the words, ``tag_names`` names the classes."""

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
    tokens = pad_batch([vocab.encode(words) for words in sentences], PAD_ID)
    tag_arr = pad_batch(tags, TAG_PAD, tokens.shape[1])
    lengths = np.array([len(words) for words in sentences], dtype=np.int64)
    label_arr = np.array(labels, dtype=np.int64)
    k = n - n_test
    return SentimentData(tokens[:k], tag_arr[:k], lengths[:k], label_arr[:k],
                         tokens[k:], tag_arr[k:], lengths[k:], label_arr[k:], vocab)
