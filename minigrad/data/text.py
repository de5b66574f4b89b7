"""Text corpora and truncated-BPTT batching for language models: the default corpus (Python's
own help pages, shipped with Python), a text file the user names, and ids cut into batches."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
from numpy.typing import ArrayLike


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
