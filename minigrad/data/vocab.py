"""Vocabularies: tokens to ids and back, with the special tokens (padding, unknown, start,
end) at fixed ids."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

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
        level: str = "word", order: str = "frequency",
    ) -> Vocab:
        """Vocabulary of a token stream: the tokens seen at least ``min_freq`` times, at most
        ``max_size`` of them besides the specials (the most frequent; ties in token order).

        ``order`` lists them after the specials: ``"frequency"``, most frequent first (ties in
        token order), or ``"first"``, in the order they first appear in ``tokens``.
        """
        if min_freq < 1:
            raise ValueError(f"Vocab.build: min_freq must be >= 1, got {min_freq}")
        if max_size is not None and max_size < 0:
            raise ValueError(f"Vocab.build: max_size must be >= 0 or None, got {max_size}")
        if order not in ("frequency", "first"):
            raise ValueError(f"Vocab.build: order must be 'frequency' or 'first', got {order!r}")
        counts = Counter(tok for tok in tokens if tok not in SPECIALS)  # keys in first appearance
        kept = [tok for tok, count in counts.items() if count >= min_freq]
        kept = sorted(kept, key=lambda tok: (-counts[tok], tok))[:max_size]
        if order == "first":
            chosen = set(kept)
            kept = [tok for tok in counts if tok in chosen]
        return cls(kept, level)

    @classmethod
    def from_text(
        cls, text: str, level: str = "char", min_freq: int = 1, max_size: int | None = None,
        order: str = "frequency",
    ) -> Vocab:
        """``Vocab.build`` over the tokens of ``text`` at the given level."""
        if level not in ("char", "word"):
            raise ValueError(f"Vocab.from_text: level must be 'char' or 'word', got {level!r}")
        return cls.build(_tokenize(text, level), min_freq, max_size, level, order)

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
