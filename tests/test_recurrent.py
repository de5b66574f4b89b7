"""Recurrent layers: any cell over a sequence, stacked, bidirectional, with PyTorch's layout."""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad.models import (
    GRU,
    LSTM,
    RNN,
    Cell,
    CoupledLSTMCell,
    GRUCell,
    LSTMCell,
    PeepholeLSTMCell,
    Recurrent,
    RNNCell,
)
from minigrad.nn import Linear, Module
from tests.strategies import arrays, leaf
from tests.test_cells import TEXTBOOK

LAYERS = {RNN: RNNCell, LSTM: LSTMCell, GRU: GRUCell}
STATE_PARTS = {RNN: 1, LSTM: 2, GRU: 1}


class MinimalGatedUnit(Module):
    """A user's cell (Zhou et al., 2016), written with ``forward`` only:
    f = σ(W_f [x, h] + b_f); h' = (1 − f)⊙h + f⊙tanh(W_h [x, f⊙h] + b_h)."""

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.forget = Linear(input_size + hidden_size, hidden_size)
        self.candidate = Linear(input_size + hidden_size, hidden_size)

    def forward(self, x, h):
        f = self.forget(mg.concat([x, h], axis=1)).sigmoid()
        h = (1 - f) * h + f * self.candidate(mg.concat([x, f * h], axis=1)).tanh()
        return h, h


def seeded(seed, model_type, *args, **kwargs):
    """A float64 model with the default initialization drawn from ``seed``."""
    mg.manual_seed(seed)
    return model_type(*args, **kwargs).double()


def hx_leaves(data, parts, shape):
    return [leaf(data.draw(arrays(shape, -1.0, 1.0))) for _ in range(parts)]


def as_hx(parts):
    return tuple(parts) if len(parts) > 1 else parts[0]


def flat(result):
    """(output, h_n) or (output, (h_n, c_n)) as one flat tuple of tensors."""
    output, h_n = result
    return (output, *h_n) if isinstance(h_n, tuple) else (output, h_n)


# -- values: a NumPy reference of the stack, built from the textbook cells ----------------------


def reference_cell(model, cell_type, k, suffix, **cell_kwargs):
    """Layer k's cell in one direction, its weights taken from the model's state_dict by name."""
    sd = model.state_dict()
    width = model.input_size if k == 0 else model.hidden_size * model.num_directions
    cell = cell_type(width, model.hidden_size, **cell_kwargs).double()
    cell.load_state_dict({name: sd[f"{name}_l{k}{suffix}"] for name in cell.state_dict()})
    return cell


def reference_run(model, cell_type, x, hx, **cell_kwargs):
    """Run the layer in NumPy: (T, B, I) input, hx parts (L*D, B, H) -> output, finals."""
    steps = x.shape[0]
    layer_input, finals = x, []
    for k in range(model.num_layers):
        outputs = []
        for d, suffix in enumerate(("", "_reverse")[: model.num_directions]):
            cell = reference_cell(model, cell_type, k, suffix, **cell_kwargs)
            state = tuple(part[k * model.num_directions + d] for part in hx)
            out = [None] * steps
            for t in reversed(range(steps)) if d else range(steps):
                out[t], state = TEXTBOOK[cell_type](cell, layer_input[t], *state)
            outputs.append(np.stack(out))
            finals.append(state)
        layer_input = np.concatenate(outputs, axis=-1)
    return layer_input, [np.stack(parts) for parts in zip(*finals)]


@pytest.mark.parametrize(("model_type", "kwargs"), [
    (RNN, {}), (RNN, {"nonlinearity": "relu"}), (LSTM, {}), (GRU, {}), (LSTM, {"bias": False}),
], ids=["rnn_tanh", "rnn_relu", "lstm", "gru", "lstm_nobias"])
@given(num_layers=st.integers(1, 3), bidirectional=st.booleans(), batch_first=st.booleans(),
       steps=st.integers(1, 4), batch=st.integers(1, 3), seed=st.integers(0, 2**16),
       data=st.data())
def test_values_equal_a_numpy_reference_in_pytorch_layout(model_type, kwargs, num_layers,
                                                          bidirectional, batch_first, steps,
                                                          batch, seed, data):
    model = seeded(seed, model_type, 3, 2, num_layers=num_layers, bidirectional=bidirectional,
                   batch_first=batch_first, **kwargs)
    directions = 2 if bidirectional else 1
    x = data.draw(arrays((steps, batch, 3)))
    hx = [data.draw(arrays((num_layers * directions, batch, 2), -1.0, 1.0))
          for _ in range(STATE_PARTS[model_type])]
    given_x = x.swapaxes(0, 1).copy() if batch_first else x
    output, *h_n = flat(model(mg.tensor(given_x), as_hx([mg.tensor(p) for p in hx])))
    output = output.data.swapaxes(0, 1) if batch_first else output.data
    expected_output, expected_finals = reference_run(model, LAYERS[model_type], x, hx, **kwargs)
    assert output.shape == (steps, batch, directions * 2)
    np.testing.assert_allclose(output, expected_output, rtol=1e-12, atol=1e-14)
    assert len(h_n) == len(expected_finals)
    for got, want in zip(h_n, expected_finals):
        assert got.shape == (num_layers * directions, batch, 2)
        np.testing.assert_allclose(got.data, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("model_type", [RNN, LSTM, GRU])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_final_states_sit_where_pytorch_puts_them(model_type, bidirectional):
    model = seeded(0, model_type, 3, 4, num_layers=2, bidirectional=bidirectional)
    output, *finals = flat(model(mg.randn(5, 2, 3, dtype=np.float64)))
    directions = 2 if bidirectional else 1
    assert output.shape == (5, 2, 4 * directions)
    for state in finals:
        assert state.shape == (2 * directions, 2, 4)
    h_n = finals[0].data
    if bidirectional:  # the last layer's forward state ends at t = T-1, its reverse one at t = 0
        np.testing.assert_array_equal(h_n[-2], output.data[-1, :, :4])
        np.testing.assert_array_equal(h_n[-1], output.data[0, :, 4:])
    else:
        np.testing.assert_array_equal(h_n[-1], output.data[-1])
    batch_first = seeded(0, model_type, 3, 4, num_layers=2, bidirectional=bidirectional,
                         batch_first=True)
    output_bf, *finals_bf = flat(batch_first(mg.randn(2, 5, 3, dtype=np.float64)))
    assert output_bf.shape == (2, 5, 4 * directions)
    assert [s.shape for s in finals_bf] == [s.shape for s in finals]


# -- gradients ----------------------------------------------------------------------------------


def check_gradients(model, data, steps, batch, parts):
    """gradcheck (output, h_n[, c_n]) w.r.t. the input, the initial state and every parameter."""
    directions = model.num_directions
    shape = (batch, steps, model.input_size) if model.batch_first else \
        (steps, batch, model.input_size)
    x = leaf(data.draw(arrays(shape)))
    hx = hx_leaves(data, parts, (model.num_layers * directions, batch, model.hidden_size))

    def run(x, *rest):  # the parameters in rest are read by the model itself
        return flat(model(x, as_hx(rest[:parts])))

    assert mg.gradcheck(run, [x, *hx, *model.parameters()])


@pytest.mark.parametrize("model_type", [RNN, LSTM, GRU])
@settings(max_examples=15)
@given(num_layers=st.integers(1, 2), bidirectional=st.booleans(), batch_first=st.booleans(),
       steps=st.integers(1, 3), batch=st.integers(1, 2), input_size=st.integers(1, 2),
       hidden=st.integers(1, 2), seed=st.integers(0, 2**16), data=st.data())
def test_layer_gradcheck(model_type, num_layers, bidirectional, batch_first, steps, batch,
                         input_size, hidden, seed, data):
    model = seeded(seed, model_type, input_size, hidden, num_layers=num_layers,
                   bidirectional=bidirectional, batch_first=batch_first)
    check_gradients(model, data, steps, batch, STATE_PARTS[model_type])


@pytest.mark.parametrize("cell_type", [PeepholeLSTMCell, CoupledLSTMCell, MinimalGatedUnit])
@settings(max_examples=8)
@given(num_layers=st.integers(1, 2), bidirectional=st.booleans(), residual=st.booleans(),
       steps=st.integers(1, 3), batch=st.integers(1, 2), seed=st.integers(0, 2**16),
       data=st.data())
def test_any_cell_through_recurrent_gradcheck(cell_type, num_layers, bidirectional, residual,
                                              steps, batch, seed, data):
    model = seeded(seed, Recurrent, cell_type, 2, 2, num_layers=num_layers,
                   bidirectional=bidirectional, residual=residual)
    parts = 2 if cell_type in (PeepholeLSTMCell, CoupledLSTMCell) else 1
    check_gradients(model, data, steps, batch, parts)


# -- a cell written by a user -------------------------------------------------------------------


def run_by_hand(model, x):
    """The user cell called step by step: each layer and direction from a zero state, the
    backward direction from the last step to the first, outputs concatenated [h→; h←]."""
    sd, finals = model.state_dict(), []
    for k in range(model.num_layers):
        outputs = []
        for suffix in ("", "_reverse"):
            cell = MinimalGatedUnit(x.shape[-1], model.hidden_size).double()
            cell.load_state_dict({n: sd[f"{n.replace('.', '_')}_l{k}{suffix}"]
                                  for n in cell.state_dict()})
            h, out = mg.zeros(x.shape[1], model.hidden_size, dtype=np.float64), {}
            for t in reversed(range(len(x))) if suffix else range(len(x)):
                h, _ = cell(x[t], h)
                out[t] = h
            outputs.append(mg.stack([out[t] for t in range(len(x))]))
            finals.append(h)
        x = mg.concat(outputs, axis=-1)
    return x, mg.stack(finals)


def test_a_user_cell_with_only_forward_runs_bidirectional_and_stacked():
    model = seeded(0, Recurrent, MinimalGatedUnit, 3, 4, num_layers=2, bidirectional=True)
    assert list(model.state_dict()) == [
        f"{layer}_{p}_l{k}{suffix}" for k in range(2) for suffix in ("", "_reverse")
        for layer in ("forget", "candidate") for p in ("weight", "bias")
    ]
    assert model.state_dict()["forget_weight_l1"].shape == (4, 8 + 4)
    x = mg.randn(5, 2, 3, dtype=np.float64)
    output, h_n = model(x)
    assert output.shape == (5, 2, 8) and h_n.shape == (4, 2, 4)
    expected_output, expected_h_n = run_by_hand(model, x)
    np.testing.assert_allclose(output.data, expected_output.data, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(h_n.data, expected_h_n.data, rtol=1e-13, atol=1e-15)
    x, hx = leaf(x.data[:3]), leaf(np.random.default_rng(0).uniform(-1, 1, (4, 2, 4)))
    assert mg.gradcheck(lambda x, hx, *_: model(x, hx), [x, hx, *model.parameters()],
                        fast_mode=True)


@pytest.mark.parametrize("cell_type", [LSTMCell, MinimalGatedUnit])
def test_the_reverse_direction_sees_the_future_and_the_forward_one_does_not(cell_type):
    steps, hidden = 5, 3
    model = seeded(1, Recurrent, cell_type, 2, hidden, bidirectional=True)
    x = leaf(np.random.default_rng(0).standard_normal((steps, 2, 2)))
    output, _ = model(x)
    for t in range(steps):
        forward_half, backward_half = output[t, :, :hidden].sum(), output[t, :, hidden:].sum()
        (dx_forward,) = mg.grad(forward_half, x, retain_graph=True)
        (dx_backward,) = mg.grad(backward_half, x, retain_graph=True)
        forward_norms = np.abs(dx_forward.data).sum(axis=(1, 2))
        backward_norms = np.abs(dx_backward.data).sum(axis=(1, 2))
        assert (forward_norms[t + 1:] == 0).all() and (forward_norms[: t + 1] > 0).all()
        assert (backward_norms[:t] == 0).all() and (backward_norms[t:] > 0).all()


# -- dropout and residual connections ------------------------------------------------------------


@pytest.mark.parametrize("bidirectional", [False, True])
def test_dropout_only_between_layers_and_only_in_training(bidirectional):
    hidden, directions = 6, 2 if bidirectional else 1
    model = seeded(2, LSTM, 3, hidden, num_layers=2, dropout=0.5, bidirectional=bidirectional)
    plain = seeded(2, LSTM, 3, hidden, num_layers=2, bidirectional=bidirectional)
    plain.load_state_dict(model.state_dict())
    x = mg.randn(4, 3, 3, dtype=np.float64)
    expected, (h_expected, _) = plain(x)

    model.eval()
    for _ in range(2):  # deterministic, and equal to the model without dropout
        output, (h_n, _) = model(x)
        np.testing.assert_array_equal(output.data, expected.data)
        np.testing.assert_array_equal(h_n.data, h_expected.data)

    model.train()
    mg.manual_seed(7)
    first, (h_first, _) = model(x)
    second, _ = model(x)
    mg.manual_seed(7)
    again, _ = model(x)
    assert not np.allclose(first.data, expected.data)
    assert not np.allclose(first.data, second.data)
    np.testing.assert_array_equal(first.data, again.data)
    # the first layer's input is not dropped, so its final states are as in eval
    np.testing.assert_array_equal(h_first.data[:directions], h_expected.data[:directions])
    # nothing is dropped after the last layer: its final states are still in the output
    np.testing.assert_array_equal(h_first.data[directions], first.data[-1, :, :hidden])


def test_dropout_does_nothing_to_a_single_layer():
    model = seeded(0, GRU, 3, 4, dropout=0.5)
    x = mg.randn(5, 2, 3, dtype=np.float64)
    trained, _ = model(x)
    evaluated, _ = model.eval()(x)
    np.testing.assert_array_equal(trained.data, evaluated.data)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_residual_connections_add_each_layer_input_to_its_output(bidirectional):
    directions = 2 if bidirectional else 1
    stacked = seeded(3, Recurrent, RNNCell, 3, 4, num_layers=3, bidirectional=bidirectional,
                     residual=True)
    layers = [seeded(0, Recurrent, RNNCell, 3 if k == 0 else 4 * directions, 4,
                     bidirectional=bidirectional) for k in range(3)]
    sd = stacked.state_dict()
    for k, layer in enumerate(layers):
        layer.load_state_dict({n: sd[n.replace("_l0", f"_l{k}")] for n in layer.state_dict()})
    x = mg.randn(5, 2, 3, dtype=np.float64)
    out0 = layers[0](x)[0]  # no skip into the first layer: its input has another width
    out1 = layers[1](out0)[0] + out0
    out2 = layers[2](out1)[0] + out1
    output, h_n = stacked(x)
    np.testing.assert_allclose(output.data, out2.data, rtol=1e-13, atol=1e-15)
    plain = seeded(3, Recurrent, RNNCell, 3, 4, num_layers=3, bidirectional=bidirectional)
    plain.load_state_dict(sd)
    assert not np.allclose(plain(x)[0].data, output.data)
    single = seeded(3, Recurrent, RNNCell, 4, 4, residual=True)
    no_skip = seeded(3, Recurrent, RNNCell, 4, 4)
    x4 = mg.randn(5, 2, 4, dtype=np.float64)
    np.testing.assert_array_equal(single(x4)[0].data, no_skip(x4)[0].data)


# -- long sequences, batch_first, state_dict ----------------------------------------------------


def test_a_5000_step_sequence_trains():
    mg.manual_seed(0)
    model = LSTM(1, 2)
    x = mg.randn(5000, 1, 1, requires_grad=True)
    output, (h_n, c_n) = model(x)
    loss = (output * output).mean() + h_n.sum()
    loss.backward()
    assert np.isfinite(x.grad.data).all() and np.abs(x.grad.data[0]).sum() > 0
    for name, p in model.named_parameters():
        assert p.grad is not None and np.isfinite(p.grad.data).all(), name
        assert np.abs(p.grad.data).sum() > 0, name


@pytest.mark.parametrize("model_type", [RNN, LSTM, GRU])
@settings(max_examples=10)
@given(num_layers=st.integers(1, 2), bidirectional=st.booleans(), seed=st.integers(0, 2**16),
       data=st.data())
def test_batch_first_is_the_same_computation_transposed(model_type, num_layers, bidirectional,
                                                        seed, data):
    kwargs = dict(num_layers=num_layers, bidirectional=bidirectional)
    time_major = seeded(seed, model_type, 2, 3, **kwargs)
    batch_major = seeded(seed + 1, model_type, 2, 3, batch_first=True, **kwargs)
    batch_major.load_state_dict(time_major.state_dict())
    x = data.draw(arrays((4, 2, 2)))
    results = []
    for model, given_x in ((time_major, leaf(x)), (batch_major, leaf(x.swapaxes(0, 1).copy()))):
        output, *finals = flat(model(given_x))
        if model.batch_first:
            output = output.swapaxes(0, 1)
        (output.sum() + sum((s * s).sum() for s in finals)).backward()
        grad_x = given_x.grad.data
        results.append((output.data, [s.data for s in finals],
                        grad_x.swapaxes(0, 1) if model.batch_first else grad_x,
                        [p.grad.data for p in model.parameters()]))
    (out_a, finals_a, gx_a, gp_a), (out_b, finals_b, gx_b, gp_b) = results
    np.testing.assert_allclose(out_a, out_b, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(gx_a, gx_b, rtol=1e-12, atol=1e-14)
    for a, b in zip(finals_a + gp_a, finals_b + gp_b):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def pytorch_keys(num_layers, bidirectional, bias=True):
    """The parameter names of torch.nn.LSTM/GRU/RNN, in its order (from PyTorch's docs)."""
    names = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if bias else [])
    return [f"{name}_l{k}{suffix}" for k in range(num_layers)
            for suffix in ("", "_reverse")[: 2 if bidirectional else 1] for name in names]


def test_state_dict_keys_and_shapes_are_pytorchs():
    lstm = LSTM(3, 5, num_layers=2, bidirectional=True)
    sd = lstm.state_dict()
    assert list(sd) == [
        "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
        "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse",
        "weight_ih_l1", "weight_hh_l1", "bias_ih_l1", "bias_hh_l1",
        "weight_ih_l1_reverse", "weight_hh_l1_reverse", "bias_ih_l1_reverse", "bias_hh_l1_reverse",
    ]
    assert sd["weight_ih_l0"].shape == (20, 3) and sd["weight_hh_l0_reverse"].shape == (20, 5)
    assert sd["weight_ih_l1"].shape == (20, 10) and sd["bias_hh_l1_reverse"].shape == (20,)
    assert list(GRU(3, 5, bias=False).state_dict()) == ["weight_ih_l0", "weight_hh_l0"]
    assert GRU(3, 5).state_dict()["weight_ih_l0"].shape == (15, 3)
    assert list(RNN(3, 5, num_layers=3).state_dict()) == pytorch_keys(3, False)
    assert repr(lstm).startswith(
        "LSTM(\n  3, 5, num_layers=2, bidirectional=True\n  (cells): ModuleList(\n"
        "    (0): LSTMCell(3, 5)\n    (1): LSTMCell(3, 5)\n    (2): LSTMCell(10, 5)\n")
    assert list(Recurrent(PeepholeLSTMCell, 3, 5).state_dict())[4:] == [
        "peephole_i_l0", "peephole_f_l0", "peephole_o_l0"]


@pytest.mark.parametrize(("model_type", "kwargs"), [
    (LSTM, {}), (GRU, {}), (RNN, {}), (RNN, {"nonlinearity": "relu"}), (LSTM, {"bias": False}),
], ids=["lstm", "gru", "rnn_tanh", "rnn_relu", "lstm_nobias"])
@pytest.mark.parametrize(("num_layers", "bidirectional", "batch_first"), [
    (1, False, False), (2, True, False), (2, False, True), (3, True, True)])
def test_a_pytorch_state_dict_loads_and_gives_the_same_outputs_and_gradients(
        model_type, kwargs, num_layers, bidirectional, batch_first):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    options = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first,
                   **kwargs)
    reference = getattr(torch.nn, model_type.__name__)(3, 4, **options).double()
    model = model_type(3, 4, **options).double()
    torch_sd = {k: v.detach().numpy() for k, v in reference.state_dict().items()}
    assert list(torch_sd) == list(model.state_dict()) == pytorch_keys(num_layers, bidirectional,
                                                                     kwargs.get("bias", True))
    model.load_state_dict(torch_sd)
    rng = np.random.default_rng(0)
    directions = 2 if bidirectional else 1
    x = rng.standard_normal((2, 5, 3) if batch_first else (5, 2, 3))
    hx = [rng.standard_normal((num_layers * directions, 2, 4))
          for _ in range(STATE_PARTS[model_type])]
    t_inputs = [torch.tensor(a, requires_grad=True) for a in [x, *hx]]
    m_inputs = [leaf(a) for a in [x, *hx]]
    t_outputs = flat(reference(t_inputs[0], as_hx(t_inputs[1:])))
    m_outputs = flat(model(m_inputs[0], as_hx(m_inputs[1:])))
    weights = [rng.standard_normal(y.shape) for y in m_outputs]
    for t, m in zip(t_outputs, m_outputs):
        np.testing.assert_allclose(m.data, t.detach().numpy(), rtol=1e-12, atol=1e-14)
    sum(((t * torch.tensor(w)).sum() for t, w in zip(t_outputs, weights))).backward()
    sum(((m * w).sum() for m, w in zip(m_outputs, weights))).backward()
    params = dict(model.named_parameters())
    pairs = list(zip(t_inputs, m_inputs))
    pairs += [(p, params[name]) for name, p in reference.named_parameters()]
    for t, m in pairs:
        np.testing.assert_allclose(m.grad.data, t.grad.numpy(), rtol=1e-10, atol=1e-13)


# -- errors -------------------------------------------------------------------------------------


def test_wrong_input_shape_gives_a_clear_error():
    lstm = LSTM(3, 4)
    for bad in [mg.randn(5, 4), mg.randn(5, 2, 4), mg.randn(1, 5, 2, 3), mg.randn(3)]:
        message = (f"LSTM: expected input of shape (T, B, I) or, unbatched, (T, I) with I = 3; "
                   f"got {bad.shape}")
        with pytest.raises(ValueError, match=re.escape(message)):
            lstm(bad)
    with pytest.raises(ValueError, match=r"GRU: expected input of shape \(B, T, I\) or, "
                                         r"unbatched, \(T, I\) with I = 2"):
        GRU(2, 4, batch_first=True)(mg.randn(5, 3))
    for bad in [mg.randn(0, 2, 3), mg.randn(0, 3)]:
        with pytest.raises(ValueError, match=r"LSTM: expected a sequence of length T > 0"):
            lstm(bad)
    with pytest.raises(ValueError, match=r"GRU: expected a sequence of length T > 0; got input "
                                         r"of shape \(2, 0, 3\)"):
        GRU(3, 4, batch_first=True)(mg.randn(2, 0, 3))
    with pytest.raises(TypeError, match="LSTM: expected the input as a Tensor; got a ndarray"):
        lstm(np.zeros((5, 2, 3), np.float32))


@pytest.mark.parametrize("model_type", [RNN, LSTM, GRU])
def test_an_input_of_another_dtype_than_the_weights_is_an_error_not_an_upcast(model_type):
    """As in PyTorch: a float32 layer fed float64 computes nothing in float64 silently."""
    layer = model_type(3, 4)
    name = model_type.__name__
    for x in [mg.tensor(np.zeros((5, 2, 3))), mg.tensor(np.zeros((5, 3)))]:
        with pytest.raises(ValueError, match=re.escape(
                f"{name}: input must have the type float32 (the layer's weights), got type "
                "float64: convert the input, x.astype(np.float32), or the layer, "
                "layer.to(np.float64)")):
            layer(x)
    with pytest.raises(ValueError, match=re.escape(
            f"{name}: input must have the type float32 (the layer's weights), got type int64: "
            "convert the input, x.astype(np.float32)")):
        layer(mg.tensor(np.zeros((5, 2, 3), np.int64)))
    layer.double()
    with pytest.raises(ValueError, match="input must have the type float64 .*got type float32"):
        layer(mg.randn(5, 2, 3))
    h = mg.zeros(1, 2, 4)  # float32 hx for a float64 layer and input
    with pytest.raises(ValueError, match=re.escape(
            f"{name}: hx must have the type float64 (the input's and the weights'), got type "
            "float32")):
        layer(mg.zeros(5, 2, 3, dtype=np.float64), (h, h) if model_type is LSTM else h)
    assert layer(mg.zeros(5, 2, 3, dtype=np.float64))[0].dtype == np.float64


@pytest.mark.parametrize("model_type", [RNN, LSTM, GRU])
@pytest.mark.parametrize(("num_layers", "bidirectional", "batch_first"),
                         [(1, False, False), (2, True, True)])
def test_unbatched_input_is_a_batch_of_one_without_the_batch_axis(
        model_type, num_layers, bidirectional, batch_first):
    model = seeded(0, model_type, 3, 4, num_layers=num_layers, bidirectional=bidirectional,
                   batch_first=batch_first)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 3))  # (T, I) whatever batch_first says, as in PyTorch
    layers = num_layers * (2 if bidirectional else 1)
    hx = [rng.standard_normal((layers, 4)) for _ in range(STATE_PARTS[model_type])]
    output, *h_n = flat(model(mg.tensor(x), as_hx([mg.tensor(h) for h in hx])))
    batched = mg.tensor(x[None] if batch_first else x[:, None])
    expected = flat(model(batched, as_hx([mg.tensor(h[:, None]) for h in hx])))
    assert output.shape == (6, 4 * (2 if bidirectional else 1))
    want = expected[0].data[0] if batch_first else expected[0].data[:, 0]
    np.testing.assert_array_equal(output.data, want)
    for part, want in zip(h_n, expected[1:]):
        assert part.shape == (layers, 4)
        np.testing.assert_array_equal(part.data, want.data[:, 0])
    without_hx = flat(model(mg.tensor(x)))
    assert [p.shape for p in without_hx[1:]] == [(layers, 4)] * STATE_PARTS[model_type]


def test_unbatched_input_needs_an_unbatched_hx_and_batched_a_batched_one():
    lstm = LSTM(3, 4, num_layers=2)
    h = mg.zeros(2, 1, 4)
    with pytest.raises(ValueError, match=re.escape(
            "LSTM: expected hx as a tuple of 2 tensors, one per part of the cell's state (an "
            "LSTM's is (h_0, c_0)), each of shape (2, 4) (layers*directions, hidden; the input "
            "is unbatched, (T, I)); got a tuple of shapes ((2, 1, 4), (2, 1, 4))")):
        lstm(mg.randn(5, 3), (h, h))
    with pytest.raises(ValueError, match=re.escape(
            "GRU: expected hx as a tensor of shape (1, 2, 4) (layers*directions, batch, hidden); "
            "got a tensor of shape (1, 4)")):
        GRU(3, 4)(mg.randn(5, 2, 3), mg.zeros(1, 4))


def test_wrong_hx_gives_a_clear_error():
    x = mg.randn(5, 2, 3)
    lstm = LSTM(3, 4, num_layers=2, bidirectional=True)
    lstm_hx = re.escape(
        "LSTM: expected hx as a tuple of 2 tensors, one per part of the cell's state (an LSTM's "
        "is (h_0, c_0)), each of shape (4, 2, 4) (layers*directions, batch, hidden); got ")
    for bad in [(mg.randn(4, 2, 4),), (mg.randn(4, 2, 4), mg.randn(2, 2, 4)),
                (mg.randn(4, 3, 4), mg.randn(4, 3, 4))]:
        with pytest.raises(ValueError, match=lstm_hx + r"a tuple of shapes \(\(4, "):
            lstm(x, bad)
    with pytest.raises(ValueError, match=lstm_hx + re.escape("a tensor of shape (4, 2, 4)")):
        lstm(x, mg.randn(4, 2, 4))
    with pytest.raises(ValueError, match=lstm_hx + "a list$"):
        lstm(x, [mg.randn(4, 2, 4), mg.randn(4, 2, 4)])
    gru = GRU(3, 4)
    gru_hx = r"GRU: expected hx as a tensor of shape \(1, 2, 4\) .*; got a tensor of shape"
    for bad in [mg.randn(2, 2, 4), mg.randn(1, 2, 5), mg.randn(2, 4)]:
        with pytest.raises(ValueError, match=gru_hx):
            gru(x, bad)
    with pytest.raises(ValueError, match=r"GRU: .*; got a tuple of shapes \(\(1, 2, 4\),\)"):
        gru(x, (mg.randn(1, 2, 4),))


def test_a_cell_instance_instead_of_a_cell_class_gives_a_clear_error():
    with pytest.raises(TypeError, match=re.escape(
            "Recurrent: cell_type must be a cell class (or a function that builds a cell), as "
            "in Recurrent(LSTMCell, 3, 5): it builds one cell per layer and direction; got a "
            "cell instance, LSTMCell(3, 5)")):
        Recurrent(LSTMCell(3, 5), 3, 5)
    with pytest.raises(TypeError, match="Recurrent: cell_type must be a cell class .*; got 3$"):
        Recurrent(3, 5, 4)
    with pytest.raises(TypeError, match=r"Recurrent: cell_type\(3, 5\) must return a Module; "
                                        r"got None \(NoneType\)"):
        Recurrent(lambda input_size, hidden_size: None, 3, 5)
    assert Recurrent(LSTMCell, 3, 5)(mg.randn(4, 2, 3))[0].shape == (4, 2, 5)


class TupleStateCellWithoutInitState(LSTMCell):
    """An LSTM cell written without ``init_state`` (as the README's snippet once was): its state
    is ``(h, c)``, but it gets the base class's single ``(B, H)`` zero tensor."""

    init_state = Cell.init_state


class RowsAsState(Module):
    """A cell that unpacks a (2, H) state into its two rows and runs without an error."""

    def forward(self, x, state):
        h, c = state
        return x, (h + c, c)


@pytest.mark.parametrize("batch", [1, 2, 3])
def test_a_tuple_state_cell_without_init_state_gets_a_hint_instead_of_a_puzzle(batch):
    hint = re.escape("TupleStateCellWithoutInitState's first step got its state as one tensor "
                     f"of shape ({batch}, 5); if the cell's state is a tuple such as (h, c), "
                     "the cell defines init_state(batch, dtype) to return it (see Cell)")
    with pytest.raises(ValueError) as info:
        Recurrent(TupleStateCellWithoutInitState, 3, 5)(mg.randn(4, batch, 3))
    assert re.fullmatch(hint, info.value.__notes__[-1])


def test_a_step_that_changes_the_state_shape_gives_a_clear_error():
    message = re.escape("RowsAsState: a step returned a state of shape ((2,), (2,)) from a "
                        "state of shape (2, 2); the new state must be shaped like the old. "
                        "RowsAsState's first step got its state as one tensor of shape (2, 2)")
    with pytest.raises(ValueError, match=message):
        Recurrent(lambda i, h: RowsAsState(), 2, 2)(mg.randn(3, 2, 2))


def test_bad_options_give_clear_errors():
    with pytest.raises(ValueError, match="LSTM: num_layers must be at least 1; got 0"):
        LSTM(3, 4, num_layers=0)
    with pytest.raises(ValueError, match=r"GRU: dropout must be in \[0, 1\); got 1.0"):
        GRU(3, 4, dropout=1.0)
    with pytest.raises(ValueError, match="RNNCell: nonlinearity must be 'tanh' or 'relu'"):
        RNN(3, 4, nonlinearity="gelu")


def test_train_eval_and_apply_reach_the_cells_with_no_override():
    assert "train" not in vars(Recurrent) and "apply" not in vars(Recurrent)
    layer = LSTM(3, 4, num_layers=2, bidirectional=True)
    assert list(layer.children()) == [layer.cells] and len(layer.cells) == 4
    layer.eval()
    assert not layer.training and not any(cell.training for cell in layer.cells)
    layer.train()
    assert layer.training and all(cell.training for cell in layer.cells)
    visited = []
    layer.apply(visited.append)
    assert visited == [*layer.cells, layer.cells, layer]
    assert [name for name, _ in layer.named_modules()] == [
        "", "cells", "cells.0", "cells.1", "cells.2", "cells.3"]


class Tagger(Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = Recurrent(MinimalGatedUnit, 3, 4, num_layers=2)
        self.out = Linear(4, 2)


def test_the_cells_parameters_keep_pytorchs_flat_names_only():
    layer = LSTM(3, 4, num_layers=2, bidirectional=True)
    names = [name for name, _ in layer.named_parameters()]
    assert names == pytorch_keys(2, True) == list(layer.state_dict())
    assert [n for n, _ in layer.named_parameters(remove_duplicate=False)] == names
    assert [n for n, _ in layer.named_parameters(recurse=False)] == names
    assert layer.weight_hh_l1_reverse is layer.cells[3].weight_hh
    assert [p for _, p in layer.named_parameters()] == [
        p for cell in layer.cells for p in cell.parameters()]
    assert list(layer.cells[1].state_dict()) == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]

    # inside a model, and for a cell with submodules of its own (dots become underscores)
    model = Tagger()
    cell_names = ["forget_weight", "forget_bias", "candidate_weight", "candidate_bias"]
    assert list(model.state_dict()) == [
        f"rnn.{name}_l{k}" for k in range(2) for name in cell_names] + ["out.weight", "out.bias"]
    sd = {name: np.full(a.shape, 0.5, a.dtype) for name, a in model.state_dict().items()}
    model.load_state_dict(sd)
    np.testing.assert_array_equal(model.rnn.cells[1].candidate.bias.data, 0.5)
