"""Sequence classification and tagging: each sequence as if run alone, padding never read,
gradients, short training runs and bad input."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from minigrad.data import PAD_ID, TAG_PAD, sentiment
from minigrad.models.classify import POOLINGS, SequenceClassifier, SequenceTagger, reverse_padded
from minigrad.models.recurrent import GRU, LSTM, RNN

VOCAB, EMBED, HIDDEN, CLASSES = 7, 3, 2, 3
LAYERS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}

cells = st.sampled_from(sorted(LAYERS))


def make(model_type, seed, **kwargs):
    """A float64 model with the default initialization drawn from ``seed``."""
    mg.manual_seed(seed)
    return model_type(VOCAB, EMBED, HIDDEN, CLASSES, **kwargs).double()


@st.composite
def padded_batches(draw, max_batch=3, max_steps=5):
    """``(ids (B, T), lengths (B,), junk)``: real ids in 1..VOCAB-1, ``<pad>`` past each length
    (no row need fill T), and ``junk`` the same ids with random tokens in the padding."""
    batch, steps = draw(st.integers(1, max_batch)), draw(st.integers(1, max_steps))
    lengths = draw(hnp.arrays(np.int64, batch, elements=st.integers(1, steps)))
    ids = draw(hnp.arrays(np.int64, (batch, steps), elements=st.integers(1, VOCAB - 1)))
    junk = draw(hnp.arrays(np.int64, (batch, steps), elements=st.integers(0, VOCAB - 1)))
    padding = np.arange(steps) >= lengths[:, None]
    return np.where(padding, PAD_ID, ids), lengths, np.where(padding, junk, ids)


def reference_stack(model):
    """The model's recurrent weights loaded into one PyTorch-layout layer
    (``LSTM(..., num_layers, bidirectional)``), which knows nothing of padding."""
    layers = len(model.forward_layers)
    ref = LAYERS[model.cell](EMBED, HIDDEN, layers, bidirectional=model.bidirectional).double()
    state = {}
    for direction, suffix in (("forward_layers", ""), ("backward_layers", "_reverse")):
        for k, layer in enumerate(getattr(model, direction)):
            for name, value in layer.state_dict().items():
                state[name.replace("_l0", f"_l{k}") + suffix] = value
    ref.load_state_dict(state)
    return ref


def run_alone(model, row):
    """One unpadded sequence through the reference stack: outputs ``(L, D*H)`` and ``h_n``."""
    output, h_n = reference_stack(model)(model.embed(row[:, None]))
    return output[:, 0], (h_n[0] if isinstance(h_n, tuple) else h_n)[:, 0]


def pool(model, output, h_n):
    """What each pooling means for one sequence run alone; 'last' is PyTorch's idiom, the top
    layer's final states ``h_n[-1]`` or ``cat(h_n[-2], h_n[-1])`` when bidirectional."""
    if model.pooling == "last":
        return mg.concat([h_n[-2], h_n[-1]]) if model.bidirectional else h_n[-1]
    return output.mean(axis=0) if model.pooling == "mean" else output.amax(0)


# -- semantics: a padded batch gives what each sequence gives alone ----------------------------


@given(lengths=hnp.arrays(np.int64, st.integers(1, 4), elements=st.integers(1, 5)),
       extra=st.integers(0, 2), data=st.data())
def test_reverse_padded_reverses_each_sequence_within_its_length(lengths, extra, data):
    steps = int(lengths.max()) + extra
    x = mg.tensor(data.draw(hnp.arrays(np.float64, (steps, len(lengths), 2),
                                       elements=st.floats(-9, 9))))
    flipped = reverse_padded(x, lengths).data
    for b, n in enumerate(lengths):
        np.testing.assert_array_equal(flipped[:n, b], x.data[:n, b][::-1])
        np.testing.assert_array_equal(flipped[n:, b], x.data[n:, b])
    np.testing.assert_array_equal(reverse_padded(mg.tensor(flipped), lengths).data, x.data)


@given(cell=cells, num_layers=st.integers(1, 2), bidirectional=st.booleans(),
       pooling=st.sampled_from(POOLINGS), batch=padded_batches(), seed=st.integers(0, 2**16))
def test_classifier_pools_each_sequence_as_if_it_ran_alone(cell, num_layers, bidirectional,
                                                           pooling, batch, seed):
    model = make(SequenceClassifier, seed, cell=cell, num_layers=num_layers,
                 bidirectional=bidirectional, pooling=pooling)
    ids, lengths, junk = batch
    logits = model(junk, lengths).data
    for b, n in enumerate(lengths):
        expected = model.out(pool(model, *run_alone(model, ids[b, :n]))).data
        np.testing.assert_allclose(logits[b], expected, rtol=1e-10, atol=1e-12)


@given(cell=cells, num_layers=st.integers(1, 2), bidirectional=st.booleans(),
       batch=padded_batches(), seed=st.integers(0, 2**16))
def test_tagger_tags_each_sequence_as_if_it_ran_alone(cell, num_layers, bidirectional, batch,
                                                      seed):
    model = make(SequenceTagger, seed, cell=cell, num_layers=num_layers,
                 bidirectional=bidirectional)
    ids, lengths, junk = batch
    logits = model(junk, lengths).data
    assert logits.shape == ids.shape + (CLASSES,)
    for b, n in enumerate(lengths):
        expected = model.out(run_alone(model, ids[b, :n])[0]).data
        np.testing.assert_allclose(logits[b, :n], expected, rtol=1e-10, atol=1e-12)


@given(bidirectional=st.booleans(), pooling=st.sampled_from(POOLINGS), batch=padded_batches(),
       tags=hnp.arrays(np.int64, (3, 5), elements=st.integers(0, CLASSES - 1)),
       seed=st.integers(0, 2**16))
def test_what_padding_holds_changes_no_output_and_no_loss(bidirectional, pooling, batch, tags,
                                                          seed):
    ids, lengths, junk = batch
    tags = tags[: ids.shape[0], : ids.shape[1]]
    padding = np.arange(ids.shape[1]) >= lengths[:, None]
    tagger = make(SequenceTagger, seed, bidirectional=bidirectional)
    valid = ~padding
    np.testing.assert_array_equal(tagger(junk, lengths).data[valid],
                                  tagger(ids, lengths).data[valid])
    # tags past the lengths are ignored too, whether TAG_PAD or not
    assert tagger.loss(junk, tags, lengths).item() == pytest.approx(
        tagger.loss(ids, np.where(padding, TAG_PAD, tags), lengths).item(), rel=1e-12)
    classifier = make(SequenceClassifier, seed, bidirectional=bidirectional, pooling=pooling)
    labels = tags[:, 0]
    np.testing.assert_array_equal(classifier(junk, lengths).data, classifier(ids, lengths).data)
    assert classifier.loss(junk, labels, lengths).item() == pytest.approx(
        classifier.loss(ids, labels, lengths).item(), rel=1e-12)


def test_lengths_default_to_full_rows_and_last_pooling_reads_the_true_last_step():
    model = make(SequenceClassifier, 0, pooling="last")
    ids = np.array([[1, 2, 3, 4], [5, 6, PAD_ID, PAD_ID]])
    full = model(ids).data  # without lengths every step is read, the two pads included
    np.testing.assert_array_equal(full[:1], model(ids[:1], [4]).data)
    short = model(ids, [4, 2]).data
    np.testing.assert_array_equal(short[0], full[0])
    np.testing.assert_allclose(short[1], model(ids[1:, :2]).data[0], rtol=1e-12)
    assert not np.allclose(short[1], full[1])  # reading the two pads would change the answer


@pytest.mark.parametrize("model_type", [SequenceClassifier, SequenceTagger])
def test_a_vocabulary_of_your_own_gives_its_padding_id_or_none(model_type):
    """With the specials elsewhere, id 0 is a real token: its embedding learns like any other,
    and only the given padding id's row stays zero."""
    ids, lengths = np.array([[0, 1, 2, 0], [0, 3, 6, 6]]), [4, 2]
    targets = np.zeros((2, 4), np.int64) if model_type is SequenceTagger else np.zeros(2, np.int64)
    for pad_id in (6, None):
        model = make(model_type, 0, pad_id=pad_id)
        assert model.embed.padding_idx == pad_id
        model.loss(ids, targets, lengths).backward()
        grad = model.embed.weight.grad.data
        assert (grad[0] != 0).all()
        assert (grad[6] == 0).all() and (model.embed.weight.data[6] == 0).all() == (pad_id == 6)


@pytest.mark.parametrize("model_type", [SequenceClassifier, SequenceTagger])
def test_by_default_no_id_is_padding_so_a_real_token_0_learns_and_may_fill_a_length(model_type):
    """The default ``pad_id`` is None, as PyTorch's ``padding_idx=None``: on a vocabulary of
    your own, id 0 is a token, anywhere within a length, and its embedding learns."""
    model = make(model_type, 0)
    assert model.pad_id is None and model.embed.padding_idx is None
    ids, lengths = np.array([[0, 1, 2], [3, 4, 0]]), [3, 3]
    targets = np.zeros((2, 3), np.int64) if model_type is SequenceTagger else np.zeros(2, np.int64)
    model.loss(ids, targets, lengths).backward()  # a 0 inside a length is no error
    assert (model.embed.weight.grad.data[0] != 0).all()


# -- gradients --------------------------------------------------------------------------------


@given(cell=cells, num_layers=st.integers(1, 2), bidirectional=st.booleans(),
       pooling=st.sampled_from(POOLINGS), batch=padded_batches(max_batch=2, max_steps=3),
       seed=st.integers(0, 2**16), data=st.data())
def test_classifier_gradcheck(cell, num_layers, bidirectional, pooling, batch, seed, data):
    model = make(SequenceClassifier, seed, cell=cell, num_layers=num_layers,
                 bidirectional=bidirectional, pooling=pooling)
    ids, lengths, _ = batch
    labels = data.draw(hnp.arrays(np.int64, len(ids), elements=st.integers(0, CLASSES - 1)))

    def run(*params):  # the model reads its parameters itself
        return model(ids, lengths), model.loss(ids, labels, lengths)

    assert mg.gradcheck(run, list(model.parameters()), fast_mode=True)


@given(cell=cells, num_layers=st.integers(1, 2), bidirectional=st.booleans(),
       batch=padded_batches(max_batch=2, max_steps=3), seed=st.integers(0, 2**16),
       data=st.data())
def test_tagger_gradcheck(cell, num_layers, bidirectional, batch, seed, data):
    model = make(SequenceTagger, seed, cell=cell, num_layers=num_layers,
                 bidirectional=bidirectional)
    ids, lengths, _ = batch
    tags = data.draw(hnp.arrays(np.int64, ids.shape, elements=st.integers(0, CLASSES - 1)))
    valid = np.nonzero(np.arange(ids.shape[1]) < lengths[:, None])

    def run(*params):
        return model(ids, lengths)[valid], model.loss(ids, tags, lengths)

    assert mg.gradcheck(run, list(model.parameters()), fast_mode=True)


# -- predictions and accuracy ------------------------------------------------------------------


def test_predict_and_accuracy_count_only_tagged_steps_in_eval_mode():
    mg.manual_seed(3)
    tagger = SequenceTagger(VOCAB, EMBED, HIDDEN, CLASSES, bidirectional=True, dropout=0.5)
    ids = np.array([[1, 2, 3, 4], [5, 6, 1, PAD_ID]])
    lengths = np.array([4, 3])
    predicted = tagger.predict(ids, lengths)
    assert tagger.training  # predict switched to eval mode and back
    np.testing.assert_array_equal(predicted, tagger.predict(ids, lengths))  # no dropout
    tagger.eval()
    expected = tagger(ids, lengths).data.argmax(axis=-1)
    tagger.train()
    assert predicted[1, 3] == TAG_PAD
    np.testing.assert_array_equal(predicted[0], expected[0])
    np.testing.assert_array_equal(predicted[1, :3], expected[1, :3])
    tags = predicted.copy()
    tags[0, 0] = (tags[0, 0] + 1) % CLASSES  # one wrong tag
    tags[0, 1] = TAG_PAD  # one untagged step
    assert tagger.accuracy(ids, tags, lengths) == pytest.approx(5 / 6)

    classifier = make(SequenceClassifier, 3)
    labels = classifier.predict(ids, lengths)
    assert labels.shape == (2,)
    assert classifier.accuracy(ids, labels, lengths) == 1.0
    assert classifier.accuracy(ids, (labels + 1) % CLASSES, lengths) == 0.0


def test_dropout_acts_only_in_training():
    model = make(SequenceTagger, 0, bidirectional=True, num_layers=2, dropout=0.5)
    plain = make(SequenceTagger, 0, bidirectional=True, num_layers=2)
    ids, lengths = np.array([[1, 2, 3, 4], [5, 6, 1, PAD_ID]]), [4, 3]
    assert not np.allclose(model(ids, lengths).data, model(ids, lengths).data)
    model.eval()
    np.testing.assert_array_equal(model(ids, lengths).data, plain(ids, lengths).data)


# -- short training runs ----------------------------------------------------------------------


def last_token_task(n, seed):
    """Every token is tagged with the class of its sequence's last token (odd/even id): a
    left-to-right tagger is right on the last token and guesses before it."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, 7, n)
    ids = np.where(np.arange(6) < lengths[:, None], rng.integers(1, VOCAB, (n, 6)), PAD_ID)
    last = ids[np.arange(n), lengths - 1] % 2
    tags = np.where(ids != PAD_ID, last[:, None], TAG_PAD)
    return ids, tags, lengths, 0.5 + 0.5 * n / lengths.sum()


def train(model, ids, targets, lengths, steps, batch_size=32, lr=0.03):
    optimizer = mg.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        idx = rng.choice(len(ids), batch_size, replace=False)
        width = lengths[idx].max()
        loss = model.loss(ids[idx, :width], targets[idx] if targets.ndim == 1 else
                          targets[idx, :width], lengths[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def test_a_bidirectional_tagger_beats_the_causal_bound_and_a_unidirectional_one_cannot():
    ids, tags, lengths, bound = last_token_task(600, seed=0)
    test_ids, test_tags, test_lengths, test_bound = last_token_task(400, seed=1)
    accuracy = {}
    for bidirectional in (False, True):
        mg.manual_seed(0)
        model = SequenceTagger(VOCAB, 8, 16, 2, bidirectional=bidirectional)
        train(model, ids, tags, lengths, steps=60)
        accuracy[bidirectional] = model.accuracy(test_ids, test_tags, test_lengths)
    assert accuracy[True] > 0.95 > test_bound + 0.2
    assert accuracy[False] < test_bound + 0.05


def test_a_classifier_learns_the_sentence_label_of_a_small_sentiment_set():
    data = sentiment(n=500, test_fraction=0.2, seed=7)
    mg.manual_seed(0)
    model = SequenceClassifier(len(data.vocab), 16, 16, 2)
    before = model.accuracy(data.test_tokens, data.test_labels, data.test_lengths)
    train(model, data.train_tokens, data.train_labels, data.train_lengths, steps=80, lr=0.02)
    after = model.accuracy(data.test_tokens, data.test_labels, data.test_lengths)
    assert before < 0.7
    assert after > 0.85


# -- bad input --------------------------------------------------------------------------------

IDS = np.array([[1, 2, 3], [4, 5, PAD_ID]])


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda m: m(IDS, [3, 4]), ValueError, r"lengths must lie in 1\.\.3 .* got 4"),
    (lambda m: m(IDS, [3, 0]), ValueError, r"lengths must lie in 1\.\.3"),
    (lambda m: m(IDS, [3]), ValueError, r"lengths must be 2 integers.*got shape \(1,\)"),
    (lambda m: m(IDS, [3.0, 2.0]), ValueError, r"lengths must be 2 integers.*float64"),
    (lambda m: m(IDS[0]), ValueError, r"expected token ids of shape \(B, T\).*got \(3,\)"),
    (lambda m: m(np.zeros((2, 0), np.int64)), ValueError, r"shape \(B, T\) with B, T >= 1"),
    (lambda m: m(np.where(IDS == 3, 7, IDS)), IndexError,
     r"Embedding: id 7 is out of range for num_embeddings=7"),
    (lambda m: m(IDS * 1.0), TypeError, r"Embedding: ids must be integers"),
    (lambda m: m.predict(IDS, [4, 2]), ValueError, r"lengths must lie in 1\.\.3"),
    (lambda m: m(IDS, [3, 3]), ValueError, r"row 1 of ids holds the padding id 0 at position 2, "
                                           r"inside its length 3.*\(pad_id=\.\.\., None if"),
], ids=["length>T", "length0", "lengths_shape", "lengths_float", "ids_1d", "ids_empty", "oov",
        "ids_float", "predict", "pad_inside"])
@pytest.mark.parametrize("model_type", [SequenceClassifier, SequenceTagger])
def test_bad_input_gives_a_clear_error_and_leaves_the_model_as_it_was(model_type, call, error,
                                                                      match):
    model = make(model_type, 0, bidirectional=True, pad_id=PAD_ID)
    before = model.state_dict()
    with pytest.raises(error, match=match):
        call(model)
    assert model.training
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_wrong_targets_give_clear_errors():
    tagger, classifier = make(SequenceTagger, 0), make(SequenceClassifier, 0)
    with pytest.raises(ValueError, match=r"SequenceTagger: tags of shape \(2, 2\) do not match "
                                         r"ids: expected \(2, 3\)"):
        tagger.loss(IDS, np.zeros((2, 2), np.int64), [3, 2])
    with pytest.raises(ValueError, match=r"SequenceClassifier: labels of shape \(2, 3\)"):
        classifier.loss(IDS, np.zeros((2, 3), np.int64))
    with pytest.raises(ValueError, match=r"labels of shape \(3,\) .* expected \(2,\)"):
        classifier.accuracy(IDS, [0, 1, 2])
    with pytest.raises(IndexError, match=r"target 3 is out of range for 3 classes"):
        classifier.loss(IDS, [0, 3])
    with pytest.raises(ValueError, match="no tagged step"):
        tagger.accuracy(IDS, np.full((2, 3), TAG_PAD), [3, 2])


@pytest.mark.parametrize(("make_model", "match"), [
    (lambda: SequenceTagger(VOCAB, 2, 2, 2, cell="lstmm"), r"cell must be one of \['gru'"),
    (lambda: SequenceClassifier(VOCAB, 2, 2, 2, pooling="sum"), r"pooling must be one of"),
    (lambda: SequenceClassifier(VOCAB, 2, 2, 2, num_layers=0), r"num_layers must be at least 1"),
    (lambda: SequenceTagger(VOCAB, 2, 2, 2, pad_id=VOCAB),
     r"SequenceTagger: pad_id=7 is not an id of the vocabulary of 7 ids \(0\.\.6\); pass None"),
])
def test_bad_options_give_clear_errors(make_model, match):
    with pytest.raises(ValueError, match=match):
        make_model()


@pytest.mark.parametrize("model_type", [SequenceClassifier, SequenceTagger])
def test_a_compiled_loss_checks_every_batch_it_replays_as_eager_does(model_type):
    model = make(model_type, 0, bidirectional=True, pad_id=PAD_ID)
    lengths = np.array([3, 2])
    targets = np.zeros(IDS.shape if model_type is SequenceTagger else 2, np.int64)
    compiled = mg.compile(model.loss, fallback=False)
    np.testing.assert_allclose(compiled(IDS, targets, lengths).data,
                               model.loss(IDS, targets, lengths).data, rtol=1e-12)
    cases = [  # each of the same shapes and dtypes: replayed, not traced again
        (IDS, targets, np.array([3, 4]), ValueError, r"lengths must lie in 1\.\.3 .* got 4"),
        (IDS, targets, np.array([0, 2]), ValueError, r"lengths must lie in 1\.\.3 .* got 0"),
        (IDS, targets, np.array([3, 3]), ValueError, r"row 1 of ids holds the padding id 0 at "
                                                     r"position 2, inside its length 3"),
        (np.where(IDS == 3, VOCAB, IDS), targets, lengths, IndexError,
         r"Embedding: id 7 is out of range for num_embeddings=7"),
        (IDS, targets + CLASSES, lengths, IndexError, r"target 3 is out of range for 3 classes"),
    ]
    for ids, bad_targets, bad_lengths, error, match in cases:
        with pytest.raises(error, match=match) as eager:
            model.loss(ids, bad_targets, bad_lengths)
        with pytest.raises(error) as replayed:
            compiled(ids, bad_targets, bad_lengths)
        assert str(replayed.value) == str(eager.value)
    assert len(compiled.traces) == 1
