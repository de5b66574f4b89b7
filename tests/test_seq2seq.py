"""Seq2seq: encoder with padding and reversal, plain, peeky and attention decoders, vec2seq."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad.data import BOS_ID, EOS_ID, PAD_ID, minibatches, pad_batch
from minigrad.models.seq2seq import (
    AttentionDecoder,
    Decoder,
    Encoded,
    Encoder,
    FeatureEncoder,
    PeekyDecoder,
    Seq2Seq,
    attention,
)
from tests.strategies import arrays, leaf

DECODERS = [Decoder, PeekyDecoder, AttentionDecoder]
VOCAB = 7  # the 4 specials and 3 tokens
IDS = dict(bos_id=BOS_ID, eos_id=EOS_ID, pad_id=PAD_ID)
"""The special ids of ``minigrad.data.Vocab``, which the tests' data use."""


def seeded(seed, decoder_type=Decoder, reverse=False, vocab=VOCAB, embed=2, hidden=3):
    """A float64 Seq2Seq with the default initialization drawn from ``seed``."""
    mg.manual_seed(seed)
    encoder = Encoder(vocab, embed, hidden, reverse=reverse, pad_id=PAD_ID)
    return Seq2Seq(encoder, decoder_type(vocab, embed, hidden, **IDS)).double()


def batch(seed, rows, src_len, tgt_len, vocab=VOCAB):
    """Sources of 1..src_len tokens padded to src_len, and targets ``<s> y.. </s>`` of
    0..tgt_len-2 tokens padded to tgt_len; tokens are ids 4..vocab-1."""
    rng = np.random.default_rng(seed)
    src = pad_batch([rng.integers(4, vocab, rng.integers(1, src_len + 1)) for _ in range(rows)],
                    PAD_ID, src_len)
    tgt = pad_batch([[BOS_ID, *rng.integers(4, vocab, rng.integers(0, tgt_len - 1)), EOS_ID]
                     for _ in range(rows)], PAD_ID, tgt_len)
    return src, tgt


def reverse_rows(src):
    """Each row's tokens in reverse order, padding kept at the end."""
    return pad_batch([row[row != PAD_ID][::-1] for row in src], PAD_ID, src.shape[1])


# -- gradients ----------------------------------------------------------------------------------


@pytest.mark.parametrize("decoder_type", DECODERS)
@settings(max_examples=10)
@given(reverse=st.booleans(), rows=st.integers(1, 3), src_len=st.integers(1, 4),
       tgt_len=st.integers(2, 4), seed=st.integers(0, 2**16))
def test_seq2seq_gradcheck(decoder_type, reverse, rows, src_len, tgt_len, seed):
    model = seeded(seed, decoder_type, reverse)
    src, tgt = batch(seed, rows, src_len, tgt_len)
    assert mg.gradcheck(lambda *params: (model(src, tgt[:, :-1]), model.loss(src, tgt)),
                        list(model.parameters()), fast_mode=True)


@settings(max_examples=15)
@given(rows=st.integers(1, 3), steps=st.integers(1, 3), src_len=st.integers(1, 4),
       hidden=st.integers(1, 3), seed=st.integers(0, 2**16), data=st.data())
def test_attention_gradcheck_and_padding_gets_no_weight_and_no_gradient(rows, steps, src_len,
                                                                          hidden, seed, data):
    rng = np.random.default_rng(seed)
    mask = np.arange(src_len) < rng.integers(1, src_len + 1, (rows, 1))
    query = leaf(data.draw(arrays((rows, steps, hidden))))
    memory = leaf(data.draw(arrays((rows, src_len, hidden))))
    assert mg.gradcheck(lambda q, m: attention(q, m, mask), [query, memory])
    context, weights = attention(query, memory, mask)
    np.testing.assert_allclose(weights.data.sum(axis=-1), 1.0, rtol=1e-12)
    assert (weights.data[np.broadcast_to(~mask[:, None], weights.shape)] == 0).all()
    (context * mg.tensor(rng.standard_normal(context.shape))).sum().backward()
    assert (memory.grad.data[~mask] == 0).all()
    assert (memory.grad.data[mask] != 0).any()


@pytest.mark.parametrize("decoder_type", DECODERS)
@settings(max_examples=10)
@given(rows=st.integers(1, 3), features=st.integers(1, 3), tgt_len=st.integers(2, 4),
       seed=st.integers(0, 2**16), data=st.data())
def test_vec2seq_gradcheck(decoder_type, rows, features, tgt_len, seed, data):
    mg.manual_seed(seed)
    model = Seq2Seq(FeatureEncoder(features, 3), decoder_type(VOCAB, 2, 3, **IDS)).double()
    x = leaf(data.draw(arrays((rows, features))))
    _, tgt = batch(seed, rows, 1, tgt_len)
    assert mg.gradcheck(lambda x, *params: (model(x, tgt[:, :-1]), model.loss(x, tgt)),
                        [x, *model.parameters()], fast_mode=True)


def gradients_per_step(decoder, ids, enc, wrt):
    """d(sum of the logits at step t) / d ``wrt``, for every step t (zeros if unused)."""
    logits = decoder(ids, enc)
    grads = [mg.grad(logits[:, t].sum(), [wrt], retain_graph=True, allow_unused=True)[0]
             for t in range(ids.shape[1])]
    return [np.zeros(wrt.shape) if g is None else g.data for g in grads]


@pytest.mark.parametrize(("decoder_type", "cut", "sees"), [
    (Decoder, None, False), (PeekyDecoder, "input", True), (PeekyDecoder, "output", True),
])
def test_peeky_decoder_sees_the_encoder_state_at_every_step_through_input_and_output(
        decoder_type, cut, sees):
    """Without recurrence (W_hh = 0) and with c = 0, a plain decoder cannot see the encoder's
    h; the peeky decoder sees it at every step through its input alone (the output layer's
    peek cut) and through its output layer alone (the input's peek cut)."""
    mg.manual_seed(0)
    decoder = decoder_type(VOCAB, 2, 3, **IDS).double()
    decoder.lstm.weight_hh_l0.data[...] = 0
    if cut == "input":
        decoder.lstm.weight_ih_l0.data[:, 2:] = 0
    elif cut == "output":
        decoder.out.weight.data[:, 3:] = 0
    h = leaf(np.random.default_rng(1).standard_normal((2, 3)))
    enc = Encoded(h.reshape(2, 1, 3), np.ones((2, 1), bool), (h, mg.zeros(2, 3, dtype=np.float64)))
    for grad in gradients_per_step(decoder, np.full((2, 4), 5), enc, h):
        assert (np.abs(grad).sum() > 0) == sees


def test_attention_decoder_reads_every_encoder_state_but_padding_at_every_step():
    model = seeded(0, AttentionDecoder)
    src, tgt = batch(2, 4, 5, 5)
    enc = model.encoder(src)
    outputs = leaf(enc.outputs.data)
    for grad in gradients_per_step(model.decoder, tgt[:, :-1], enc._replace(outputs=outputs),
                                   outputs):
        assert (grad[~enc.mask] == 0).all()
        assert (np.abs(grad).sum(axis=-1)[enc.mask] > 0).all()


# -- padding and reversal -----------------------------------------------------------------------


@pytest.mark.parametrize("reverse", [False, True])
def test_encoder_skips_padding(reverse):
    model = seeded(0, AttentionDecoder, reverse)
    src, tgt = batch(1, 4, 5, 4)
    wider = np.pad(src, ((0, 0), (0, 3)), constant_values=PAD_ID)
    enc, enc_wider = model.encoder(src), model.encoder(wider)
    for a, b in zip(enc.state, enc_wider.state):
        np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(enc.outputs.data, enc_wider.outputs.data[:, :5])
    assert (enc_wider.outputs.data[~enc_wider.mask] == 0).all()
    for i, row in enumerate(src):  # each row alone, without any padding
        alone = model.encoder(row[row != PAD_ID][None])
        np.testing.assert_allclose(alone.state[0].data[0], enc.state[0].data[i], rtol=1e-12,
                                   atol=1e-15)
    np.testing.assert_allclose(model(src, tgt[:, :-1]).data, model(wider, tgt[:, :-1]).data,
                               rtol=1e-12, atol=1e-15)
    model.loss(wider, tgt).backward()
    assert (model.encoder.embed.weight.grad.data[PAD_ID] == 0).all()
    assert (model.encoder.embed.weight.grad.data[4:] != 0).any()


@settings(max_examples=10)
@given(rows=st.integers(1, 4), src_len=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_reversed_encoder_is_the_plain_encoder_on_reversed_rows(rows, src_len, seed):
    reversed_model = seeded(seed, reverse=True)
    plain = seeded(seed + 1)
    plain.load_state_dict(reversed_model.state_dict())
    src, _ = batch(seed, rows, src_len, 2)
    got, want = reversed_model.encoder(src), plain.encoder(reverse_rows(src))
    for a, b in zip(got.state, want.state):
        np.testing.assert_array_equal(a.data, b.data)
    for i, row in enumerate(src):  # outputs stay at their source position
        n = int((row != PAD_ID).sum())
        np.testing.assert_array_equal(got.outputs.data[i, :n], want.outputs.data[i, :n][::-1])


# -- teacher forcing, generation, accuracy ------------------------------------------------------


@pytest.mark.parametrize("decoder_type", DECODERS)
def test_teacher_forcing_reads_tgt_before_t_and_scores_the_next_token(decoder_type):
    model = seeded(3, decoder_type)
    src, tgt = batch(4, 5, 4, 6)
    logits = model(src, tgt[:, :-1]).data
    logp = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(logp, tgt[:, 1:, None], axis=-1)[..., 0]
    want = -picked[tgt[:, 1:] != PAD_ID].mean()
    np.testing.assert_allclose(model.loss(src, tgt).item(), want, rtol=1e-12)
    for t in range(tgt.shape[1] - 1):  # step t sees tgt_in[:, :t+1] and nothing after
        changed = tgt[:, :-1].copy()
        changed[:, t] = np.where(changed[:, t] == 4, 5, 4)
        after = model(src, changed).data
        np.testing.assert_array_equal(after[:, :t], logits[:, :t])
        assert (after[:, t] != logits[:, t]).all()


def rigged(decoder_type, token):
    """A model whose decoder always predicts ``token`` (a zero output layer with a bias)."""
    model = seeded(0, decoder_type)
    model.decoder.out.weight.data[...] = 0
    model.decoder.out.bias.data[...] = np.eye(VOCAB)[token]
    return model


@pytest.mark.parametrize("decoder_type", DECODERS)
def test_greedy_generation_starts_after_bos_and_stops_at_eos(decoder_type):
    src, tgt = batch(0, 3, 4, 5)
    assert rigged(decoder_type, 5).generate(src, 6).tolist() == [[5] * 6] * 3
    assert rigged(decoder_type, EOS_ID).generate(src, 6).tolist() == [[EOS_ID]] * 3
    model = seeded(1, decoder_type)
    model.train()
    ids = model.generate(src, 6)
    assert model.training  # mode restored
    assert ids.shape[0] == 3 and 1 <= ids.shape[1] <= 6
    for row in ids:  # at most one </s>, followed by padding only
        ends = np.flatnonzero(row == EOS_ID)
        assert ends.size <= 1
        stop = ends[0] if ends.size else len(row)
        assert (row[stop + 1:] == PAD_ID).all()
    # greedy: each token is the argmax given <s> and the tokens before it
    want = model(src, np.concatenate([np.full((3, 1), BOS_ID), ids[:, :-1]], axis=1))
    live = np.cumsum(ids == EOS_ID, axis=1) - (ids == EOS_ID) == 0  # up to the first </s>
    np.testing.assert_array_equal(want.data.argmax(-1)[live], ids[live])


def test_attention_weights_returned_by_generate_sum_to_one_and_skip_padding():
    model = seeded(2, AttentionDecoder)
    src, _ = batch(5, 4, 5, 3)
    ids, weights = model.generate(src, 4, return_attention=True)
    assert weights.shape == (4, ids.shape[1], 5)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-12)
    assert (weights[np.broadcast_to((src == PAD_ID)[:, None], weights.shape)] == 0).all()
    _, _, teacher = model.decoder.decode(np.full((4, 1), BOS_ID), model.encoder(src),
                                         model.decoder.initial_state(model.encoder(src)))
    np.testing.assert_allclose(teacher.data[:, 0], weights[:, 0], rtol=1e-12)


def test_accuracy_is_the_fraction_of_exact_answers_ending_with_eos():
    model = rigged(Decoder, EOS_ID)  # answers "" to everything
    src, _ = batch(0, 4, 3, 2)
    empty, one = [BOS_ID, EOS_ID, PAD_ID], [BOS_ID, 4, EOS_ID]
    assert model.accuracy(src, np.array([empty, one, empty, one])) == 0.5
    assert model.accuracy(src, np.array([empty] * 4), batch_size=3) == 1.0
    assert rigged(Decoder, 4).accuracy(src, np.array([one] * 4)) == 0.0  # 4 4, no </s>


def test_minibatches_cover_every_row_once_in_a_seeded_order():
    src, tgt = np.arange(10)[:, None], np.arange(10)[:, None] + 100
    epoch = minibatches(src, tgt, 4, seed=0)
    assert [len(s) for s, _ in epoch] == [4, 4, 2]
    rows = np.concatenate([s for s, _ in epoch])[:, 0]
    assert sorted(rows) == list(range(10)) and list(rows) != list(range(10))
    assert all((t == s + 100).all() for s, t in epoch)
    assert all((a[0] == b[0]).all() for a, b in zip(epoch, minibatches(src, tgt, 4, seed=0)))
    assert any((a[0] != b[0]).any() for a, b in zip(epoch, minibatches(src, tgt, 4, seed=1)))


# -- short training runs ------------------------------------------------------------------------


def digit_strings(seed):
    """Every string of 1..3 digits (ids 4..13), shuffled: 1110 sources, padded to 3."""
    rng = np.random.default_rng(seed)
    strings = [np.array(list(s), dtype=np.int64) + 4 for n in (1, 2, 3)
               for s in np.ndindex(*(10,) * n)]
    return [strings[i] for i in rng.permutation(len(strings))]


def train(model, src, tgt, steps, batch_size=64, lr=0.02):
    opt = mg.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        rows = rng.integers(0, len(src), batch_size)
        opt.zero_grad()
        model.loss(src[rows], tgt[rows]).backward()
        mg.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()


@pytest.mark.parametrize("decoder_type", DECODERS)
def test_learns_to_reverse_digit_strings(decoder_type):
    strings = digit_strings(0)
    src = pad_batch(strings, PAD_ID, 3)
    tgt = pad_batch([[BOS_ID, *s[::-1], EOS_ID] for s in strings], PAD_ID, 5)
    mg.manual_seed(0)
    model = Seq2Seq(Encoder(14, 8, 32, pad_id=PAD_ID), decoder_type(14, 8, 32, **IDS))
    assert model.accuracy(src[900:], tgt[900:]) < 0.05
    train(model, src[:900], tgt[:900], steps=120)
    assert model.accuracy(src[900:], tgt[900:]) > 0.95  # 210 strings never seen


def test_vec2seq_learns_to_spell_a_feature_vector():
    """Features: the one-hot digits of a number; target: its digits, then </s>."""
    strings = digit_strings(1)
    features = np.stack([np.pad(np.eye(10)[s - 4].ravel(), (0, 30 - 10 * len(s))) for s in strings])
    tgt = pad_batch([[BOS_ID, *s, EOS_ID] for s in strings], PAD_ID, 5)
    mg.manual_seed(0)
    model = Seq2Seq(FeatureEncoder(30, 32), Decoder(14, 8, 32, **IDS))
    train(model, features[:900], tgt[:900], steps=100)
    assert model.accuracy(features[900:], tgt[900:]) > 0.95


# -- special ids of your own --------------------------------------------------------------------

FOREIGN = dict(pad_id=10, bos_id=11, eos_id=12)
"""Another project's ids: the digits are ids 0..9, the specials 10..12."""


def foreign_digits(seed):
    """``digit_strings`` with the digits at ids 0..9: sources padded with 10, targets the
    reversed digits written 11 ... 12 and padded with 10."""
    strings = [s - 4 for s in digit_strings(seed)]
    src = pad_batch(strings, FOREIGN["pad_id"], 3)
    tgt = pad_batch([[FOREIGN["bos_id"], *s[::-1], FOREIGN["eos_id"]] for s in strings],
                    FOREIGN["pad_id"], 5)
    return src, tgt


@pytest.mark.parametrize("decoder_type", [Decoder, AttentionDecoder])  # attention reads the mask
def test_learns_with_a_vocabulary_whose_real_tokens_hold_ids_0_to_3(decoder_type):
    src, tgt = foreign_digits(0)
    mg.manual_seed(0)
    model = Seq2Seq(Encoder(13, 8, 32, pad_id=FOREIGN["pad_id"]),
                    decoder_type(13, 8, 32, **FOREIGN))
    np.testing.assert_array_equal(model.encoder(src).mask, src != FOREIGN["pad_id"])
    train(model, src[:900], tgt[:900], steps=120)
    assert model.accuracy(src[900:], tgt[900:]) > 0.95  # chance is 1/10 per digit
    # the held-out strings with a digit 0..3 inside (the default <pad>, <unk>, <s>, </s>) are
    # answered whole: none is skipped as padding or taken for the end
    inside = np.isin(tgt[900:, 1:-2], [0, 1, 2, 3]).any(axis=1)
    assert inside.sum() > 50
    assert model.accuracy(src[900:][inside], tgt[900:][inside]) > 0.95
    answers = model.generate(src[900:], 4)
    assert (answers[:, 0] < 10).all()  # every answer starts with a digit, never with an end
    assert ((answers == FOREIGN["eos_id"]).sum(axis=1) <= 1).all()


def test_another_vocabularys_special_ids_on_foreign_data_raise_instead_of_dropping_tokens():
    src = pad_batch([[1, 0, 3], [2, 5], [3]], FOREIGN["pad_id"], 3)
    tgt = np.array([[11, 3, 0, 1, 12], [11, 5, 2, 12, 10], [11, 3, 12, 10, 10]])
    plain = Seq2Seq(Encoder(13, 2, 3, pad_id=PAD_ID), Decoder(13, 2, 3, **IDS))
    with pytest.raises(ValueError, match=r"Encoder: source row 0 holds the padding id 0 at "
                                         r"position 1, between tokens.*\(pad_id=\.\.\.\)"):
        plain.encoder(src)
    with pytest.raises(ValueError, match=r"Seq2Seq.loss: targets must start with <s> \(the "
                                         r"decoder's bos_id 2\).*\(bos_id=\.\.\.\)"):
        plain.loss(src, tgt)
    half = Seq2Seq(Encoder(13, 2, 3, pad_id=10), Decoder(13, 2, 3, **{**IDS, "bos_id": 11}))
    with pytest.raises(ValueError, match=r"Seq2Seq.loss: target row 0 holds id 1 at position 3, "
                                         r"after its end \(</s>, id 3, at position 1\).*"
                                         r"\(bos_id=, eos_id=, pad_id=\)"):
        half.loss(src, tgt)
    with pytest.raises(ValueError, match=r"Seq2Seq.accuracy: target row 0 holds id 1 at position "
                                         r"3, after its end \(<pad>, id 0, at position 2\)"):
        Seq2Seq(Encoder(13, 2, 3, pad_id=10),
                Decoder(13, 2, 3, bos_id=11, eos_id=12, pad_id=PAD_ID)).accuracy(src, tgt)


@pytest.mark.parametrize(("make", "match"), [
    (lambda: Decoder(3, 2, 3, **IDS), r"Decoder: eos_id=3 is not an id of the vocabulary of 3 "
                                      r"ids \(0\.\.2\)"),
    (lambda: AttentionDecoder(VOCAB, 2, 3, **{**IDS, "eos_id": -1}),
     r"AttentionDecoder: eos_id=-1 is not an id"),
    (lambda: Decoder(VOCAB, 2, 3, **{**IDS, "bos_id": True}), r"bos_id=True is not an id"),
    (lambda: PeekyDecoder(VOCAB, 2, 3, **{**IDS, "bos_id": 0}),
     r"PeekyDecoder: bos_id and pad_id are both 0; each special token needs its own id"),
    (lambda: Encoder(VOCAB, 2, 3, pad_id=VOCAB), r"Encoder: pad_id=7 is not an id"),
])
def test_special_ids_outside_the_vocabulary_or_shared_are_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_an_encoder_without_padding_reads_every_id():
    mg.manual_seed(0)
    unpadded = Encoder(VOCAB, 2, 3, pad_id=None).double()
    padded = Encoder(VOCAB, 2, 3, pad_id=1).double()
    padded.load_state_dict(unpadded.state_dict())
    src = np.array([[0, 4, 0], [5, 0, 6]])
    enc = unpadded(src)
    assert enc.mask.all() and "pad_id=None" in repr(unpadded)
    for a, b in zip(enc.state, padded(src).state):  # id 1 never occurs: nothing to skip
        np.testing.assert_array_equal(a.data, b.data)


def test_by_default_no_id_is_padding_so_a_real_token_0_at_either_end_is_read():
    """With a vocabulary of your own, id 0 is a token like any other: the default ``pad_id``
    is None (PyTorch's ``padding_idx=None``), so a 0 first or last in a row is not dropped."""
    mg.manual_seed(0)
    encoder = Encoder(VOCAB, 2, 3).double()
    assert encoder.pad_id is None
    src = np.array([[0, 4, 5], [4, 5, 0], [4, 5, 6]])
    enc = encoder(src)
    assert enc.mask.all()
    without_zero = encoder(np.array([[4, 5], [4, 5]])).state[0].data
    for row in (0, 1):  # reading the 0 changes the final state: it was not skipped
        assert not np.allclose(enc.state[0].data[row], without_zero[row])
    decoder = Decoder(VOCAB, 2, 3, bos_id=5, eos_id=6).double()  # no padding id either
    model = Seq2Seq(encoder, decoder)
    tgt = np.array([[5, 0, 1, 6], [5, 4, 0, 6], [5, 0, 0, 6]])
    logits = model(src, tgt[:, :-1]).data
    logp = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    want = -np.take_along_axis(logp, tgt[:, 1:, None], axis=-1).mean()  # every 0 scored
    np.testing.assert_allclose(model.loss(src, tgt).item(), want, rtol=1e-12)


def test_a_decoder_needs_its_start_and_end_ids_and_without_a_pad_id_ends_rows_with_eos():
    with pytest.raises(TypeError, match=r"missing 2 required keyword-only arguments: 'bos_id' "
                                        r"and 'eos_id'"):
        Decoder(VOCAB, 2, 3)
    with pytest.raises(TypeError, match=r"AttentionDecoder: eos_id must be an id of the "
                                        r"vocabulary; got None\. Pass your vocabulary's id "
                                        r"\(eos_id=vocab\.eos_id\)"):
        AttentionDecoder(VOCAB, 2, 3, bos_id=2, eos_id=None)

    class Scripted(Decoder):
        """Writes row b of ``script``, one token per step, whatever it reads."""

        script, steps = np.array([[4, 6, 4, 4], [0, 4, 6, 4]]), 0

        def decode(self, ids, enc, state):
            self.steps += 1
            return mg.tensor(np.eye(VOCAB)[self.script[:, self.steps - 1]][:, None]), state, None

    mg.manual_seed(0)
    model = Seq2Seq(Encoder(VOCAB, 2, 3), Scripted(VOCAB, 2, 3, bos_id=5, eos_id=6))
    src = np.array([[1, 2], [3, 4]])
    assert model.decoder.fill_id == 6
    assert model.generate(src, 4).tolist() == [[4, 6, 6], [0, 4, 6]]  # filled with </s>
    model.decoder.steps = 0
    assert model.accuracy(src, np.array([[5, 4, 1, 6], [5, 0, 4, 6]])) == 0.5
    with pytest.raises(ValueError, match=r"Seq2Seq.loss: target row 0 holds id 0 at position 2, "
                                         r"after its end \(</s>, id 6, at position 1\); a target "
                                         r"is <s>, tokens, </s>, then nothing, since the Decoder "
                                         r"has no pad_id\. If your targets are padded, give the "
                                         r"Decoder your padding id \(pad_id=\.\.\.\)"):
        model.loss(src, np.array([[5, 6, 0], [5, 1, 6]]))


# -- bad input ----------------------------------------------------------------------------------


def test_bad_input_raises_clear_errors_and_leaves_the_model_intact():
    model = seeded(0, AttentionDecoder)
    src, tgt = batch(0, 3, 4, 4)
    before = model.loss(src, tgt).item()
    bad_src = src.copy()
    bad_src[1, 0] = VOCAB
    cases = [
        (lambda: model.loss(src, tgt[0]), "Seq2Seq.loss: target must be a 2-D integer array"),
        (lambda: model.loss(src, tgt[:2]), "2 target rows for a batch of 3 sources"),
        (lambda: model.loss(src, tgt[:, 1:]), "targets must start with <s>"),
        (lambda: model.loss(src, tgt[:, :1]), "hold at least one more token"),
        (lambda: model.loss(bad_src, tgt), "Encoder: source id 7 at (1, 0) is outside the "
                                           "vocabulary of 7 ids"),
        (lambda: model.loss(src, tgt + 4), "target id"),
        (lambda: model(src.astype(float), tgt), "Encoder: source must be a 2-D integer array"),
        (lambda: model(np.zeros((3, 2), int), tgt), "row 0 holds only <pad>"),
        (lambda: model.generate(bad_src, 3), "outside the vocabulary"),
        (lambda: model.generate(src, 0), "max_len must be >= 1"),
        (lambda: model.accuracy(src[:2], tgt), "2 sources but 3 targets"),
        (lambda: seeded(0, Decoder).generate(src, 3, return_attention=True),
         "return_attention needs an AttentionDecoder"),
        (lambda: Seq2Seq(Encoder(VOCAB, 2, 3), Decoder(VOCAB, 2, 4, **IDS)),
         "encoder's hidden_size (3) must equal the decoder's (4)"),
        (lambda: FeatureEncoder(3, 2)(np.zeros((2, 4))), "features must have shape (batch, 3)"),
        (lambda: minibatches(src, tgt[:2], 2, seed=0), "3 sources but 2 targets"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError) as err:
            call()
        assert message in str(err.value)
    assert model.training
    assert model.loss(src, tgt).item() == before


def test_a_compiled_loss_checks_every_batch_it_replays_as_eager_does():
    model = seeded(0, AttentionDecoder)
    src, tgt = batch(0, 3, 4, 4)  # src [[5 5 4 4] [4 0 0 0] [4 0 0 0]], tgt [[2 5 6 3] ...]
    compiled = mg.compile(model.loss, fallback=False)
    np.testing.assert_allclose(compiled(src, tgt).data, model.loss(src, tgt).data, rtol=1e-12)

    def changed(array, row, values):
        array = array.copy()
        array[row] = values
        return array

    cases = [  # each of the same shape and dtype: replayed, not traced again
        (changed(src, 1, [VOCAB, 0, 0, 0]), tgt, "Encoder: source id 7 at (1, 0) is outside"),
        (changed(src, 0, [5, PAD_ID, 4, 4]), tgt, "Encoder: source row 0 holds the padding id 0 "
                                                  "at position 1, between tokens"),
        (changed(src, 2, PAD_ID), tgt, "Encoder: source row 2 holds only <pad>"),
        (src, changed(tgt, 1, [2, 5, 3, VOCAB]), "Seq2Seq.loss: target id 7 at (1, 3)"),
        (src, changed(tgt, 0, [4, 5, 6, 3]), "Seq2Seq.loss: targets must start with <s>"),
        (src, changed(tgt, 1, [2, 3, 5, 0]), "Seq2Seq.loss: target row 1 holds id 5 at position "
                                             "2, after its end (</s>, id 3, at position 1)"),
    ]
    for bad_src, bad_tgt, message in cases:
        with pytest.raises(ValueError) as eager:
            model.loss(bad_src, bad_tgt)
        with pytest.raises(ValueError) as replayed:
            compiled(bad_src, bad_tgt)
        assert message in str(eager.value) and str(replayed.value) == str(eager.value)
    assert len(compiled.traces) == 1
