"""Recurrent cells: gradients, textbook equations in NumPy, PyTorch's names, init and errors."""

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import minigrad as mg
from minigrad.models import CoupledLSTMCell, GRUCell, LSTMCell, PeepholeLSTMCell, RNNCell
from tests.strategies import arrays, leaf

# (cell type, keyword arguments): every cell, and RNNCell with both nonlinearities
CELLS = [
    (RNNCell, {}),
    (RNNCell, {"nonlinearity": "relu"}),
    (LSTMCell, {}),
    (GRUCell, {}),
    (PeepholeLSTMCell, {}),
    (CoupledLSTMCell, {}),
]
CELL_IDS = ["rnn_tanh", "rnn_relu", "lstm", "gru", "peephole", "coupled"]
LSTM_LIKE = (LSTMCell, PeepholeLSTMCell, CoupledLSTMCell)
GATES = {RNNCell: 1, LSTMCell: 4, GRUCell: 3, PeepholeLSTMCell: 4, CoupledLSTMCell: 3}

sizes = st.integers(1, 3)


def make_cell(cell_type, input_size, hidden_size, seed, **kwargs):
    """A float64 cell with PyTorch's default initialization drawn from ``seed``."""
    mg.manual_seed(seed)
    return cell_type(input_size, hidden_size, **kwargs).double()


def state_parts(cell_type, data, batch, hidden):
    """A random state: (h,) or (h, c) for LSTM-like cells, as float64 leaves."""
    n = 2 if issubclass(cell_type, LSTM_LIKE) else 1
    return [leaf(data.draw(arrays((batch, hidden), -1.0, 1.0))) for _ in range(n)]


def as_state(parts):
    return tuple(parts) if len(parts) == 2 else parts[0]


# -- the textbook equations, in NumPy, from a cell's own weights --------------------------------


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def affine(v, w, b):
    return v @ w.T + b


def per_gate(cell, n):
    """(W_i*, W_h*, b_i*, b_h*) per gate, in PyTorch's gate order, cut from the fused weights."""
    zero = np.zeros(cell.hidden_size)
    b_ih = np.split(cell.bias_ih.data, n) if cell.bias else [zero] * n
    b_hh = np.split(cell.bias_hh.data, n) if cell.bias else [zero] * n
    return list(zip(np.split(cell.weight_ih.data, n), np.split(cell.weight_hh.data, n), b_ih, b_hh))


def textbook_rnn(cell, x, h):
    ((w_ih, w_hh, b_ih, b_hh),) = per_gate(cell, 1)
    pre = affine(x, w_ih, b_ih) + affine(h, w_hh, b_hh)
    h = np.tanh(pre) if cell.nonlinearity == "tanh" else np.maximum(pre, 0)
    return h, (h,)


def textbook_lstm(cell, x, h, c):
    (w_ii, w_hi, b_ii, b_hi), (w_if, w_hf, b_if, b_hf), (w_ig, w_hg, b_ig, b_hg), \
        (w_io, w_ho, b_io, b_ho) = per_gate(cell, 4)
    i = sigmoid(affine(x, w_ii, b_ii) + affine(h, w_hi, b_hi))
    f = sigmoid(affine(x, w_if, b_if) + affine(h, w_hf, b_hf))
    g = np.tanh(affine(x, w_ig, b_ig) + affine(h, w_hg, b_hg))
    o = sigmoid(affine(x, w_io, b_io) + affine(h, w_ho, b_ho))
    c = f * c + i * g
    h = o * np.tanh(c)
    return h, (h, c)


def textbook_gru(cell, x, h):
    (w_ir, w_hr, b_ir, b_hr), (w_iz, w_hz, b_iz, b_hz), (w_in, w_hn, b_in, b_hn) = per_gate(cell, 3)
    r = sigmoid(affine(x, w_ir, b_ir) + affine(h, w_hr, b_hr))
    z = sigmoid(affine(x, w_iz, b_iz) + affine(h, w_hz, b_hz))
    n = np.tanh(affine(x, w_in, b_in) + r * affine(h, w_hn, b_hn))
    h = (1 - z) * n + z * h
    return h, (h,)


def textbook_peephole(cell, x, h, c):
    (w_ii, w_hi, b_ii, b_hi), (w_if, w_hf, b_if, b_hf), (w_ig, w_hg, b_ig, b_hg), \
        (w_io, w_ho, b_io, b_ho) = per_gate(cell, 4)
    p_i, p_f, p_o = cell.peephole_i.data, cell.peephole_f.data, cell.peephole_o.data
    i = sigmoid(affine(x, w_ii, b_ii) + affine(h, w_hi, b_hi) + p_i * c)
    f = sigmoid(affine(x, w_if, b_if) + affine(h, w_hf, b_hf) + p_f * c)
    g = np.tanh(affine(x, w_ig, b_ig) + affine(h, w_hg, b_hg))
    c = f * c + i * g
    o = sigmoid(affine(x, w_io, b_io) + affine(h, w_ho, b_ho) + p_o * c)
    h = o * np.tanh(c)
    return h, (h, c)


def textbook_coupled(cell, x, h, c):
    (w_if, w_hf, b_if, b_hf), (w_ig, w_hg, b_ig, b_hg), (w_io, w_ho, b_io, b_ho) = per_gate(cell, 3)
    f = sigmoid(affine(x, w_if, b_if) + affine(h, w_hf, b_hf))
    g = np.tanh(affine(x, w_ig, b_ig) + affine(h, w_hg, b_hg))
    o = sigmoid(affine(x, w_io, b_io) + affine(h, w_ho, b_ho))
    c = f * c + (1 - f) * g
    h = o * np.tanh(c)
    return h, (h, c)


TEXTBOOK = {
    RNNCell: textbook_rnn, LSTMCell: textbook_lstm, GRUCell: textbook_gru,
    PeepholeLSTMCell: textbook_peephole, CoupledLSTMCell: textbook_coupled,
}


def relu_margin(cell, x, h):
    """Distance of an RNNCell's pre-activation from relu's kink at 0."""
    ((w_ih, w_hh, b_ih, b_hh),) = per_gate(cell, 1)
    return np.abs(affine(x, w_ih, b_ih) + affine(h, w_hh, b_hh)).min()


# -- one step: values and gradients -------------------------------------------------------------


@pytest.mark.parametrize(("cell_type", "kwargs"), CELLS, ids=CELL_IDS)
@given(batch=sizes, input_size=sizes, hidden=sizes, bias=st.booleans(),
       seed=st.integers(0, 2**16), data=st.data())
def test_one_step_equals_the_textbook_equations(cell_type, kwargs, batch, input_size, hidden,
                                                bias, seed, data):
    cell = make_cell(cell_type, input_size, hidden, seed, bias=bias, **kwargs)
    x = data.draw(arrays((batch, input_size)))
    parts = state_parts(cell_type, data, batch, hidden)
    h, new_state = cell(mg.tensor(x), as_state([mg.tensor(p.data) for p in parts]))
    expected_h, expected_state = TEXTBOOK[cell_type](cell, x, *(p.data for p in parts))
    got_state = new_state if isinstance(new_state, tuple) else (new_state,)
    assert h.dtype == np.float64 and h.shape == (batch, hidden)
    np.testing.assert_allclose(h.data, expected_h, rtol=1e-12, atol=1e-14)
    assert len(got_state) == len(expected_state)
    for got, want in zip(got_state, expected_state):
        np.testing.assert_allclose(got.data, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("cell_type", "kwargs"), CELLS, ids=CELL_IDS)
@given(batch=sizes, input_size=sizes, hidden=sizes, bias=st.booleans(),
       seed=st.integers(0, 2**16), data=st.data())
def test_cell_gradcheck_wrt_input_state_and_parameters(cell_type, kwargs, batch, input_size,
                                                       hidden, bias, seed, data):
    cell = make_cell(cell_type, input_size, hidden, seed, bias=bias, **kwargs)
    x = leaf(data.draw(arrays((batch, input_size))))
    parts = state_parts(cell_type, data, batch, hidden)
    if kwargs.get("nonlinearity") == "relu":
        assume(relu_margin(cell, x.data, parts[0].data) > 1e-2)
    n = len(parts)

    def step(x, *rest):  # the parameters in rest are read by the cell itself
        h, new_state = cell(x, as_state(rest[:n]))
        return (h, *new_state) if isinstance(new_state, tuple) else (h,)

    assert mg.gradcheck(step, [x, *parts, *cell.parameters()])


FOLDING = [(case, name) for case, name in zip(CELLS, CELL_IDS) if case[0].fold_hidden_bias]


@pytest.mark.parametrize(("cell_type", "kwargs"), [case for case, _ in FOLDING],
                         ids=[name for _, name in FOLDING])
def test_folding_the_hidden_bias_changes_nothing(cell_type, kwargs):
    """b_hh added once with the input side (what RNN and LSTM cells do) or at every step (what
    a cell that does not opt in does): the same values and the same gradients."""
    rng = np.random.default_rng(0)
    x, weights = rng.standard_normal((3, 2, 4)), rng.standard_normal((3, 2, 5))
    h, c = rng.standard_normal((2, 2, 5))
    results = []
    for fold in (True, False):
        cell = make_cell(cell_type, 4, 5, seed=1, **kwargs)
        cell.fold_hidden_bias = fold
        state = (mg.tensor(h), mg.tensor(c)) if issubclass(cell_type, LSTM_LIKE) else mg.tensor(h)
        out = []
        for x_t in x:
            h_t, state = cell(mg.tensor(x_t), state)
            out.append(h_t)
        out = mg.stack(out)
        (out * mg.tensor(weights)).sum().backward()
        results.append([out.data] + [p.grad.data for p in cell.parameters()])
    for folded, apart in zip(*results):
        np.testing.assert_allclose(folded, apart, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("cell_type", "kwargs"), CELLS, ids=CELL_IDS)
def test_missing_state_means_zeros(cell_type, kwargs):
    cell = make_cell(cell_type, 3, 4, seed=0, **kwargs)
    x = mg.tensor(np.random.default_rng(0).standard_normal((2, 3)))
    zeros = as_state([mg.zeros(2, 4, dtype=np.float64)] * (2 if cell_type in LSTM_LIKE else 1))
    h_default, _ = cell(x)
    h_zero, _ = cell(x, zeros)
    assert h_default.dtype == np.float64
    np.testing.assert_array_equal(h_default.data, h_zero.data)


# -- PyTorch's names, shapes and initialization -------------------------------------------------


@pytest.mark.parametrize(("cell_type", "kwargs"), CELLS, ids=CELL_IDS)
def test_parameter_names_shapes_and_init_range_as_pytorch(cell_type, kwargs):
    mg.manual_seed(0)
    hidden, input_size = 16, 10
    cell = cell_type(input_size, hidden, **kwargs)
    rows = GATES[cell_type] * hidden
    expected = {
        "weight_ih": (rows, input_size), "weight_hh": (rows, hidden),
        "bias_ih": (rows,), "bias_hh": (rows,),
    }
    if cell_type is PeepholeLSTMCell:
        expected.update(peephole_i=(hidden,), peephole_f=(hidden,), peephole_o=(hidden,))
    assert {k: v.shape for k, v in cell.state_dict().items()} == expected
    assert list(cell.state_dict())[:4] == ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    bound = 1 / math.sqrt(hidden)
    for name, p in cell.named_parameters():
        assert p.dtype == np.float32, name
        assert np.abs(p.data).max() <= bound, name
        assert p.data.max() > 0.5 * bound and p.data.min() < -0.5 * bound, name
    every = np.concatenate([p.data.ravel() for p in cell.parameters()])
    assert every.max() > 0.95 * bound and every.min() < -0.95 * bound
    assert abs(every.mean()) < 0.1 * bound


@pytest.mark.parametrize(("cell_type", "kwargs"), CELLS, ids=CELL_IDS)
def test_bias_false_has_only_weights(cell_type, kwargs):
    cell = make_cell(cell_type, 3, 2, seed=1, bias=False, **kwargs)
    names = [name for name, _ in cell.named_parameters()]
    assert names[:2] == ["weight_ih", "weight_hh"] and not any("bias" in n for n in names)
    assert cell.bias_ih is None and cell.bias_hh is None
    assert repr(cell) == f"{cell_type.__name__}(3, 2, bias=False)"
    # with zero input and state, a cell without bias stays at zero
    h, _ = cell(mg.zeros(2, 3, dtype=np.float64))
    np.testing.assert_array_equal(h.data, 0)


def test_init_is_reproducible_and_reset_redraws():
    mg.manual_seed(5)
    a = LSTMCell(3, 4)
    mg.manual_seed(5)
    b = LSTMCell(3, 4)
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=name)
    before = a.weight_hh.data.copy()
    a.reset_parameters()
    assert not np.array_equal(before, a.weight_hh.data)


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("cell_type", "kwargs"), CELLS, ids=CELL_IDS)
def test_bad_input_and_state_give_clear_errors(cell_type, kwargs):
    name = cell_type.__name__
    cell = cell_type(3, 4, **kwargs)
    with pytest.raises(ValueError, match=rf"{name}: expected input with last axis 3; "
                                         r"got shape \(2, 5\)"):
        cell(mg.randn(2, 5))
    with pytest.raises(ValueError, match=rf"{name}: expected input of shape \(batch, 3\); "
                                         r"got \(7, 2, 3\)"):
        cell(mg.randn(7, 2, 3))
    with pytest.raises(ValueError, match=rf"{name}: expected input of shape \(batch, 3\)"):
        cell(mg.randn(3))
    lstm_like = cell_type in LSTM_LIKE
    want = r"\(\(2, 4\), \(2, 4\)\)" if lstm_like else r"\(2, 4\)"
    bad_states = [mg.randn(1, 4), mg.randn(4), mg.randn(2, 5), (mg.randn(2, 4),)]
    if lstm_like:
        bad_states += [mg.randn(2, 4), (mg.randn(2, 4), mg.randn(1, 4))]
    else:
        bad_states += [(mg.randn(2, 4), mg.randn(2, 4))]
    for state in bad_states:
        with pytest.raises(ValueError, match=rf"{name}: expected a state of shape {want} for a "
                                             r"batch of 2; got"):
            cell(mg.randn(2, 3), state)
    with pytest.raises(ValueError, match=rf"{name}: input_size and hidden_size must be positive"):
        cell_type(0, 4, **kwargs)


def test_rnn_cell_rejects_an_unknown_nonlinearity():
    with pytest.raises(ValueError, match="RNNCell: nonlinearity must be 'tanh' or 'relu'; "
                                         "got 'sigmoid'"):
        RNNCell(3, 4, nonlinearity="sigmoid")


# -- against PyTorch, when it is installed ------------------------------------------------------


@pytest.mark.parametrize(("cell_type", "kwargs"), CELLS[:4], ids=CELL_IDS[:4])
@pytest.mark.parametrize("bias", [True, False])
def test_step_matches_pytorch(cell_type, kwargs, bias):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    reference = getattr(torch.nn, cell_type.__name__)(3, 4, bias=bias, **kwargs).double()
    cell = cell_type(3, 4, bias=bias, **kwargs).double()
    cell.load_state_dict({k: v.detach().numpy() for k, v in reference.state_dict().items()})
    rng = np.random.default_rng(0)
    x, h, c, weight = (rng.standard_normal(shape) for shape in [(2, 3), (2, 4), (2, 4), (2, 4)])
    tx, th, tc = (torch.tensor(a, requires_grad=True) for a in (x, h, c))
    t_weight = torch.tensor(weight)
    mx, mh, mc = (leaf(a) for a in (x, h, c))
    if cell_type is LSTMCell:
        t_out, t_c = reference(tx, (th, tc))
        m_out, (_, m_c) = cell(mx, (mh, mc))
        np.testing.assert_allclose(m_c.data, t_c.detach().numpy(), rtol=1e-12, atol=1e-14)
        t_loss = (t_out * t_weight).sum() + t_c.sum()
        m_loss = (m_out * weight).sum() + m_c.sum()
        inputs = [(tx, mx), (th, mh), (tc, mc)]
    else:
        t_out, (m_out, _) = reference(tx, th), cell(mx, mh)
        t_loss, m_loss = (t_out * t_weight).sum(), (m_out * weight).sum()
        inputs = [(tx, mx), (th, mh)]
    np.testing.assert_allclose(m_out.data, t_out.detach().numpy(), rtol=1e-12, atol=1e-14)
    t_loss.backward()
    m_loss.backward()
    params = dict(cell.named_parameters())
    inputs += [(p, params[name]) for name, p in reference.named_parameters()]
    assert len(inputs) == (3 if cell_type is LSTMCell else 2) + (4 if bias else 2)
    for t, m in inputs:
        np.testing.assert_allclose(m.grad.data, t.grad.numpy(), rtol=1e-10, atol=1e-13)


def test_a_cell_without_step_names_its_class():
    from minigrad.models import Cell

    class Unfinished(Cell):
        pass

    with pytest.raises(NotImplementedError, match="^Unfinished must define step$"):
        Unfinished(2, 3)(mg.randn(4, 2))
