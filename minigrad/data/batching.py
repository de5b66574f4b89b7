"""Batching: id sequences padded into one array, and shuffled minibatches of paired rows."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike


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


def minibatches(src: np.ndarray, tgt: np.ndarray, batch_size: int, seed: int
                ) -> list[tuple[np.ndarray, np.ndarray]]:
    """One epoch of ``(src, tgt)`` batches: the rows in an order shuffled by ``seed``, cut
    into batches of ``batch_size`` (the last one may be smaller)."""
    if len(src) != len(tgt):
        raise ValueError(f"minibatches: {len(src)} sources but {len(tgt)} targets")
    order = np.random.default_rng(seed).permutation(len(src))
    return [(src[rows], tgt[rows]) for rows in np.split(order, range(batch_size, len(src),
                                                                      batch_size))]
