"""Layers: Linear, Embedding, Dropout, LayerNorm, the activation and loss modules and Sequential
(shapes, initialization, values, gradients, errors, names and outputs as in PyTorch)."""

import math
import re
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from minigrad.nn import (
    CrossEntropyLoss,
    Dropout,
    Embedding,
    LayerNorm,
    Linear,
    MSELoss,
    NLLLoss,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
)
from minigrad.nn import functional as F
from tests.strategies import arrays, leaf, shapes

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
    np.testing.assert_allclose(layer(mg.tensor(x, dtype=mg.float32)).data, x @ layer.weight.data.T,
                               rtol=1e-6)


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
    for p in (-0.5, 1.5):
        with pytest.raises(ValueError, match="Dropout: dropout probability p has to be between 0 "
                                             f"and 1; got {p}"):
            Dropout(p)
    with pytest.raises(NotImplementedError, match="Dropout: inplace=True is not supported"):
        Dropout(0.5, inplace=True)
    assert repr(Dropout(0.3)) == "Dropout(p=0.3, inplace=False)"


# -- LayerNorm ----------------------------------------------------------------------------------


@st.composite
def layer_norm_cases(draw):
    """(x, normalized_shape as given, as a tuple): the last 1..ndim axes of a random shape."""
    shape = draw(shapes(min_dims=1))
    k = draw(st.integers(1, len(shape)))
    normalized = shape[len(shape) - k:]
    given_shape = normalized[0] if k == 1 and draw(st.booleans()) else list(normalized)
    return draw(arrays(shape)), given_shape, normalized


def reference_layer_norm(x, k, weight, bias, eps):
    """(x - mean) / sqrt(var + eps) * weight + bias over the last k axes, in float64."""
    axes = tuple(range(x.ndim - k, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps)
    return y * (1 if weight is None else weight) + (0 if bias is None else bias)


@given(layer_norm_cases(), st.booleans(), st.booleans(), st.sampled_from([1e-5, 0.5]),
       st.data())
def test_layer_norm_values_and_gradcheck(case, affine, bias, eps, data):
    a, given_shape, normalized = case
    layer = LayerNorm(given_shape, eps, elementwise_affine=affine, bias=bias).double()
    for p in layer.parameters():  # away from the initial ones and zeros
        p.data[...] = data.draw(arrays(p.shape))
    x = leaf(a)
    y = layer(x)
    weight = None if layer.weight is None else layer.weight.data
    bias_ = None if layer.bias is None else layer.bias.data
    expected = reference_layer_norm(a, len(normalized), weight, bias_, eps)
    assert y.shape == a.shape and y.dtype == np.float64
    np.testing.assert_allclose(y.data, expected, rtol=1e-10, atol=1e-10)
    assert mg.gradcheck(lambda *inputs: layer(inputs[0]), [x, *layer.parameters()])


def test_layer_norm_init_names_and_repr():
    layer = LayerNorm(4)
    assert layer.normalized_shape == (4,) and layer.eps == 1e-5 and layer.elementwise_affine
    assert [name for name, _ in layer.named_parameters()] == ["weight", "bias"]
    np.testing.assert_array_equal(layer.weight.data, np.ones(4, np.float32))
    np.testing.assert_array_equal(layer.bias.data, np.zeros(4, np.float32))
    assert layer.weight.dtype == layer.bias.dtype == np.float32
    assert repr(layer) == "LayerNorm((4,), eps=1e-05, elementwise_affine=True, bias=True)"
    no_bias = LayerNorm([2, 3], bias=False)
    assert no_bias.weight.shape == (2, 3) and no_bias.bias is None
    assert list(no_bias.state_dict()) == ["weight"]
    plain = LayerNorm((2, 3), elementwise_affine=False)
    assert plain.weight is None and plain.bias is None and list(plain.parameters()) == []
    assert repr(plain) == "LayerNorm((2, 3), eps=1e-05, elementwise_affine=False, bias=False)"
    y = plain(mg.tensor(np.arange(12.0).reshape(2, 2, 3)))  # float64 input, no parameters
    np.testing.assert_allclose(y.data.mean(axis=(1, 2)), 0, atol=1e-12)


def test_layer_norm_errors():
    with pytest.raises(ValueError, match=re.escape(
            "LayerNorm: given normalized_shape=(2, 3), expected input with shape (*, 2, 3); "
            "got input of shape (3, 2)")):
        LayerNorm((2, 3))(mg.randn(3, 2))
    with pytest.raises(ValueError, match=r"LayerNorm: given normalized_shape=\(4,\).*got "
                                         r"input of shape \(\)"):
        LayerNorm(4)(mg.tensor(1.0))
    with pytest.raises(TypeError, match=re.escape(
            "LayerNorm: input dtype float64 does not match weight dtype float32; all inputs must "
            "share one dtype")):
        LayerNorm(3)(mg.tensor(np.zeros((2, 3))))
    for bad in (0, -1, [], (2, 0), 2.5):
        with pytest.raises(ValueError, match="LayerNorm: normalized_shape must be a positive int"):
            LayerNorm(bad)
    with pytest.raises(ValueError, match=r"layer_norm: expected bias of shape normalized_shape "
                                         r"= \(3,\); got \(1, 3\)"):
        F.layer_norm(mg.randn(2, 3), 3, None, mg.zeros(1, 3))
    with pytest.raises(TypeError, match="layer_norm: input must be floating point"):
        F.layer_norm(mg.tensor(np.zeros((2, 3), np.int64)), 3)


# -- loss modules -------------------------------------------------------------------------------


def test_loss_modules_call_their_functions_with_their_settings():
    rng = np.random.default_rng(0)
    x, target = mg.tensor(rng.standard_normal((4, 3))), np.array([0, 2, -100, 1])
    weight = mg.tensor(rng.uniform(0.5, 2, 3))
    ce = CrossEntropyLoss(weight, ignore_index=-100, reduction="sum", label_smoothing=0.1)
    np.testing.assert_array_equal(
        ce(x, target).data,
        F.cross_entropy(x, target, weight, reduction="sum", label_smoothing=0.1).data)
    nll = NLLLoss(reduction="none", ignore_index=2)
    np.testing.assert_array_equal(nll(x, [0, 2, 1, 1]).data,
                                  F.nll_loss(x, [0, 2, 1, 1], ignore_index=2,
                                             reduction="none").data)
    last = CrossEntropyLoss(axis=-1)  # minigrad's keyword for classes on the last axis
    logits = mg.tensor(rng.standard_normal((2, 5, 3)))
    ids = rng.integers(0, 3, (2, 5))
    np.testing.assert_array_equal(last(logits, ids).data,
                                  F.cross_entropy(logits, ids, axis=-1).data)
    mse = MSELoss()
    assert mse.reduction == "mean" and mse(x, x * 2).shape == ()
    assert [m.reduction for m in (CrossEntropyLoss(), NLLLoss(), MSELoss())] == ["mean"] * 3
    assert list(ce.parameters()) == [] and repr(ce) == "CrossEntropyLoss()"


def test_loss_module_errors():
    with pytest.raises(ValueError, match="MSELoss: reduction must be one of"):
        MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="CrossEntropyLoss: label_smoothing must be between"):
        CrossEntropyLoss(label_smoothing=2.0)
    with pytest.raises(TypeError, match="NLLLoss: ignore_index must be an int; got 1.5"):
        NLLLoss(ignore_index=1.5)
    with pytest.raises(TypeError, match="CrossEntropyLoss: weight must be a Tensor of shape"):
        CrossEntropyLoss([1.0, 2.0])
    with pytest.warns(UserWarning, match="please use reduction='none' instead") as caught:
        assert NLLLoss(reduce=False).reduction == "none"
    assert caught[0].filename == __file__


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


def test_sequential_item_assignment_deletion_insert_extend_and_pop():
    a, b, c, d = Linear(1, 2), Tanh(), Linear(2, 3), ReLU()
    model = Sequential(a, b, c)
    model[1] = d
    assert list(model) == [a, d, c] and model[1] is d
    model[-1] = b
    assert list(model) == [a, d, b]
    del model[0]
    assert list(model) == [d, b] and [n for n, _ in model.named_children()] == ["0", "1"]
    assert model.insert(0, a) is model and list(model) == [a, d, b]
    model.insert(-1, c)  # before the last one, as list.insert
    assert list(model) == [a, d, c, b]
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert model.pop(2) is c and list(model) == [a, d, b]
    assert model.extend(Sequential(c)) is model and list(model) == [a, d, b, c]
    del model[1:3]
    assert list(model) == [a, c] and list(model.state_dict())[-1] == "1.bias"
    assert not hasattr(model, "2") and not hasattr(model, "3")  # the old names are gone
    assert model(mg.randn(4, 1)).shape == (4, 3)
    popped = model.pop(slice(0, 1))
    assert isinstance(popped, Sequential) and list(popped) == [a] and list(model) == [c]
    assert list(Sequential(a) + Sequential(b, c)) == [a, b, c]
    assert list(Sequential(a, b) * 2) == [a, b, a, b]


def test_sequential_edit_errors():
    model = Sequential(Linear(2, 3), Tanh())
    with pytest.raises(IndexError, match="Sequential: index 2 is out of range for 2 modules"):
        model[2] = ReLU()
    with pytest.raises(IndexError, match="Sequential: index -3 is out of range for 2 modules"):
        del model[-3]
    with pytest.raises(TypeError, match="Sequential: module 1 must be a Module; got a function"):
        model[1] = mg.tanh
    with pytest.raises(IndexError, match=re.escape(
            "Sequential.insert: index 3 is out of range for 2 modules (expected -2..2)")):
        model.insert(3, ReLU())
    with pytest.raises(TypeError, match="Sequential: module 3 must be a Module; got a int"):
        model.extend([ReLU(), 3])  # as in PyTorch, the modules before it are appended
    with pytest.raises(TypeError, match="Sequential.extend: expected an iterable of modules; "
                                        "got a ReLU"):
        model.extend(ReLU())
    with pytest.raises(ValueError, match="Sequential \\+: supports only Sequential operands"):
        model + [ReLU()]


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
