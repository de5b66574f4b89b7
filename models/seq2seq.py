"""Sequence to sequence: an LSTM encoder reads the source, an LSTM decoder writes the target.

Sources and targets are batch-first int64 arrays, as ``minigrad.data.Seq2SeqData`` holds them:
``src (B, S)`` padded at the end with ``<pad>``, ``tgt (B, T)`` written ``<s> y1 .. yn </s>``
then padded. The special ids come from your vocabulary and nothing assumes one: pass them,
``Encoder(..., pad_id=vocab.pad_id)`` and ``Decoder(..., bos_id=vocab.bos_id,
eos_id=vocab.eos_id, pad_id=vocab.pad_id)``. ``bos_id`` and ``eos_id`` are required; ``pad_id``
defaults to None, no padding (as PyTorch's ``padding_idx=None``), so that no real token is ever
taken for padding. Ids that contradict the data (a padding id between two source tokens, a
target that goes on after its end) raise.

An encoder returns an ``Encoded``: the hidden state at every source position (for attention),
which positions hold tokens, and the final ``(h, c)`` that starts the decoder. Three decoders
read it (Deep Learning from Scratch 2, ch. 7 and 8):

- ``Decoder``: starts from the encoder's final state and sees the source through it alone.
- ``PeekyDecoder``: also concatenates the encoder's final ``h`` to its input at every step and
  to the input of its output layer.
- ``AttentionDecoder``: at every step, dot-product (Luong) attention over all encoder states;
  the context is concatenated with the decoder state before the output layer.

``Seq2Seq(encoder, decoder)`` trains with teacher forcing (``loss``) and decodes greedily
(``generate``). Any module that returns an ``Encoded`` can stand in for the encoder: with
``FeatureEncoder`` the same decoders turn a feature vector into a sequence (vec2seq, as image
captioning does)::

    captioner = Seq2Seq(FeatureEncoder(feature_size, hidden),
                        Decoder(len(vocab), embed, hidden, bos_id=vocab.bos_id,
                                eos_id=vocab.eos_id, pad_id=vocab.pad_id))
    loss = captioner.loss(features, captions)          # features (B, F), captions (B, T)
    ids = captioner.generate(features, max_len=20)     # (B, L), ending with </s> or cut

Ids flow through ops: small ops without gradient check their values (``VocabIds``,
``TargetIds``) and make the padding mask (``SourceMask``), so ``mg.compile(model.loss)`` traces
the training step and checks every batch it replays, with the messages eager gives. Greedy
decoding reads each predicted token to feed it back, so ``generate`` and ``accuracy`` run eagerly.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

import minigrad as mg
from minigrad.func import batching
from minigrad.nn import Embedding, Linear, Module
from minigrad.nn import functional as F
from minigrad.ops.elementwise import NonDifferentiable

from .cells import LSTMCell
from .recurrent import LSTM

_MASKED = -1e9
"""Score of a padded source position: its softmax weight is exactly 0 (finite, unlike -inf,
so ``detect_anomaly`` stays quiet)."""


class Encoded(NamedTuple):
    """What an encoder hands to a decoder.

    ``outputs (B, S, H)``: the hidden state at every source position, 0 at padding;
    ``is_token (B, S)``: a bool tensor (or array), True where the source holds a token;
    ``state``: the final ``(h, c)``, each ``(B, H)``, that the decoder starts from.
    """

    outputs: mg.Tensor
    is_token: mg.Tensor | np.ndarray
    state: tuple[mg.Tensor, mg.Tensor]

    @property
    def mask(self) -> np.ndarray:
        """``is_token`` as a NumPy bool array (for plots and tests; not while tracing)."""
        return np.asarray(self.is_token)


def _check_special_ids(op: str, vocab_size: int, **ids: int | None) -> None:
    """Each special id given (None: not used) is an id of the vocabulary, and no two agree."""
    names: dict[int, str] = {}
    for name, i in ids.items():
        if i is None:
            continue
        if isinstance(i, bool) or not isinstance(i, int | np.integer) or not 0 <= i < vocab_size:
            raise ValueError(f"{op}: {name}={i!r} is not an id of the vocabulary of {vocab_size} "
                             f"ids (0..{vocab_size - 1})")
        if i in names:
            raise ValueError(f"{op}: {names[i]} and {name} are both {i}; each special token "
                             "needs its own id")
        names[i] = name


class VocabIds(NonDifferentiable):
    """vocab_ids: y = ids as int64, after checking 0 <= ids < vocab_size; no gradient"""

    def __init__(self, op: str, what: str, vocab_size: int) -> None:
        self.op, self.what, self.vocab_size = op, what, vocab_size

    def forward(self, ids):
        bad = np.argwhere((ids < 0) | (ids >= self.vocab_size))
        if bad.size:
            where = tuple(int(i) for i in bad[0])
            raise ValueError(
                f"{self.op}: {self.what} id {ids[where]} at {where} is outside the vocabulary "
                f"of {self.vocab_size} ids (0..{self.vocab_size - 1})"
            )
        return ids.astype(np.int64, copy=False)


def _ids(op: str, what: str, ids: Any, vocab_size: int) -> mg.Tensor:
    """``ids`` as a 2-D int64 tensor ``(batch, length)`` of ids in ``[0, vocab_size)``: the
    shape is checked here, the values by ``VocabIds`` (at every call of a compiled program)."""
    ids = ids if isinstance(ids, mg.Tensor) else mg.tensor(np.asarray(ids))
    if ids.ndim != 2 or ids.dtype.kind not in "iu":
        raise ValueError(
            f"{op}: {what} must be a 2-D integer array (batch, length); got shape {ids.shape} "
            f"and dtype {ids.dtype}"
        )
    return VocabIds.apply(ids, op=op, what=what, vocab_size=vocab_size)


class SourceMask(NonDifferentiable):
    """source_mask: y = (src != pad_id) (all True without a pad_id), after checking that every
    row holds a token and no padding lies between two tokens; no gradient"""

    def __init__(self, pad_id: int | None) -> None:
        self.pad_id = pad_id

    def forward(self, src):
        mask = np.ones(src.shape, bool) if self.pad_id is None else src != self.pad_id
        empty = np.flatnonzero(~mask.any(axis=1))
        if empty.size:
            what = "is empty" if self.pad_id is None else f"holds only <pad> (pad_id {self.pad_id})"
            raise ValueError(f"Encoder: source row {empty[0]} {what}; every source needs a token")
        before, after = np.cumsum(mask, axis=1), np.cumsum(mask[:, ::-1], axis=1)[:, ::-1]
        gaps = np.argwhere(~mask & (before > 0) & (after > 0))
        if gaps.size:
            row, pos = gaps[0]
            raise ValueError(
                f"Encoder: source row {row} holds the padding id {self.pad_id} at position "
                f"{pos}, between tokens; padding belongs at the ends of a row. If id "
                f"{self.pad_id} is a real token of your vocabulary, give the Encoder your "
                "padding id (pad_id=...)"
            )
        return mask


# vmap: the examples' rows checked as one batch (ids one by one)
batching.RULES.update({VocabIds: batching.pointwise, SourceMask: batching.rows})


class Encoder(Module):
    """Embedding + LSTM over a padded source ``(B, S)``; returns an ``Encoded``.

    Padding is skipped, not read: at a ``pad_id`` position the state is carried over unchanged
    and the output is 0, so the final state is the one after the last token of each row and
    nothing depends on how much padding a row has. Every row needs at least one token, and
    padding goes at the ends of a row: a ``pad_id`` between two tokens raises, since it
    usually means that ``pad_id`` is a real token of the vocabulary. ``pad_id`` is your
    vocabulary's padding id (``vocab.pad_id`` for a ``minigrad.data.Vocab``); the default,
    None, means that the sources are never padded and every id is a token, as PyTorch's
    ``padding_idx=None``.

    With ``reverse=True`` the LSTM reads each row's tokens from last to first (Sutskever et
    al., 2014): the same as the plain encoder on ``data.reverse_source``'s rows, except that
    ``outputs[:, s]`` stays aligned with source position ``s`` (handy for attention plots).
    """

    def __init__(self, vocab_size: int, embed_size: int, hidden_size: int,
                 reverse: bool = False, pad_id: int | None = None) -> None:
        super().__init__()
        _check_special_ids("Encoder", vocab_size, pad_id=pad_id)
        self.vocab_size, self.hidden_size, self.reverse = vocab_size, hidden_size, reverse
        self.pad_id = pad_id
        self.embed = Embedding(vocab_size, embed_size)
        self.cell = LSTMCell(embed_size, hidden_size)

    def forward(self, src: Any) -> Encoded:
        """Encode ``src (B, S)``."""
        src = _ids("Encoder", "source", src, self.vocab_size)
        mask = SourceMask.apply(src, pad_id=self.pad_id)
        batch, length = src.shape
        xs = self.cell.project_input(self.embed(src))  # (B, S, 4H): one matmul for all steps
        steps = mg.unbind(xs, axis=1)
        state = self.cell.init_state(batch, xs.dtype)
        outputs: list[mg.Tensor | None] = [None] * length
        for t in reversed(range(length)) if self.reverse else range(length):
            with mg.name_scope(f"t{t}"):
                h, new = self.cell.step(steps[t], state)
                token = mask[:, t, None]
                state = tuple(mg.where(token, n, s) for n, s in zip(new, state))
                outputs[t] = mg.where(token, h, 0.0)
        return Encoded(mg.stack(outputs, axis=1), mask, state)

    def extra_repr(self) -> str:
        """The reading direction and the padding id."""
        return ("reverse=True, " if self.reverse else "") + f"pad_id={self.pad_id}"


class FeatureEncoder(Module):
    """vec2seq: a feature vector ``(B, F)`` -> the decoder's starting state, as an ``Encoded``.

    ``h = tanh(W_h f + b_h)``, ``c = W_c f + b_c`` (one ``Linear(F, 2H)``); ``outputs`` is
    ``h`` as a single position ``(B, 1, H)``, so every decoder kind accepts it.
    """

    def __init__(self, feature_size: int, hidden_size: int) -> None:
        super().__init__()
        self.feature_size, self.hidden_size = feature_size, hidden_size
        self.to_state = Linear(feature_size, 2 * hidden_size)

    def forward(self, features: Any) -> Encoded:
        """Encode ``features (B, F)`` (a Tensor or an array, taken as the parameters' dtype)."""
        features = features if isinstance(features, mg.Tensor) else mg.tensor(features)
        features = features.astype(self.to_state.weight.dtype)
        if features.ndim != 2 or features.shape[1] != self.feature_size:
            raise ValueError(
                f"FeatureEncoder: features must have shape (batch, {self.feature_size}); got "
                f"{features.shape}"
            )
        h, c = self.to_state(features).chunk(2, -1)
        h = h.tanh()
        return Encoded(h.reshape(h.shape[0], 1, -1), mg.ones(h.shape[0], 1, dtype=bool), (h, c))


def attention(query: mg.Tensor, memory: mg.Tensor, mask: mg.Tensor | np.ndarray
              ) -> tuple[mg.Tensor, mg.Tensor]:
    """Dot-product attention: ``weights = softmax(query @ memoryᵀ)`` over the positions where
    ``mask (B, S)`` is True (0 elsewhere), ``context = weights @ memory``.

    ``query (B, T, H)``, ``memory (B, S, H)``; returns ``context (B, T, H)`` and
    ``weights (B, T, S)``. Masked positions get exactly zero weight and zero gradient.
    """
    scores = query @ memory.swapaxes(1, 2)
    weights = mg.where(mask[:, None, :], scores, _MASKED).softmax(-1)
    return weights @ memory, weights


class Decoder(Module):
    """Embedding + LSTM + Linear, started from the encoder's final ``(h, c)``.

    ``forward(tgt_in (B, T), enc)`` returns logits ``(B, T, V)`` for teacher forcing: fed
    ``<s> y1 .. y_{n-1}``, step t predicts ``y_{t+1}`` (``Seq2Seq.loss`` does the shift).
    ``generate(enc, max_len)`` decodes greedily from ``<s>``. Subclasses change ``decode``.

    ``bos_id``, ``eos_id`` and ``pad_id`` are the target vocabulary's ``<s>``, ``</s>`` and
    ``<pad>`` (``vocab.bos_id``, ... for a ``minigrad.data.Vocab``), given by keyword:
    generation starts from ``bos_id``, a row ends at its first ``eos_id`` and is filled with
    ``pad_id`` after it, and ``Seq2Seq.loss`` ignores ``pad_id``. ``bos_id`` and ``eos_id`` are
    required (no vocabulary is assumed); ``pad_id`` defaults to None: targets are not padded
    (each row runs to the last column) and generated rows are filled with ``eos_id`` after
    their end.
    """

    extra_input = 0
    """How many hidden-size vectors are concatenated to each step's input (Peeky: 1)."""
    extra_output = 0
    """How many hidden-size vectors are concatenated to the LSTM output before ``out``."""

    def __init__(self, vocab_size: int, embed_size: int, hidden_size: int, *, bos_id: int,
                 eos_id: int, pad_id: int | None = None) -> None:
        super().__init__()
        for name, i in (("bos_id", bos_id), ("eos_id", eos_id)):
            if i is None:
                raise TypeError(f"{type(self).__name__}: {name} must be an id of the vocabulary; "
                                f"got None. Pass your vocabulary's id ({name}=vocab.{name})")
        _check_special_ids(type(self).__name__, vocab_size, bos_id=bos_id, eos_id=eos_id,
                           pad_id=pad_id)
        self.vocab_size, self.hidden_size = vocab_size, hidden_size
        self.bos_id, self.eos_id, self.pad_id = bos_id, eos_id, pad_id
        self.embed = Embedding(vocab_size, embed_size)
        self.lstm = LSTM(embed_size + self.extra_input * hidden_size, hidden_size,
                         batch_first=True)
        self.out = Linear((1 + self.extra_output) * hidden_size, vocab_size)

    @property
    def fill_id(self) -> int:
        """What follows the end of a generated row: ``pad_id``, or ``eos_id`` without one."""
        return self.eos_id if self.pad_id is None else self.pad_id

    def initial_state(self, enc: Encoded) -> tuple[mg.Tensor, mg.Tensor]:
        """The LSTM's ``hx``: the encoder's final ``(h, c)`` as ``(1, B, H)`` each."""
        h, c = enc.state
        if h.shape[-1] != self.hidden_size:
            raise ValueError(
                f"{type(self).__name__}: the encoder's state has size {h.shape[-1]}; this "
                f"decoder's hidden_size is {self.hidden_size}"
            )
        return h.reshape(1, *h.shape), c.reshape(1, *c.shape)

    def decode(self, ids: mg.Tensor | np.ndarray, enc: Encoded, state: tuple[mg.Tensor, mg.Tensor]
               ) -> tuple[mg.Tensor, tuple[mg.Tensor, mg.Tensor], mg.Tensor | None]:
        """Run ``ids (B, T)`` from ``state``: ``(logits (B, T, V), state, attention)``, where
        attention is ``(B, T, S)`` weights for ``AttentionDecoder`` and None otherwise."""
        hs, state = self.lstm(self.embed(ids), state)
        return self.out(hs), state, None

    def forward(self, tgt_in: Any, enc: Encoded) -> mg.Tensor:
        """Teacher-forced logits ``(B, T, V)`` for the inputs ``tgt_in (B, T)``."""
        tgt_in = _ids(type(self).__name__, "target", tgt_in, self.vocab_size)
        if tgt_in.shape[0] != enc.is_token.shape[0]:
            raise ValueError(
                f"{type(self).__name__}: {tgt_in.shape[0]} target rows for a batch of "
                f"{enc.is_token.shape[0]} sources"
            )
        return self.decode(tgt_in, enc, self.initial_state(enc))[0]

    def generate(self, enc: Encoded, max_len: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Greedy decoding from ``<s>``: at each step feed back the most likely token.

        Returns ``ids (B, L)`` without the ``<s>``, ``L <= max_len``: a row ends with its first
        ``eos_id`` and is filled with ``fill_id`` (``pad_id``, or ``eos_id`` without one) after
        it; decoding stops once every row has ended (or after ``max_len`` tokens). Also returns
        the attention weights ``(B, L, S)`` or None. It runs eagerly: each step reads the token
        just predicted, in Python, to feed it back, which a traced program cannot replay
        (compile ``Seq2Seq.loss``, not this).
        """
        if not isinstance(max_len, int | np.integer) or max_len < 1:
            raise ValueError(f"{type(self).__name__}.generate: max_len must be >= 1; got {max_len}")
        batch = enc.is_token.shape[0]
        token = np.full((batch, 1), self.bos_id, np.int64)
        state = self.initial_state(enc)
        done = np.zeros(batch, bool)
        ids, weights = [], []
        for _ in range(max_len):
            logits, state, attn = self.decode(token, enc, state)
            token = np.where(done, self.fill_id, logits.data[:, -1].argmax(axis=-1))[:, None]
            ids.append(token)
            weights.append(attn)
            done |= token[:, 0] == self.eos_id
            if done.all():
                break
        attention = None if weights[0] is None else np.concatenate([w.data for w in weights], 1)
        return np.concatenate(ids, axis=1), attention


def _repeat(h: mg.Tensor, steps: int) -> mg.Tensor:
    """``(B, H)`` -> ``(B, steps, H)``, the same vector at every step."""
    return h.reshape(h.shape[0], 1, h.shape[1]).broadcast_to((h.shape[0], steps, h.shape[1]))


class PeekyDecoder(Decoder):
    """A ``Decoder`` that peeks at the encoder's final ``h`` at every step: ``[embed(y); h]``
    is the LSTM's input and ``[h_t; h]`` the output layer's (DL2, ch. 7)."""

    extra_input = 1
    extra_output = 1

    def decode(self, ids, enc, state):
        peek = _repeat(enc.state[0], ids.shape[1])
        hs, state = self.lstm(mg.concat([self.embed(ids), peek], axis=-1), state)
        return self.out(mg.concat([hs, peek], axis=-1)), state, None


class AttentionDecoder(Decoder):
    """A ``Decoder`` that attends: at step t the LSTM state ``h_t`` scores every encoder
    state by a dot product, ``context_t`` is their softmax-weighted mean (padding excluded,
    see ``attention``), and ``[context_t; h_t]`` feeds the output layer (Luong et al., 2015;
    DL2, ch. 8). ``decode`` returns the weights ``(B, T, S)``; ``Seq2Seq.generate(...,
    return_attention=True)`` returns them for plotting."""

    extra_output = 1

    def decode(self, ids, enc, state):
        hs, state = self.lstm(self.embed(ids), state)
        context, weights = attention(hs, enc.outputs, enc.is_token)
        return self.out(mg.concat([context, hs], axis=-1)), state, weights


class TargetIds(NonDifferentiable):
    """target_ids: y = tgt, after checking that each row is <s>, tokens, then </s> or padding,
    and nothing but padding after that (nothing at all without a pad_id); no gradient"""

    def __init__(self, op: str, bos_id: int, eos_id: int, pad_id: int | None) -> None:
        self.op, self.bos_id, self.eos_id, self.pad_id = op, bos_id, eos_id, pad_id

    def forward(self, tgt):
        op = self.op
        if tgt.shape[1] < 2 or not (tgt[:, 0] == self.bos_id).all():
            raise ValueError(
                f"{op}: targets must start with <s> (the decoder's bos_id {self.bos_id}) and "
                f"hold at least one more token; got shape {tgt.shape} with first column "
                f"{tgt[:5, :1].ravel()}... If your vocabulary puts <s> elsewhere, give the "
                "Decoder its id (bos_id=...)"
            )
        padding = np.zeros(tgt.shape, bool) if self.pad_id is None else tgt == self.pad_id
        end = (tgt == self.eos_id) | padding
        late = np.argwhere((np.cumsum(end, axis=1) - end > 0) & ~padding)
        if late.size:
            row, pos = late[0]
            stop = int(np.argmax(end[row]))
            name = "</s>" if tgt[row, stop] == self.eos_id else "<pad>"
            if self.pad_id is None:
                fix = ("then nothing, since the Decoder has no pad_id. If your targets are "
                       "padded, give the Decoder your padding id (pad_id=...)")
            else:
                fix = (f"then padding only. If id {tgt[row, stop]} is a real token of your "
                       "vocabulary, give the Decoder your special ids (bos_id=, eos_id=, pad_id=)")
            raise ValueError(
                f"{op}: target row {row} holds id {tgt[row, pos]} at position {pos}, after its "
                f"end ({name}, id {tgt[row, stop]}, at position {stop}); a target is <s>, "
                f"tokens, </s>, {fix}"
            )
        return tgt


batching.RULES[TargetIds] = batching.rows  # vmap: the examples' rows checked as one batch


class Seq2Seq(Module):
    """An encoder and a decoder trained together.

    ``forward(src, tgt_in)`` -> logits ``(B, T, V)``; ``loss(src, tgt)`` teacher-forces
    ``tgt[:, :-1]`` and scores ``tgt[:, 1:]`` (``<pad>`` ignored); ``generate(src, max_len)``
    -> greedy ids; ``accuracy(src, tgt)`` -> the fraction of exact answers. ``src`` is
    whatever the encoder reads: ids ``(B, S)``, or features ``(B, F)`` for ``FeatureEncoder``.
    Targets are read with the decoder's special ids: ``<s>``, tokens, ``</s>``, then padding.
    """

    def __init__(self, encoder: Module, decoder: Decoder) -> None:
        super().__init__()
        if encoder.hidden_size != decoder.hidden_size:
            raise ValueError(
                f"Seq2Seq: the encoder's hidden_size ({encoder.hidden_size}) must equal the "
                f"decoder's ({decoder.hidden_size})"
            )
        self.encoder, self.decoder = encoder, decoder

    def forward(self, src: Any, tgt_in: Any) -> mg.Tensor:
        """Teacher-forced logits ``(B, T, V)`` for decoder inputs ``tgt_in (B, T)``."""
        return self.decoder(tgt_in, self.encoder(src))

    def loss(self, src: Any, tgt: Any) -> mg.Tensor:
        """Mean cross-entropy per target token of ``tgt (B, T)`` (``<s>`` first, ``<pad>``
        ignored): the decoder reads ``tgt[:, :-1]`` and predicts ``tgt[:, 1:]``."""
        tgt = self._targets("Seq2Seq.loss", tgt)
        logits = self(src, tgt[:, :-1])
        return F.cross_entropy(logits, tgt[:, 1:], ignore_index=self.decoder.pad_id, axis=-1)

    def _targets(self, op: str, tgt: Any) -> mg.Tensor:
        """``tgt`` checked against the decoder's special ids (see ``TargetIds``)."""
        d = self.decoder
        tgt = _ids(op, "target", tgt, d.vocab_size)
        return TargetIds.apply(tgt, op=op, bos_id=d.bos_id, eos_id=d.eos_id, pad_id=d.pad_id)

    def generate(self, src: Any, max_len: int, return_attention: bool = False
                 ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Greedy answers ``(B, L)`` for ``src`` (see ``Decoder.generate``), in eval mode
        without a graph; with ``return_attention`` also the weights ``(B, L, S)``."""
        if return_attention and not isinstance(self.decoder, AttentionDecoder):
            raise ValueError(
                f"Seq2Seq.generate: return_attention needs an AttentionDecoder; this model has "
                f"a {type(self.decoder).__name__}"
            )
        with self.evaluating():
            ids, weights = self.decoder.generate(self.encoder(src), max_len)
        return (ids, weights) if return_attention else ids

    def accuracy(self, src: Any, tgt: Any, batch_size: int = 1000) -> float:
        """Exact-match accuracy: the fraction of rows whose greedy answer is ``tgt``'s tokens
        followed by ``</s>``, nothing more or less."""
        tgt = self._targets("Seq2Seq.accuracy", tgt).numpy()
        if len(src) != len(tgt):
            raise ValueError(f"Seq2Seq.accuracy: {len(src)} sources but {len(tgt)} targets")
        want = tgt[:, 1:]
        hits = 0
        for i in range(0, len(tgt), batch_size):
            got = self.generate(src[i:i + batch_size], want.shape[1])
            got = np.pad(got, ((0, 0), (0, want.shape[1] - got.shape[1])),
                         constant_values=self.decoder.fill_id)
            hits += int((got == want[i:i + batch_size]).all(axis=1).sum())
        return hits / len(tgt)
