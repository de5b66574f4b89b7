"""RNNLM: a recurrent language model trained with truncated backpropagation through time."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

import minigrad as mg
from minigrad import random as mg_random
from minigrad.nn import Dropout, Embedding, Linear, Module
from minigrad.nn import functional as F

from .cells import State
from .recurrent import layer_class


def detach_state(state: State | None) -> State | None:
    """The same state cut from the graph: truncated BPTT carries values, not gradients."""
    if state is None:
        return None
    if isinstance(state, tuple):
        return tuple(s.detach() for s in state)
    return state.detach()


class RNNLM(Module):
    """Embedding -> recurrent stack -> Linear over every step.

    Dropout (``dropout``) acts on the embeddings, between recurrent layers and before the
    output layer. With ``tie_weights=True`` the output layer reuses the embedding matrix
    (Press & Wolf, 2017; Inan et al., 2017), which needs ``hidden_size == embed_size``.
    ``forward(ids (T, B), state=None)`` returns ``(logits (T, B, V), state)``; pass the state
    back, through ``detach_state``, to carry it to the next chunk of a stream.
    """

    def __init__(self, vocab_size: int, embed_size: int, hidden_size: int, num_layers: int = 1,
                 cell: str = "lstm", dropout: float = 0.0, tie_weights: bool = False) -> None:
        super().__init__()
        layer = layer_class(cell, "RNNLM")
        if tie_weights and hidden_size != embed_size:
            raise ValueError(
                f"RNNLM: tie_weights needs hidden_size == embed_size; got {hidden_size} and "
                f"{embed_size}"
            )
        self.vocab_size, self.cell = vocab_size, cell
        self.embed = Embedding(vocab_size, embed_size)
        self.drop = Dropout(dropout)
        self.rnn = layer(embed_size, hidden_size, num_layers, dropout=dropout)
        self.out = Linear(hidden_size, vocab_size)
        if tie_weights:
            self.out.weight = self.embed.weight

    def forward(self, ids, state: State | None = None) -> tuple[mg.Tensor, State]:
        """Logits for the next token at every step of ``ids (T, B)``, and the final state."""
        ids = ids if isinstance(ids, mg.Tensor) else np.asarray(ids)  # a Tensor stays one (traced)
        if ids.ndim != 2 or 0 in ids.shape:
            raise ValueError(
                f"RNNLM: expected token ids of shape (T, B) with T, B >= 1; got {ids.shape}"
            )
        h, state = self.rnn(self.drop(self.embed(ids)), state)
        return self.out(self.drop(h)), state

    def loss(self, ids, targets, state: State | None = None) -> tuple[mg.Tensor, State]:
        """Mean cross-entropy of predicting ``targets (T, B)`` from ``ids``, and the state."""
        targets = targets if isinstance(targets, mg.Tensor) else np.asarray(targets)
        logits, state = self(ids, state)
        if targets.shape != logits.shape[:2]:
            raise ValueError(
                f"RNNLM: targets of shape {targets.shape} do not match ids of shape "
                f"{logits.shape[:2]}"
            )
        return F.cross_entropy(logits.reshape(-1, self.vocab_size), targets.reshape(-1)), state

    def perplexity(self, batches: Iterable[tuple[np.ndarray, np.ndarray]]) -> float:
        """exp(mean cross-entropy per token) over ``(x, y)`` chunks of one stream, in order,
        carrying the state from chunk to chunk (eval mode, no graph)."""
        total, count, state = 0.0, 0, None
        with self.evaluating():
            for x, y in batches:
                loss, state = self.loss(x, y, state)
                total += loss.item() * np.size(y)
                count += np.size(y)
        if count == 0:
            raise ValueError("RNNLM.perplexity: no batches to evaluate")
        return math.exp(total / count)

    def generate(self, prefix: Sequence[int], length: int, temperature: float = 1.0,
                 top_k: int | None = None, seed: int | None = None) -> np.ndarray:
        """Sample ``length`` tokens after ``prefix``; returns prefix + samples as an id array.

        Each token is drawn from softmax(logits / temperature), restricted to the ``top_k``
        most likely tokens when given (``top_k=1`` is greedy decoding). The defaults,
        ``temperature=1.0`` and ``top_k=None``, sample from the model's own distribution,
        unchanged (as ``torch.multinomial`` on its softmax would).

        The draws come from minigrad's generator, so ``mg.manual_seed`` makes them
        reproducible (and generating advances that generator, as sampling in PyTorch advances
        its own); with ``seed`` they come from a generator of their own seeded with it, the
        same samples whatever ``mg.manual_seed`` said, and minigrad's generator is untouched.
        """
        prefix = np.asarray(prefix, dtype=np.int64).ravel()
        if prefix.size == 0:
            raise ValueError("RNNLM.generate: prefix must hold at least one token id")
        if length < 0:
            raise ValueError(f"RNNLM.generate: length must be >= 0; got {length}")
        if temperature <= 0:
            raise ValueError(f"RNNLM.generate: temperature must be positive; got {temperature}")
        if top_k is not None and not 1 <= top_k <= self.vocab_size:
            raise ValueError(
                f"RNNLM.generate: top_k must be in [1, {self.vocab_size}]; got {top_k}"
            )
        rng = mg_random.generator() if seed is None else np.random.default_rng(seed)
        tokens = list(prefix)
        with self.evaluating():
            logits, state = self(prefix[:, None])
            for _ in range(length):
                scores = logits.data[-1, 0].astype(np.float64) / temperature
                if top_k is not None:
                    scores[scores < np.sort(scores)[-top_k]] = -np.inf
                p = np.exp(scores - scores.max())
                token = int(rng.choice(self.vocab_size, p=p / p.sum()))
                tokens.append(token)
                logits, state = self(np.array([[token]]), state)
        return np.array(tokens, dtype=np.int64)
