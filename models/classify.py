"""Sequence classification (seq2vec, N -> 1) and tagging (seq2seq of equal length, N -> N).

Both models read token ids ``(B, T)``, one sequence per row as ``SentimentData`` stores them,
padded at the end, with ``lengths (B,)`` the true lengths (all ``T`` when omitted). No sequence
ever reads its padding: the forward direction is causal, and the backward direction runs over
each sequence reversed within its length (what PyTorch does with packed sequences), so a
sequence gets the same outputs alone as in any padded batch, whatever the padding holds.

``pad_id`` is the vocabulary's padding id (``vocab.pad_id`` for a ``minigrad.data.Vocab``): its
embedding row stays zero and learns nothing, so a real token must never have it. With
``lengths`` given, ``pad_id`` inside a length raises for that reason. It defaults to None, no
padding id (PyTorch's ``padding_idx=None``): every id is a token, and ``lengths`` alone say
where each sequence ends.

Ids and lengths flow through ops: their values are checked inside ``BatchLengths``, an op
without gradient, and the masks are made by comparisons, so ``mg.compile(model.loss)`` traces
the training step and checks every batch it replays as eagerly. ``predict`` and ``accuracy``
read the predictions in NumPy and run eagerly.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

import minigrad as mg
from minigrad.data import TAG_PAD
from minigrad.func import batching
from minigrad.nn import Dropout, Embedding, Linear, Module, ModuleList
from minigrad.nn import functional as F
from minigrad.ops.elementwise import NonDifferentiable

from .recurrent import layer_class

POOLINGS = ("last", "mean", "max")


def _as_tensor(x: ArrayLike | mg.Tensor) -> mg.Tensor:
    """``x`` as a tensor: a Tensor as it is (so that a traced one stays traced), anything else
    as NumPy reads it."""
    return x if isinstance(x, mg.Tensor) else mg.tensor(np.asarray(x))


def reverse_padded(x: mg.Tensor, lengths: ArrayLike | mg.Tensor) -> mg.Tensor:
    """``x (T, B, ...)`` with the first ``lengths[b]`` steps of each column b reversed and the
    padding after them left in place. Applying it twice gives ``x`` back."""
    steps, lengths = mg.arange(x.shape[0])[:, None], _as_tensor(lengths)
    return x[mg.where(steps < lengths, lengths - 1 - steps, steps), np.arange(x.shape[1])]


class BatchLengths(NonDifferentiable):
    """batch_lengths: (ids, lengths) as given (lengths as int64), after checking that
    1 <= lengths <= T and that no pad_id lies within a length; no gradient"""

    def __init__(self, model: str, pad_id: int | None) -> None:
        self.model, self.pad_id = model, pad_id

    def forward(self, ids, lengths):
        name, steps = self.model, ids.shape[1]
        bad = lengths[(lengths < 1) | (lengths > steps)]
        if bad.size:
            raise ValueError(f"{name}: lengths must lie in 1..{steps} (T of ids {ids.shape}); "
                             f"got {bad[0]}")
        inside = np.arange(steps) < lengths[:, None]
        padded = np.argwhere(inside & (ids == self.pad_id)) if self.pad_id is not None else []
        if len(padded):
            row, pos = padded[0]
            raise ValueError(
                f"{name}: row {row} of ids holds the padding id {self.pad_id} at position {pos}, "
                f"inside its length {lengths[row]}. If id {self.pad_id} is a real token of your "
                "vocabulary, give the model your padding id (pad_id=..., None if there is none)"
            )
        return ids, lengths.astype(np.int64)


batching.RULES[BatchLengths] = batching.rows  # vmap: examples' rows checked as one batch


class _PaddedRecurrentModel(Module):
    """Embedding -> recurrent stack over end-padded batches -> Linear, the body of both models.

    Layer k > 0 reads layer k-1's output, ``[h→; h←]`` when bidirectional. Dropout acts on the
    embeddings, between layers and before the output layer.
    """

    def __init__(self, vocab_size: int, embed_size: int, hidden_size: int, num_outputs: int,
                 cell: str, num_layers: int, bidirectional: bool, dropout: float,
                 pad_id: int | None) -> None:
        super().__init__()
        name = type(self).__name__
        layer = layer_class(cell, name)
        if num_layers < 1:
            raise ValueError(f"{name}: num_layers must be at least 1; got {num_layers}")
        if pad_id is not None and not 0 <= pad_id < vocab_size:
            raise ValueError(f"{name}: pad_id={pad_id} is not an id of the vocabulary of "
                             f"{vocab_size} ids (0..{vocab_size - 1}); pass None if it has none")
        self.vocab_size, self.hidden_size, self.cell = vocab_size, hidden_size, cell
        self.bidirectional, self.pad_id = bidirectional, pad_id
        directions = 2 if bidirectional else 1
        widths = [embed_size] + [directions * hidden_size] * (num_layers - 1)
        self.embed = Embedding(vocab_size, embed_size, padding_idx=pad_id)
        self.drop = Dropout(dropout)
        self.forward_layers = ModuleList([layer(w, hidden_size) for w in widths])
        self.backward_layers = ModuleList(
            [layer(w, hidden_size) for w in widths] if bidirectional else []
        )
        self.out = Linear(directions * hidden_size, num_outputs)

    def _batch(self, ids: ArrayLike, lengths: ArrayLike | None) -> tuple[mg.Tensor, mg.Tensor]:
        """Checked ``ids (B, T)`` and ``lengths (B,)`` (all T when None) as integer tensors: the
        shapes are checked here, the values by ``BatchLengths``."""
        name = type(self).__name__
        ids = _as_tensor(ids)
        if ids.ndim != 2 or 0 in ids.shape:
            raise ValueError(f"{name}: expected token ids of shape (B, T) with B, T >= 1; "
                             f"got {ids.shape}")
        batch, steps = ids.shape
        if lengths is None:
            return ids, mg.tensor(np.full(batch, steps))
        lengths = _as_tensor(lengths)
        if lengths.shape != (batch,) or lengths.dtype.kind not in "iu":
            raise ValueError(f"{name}: lengths must be {batch} integers, one per row of ids "
                             f"{ids.shape}; got shape {lengths.shape} {lengths.dtype}")
        return BatchLengths.apply(ids, lengths, model=name, pad_id=self.pad_id)

    def _states(self, ids: mg.Tensor, lengths: mg.Tensor) -> mg.Tensor:
        """The top layer's outputs ``(T, B, D*H)``; steps past a sequence's length hold values
        that no valid step depends on."""
        x = self.embed(ids.T)
        for k, forward in enumerate(self.forward_layers):
            x = self.drop(x)  # on the embeddings, then between layers
            out, _ = forward(x)
            if self.bidirectional:
                back, _ = self.backward_layers[k](reverse_padded(x, lengths))
                out = mg.concat([out, reverse_padded(back, lengths)], axis=-1)
            x = out
        return x

    def _check_targets(self, what: str, targets: ArrayLike, shape: tuple[int, ...]
                       ) -> mg.Tensor:
        targets = _as_tensor(targets)
        if targets.shape != shape:
            raise ValueError(f"{type(self).__name__}: {what} of shape {targets.shape} do not "
                             f"match ids: expected {shape}")
        return targets


class SequenceClassifier(_PaddedRecurrentModel):
    """Seq2vec: one label per sequence from an embedding and a recurrent stack.

    ``pooling`` turns the outputs into one vector per sequence: ``'last'`` takes the forward
    state at each sequence's true last step (and, when bidirectional, the backward state at
    its first step, as PyTorch's ``h_n`` of a packed sequence); ``'mean'`` and ``'max'`` pool
    over the valid steps only. ``forward(ids (B, T), lengths=None)`` returns logits
    ``(B, num_classes)``.
    """

    def __init__(self, vocab_size: int, embed_size: int, hidden_size: int, num_classes: int,
                 cell: str = "lstm", num_layers: int = 1, bidirectional: bool = False,
                 pooling: str = "last", dropout: float = 0.0, pad_id: int | None = None
                 ) -> None:
        if pooling not in POOLINGS:
            raise ValueError(f"SequenceClassifier: pooling must be one of {POOLINGS}; "
                             f"got {pooling!r}")
        super().__init__(vocab_size, embed_size, hidden_size, num_classes, cell, num_layers,
                         bidirectional, dropout, pad_id)
        self.pooling = pooling

    def forward(self, ids: ArrayLike, lengths: ArrayLike | None = None) -> mg.Tensor:
        """Logits ``(B, num_classes)`` for each sequence of ``ids (B, T)``."""
        ids, lengths = self._batch(ids, lengths)
        states = self._states(ids, lengths)
        if self.pooling == "last":
            pooled = states[lengths - 1, np.arange(len(lengths))]
            if self.bidirectional:
                h = self.hidden_size
                pooled = mg.concat([pooled[:, :h], states[0][:, h:]], axis=1)
        else:
            valid = (mg.arange(states.shape[0])[:, None] < lengths)[..., None]
            if self.pooling == "mean":
                # 1 / length at valid steps, 0 at padding, in the states' dtype (an integer
                # division would give the default float32, as in PyTorch)
                weights = valid.astype(states.dtype) / lengths[:, None].astype(states.dtype)
                pooled = (states * weights).sum(axis=0)
            else:
                # padding repeats step 0, which every sequence has: the max is over valid steps
                # (amax, not max: as in PyTorch, max(dim) returns (values, indices))
                pooled = mg.where(valid, states, states[0]).amax(0)
        return self.out(self.drop(pooled))

    def loss(self, ids: ArrayLike, labels: ArrayLike, lengths: ArrayLike | None = None
             ) -> mg.Tensor:
        """Mean cross-entropy of the ``labels (B,)`` given ``ids (B, T)``."""
        logits = self(ids, lengths)
        return F.cross_entropy(logits, self._check_targets("labels", labels, logits.shape[:1]))

    def predict(self, ids: ArrayLike, lengths: ArrayLike | None = None) -> np.ndarray:
        """The most likely label of each sequence, ``(B,)`` (eval mode, no graph)."""
        with self.evaluating():
            return self(ids, lengths).data.argmax(axis=-1)

    def accuracy(self, ids: ArrayLike, labels: ArrayLike, lengths: ArrayLike | None = None
                 ) -> float:
        """Fraction of sequences whose predicted label is ``labels (B,)``."""
        predicted = self.predict(ids, lengths)
        labels = self._check_targets("labels", labels, predicted.shape).numpy()
        return float((predicted == labels).mean())


class SequenceTagger(_PaddedRecurrentModel):
    """Seq2seq of equal length: one tag per token from an embedding and a recurrent stack.

    ``forward(ids (B, T), lengths=None)`` returns logits ``(B, T, num_tags)``; the loss and the
    accuracy count only the steps within each length whose tag is not ``TAG_PAD`` (-100).
    """

    def __init__(self, vocab_size: int, embed_size: int, hidden_size: int, num_tags: int,
                 cell: str = "lstm", num_layers: int = 1, bidirectional: bool = False,
                 dropout: float = 0.0, pad_id: int | None = None) -> None:
        super().__init__(vocab_size, embed_size, hidden_size, num_tags, cell, num_layers,
                         bidirectional, dropout, pad_id)

    def forward(self, ids: ArrayLike, lengths: ArrayLike | None = None) -> mg.Tensor:
        """Logits ``(B, T, num_tags)`` for every token of ``ids (B, T)``."""
        ids, lengths = self._batch(ids, lengths)
        return self.out(self.drop(self._states(ids, lengths))).swapaxes(0, 1)

    def _tags(self, ids: ArrayLike, tags: ArrayLike, lengths: ArrayLike | None) -> mg.Tensor:
        """``tags (B, T)`` with every step past its sequence's length set to ``TAG_PAD``."""
        ids, lengths = self._batch(ids, lengths)
        tags = self._check_targets("tags", tags, ids.shape)
        return mg.where(mg.arange(ids.shape[1]) < lengths[:, None], tags, TAG_PAD)

    def loss(self, ids: ArrayLike, tags: ArrayLike, lengths: ArrayLike | None = None
             ) -> mg.Tensor:
        """Mean cross-entropy over the tagged steps of ``tags (B, T)``."""
        tags = self._tags(ids, tags, lengths)
        return F.cross_entropy(self(ids, lengths), tags, ignore_index=TAG_PAD, axis=-1)

    def predict(self, ids: ArrayLike, lengths: ArrayLike | None = None) -> np.ndarray:
        """The most likely tag of each token, ``(B, T)``, ``TAG_PAD`` past each length (eval
        mode, no graph)."""
        with self.evaluating():
            predicted = self(ids, lengths).data.argmax(axis=-1)
        return self._tags(ids, predicted, lengths).numpy()

    def accuracy(self, ids: ArrayLike, tags: ArrayLike, lengths: ArrayLike | None = None
                 ) -> float:
        """Fraction of the tagged steps of ``tags (B, T)`` whose predicted tag is right."""
        tags = self._tags(ids, tags, lengths).numpy()
        counted = tags != TAG_PAD
        if not counted.any():
            raise ValueError("SequenceTagger.accuracy: no tagged step to count")
        return float((self.predict(ids, lengths) == tags)[counted].mean())
