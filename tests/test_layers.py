"""Layers: Linear, Embedding, Dropout, the activation modules and Sequential (shapes,
initialization, values, gradients, errors, names and outputs as in PyTorch)."""

import math
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from minigrad.nn import Dropout, Embedding, Linear, ReLU, Sequential, Sigmoid, Tanh
from tests.strategies import arrays, leaf

# -- Linear -------------------------------------------------------------------------------------


def test_linear_shapes_and_default_init():
    mg.manual_seed(0)
    layer = Linear(100, 64)
    assert layer.weight.shape == (64, 100) and layer.bias.shape == (64,)
    assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
    bound = 1 / math.sqrt(100)
    for p in (layer.weight, layer.bias):
        assert np.abs(p.data).max() <= bound
        assert np.abs(p.data).max() > 0.9 * bound  # spread over the whole interval
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    assert repr(layer) == "Linear(in_features=100, out_features=64, bias=True)"


def test_linear_without_bias():
    layer = Linear(3, 2, bias=False)
    assert layer.bias is None
    assert [name for name, _ in layer.named_parameters()] == ["weight"]
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(layer(mg.tensor(x)).data, x @ layer.weight.data.T, rtol=1e-6)


@given(st.lists(st.integers(1, 3), max_size=2), st.integers(1, 3), st.integers(1, 3),
       st.booleans(), st.data())
def test_linear_values_and_gradcheck(lead, n_in, n_out, bias, data):
    layer = Linear(n_in, n_out, bias=bias).double()
    x = leaf(data.draw(arrays(tuple(lead) + (n_in,))))
    y = layer(x)
    expected = x.data @ layer.weight.data.T + (layer.bias.data if bias else 0)
    assert y.shape == tuple(lead) + (n_out,)
    np.testing.assert_allclose(y.data, expected, rtol=1e-12, atol=1e-15)
    assert mg.gradcheck(lambda *inputs: layer(inputs[0]), [x, *layer.parameters()])


def test_linear_errors():
    with pytest.raises(ValueError, match=r"input of shape \(2, 4\) does not fit weight of shape "
                                         r"\(3, 5\): expected input \(\.\.\., 5\)"):
        Linear(5, 3)(mg.randn(2, 4))
    with pytest.raises(ValueError, match="Linear: in_features must be a positive integer"):
        Linear(0, 3)
    with pytest.raises(ValueError, match="Linear: out_features must be a positive integer"):
        Linear(2, 2.5)


# -- Embedding ----------------------------------------------------------------------------------


def test_embedding_init_and_lookup():
    mg.manual_seed(0)
    emb = Embedding(500, 40)
    assert emb.weight.shape == (500, 40) and emb.weight.dtype == np.float32
    assert abs(emb.weight.data.mean()) < 0.02 and abs(emb.weight.data.std() - 1) < 0.02
    ids = np.array([[3, 1, 499], [0, 3, 3]])
    out = emb(ids)
    assert out.shape == (2, 3, 40)
    np.testing.assert_array_equal(out.data, emb.weight.data[ids])
    np.testing.assert_array_equal(emb([7, 8]).data, emb.weight.data[[7, 8]])
    np.testing.assert_array_equal(emb(mg.tensor(np.array([5]))).data, emb.weight.data[[5]])
    assert repr(emb) == "Embedding(500, 40)"


def test_embedding_gradient_accumulates_on_repeated_ids():
    emb = Embedding(4, 2)
    emb(np.array([1, 1, 2, 1])).sum().backward()
    np.testing.assert_array_equal(emb.weight.grad.data, [[0, 0], [3, 3], [1, 1], [0, 0]])


@given(st.integers(2, 5), st.integers(1, 3), st.data())
def test_embedding_gradcheck_with_repeated_ids(num, dim, data):
    ids = data.draw(hnp.arrays(np.int64, st.integers(1, 4), elements=st.integers(0, num - 1)))
    ids = np.concatenate([ids, ids[:1]])  # at least one repeat
    emb = Embedding(num, dim).double()
    scale = mg.tensor(data.draw(arrays(ids.shape + (dim,))))
    assert mg.gradcheck(lambda w: emb(ids) * scale, [emb.weight])


def test_embedding_padding_idx_gets_no_gradient():
    emb = Embedding(5, 3, padding_idx=-1)
    assert emb.padding_idx == 4
    np.testing.assert_array_equal(emb.weight.data[4], 0)
    emb.weight.data[4] = 7.0  # the row's value is used as it is; only its gradient is cut
    out = emb(np.array([[4, 2], [2, 4]]))
    np.testing.assert_array_equal(out.data[0, 0], 7.0)
    (out * 2).sum().backward()
    np.testing.assert_array_equal(emb.weight.grad.data[4], 0)
    np.testing.assert_array_equal(emb.weight.grad.data[2], 4)
    assert repr(emb) == "Embedding(5, 3, padding_idx=4)"
    with pytest.raises(ValueError, match="padding_idx 5 is out of range for num_embeddings=5"):
        Embedding(5, 3, padding_idx=5)


def test_embedding_errors():
    emb = Embedding(10, 3)
    with pytest.raises(IndexError, match=r"Embedding: id 10 is out of range for "
                                         r"num_embeddings=10 \(valid ids are 0\.\.9\)"):
        emb(np.array([1, 10, 2]))
    with pytest.raises(IndexError, match="Embedding: id -1 is out of range"):
        emb(np.array([[-1]]))
    with pytest.raises(TypeError, match=r"Embedding: ids must be integers; got dtype float64"):
        emb(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="Embedding: embedding_dim must be a positive integer"):
        Embedding(3, 0)


# -- Dropout ------------------------------------------------------------------------------------


def test_dropout_training_scales_survivors_and_masks_the_gradient():
    mg.manual_seed(0)
    drop = Dropout(0.25)
    x = mg.tensor(np.random.default_rng(0).uniform(1, 2, (200, 50)), requires_grad=True)
    y = drop(x)
    kept = y.data != 0
    assert abs(1 - kept.mean() - 0.25) < 0.02
    np.testing.assert_allclose(y.data[kept], x.data[kept] / 0.75, rtol=1e-12)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.data, kept / 0.75, rtol=1e-12)
    assert y.dtype == x.dtype
    assert mg.randn(4).dtype == Dropout(0.5)(mg.randn(4)).dtype == np.float32


def test_dropout_gradcheck_with_a_fixed_mask():
    def fn(x):
        mg.manual_seed(3)
        return Dropout(0.5)(x)

    assert mg.gradcheck(fn, [leaf(np.random.default_rng(1).standard_normal((3, 4)))])


def test_dropout_eval_is_identity_and_seed_reproduces_the_mask():
    drop = Dropout(0.5)
    x = mg.randn(6, 7)
    assert drop.eval()(x) is x
    drop.train()
    mg.manual_seed(42)
    first = drop(x).data
    mg.manual_seed(42)
    np.testing.assert_array_equal(drop(x).data, first)
    assert not np.array_equal(drop(x).data, first)  # the generator moved on


def test_dropout_errors():
    for p in (-0.5, 1.0, 1.5):
        with pytest.raises(ValueError, match=r"Dropout: p must be in \[0, 1\)"):
            Dropout(p)
    assert repr(Dropout(0.3)) == "Dropout(p=0.3)"


# -- activations --------------------------------------------------------------------------------

ACTIVATIONS = {"Tanh": (Tanh, np.tanh), "ReLU": (ReLU, lambda a: np.maximum(a, 0)),
               "Sigmoid": (Sigmoid, lambda a: 1 / (1 + np.exp(-a)))}


@pytest.mark.parametrize("name", ACTIVATIONS)
@given(st.data())
def test_activation_modules_apply_their_function_and_gradcheck(name, data):
    module, reference = ACTIVATIONS[name]
    x = leaf(data.draw(arrays((2, 3), avoid=(0.0,))))  # relu's kink
    np.testing.assert_allclose(module()(x).data, reference(x.data), rtol=1e-12)
    assert mg.gradcheck(module(), [x])
    assert repr(module()) == f"{name}()"
    assert list(module().parameters()) == []


# -- Sequential ---------------------------------------------------------------------------------


@given(st.lists(st.integers(1, 3), min_size=2, max_size=4), st.data())
def test_sequential_chains_its_modules_and_gradchecks(sizes, data):
    layers = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        layers += [Linear(n_in, n_out), data.draw(st.sampled_from([Tanh, Sigmoid]))()]
    model = Sequential(*layers).double()
    x = leaf(data.draw(arrays((2, sizes[0]))))
    expected = x
    for layer in layers:
        expected = layer(expected)
    np.testing.assert_array_equal(model(x).data, expected.data)
    assert mg.gradcheck(lambda *inputs: model(inputs[0]), [x, *model.parameters()])


def test_sequential_indexing_len_iteration_and_names():
    first, act, last = Linear(2, 3), Tanh(), Linear(3, 1)
    model = Sequential(first, act, last)
    assert len(model) == 3 and list(model) == [first, act, last]
    assert model[0] is first and model[-1] is last and model[np.int64(1)] is act
    assert [name for name, _ in model.named_children()] == ["0", "1", "2"]
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    tail = model[1:]
    assert isinstance(tail, Sequential) and list(tail) == [act, last]
    assert list(tail.state_dict()) == ["2.weight", "2.bias"]  # a slice keeps the names
    assert model.append(Sigmoid()) is model and len(model) == 4
    assert repr(Sequential(Linear(2, 3), ReLU())) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): ReLU()\n"
        ")"
    )


def test_sequential_takes_named_modules_in_an_ordered_dict():
    model = Sequential(OrderedDict([("fc", Linear(2, 3)), ("act", Tanh())]))
    assert list(model.state_dict()) == ["fc.weight", "fc.bias"]
    assert isinstance(model[1], Tanh) and model(mg.randn(4, 2)).shape == (4, 3)


def test_sequential_errors():
    model = Sequential(Linear(2, 3), Tanh())
    with pytest.raises(IndexError, match="Sequential: index 2 is out of range for 2 modules"):
        model[2]
    with pytest.raises(IndexError, match="Sequential: index -3 is out of range"):
        model[-3]
    with pytest.raises(TypeError, match="Sequential: indices must be integers or slices; got '0'"):
        model["0"]
    with pytest.raises(TypeError, match="Sequential: module 1 must be a Module; got a function"):
        Sequential(Linear(2, 3), mg.tanh)
    with pytest.raises(TypeError, match="Sequential: module act must be a Module; got a int"):
        Sequential(OrderedDict(act=3))


def test_sequential_matches_pytorch_after_loading_its_state_dict():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 4),
                                 torch.nn.ReLU(), torch.nn.Linear(4, 2), torch.nn.Sigmoid())
    ours = Sequential(Linear(3, 4), Tanh(), Linear(4, 4), ReLU(), Linear(4, 2), Sigmoid())
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    assert repr(ours) == repr(theirs)
    a = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    x, tx = leaf(a, dtype=np.float32), torch.tensor(a, requires_grad=True)
    y, ty = ours(x), theirs(tx)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-5, atol=1e-6)
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-4, atol=1e-6)
    for (name, p), tp in zip(ours.named_parameters(), theirs.parameters()):
        np.testing.assert_allclose(p.grad.data, tp.grad.numpy(), rtol=1e-4, atol=1e-6,
                                   err_msg=name)
