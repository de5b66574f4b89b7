"""Tests for minigrad.models.lm.RNNLM: gradients (tied weights included), truncated BPTT,
perplexity, generation, a short training run that needs memory, and errors on bad input."""

import math

import numpy as np
import pytest

import minigrad as mg
from minigrad.data import BPTTBatches, Vocab
from minigrad.models.lm import RNNLM, detach_state


def lm(vocab=6, size=3, cell="lstm", num_layers=1, tie=True, dropout=0.0, seed=0) -> RNNLM:
    """A small float64 RNNLM (gradcheck needs float64)."""
    mg.manual_seed(seed)
    return RNNLM(vocab, size, size, num_layers, cell, dropout, tie).double()


def ids(shape, vocab=6, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, vocab, shape)


def initial_state(model: RNNLM, batch: int, seed: int = 1):
    """A random float64 initial state that requires grad, for the cell kind of ``model``."""
    rng = np.random.default_rng(seed)
    shape = (model.rnn.num_layers, batch, model.rnn.hidden_size)
    parts = 2 if model.cell == "lstm" else 1
    state = tuple(mg.tensor(rng.uniform(-0.5, 0.5, shape), requires_grad=True)
                  for _ in range(parts))
    return state if parts == 2 else state[0]


# ---------------------------------------------------------------- gradients


@pytest.mark.parametrize("cell, num_layers", [("lstm", 1), ("lstm", 2), ("gru", 1), ("rnn", 1)])
def test_gradcheck_tied_rnnlm_parameters_and_initial_state(cell, num_layers):
    model = lm(cell=cell, num_layers=num_layers)
    x, y = ids((3, 2), seed=1), ids((3, 2), seed=2)
    state = initial_state(model, 2)
    states = list(state) if isinstance(state, tuple) else [state]
    params = list(model.parameters())

    def loss(*_):
        return model.loss(x, y, state)[0]

    assert mg.gradcheck(loss, params + states)


def test_weight_tying_shares_one_parameter():
    model = lm(vocab=7, size=4)
    assert model.out.weight is model.embed.weight
    names = [name for name, _ in model.named_parameters()]
    assert "embed.weight" in names and "out.weight" not in names  # counted once
    assert sum(p is model.embed.weight for p in model.parameters()) == 1
    state = model.state_dict()
    np.testing.assert_array_equal(state["embed.weight"], state["out.weight"])
    state["embed.weight"] = state["out.weight"] = np.full((7, 4), 0.25)
    model.load_state_dict(state)
    assert model.out.weight is model.embed.weight
    np.testing.assert_array_equal(model.out.weight.data, 0.25)
    with pytest.raises(ValueError, match="tie_weights needs hidden_size == embed_size; got 5 "):
        RNNLM(7, 4, 5, tie_weights=True)


@pytest.mark.parametrize("tie", [True, False])
def test_output_layer_gradient_reaches_the_tied_embedding(tie):
    # Inputs use ids 0..2 only, so embedding rows 3..5 get a gradient only through the output
    # layer, and only when it shares the matrix.
    model = lm(tie=tie)
    x, y = ids((4, 2), vocab=3), ids((4, 2), vocab=6, seed=3)
    model.loss(x, y)[0].backward()
    unused_rows = model.embed.weight.grad.data[3:]
    assert (np.abs(unused_rows).sum(axis=1) > 0).all() if tie else (unused_rows == 0).all()
    if tie:
        untied = lm(tie=False)
        untied.load_state_dict(model.state_dict())  # the same weights in two matrices
        untied.loss(x, y)[0].backward()
        # the tied gradient is the embedding's part plus the output layer's part
        np.testing.assert_allclose(model.embed.weight.grad.data,
                                   untied.embed.weight.grad.data + untied.out.weight.grad.data)


# ---------------------------------------------------------------- truncated BPTT


def test_truncated_bptt_carries_the_state_but_cuts_the_gradient():
    model = lm()
    x = ids((8, 2), seed=4)
    whole, _ = model(x)
    first, state = model(x[:4])
    carried = detach_state(state)
    assert all(s.grad_fn is None and not s.requires_grad for s in carried)
    for s, c in zip(state, carried):
        np.testing.assert_array_equal(s.data, c.data)
    second, _ = model(x[4:], carried)
    # the carried state continues the stream: chunk 2 sees what a whole-sequence run sees
    np.testing.assert_allclose(second.data, whole.data[4:], rtol=1e-12)
    fresh, _ = model(x[4:])
    assert not np.allclose(fresh.data, whole.data[4:])

    h1 = state[0]  # chunk 1's final hidden state, still in chunk 1's graph
    loss2 = second.sum()
    (cut,) = mg.grad(loss2, [h1], retain_graph=True, allow_unused=True)
    assert cut is None
    through, _ = model(x[4:], state)  # the same chunk without detaching: gradient flows back
    (flows,) = mg.grad(through.sum(), [h1])
    assert np.abs(flows.data).sum() > 0

    # chunk 2's loss reaches the embedding only through chunk 2's ids: the rows of ids that
    # occur only in chunk 1 get no gradient
    x = np.array([[0, 1], [1, 0], [2, 2], [2, 2], [3, 4], [4, 3], [5, 5], [3, 4]])
    untied = lm(tie=False)
    _, state = untied(x[:4])
    untied.zero_grad()
    untied(x[4:], detach_state(state))[0].sum().backward()
    grad = untied.embed.weight.grad.data
    assert (grad[:3] == 0).all() and (np.abs(grad[3:]).sum(axis=1) > 0).all()


def test_detach_state_of_a_single_tensor_and_none():
    assert detach_state(None) is None
    model = lm(cell="gru")
    _, h = model(ids((2, 2)))
    assert h.grad_fn is not None and detach_state(h).grad_fn is None


def test_perplexity_is_exp_of_the_mean_cross_entropy_over_the_stream():
    model = lm(vocab=6, size=4, dropout=0.3)
    stream = ids(45, seed=5)  # 2 streams of 22 ids: 21 targets each, chunks of 5, 5, 5, 5, 1
    batches = BPTTBatches(stream, batch_size=2, bptt=5)
    assert [len(x) for x, _ in batches] == [5, 5, 5, 5, 1]
    data = batches.data
    model.eval()
    logits = model(data[:-1])[0].data  # the whole stream at once
    model.train()
    log_p = logits - logits.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_p, data[1:, :, None], axis=-1)
    assert model.perplexity(batches) == pytest.approx(math.exp(nll.mean()), rel=1e-10)
    assert model.training  # restored after evaluating in eval mode
    with pytest.raises(ValueError, match="RNNLM.perplexity: no batches to evaluate"):
        model.perplexity([])


# ---------------------------------------------------------------- generation


def test_generate_is_seeded_and_has_the_asked_length():
    model = lm(vocab=6, size=4, dropout=0.5)
    a = model.generate([1, 2], 30, seed=7)
    assert a.dtype == np.int64 and a.shape == (32,) and list(a[:2]) == [1, 2]
    assert ((0 <= a) & (a < 6)).all()
    np.testing.assert_array_equal(a, model.generate([1, 2], 30, seed=7))
    assert not np.array_equal(a, model.generate([1, 2], 30, seed=8))
    assert model.training
    np.testing.assert_array_equal(model.generate([3], 0), [3])


def test_generate_without_a_seed_follows_mg_manual_seed():
    model = lm(vocab=6, size=4)
    mg.manual_seed(0)
    a = model.generate([1, 2], 30)
    mg.manual_seed(0)
    np.testing.assert_array_equal(a, model.generate([1, 2], 30))
    # the draws advance minigrad's generator, as sampling in PyTorch advances its own
    assert not np.array_equal(a, model.generate([1, 2], 30))
    mg.manual_seed(1)
    assert not np.array_equal(a, model.generate([1, 2], 30))


def test_generate_with_a_seed_ignores_and_keeps_minigrads_generator():
    model = lm(vocab=6, size=4)
    mg.manual_seed(0)
    a = model.generate([1, 2], 30, seed=7)
    mg.manual_seed(5)
    np.testing.assert_array_equal(a, model.generate([1, 2], 30, seed=7))
    mg.manual_seed(0)
    untouched = mg.randn(3).data
    mg.manual_seed(0)
    model.generate([1, 2], 30, seed=7)
    np.testing.assert_array_equal(mg.randn(3).data, untouched)  # not drawn from


def test_top_k_one_is_greedy_decoding():
    model = lm(vocab=6, size=4)
    model.embed.weight.data *= 3  # sharper distributions, so greedy is not a near tie
    greedy, state = [4], None
    with mg.no_grad():
        for _ in range(12):
            logits, state = model(np.array([[greedy[-1]]]), state)
            greedy.append(int(logits.data[-1, 0].argmax()))
    for temperature, seed in ((1.0, 0), (0.3, 1), (5.0, 2)):
        got = model.generate([4], 12, temperature=temperature, top_k=1, seed=seed)
        np.testing.assert_array_equal(got, greedy)


def test_top_k_restricts_the_samples():
    model = lm(vocab=6, size=4)
    with mg.no_grad():
        logits, _ = model(np.array([[0]]))
    top2 = set(np.argsort(logits.data[0, 0])[-2:])
    firsts = {int(model.generate([0], 1, temperature=5.0, top_k=2, seed=s)[1]) for s in range(40)}
    assert firsts == top2


@pytest.mark.parametrize("kwargs, match", [
    (dict(temperature=0.0), "temperature must be positive; got 0.0"),
    (dict(temperature=-1.0), "temperature must be positive; got -1.0"),
    (dict(top_k=0), r"top_k must be in \[1, 6\]; got 0"),
    (dict(top_k=7), r"top_k must be in \[1, 6\]; got 7"),
    (dict(length=-1), "length must be >= 0; got -1"),
    (dict(prefix=[]), "prefix must hold at least one token id"),
])
def test_generate_rejects_bad_arguments(kwargs, match):
    args = dict(prefix=[1], length=5) | kwargs
    with pytest.raises(ValueError, match="RNNLM.generate: " + match):
        lm().generate(**args)


# ---------------------------------------------------------------- training


def test_short_training_run_learns_a_pattern_that_needs_memory():
    # "xabcyabc" repeated: after "c" comes "y" if the last "x"/"y" was "x", else "x". A model
    # without memory (or with a state that does not carry) cannot beat (2/8) ln 2 = 0.173.
    vocab = Vocab("xyabc", "char")
    stream = vocab.encode("xabcyabc" * 80)
    batches = BPTTBatches(stream, batch_size=4, bptt=16)
    mg.manual_seed(0)
    model = RNNLM(len(vocab), 8, 16)
    opt = mg.optim.Adam(model.parameters(), lr=0.03)
    losses = []
    for _ in range(8):
        state = None
        for x, y in batches:
            loss, state = model.loss(x, y, detach_state(state))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    assert losses[0] > 1.5  # ~ln(9) at the start
    assert np.mean(losses[-5:]) < 0.05 < 0.25 * math.log(2)
    assert model.perplexity(batches) < 1.05


# ---------------------------------------------------------------- bad input


def test_bad_input_gets_clear_errors_and_leaves_the_model_intact():
    model = lm(vocab=6, size=3)
    before = model.state_dict()
    x = ids((4, 2))
    with pytest.raises(IndexError, match=r"Embedding: id 6 is out of range for "
                                         r"num_embeddings=6 \(valid ids are 0..5\)"):
        model(np.array([[0, 6]]))
    with pytest.raises(IndexError, match="Embedding: id -1 is out of range"):
        model.loss(np.array([[-1, 0]]), np.array([[0, 0]]))
    with pytest.raises(IndexError, match="Embedding: id 9 is out of range"):
        model.generate([9], 3)
    with pytest.raises(TypeError, match="Embedding: ids must be integers; got dtype float64"):
        model(x.astype(np.float64))
    with pytest.raises(ValueError, match=r"RNNLM: expected token ids of shape \(T, B\) with "
                                         r"T, B >= 1; got \(0, 2\)"):
        model(np.zeros((0, 2), np.int64))  # an empty chunk (e.g. from empty text)
    with pytest.raises(ValueError, match=r"RNNLM: expected token ids .* got \(4,\)"):
        model(x[:, 0])
    with pytest.raises(ValueError, match=r"RNNLM: targets of shape \(2, 4\) do not match ids "
                                         r"of shape \(4, 2\)"):
        model.loss(x, x.T)
    with pytest.raises(IndexError, match="cross_entropy: target 6 is out of range for 6 classes"):
        model.loss(x, np.full((4, 2), 6))
    bad_state = (mg.zeros(1, 3, 3, dtype=np.float64),) * 2
    with pytest.raises(ValueError, match=r"LSTM: expected hx as a tuple of 2 tensors, .* each "
                                         r"of shape \(1, 2, 3\) .*got a tuple of shapes"):
        model(x, bad_state)
    with pytest.raises(ValueError, match="cell must be one of"):
        RNNLM(6, 3, 3, cell="transformer")
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(array, before[name])
    assert model(x)[0].shape == (4, 2, 6)
