"""minigrad.nn, minigrad.optim and the recurrent layers against PyTorch (issue 17): the same
call gives the same values, shapes, dtypes, gradients and warnings, and fails where PyTorch
fails (the exception types are compared too)."""

import re
import warnings
from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from minigrad import nn
from minigrad.models import GRU, LSTM, RNN
from minigrad.nn import functional as F
from tests.strategies import arrays

torch = pytest.importorskip("torch")
TF = torch.nn.functional

REDUCTIONS = ("mean", "sum", "none")


def t(a, requires_grad=False):
    """A torch tensor of the array (same dtype)."""
    return torch.tensor(np.asarray(a), requires_grad=requires_grad)


def m(a, requires_grad=False):
    """A minigrad tensor of the array (same dtype, float64 kept)."""
    a = np.asarray(a)
    return mg.tensor(a, dtype=a.dtype, requires_grad=requires_grad)


def close(ours, theirs, rtol=1e-10, atol=1e-12):
    """Same shape, dtype and values (nan where torch has nan)."""
    theirs = theirs.detach().numpy()
    assert ours.shape == theirs.shape
    assert ours.dtype == theirs.dtype
    if theirs.dtype == np.float32:
        rtol, atol = max(rtol, 1e-6), max(atol, 1e-7)
    np.testing.assert_allclose(ours.data, theirs, rtol=rtol, atol=atol)


def both_raise(ours, theirs, error):
    """Both calls raise ``error`` (a type, or a pair: ours, torch's)."""
    mine, torchs = error if isinstance(error, tuple) else (error, error)
    with pytest.raises(mine):
        ours()
    with pytest.raises(torchs):
        theirs()


def same_grads(loss_m, loss_t, pairs, rtol=1e-9, atol=1e-12):
    """Backward through both losses (weighted sums for 'none') and compare the gradients of the
    (ours, theirs) leaf pairs."""
    weights = np.random.default_rng(0).standard_normal(loss_m.shape)
    (loss_m * m(weights)).sum().backward()
    (loss_t * t(weights)).sum().backward()
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=rtol, atol=atol)


# -- activations and softmax --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["relu", "tanh", "sigmoid"])
@given(data=st.data())
def test_activations_match(name, data):
    a = data.draw(arrays(data.draw(hnp.array_shapes(min_dims=0, max_dims=3)), avoid=(0.0,)))
    x_m, x_t = m(a, True), t(a, True)
    y_m, y_t = getattr(F, name)(x_m), getattr(TF, name)(x_t)
    close(y_m, y_t)
    same_grads(y_m, y_t, [(x_m, x_t)])
    ints = np.array([3, -2, 0])
    close(getattr(F, name)(m(ints)), getattr(TF, name)(t(ints)), rtol=1e-6)  # dtype too


def test_relu_and_dropout_inplace_are_refused_loudly():
    with pytest.raises(NotImplementedError, match="relu: inplace=True is not supported"):
        F.relu(mg.randn(3), inplace=True)
    with pytest.raises(NotImplementedError, match="ReLU: inplace=True"):
        nn.ReLU(inplace=True)
    assert repr(nn.ReLU()) == repr(torch.nn.ReLU()) == "ReLU()"


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@given(data=st.data())
def test_softmax_with_dim_matches(name, data):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3))
    a = data.draw(arrays(shape, -5.0, 5.0))
    dim = data.draw(st.integers(-max(len(shape), 1), max(len(shape), 1) - 1))
    x_m, x_t = m(a, True), t(a, True)
    y_m, y_t = getattr(F, name)(x_m, dim), getattr(TF, name)(x_t, dim)
    close(y_m, y_t)
    same_grads(y_m, y_t, [(x_m, x_t)])
    close(getattr(F, name)(x_m, dim=dim), y_t)
    close(getattr(F, name)(x_m, axis=dim), y_t)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("shape", [(), (4,), (2, 3), (2, 3, 4), (2, 2, 3, 2)])
def test_softmax_without_dim_warns_and_picks_pytorchs_dim(name, shape):
    a = np.random.default_rng(1).standard_normal(shape)
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        y_m = getattr(F, name)(m(a))
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        y_t = getattr(TF, name)(t(a))
    close(y_m, y_t)
    assert [str(w.message) for w in ours] == [str(w.message) for w in theirs]
    assert ours[0].category is theirs[0].category is UserWarning
    assert ours[0].filename == __file__  # points at the caller, as PyTorch's does


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_dtype_and_errors_match(name):
    a = np.random.default_rng(2).standard_normal((2, 3)).astype(np.float32)
    close(getattr(F, name)(m(a), 1, dtype=np.float64),
          getattr(TF, name)(t(a), 1, dtype=torch.float64))
    both_raise(lambda: getattr(F, name)(m(a), 2), lambda: getattr(TF, name)(t(a), 2), IndexError)
    both_raise(lambda: getattr(F, name)(m(a), -3), lambda: getattr(TF, name)(t(a), -3),
               IndexError)
    ints = np.array([1, 2])
    both_raise(lambda: getattr(F, name)(m(ints), 0), lambda: getattr(TF, name)(t(ints), 0),
               (TypeError, NotImplementedError))
    close(getattr(F, name)(m(ints), 0, dtype=np.float32),
          getattr(TF, name)(t(ints), 0, dtype=torch.float32))


# -- classification losses ----------------------------------------------------------------------


@st.composite
def class_cases(draw, probabilities=False):
    """(input, target, weight, ignore_index, reduction) in PyTorch's layout: (C,) with a 0-d
    target or (N, C, d...) with (N, d...); some targets ignored; weights sometimes."""
    c = draw(st.integers(1, 4))
    batch = draw(st.sampled_from([(), (2,), (3, 2), (2, 2, 1)]))
    shape = (c,) if not batch else batch[:1] + (c,) + batch[1:]
    x = draw(arrays(shape, -3.0, 3.0))
    if probabilities:
        target = draw(arrays(shape, 0.0, 1.0))
    else:
        target = draw(hnp.arrays(np.int64, batch, elements=st.integers(0, c - 1)))
    ignore_index = draw(st.sampled_from([-100, 0, 2]))
    if not probabilities and draw(st.booleans()):
        dropped = draw(hnp.arrays(bool, batch))
        target = np.where(dropped, ignore_index, target)
    weight = draw(st.none() | arrays((c,), 0.1, 2.0))
    return x, target, weight, ignore_index, draw(st.sampled_from(REDUCTIONS))


def _weight_pair(weight):
    return (None, None) if weight is None else (m(weight), t(weight))


@given(class_cases())
def test_nll_loss_matches(case):
    x, target, weight, ignore_index, reduction = case
    w_m, w_t = _weight_pair(weight)
    x_m, x_t = m(x, True), t(x, True)
    with np.errstate(invalid="ignore"):
        loss_m = F.nll_loss(x_m, target, w_m, ignore_index=ignore_index, reduction=reduction)
    loss_t = TF.nll_loss(x_t, t(target), w_t, ignore_index=ignore_index, reduction=reduction)
    close(loss_m, loss_t)
    if np.isfinite(loss_t.detach().numpy()).all():
        same_grads(loss_m, loss_t, [(x_m, x_t)])


@given(class_cases(), st.sampled_from([0.0, 0.0, 0.1, 0.5, 1.0]))
def test_cross_entropy_with_class_ids_matches(case, label_smoothing):
    x, target, weight, ignore_index, reduction = case
    w_m, w_t = _weight_pair(weight)
    x_m, x_t = m(x, True), t(x, True)
    options = dict(ignore_index=ignore_index, reduction=reduction,
                   label_smoothing=label_smoothing)
    with np.errstate(invalid="ignore"):
        loss_m = F.cross_entropy(x_m, target, w_m, **options)
    loss_t = TF.cross_entropy(x_t, t(target), w_t, **options)
    close(loss_m, loss_t)
    if np.isfinite(loss_t.detach().numpy()).all():
        same_grads(loss_m, loss_t, [(x_m, x_t)])


@given(class_cases(probabilities=True), st.sampled_from([0.0, 0.2]))
def test_cross_entropy_with_class_probabilities_matches(case, label_smoothing):
    x, target, weight, _, reduction = case
    w_m, w_t = _weight_pair(weight)
    x_m, x_t, p_m, p_t = m(x, True), t(x, True), m(target, True), t(target, True)
    loss_m = F.cross_entropy(x_m, p_m, w_m, reduction=reduction, label_smoothing=label_smoothing)
    loss_t = TF.cross_entropy(x_t, p_t, w_t, reduction=reduction,
                              label_smoothing=label_smoothing)
    close(loss_m, loss_t)
    same_grads(loss_m, loss_t, [(x_m, x_t), (p_m, p_t)])


@pytest.mark.parametrize("loss", ["nll_loss", "cross_entropy"])
def test_default_ignore_index_is_minus_100_and_everything_ignored_is_nan(loss):
    x = np.random.default_rng(3).standard_normal((3, 4))
    target = np.array([1, -100, 3])
    close(getattr(F, loss)(m(x), target), getattr(TF, loss)(t(x), t(target)))
    for reduction in REDUCTIONS:
        with np.errstate(invalid="ignore"):
            ours = getattr(F, loss)(m(x), np.full(3, -100), reduction=reduction)
        close(ours, getattr(TF, loss)(t(x), t(np.full(3, -100)), reduction=reduction))
    both_raise(lambda: getattr(F, loss)(m(x), np.array([1, -1, 3])),
               lambda: getattr(TF, loss)(t(x), t([1, -1, 3])), IndexError)
    both_raise(lambda: getattr(F, loss)(m(x), np.array([1, 4, 3])),
               lambda: getattr(TF, loss)(t(x), t([1, 4, 3])), IndexError)


@pytest.mark.parametrize("loss", ["nll_loss", "cross_entropy"])
def test_class_loss_errors_match(loss):
    ours, theirs = getattr(F, loss), getattr(TF, loss)
    x = np.random.default_rng(4).standard_normal((3, 4))
    target = np.array([0, 1, 2])
    cases = [
        # a weight of the wrong size
        (lambda: ours(m(x), target, m(np.ones(3))), lambda: theirs(t(x), t(target), t(np.ones(3))),
         (ValueError, RuntimeError)),
        # of the wrong dtype
        (lambda: ours(m(x), target, m(np.ones(4, np.float32))),
         lambda: theirs(t(x), t(target), t(np.ones(4, np.float32))), (TypeError, RuntimeError)),
        # ignore_index passed where the weight goes
        (lambda: ours(m(x), target, -100), lambda: theirs(t(x), t(target), -100), TypeError),
        (lambda: ours(m(x), target, reduction="avg"),
         lambda: theirs(t(x), t(target), reduction="avg"), ValueError),
        (lambda: ours(m(x), target[:2]), lambda: theirs(t(x), t(target[:2])), ValueError),
        (lambda: ours(m(x), target.astype(np.float64)[:, None]),
         lambda: theirs(t(x), t(target.astype(np.float64)[:, None])), (TypeError, RuntimeError)),
        (lambda: ours(m(x), target[:, None]), lambda: theirs(t(x), t(target[:, None])),
         (ValueError, RuntimeError)),
        (lambda: ours(m(x), target, ignore_index=1.5),
         lambda: theirs(t(x), t(target), ignore_index=1.5), TypeError),
    ]
    for mine, torchs, error in cases:
        both_raise(mine, torchs, error)
    w_m, w_t = m(np.ones(4), True), t(np.ones(4), True)
    both_raise(lambda: ours(m(x), target, w_m), lambda: theirs(t(x), t(target), w_t),
               (ValueError, RuntimeError))  # no gradient for the class weights
    with mg.no_grad(), torch.no_grad():
        close(ours(m(x), target, w_m), theirs(t(x), t(target), w_t))


def test_cross_entropy_specific_errors_match():
    x = np.random.default_rng(5).standard_normal((3, 4))
    target = np.array([0, 1, 2])
    probs = np.full((3, 4), 0.25)
    both_raise(lambda: F.cross_entropy(m(x), target, label_smoothing=1.5),
               lambda: TF.cross_entropy(t(x), t(target), label_smoothing=1.5),
               (ValueError, RuntimeError))
    both_raise(lambda: F.cross_entropy(m(x), probs, ignore_index=1),
               lambda: TF.cross_entropy(t(x), t(probs), ignore_index=1),
               (ValueError, RuntimeError))
    both_raise(lambda: F.cross_entropy(m(x), np.zeros((3, 4), np.int64)),
               lambda: TF.cross_entropy(t(x), t(np.zeros((3, 4), np.int64))),
               (TypeError, RuntimeError))
    both_raise(lambda: F.cross_entropy(m(x), target.astype(np.float64)),
               lambda: TF.cross_entropy(t(x), t(target.astype(np.float64))),
               (TypeError, RuntimeError))


@pytest.mark.parametrize(("size_average", "reduce"),
                         [(False, None), (None, False), (True, True), (False, True), (True, None)])
@pytest.mark.parametrize("loss", ["nll_loss", "cross_entropy", "mse_loss"])
def test_deprecated_size_average_and_reduce_match(loss, size_average, reduce):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 4))
    target = rng.standard_normal((3, 4)) if loss == "mse_loss" else np.array([0, -100, 2])
    with warnings.catch_warnings(record=True) as ours:
        warnings.simplefilter("always")
        y_m = getattr(F, loss)(m(x), target, size_average=size_average, reduce=reduce)
    with warnings.catch_warnings(record=True) as theirs:
        warnings.simplefilter("always")
        y_t = getattr(TF, loss)(t(x), t(target), size_average=size_average, reduce=reduce)
    close(y_m, y_t)
    assert [str(w.message) for w in ours] == [str(w.message) for w in theirs]
    assert ours[0].filename == __file__


@given(data=st.data())
def test_mse_loss_matches(data):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3))
    a, b = data.draw(arrays(shape)), data.draw(arrays(shape))
    weight = data.draw(st.none() | arrays(shape, 0.1, 2.0))
    for reduction in REDUCTIONS:
        x_m, x_t = m(a, True), t(a, True)
        w_m, w_t = _weight_pair(weight)
        y_m = F.mse_loss(x_m, m(b), reduction=reduction, weight=w_m)
        y_t = TF.mse_loss(x_t, t(b), reduction=reduction, weight=w_t)
        close(y_m, y_t)
        same_grads(y_m, y_t, [(x_m, x_t)])
    # float32 input with a float64 target: PyTorch's promotion
    close(F.mse_loss(m(a.astype(np.float32)), m(b)), TF.mse_loss(t(a.astype(np.float32)), t(b)))


def test_mse_loss_weight_of_another_shape_fails_in_both():
    both_raise(lambda: F.mse_loss(mg.randn(2, 3), mg.randn(2, 3), weight=mg.ones(3)),
               lambda: TF.mse_loss(torch.randn(2, 3), torch.randn(2, 3), weight=torch.ones(3)),
               ValueError)


# -- loss modules -------------------------------------------------------------------------------


@given(class_cases(), st.sampled_from([0.0, 0.3]))
def test_loss_modules_match(case, label_smoothing):
    x, target, weight, ignore_index, reduction = case
    w_m, w_t = _weight_pair(weight)
    pairs = [
        (nn.CrossEntropyLoss(w_m, ignore_index=ignore_index, reduction=reduction,
                             label_smoothing=label_smoothing),
         torch.nn.CrossEntropyLoss(w_t, ignore_index=ignore_index, reduction=reduction,
                                   label_smoothing=label_smoothing)),
        (nn.NLLLoss(w_m, ignore_index=ignore_index, reduction=reduction),
         torch.nn.NLLLoss(w_t, ignore_index=ignore_index, reduction=reduction)),
    ]
    for ours, theirs in pairs:
        with np.errstate(invalid="ignore"):
            close(ours(m(x), target), theirs(t(x), t(target)))
        assert repr(ours) == repr(theirs)
        assert (ours.reduction, ours.ignore_index) == (theirs.reduction, theirs.ignore_index)
    ours, theirs = nn.MSELoss(reduction=reduction), torch.nn.MSELoss(reduction=reduction)
    close(ours(m(x), m(x * 0.5)), theirs(t(x), t(x * 0.5)))
    assert repr(ours) == repr(theirs) == "MSELoss()"


def test_loss_module_defaults_and_legacy_arguments_match():
    for ours, theirs in [(nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()),
                         (nn.NLLLoss(), torch.nn.NLLLoss())]:
        assert (ours.weight, ours.ignore_index, ours.reduction) == (None, -100, "mean")
        assert (theirs.weight, theirs.ignore_index, theirs.reduction) == (None, -100, "mean")
    assert nn.CrossEntropyLoss().label_smoothing == torch.nn.CrossEntropyLoss().label_smoothing
    for cls, torch_cls in [(nn.MSELoss, torch.nn.MSELoss), (nn.NLLLoss, torch.nn.NLLLoss),
                           (nn.CrossEntropyLoss, torch.nn.CrossEntropyLoss)]:
        with warnings.catch_warnings(record=True) as ours:
            warnings.simplefilter("always")
            mine = cls(size_average=False)
        with warnings.catch_warnings(record=True) as theirs:
            warnings.simplefilter("always")
            torchs = torch_cls(size_average=False)
        assert mine.reduction == torchs.reduction == "sum"
        assert [str(w.message) for w in ours] == [str(w.message) for w in theirs]
        assert ours[0].filename == __file__


# -- layer norm ---------------------------------------------------------------------------------


@st.composite
def layer_norm_cases(draw):
    """(x, normalized_shape): the last 1 or 2 axes of a random shape, as int or tuple."""
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=4, max_side=4))
    k = draw(st.integers(1, min(2, len(shape))))
    normalized = shape[len(shape) - k:]
    if k == 1 and draw(st.booleans()):
        normalized = normalized[0]
    return draw(arrays(shape, -3.0, 3.0)), normalized


@given(layer_norm_cases(), st.booleans(), st.booleans(), st.sampled_from([1e-5, 0.1]))
def test_layer_norm_module_matches(case, elementwise_affine, bias, eps):
    a, normalized = case
    ours = nn.LayerNorm(normalized, eps, elementwise_affine, bias)
    theirs = torch.nn.LayerNorm(normalized, eps, elementwise_affine, bias)
    assert repr(ours) == repr(theirs)
    assert ours.normalized_shape == theirs.normalized_shape
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for name, value in theirs.state_dict().items():
        assert ours.state_dict()[name].dtype == np.float32
        np.testing.assert_array_equal(ours.state_dict()[name], value.numpy())
    ours.double()
    theirs.double()
    rng = np.random.default_rng(0)  # move the parameters away from 1 and 0
    sd = {name: rng.standard_normal(v.shape) for name, v in theirs.state_dict().items()}
    ours.load_state_dict(sd)
    theirs.load_state_dict({k: t(v) for k, v in sd.items()})
    x_m, x_t = m(a, True), t(a, True)
    y_m, y_t = ours(x_m), theirs(x_t)
    close(y_m, y_t, rtol=1e-9, atol=1e-10)
    params = dict(theirs.named_parameters())
    same_grads(y_m, y_t, [(x_m, x_t)] + [(p, params[n]) for n, p in ours.named_parameters()],
               rtol=1e-7, atol=1e-9)


def test_layer_norm_function_and_errors_match():
    rng = np.random.default_rng(7)
    a, w, b = rng.standard_normal((2, 3, 4)), rng.standard_normal(4), rng.standard_normal(4)
    close(F.layer_norm(m(a), (4,), m(w), m(b), 1e-3), TF.layer_norm(t(a), (4,), t(w), t(b), 1e-3))
    close(F.layer_norm(m(a), [3, 4]), TF.layer_norm(t(a), [3, 4]))
    layer, torch_layer = nn.LayerNorm(4), torch.nn.LayerNorm(4)
    both_raise(lambda: layer(mg.randn(2, 3)), lambda: torch_layer(torch.randn(2, 3)),
               (ValueError, RuntimeError))
    both_raise(lambda: layer(m(a)), lambda: torch_layer(t(a)), (TypeError, RuntimeError))
    both_raise(lambda: F.layer_norm(m(a), [4], m(np.ones(3))),
               lambda: TF.layer_norm(t(a), [4], t(np.ones(3))), (ValueError, RuntimeError))
    both_raise(lambda: F.layer_norm(m(a), []), lambda: TF.layer_norm(t(a), []),
               (ValueError, RuntimeError))
    with pytest.raises(ValueError, match=r"LayerNorm: given normalized_shape=\(4,\), expected "
                                         r"input with shape \(\*, 4\); got input of shape"):
        layer(mg.randn(2, 3))


# -- dropout ------------------------------------------------------------------------------------


def test_dropout_edges_match():
    x = np.array([np.inf, 1.0, -2.0])
    close(F.dropout(m(x), 1.0), TF.dropout(t(x), 1.0))  # zeros, and nan for inf
    close(nn.Dropout(1.0)(m(x)), torch.nn.Dropout(1.0)(t(x)))
    x_m, x_t = m(x), t(x)
    assert F.dropout(x_m, 0.3, training=False) is x_m and TF.dropout(x_t, 0.3, False) is x_t
    assert F.dropout(x_m, 0.0) is x_m and TF.dropout(x_t, 0.0) is x_t
    for p in (-0.1, 1.5):
        both_raise(lambda p=p: F.dropout(x_m, p), lambda p=p: TF.dropout(x_t, p), ValueError)
        both_raise(lambda p=p: nn.Dropout(p), lambda p=p: torch.nn.Dropout(p), ValueError)
    assert repr(nn.Dropout(0.2)) == repr(torch.nn.Dropout(0.2))


def test_dropout_keeps_the_expected_value():
    mg.manual_seed(0)
    y = F.dropout(mg.ones(200_000), 0.3)
    kept = y.data[y.data != 0]
    np.testing.assert_allclose(kept, 1 / 0.7, rtol=1e-6)
    assert abs(kept.size / y.data.size - 0.7) < 0.01  # the share torch keeps too


# -- containers ---------------------------------------------------------------------------------


def layout(container):
    """(name, out_features) of each child: enough to tell Linear layers apart."""
    return [(name, child.out_features) for name, child in container.named_children()]


def linears(lib, sizes):
    return [lib.Linear(1, n) for n in sizes]


EDITS = [
    ("setitem", lambda c, lib: c.__setitem__(1, lib.Linear(1, 9))),
    ("setitem_negative", lambda c, lib: c.__setitem__(-1, lib.Linear(1, 9))),
    ("delitem", lambda c, lib: c.__delitem__(0)),
    ("delitem_negative", lambda c, lib: c.__delitem__(-2)),
    ("delitem_slice", lambda c, lib: c.__delitem__(slice(0, 2))),
    ("delitem_step", lambda c, lib: c.__delitem__(slice(None, None, 2))),
    ("insert", lambda c, lib: c.insert(1, lib.Linear(1, 9))),
    ("insert_end", lambda c, lib: c.insert(3, lib.Linear(1, 9))),
    ("append", lambda c, lib: c.append(lib.Linear(1, 9))),
    ("extend", lambda c, lib: c.extend(linears(lib, [7, 8]))),
    ("pop", lambda c, lib: c.pop(1)),
]


@pytest.mark.parametrize("kind", ["Sequential", "ModuleList"])
@pytest.mark.parametrize(("edit", "apply"), EDITS, ids=[e for e, _ in EDITS])
def test_container_edits_match(kind, edit, apply):
    ours = getattr(nn, kind)(*[linears(nn, [2, 3, 4])] if kind == "ModuleList"
                             else linears(nn, [2, 3, 4]))
    theirs = getattr(torch.nn, kind)(*[linears(torch.nn, [2, 3, 4])] if kind == "ModuleList"
                                     else linears(torch.nn, [2, 3, 4]))
    result_m, result_t = apply(ours, nn), apply(theirs, torch.nn)
    assert layout(ours) == layout(theirs)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    if edit == "pop":
        assert result_m.out_features == result_t.out_features == 3
    elif edit in ("append", "extend", "insert") and kind == "Sequential":
        assert result_m is ours and result_t is theirs


def test_sequential_with_names_setitem_keeps_the_name_and_del_renumbers():
    ours = nn.Sequential(OrderedDict([("fc", nn.Linear(1, 2)), ("act", nn.Tanh()),
                                      ("out", nn.Linear(2, 3))]))
    theirs = torch.nn.Sequential(OrderedDict([("fc", torch.nn.Linear(1, 2)),
                                              ("act", torch.nn.Tanh()),
                                              ("out", torch.nn.Linear(2, 3))]))
    ours[1], theirs[1] = nn.ReLU(), torch.nn.ReLU()
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()] \
        == ["fc", "act", "out"]
    assert type(ours.act).__name__ == type(theirs.act).__name__ == "ReLU"
    del ours[0]
    del theirs[0]
    assert [n for n, _ in ours.named_children()] == [n for n, _ in theirs.named_children()] \
        == ["0", "1"]
    assert repr(ours) == repr(theirs)


def test_sequential_arithmetic_matches():
    a, b = nn.Sequential(*linears(nn, [2, 3])), nn.Sequential(*linears(nn, [4]))
    ta, tb = torch.nn.Sequential(*linears(torch.nn, [2, 3])), torch.nn.Sequential(
        *linears(torch.nn, [4]))
    assert layout(a + b) == layout(ta + tb)
    assert layout(a * 2) == layout(ta * 2) and layout(2 * a) == layout(2 * ta)
    assert (a * 2)[2] is a[0]  # the same modules, repeated
    a += b
    ta += tb
    assert layout(a) == layout(ta)
    a *= 2
    ta *= 2
    assert layout(a) == layout(ta)
    both_raise(lambda: a + [nn.Linear(1, 1)], lambda: ta + [torch.nn.Linear(1, 1)], ValueError)
    both_raise(lambda: a * 0, lambda: ta * 0, ValueError)
    both_raise(lambda: a * 1.5, lambda: ta * 1.5, TypeError)
    la, lb = nn.ModuleList(linears(nn, [2])), nn.ModuleList(linears(nn, [3]))
    tla, tlb = torch.nn.ModuleList(linears(torch.nn, [2])), torch.nn.ModuleList(
        linears(torch.nn, [3]))
    assert layout(la + lb) == layout(tla + tlb)
    la += lb
    tla += tlb
    assert layout(la) == layout(tla)


def _index_errors_match(ours, theirs):
    for index in (2, -3):
        both_raise(lambda i=index: ours.__setitem__(i, nn.Tanh()),
                   lambda i=index: theirs.__setitem__(i, torch.nn.Tanh()), IndexError)
        both_raise(lambda i=index: ours.__delitem__(i),
                   lambda i=index: theirs.__delitem__(i), IndexError)
    both_raise(lambda: ours.__setitem__(0, 3), lambda: theirs.__setitem__(0, 3), TypeError)


def test_container_index_errors_match():
    _index_errors_match(nn.Sequential(*linears(nn, [2, 3])),
                        torch.nn.Sequential(*linears(torch.nn, [2, 3])))
    _index_errors_match(nn.ModuleList(linears(nn, [2, 3])),
                        torch.nn.ModuleList(linears(torch.nn, [2, 3])))
    both_raise(lambda: nn.Sequential(nn.Tanh()).insert(3, nn.Tanh()),
               lambda: torch.nn.Sequential(torch.nn.Tanh()).insert(3, torch.nn.Tanh()),
               IndexError)


# -- zero_grad ----------------------------------------------------------------------------------


@pytest.mark.parametrize("set_to_none", [None, True, False])
def test_zero_grad_matches(set_to_none):
    kwargs = {} if set_to_none is None else {"set_to_none": set_to_none}
    ours, theirs = nn.Linear(3, 2), torch.nn.Linear(3, 2)
    for owner_m, owner_t in [(ours, theirs),
                             (mg.optim.SGD(ours.parameters(), lr=0.1),
                              torch.optim.SGD(theirs.parameters(), lr=0.1))]:
        ours.weight.grad = mg.ones(2, 3)
        theirs.weight.grad = torch.ones(2, 3)
        owner_m.zero_grad(**kwargs)
        owner_t.zero_grad(**kwargs)
        for p_m, p_t in zip(ours.parameters(), theirs.parameters()):
            assert (p_m.grad is None) == (p_t.grad is None)  # bias: never had one, stays None
            if p_t.grad is not None:
                close(p_m.grad, p_t.grad)


# -- learning-rate schedulers -------------------------------------------------------------------


def _optimizers(lrs):
    params_m = [nn.Parameter(np.ones(1)) for _ in lrs]
    params_t = [torch.nn.Parameter(torch.ones(1)) for _ in lrs]
    return (mg.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params_m, lrs)], lr=1.0),
            torch.optim.SGD([{"params": [p], "lr": lr} for p, lr in zip(params_t, lrs)], lr=1.0))


PUBLIC_STATE = ("step_size", "gamma", "base_lrs", "last_epoch", "_step_count", "_last_lr")


@given(st.integers(1, 5), st.sampled_from([0.1, 0.5, 0.9, 1.5]), st.integers(1, 20),
       st.lists(st.sampled_from([0.1, 1.0, 3e-4]), min_size=1, max_size=3))
def test_step_lr_matches(step_size, gamma, steps, lrs):
    from minigrad.optim.lr_scheduler import StepLR

    opt_m, opt_t = _optimizers(lrs)
    ours = StepLR(opt_m, step_size, gamma)
    theirs = torch.optim.lr_scheduler.StepLR(opt_t, step_size, gamma)
    assert ours.get_last_lr() == theirs.get_last_lr()
    for _ in range(steps):
        opt_m.step()
        opt_t.step()
        ours.step()
        theirs.step()
        assert ours.get_last_lr() == theirs.get_last_lr()  # exactly: the same float operations
        assert [g["lr"] for g in opt_m.param_groups] == [g["lr"] for g in opt_t.param_groups]
    state_m, state_t = ours.state_dict(), theirs.state_dict()
    assert {k: state_m[k] for k in PUBLIC_STATE} == {k: state_t[k] for k in PUBLIC_STATE}
    assert [g["initial_lr"] for g in opt_m.param_groups] == \
        [g["initial_lr"] for g in opt_t.param_groups]
    # a PyTorch scheduler's state_dict (and the optimizer's lrs) resume the same schedule
    opt_r, _ = _optimizers(lrs)
    resumed = StepLR(opt_r, 1)
    resumed.load_state_dict(theirs.state_dict())
    for group, lr in zip(opt_r.param_groups, theirs.get_last_lr()):
        group["lr"] = lr
    opt_r.step()
    opt_t.step()
    resumed.step()
    theirs.step()
    assert resumed.get_last_lr() == theirs.get_last_lr()


def test_step_lr_resume_with_last_epoch_and_the_deprecated_epoch_argument_match():
    from minigrad.optim import lr_scheduler

    opt_m, opt_t = _optimizers([0.5, 0.1])
    ours = lr_scheduler.StepLR(opt_m, 2, 0.5)
    theirs = torch.optim.lr_scheduler.StepLR(opt_t, 2, 0.5)
    for _ in range(3):
        opt_m.step()
        opt_t.step()
        ours.step()
        theirs.step()
    again_m = lr_scheduler.StepLR(opt_m, 2, 0.5, last_epoch=3)
    again_t = torch.optim.lr_scheduler.StepLR(opt_t, 2, 0.5, last_epoch=3)
    assert (again_m.get_last_lr(), again_m.last_epoch, again_m.base_lrs) == \
        (again_t.get_last_lr(), again_t.last_epoch, again_t.base_lrs)
    for epoch in (5, 3, 8):
        with warnings.catch_warnings(record=True) as caught_m:
            warnings.simplefilter("always")
            again_m.step(epoch)
        with warnings.catch_warnings(record=True) as caught_t:
            warnings.simplefilter("always")
            again_t.step(epoch)
        assert again_m.get_last_lr() == again_t.get_last_lr()
        assert [w.category for w in caught_m] == [w.category for w in caught_t]
    fresh_m, fresh_t = _optimizers([0.5])
    both_raise(lambda: lr_scheduler.StepLR(fresh_m, 2, last_epoch=3),
               lambda: torch.optim.lr_scheduler.StepLR(fresh_t, 2, last_epoch=3), KeyError)
    both_raise(lambda: lr_scheduler.StepLR("sgd", 2),
               lambda: torch.optim.lr_scheduler.StepLR("sgd", 2), TypeError)


def test_scheduler_stepped_before_the_optimizer_warns_as_pytorch_does():
    from minigrad.optim.lr_scheduler import StepLR

    opt_m, opt_t = _optimizers([0.5])
    ours, theirs = StepLR(opt_m, 2), torch.optim.lr_scheduler.StepLR(opt_t, 2)
    with pytest.warns(UserWarning, match="Detected call of `lr_scheduler.step\\(\\)` before "
                                         "`optimizer.step\\(\\)`"):
        ours.step()
    with pytest.warns(UserWarning, match="Detected call of `lr_scheduler.step\\(\\)` before"):
        theirs.step()
    opt_m, opt_t = _optimizers([0.5])
    ours, theirs = StepLR(opt_m, 2), torch.optim.lr_scheduler.StepLR(opt_t, 2)
    opt_m.step()
    opt_t.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours.step()
        theirs.step()


@given(st.lists(st.floats(0.0, 2.0), min_size=1, max_size=25),
       st.sampled_from(["min", "max"]), st.sampled_from(["rel", "abs"]),
       st.integers(0, 3), st.integers(0, 2), st.sampled_from([0.0, 0.05]),
       st.sampled_from([0.0, 1e-3, [1e-3, 0.05]]))
def test_reduce_lr_on_plateau_matches(metrics, mode, threshold_mode, patience, cooldown,
                                      threshold, min_lr):
    from minigrad.optim.lr_scheduler import ReduceLROnPlateau

    opt_m, opt_t = _optimizers([0.5, 0.1])
    options = dict(mode=mode, factor=0.5, patience=patience, threshold=threshold,
                   threshold_mode=threshold_mode, cooldown=cooldown, min_lr=min_lr)
    ours = ReduceLROnPlateau(opt_m, **options)
    theirs = torch.optim.lr_scheduler.ReduceLROnPlateau(opt_t, **options)
    assert ours.get_last_lr() == theirs.get_last_lr()
    for value in metrics:
        ours.step(value)
        theirs.step(value)
        assert ours.get_last_lr() == theirs.get_last_lr()
    assert ours.state_dict() == theirs.state_dict()


def test_lr_scheduler_is_a_submodule_with_pytorchs_names():
    import minigrad.optim.lr_scheduler as sched

    assert mg.optim.lr_scheduler is sched
    for name in ("LRScheduler", "StepLR", "ReduceLROnPlateau"):
        assert getattr(sched, name) is getattr(mg.optim, name)
        assert hasattr(torch.optim.lr_scheduler, name)


# -- recurrent layers: unbatched input and dtypes -----------------------------------------------

LAYERS = {"RNN": RNN, "LSTM": LSTM, "GRU": GRU}


@pytest.mark.parametrize("kind", LAYERS)
@pytest.mark.parametrize(("num_layers", "bidirectional", "batch_first"),
                         [(1, False, False), (2, True, False), (2, False, True)])
@pytest.mark.parametrize("with_hx", [False, True])
def test_unbatched_input_matches(kind, num_layers, bidirectional, batch_first, with_hx):
    torch.manual_seed(0)
    options = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first)
    theirs = getattr(torch.nn, kind)(3, 4, **options).double()
    ours = LAYERS[kind](3, 4, **options).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3))
    leaves_m, leaves_t = [m(x, True)], [t(x, True)]
    if with_hx:
        parts = 2 if kind == "LSTM" else 1
        hx = [rng.standard_normal((num_layers * (1 + bidirectional), 4)) for _ in range(parts)]
        leaves_m += [m(h, True) for h in hx]
        leaves_t += [t(h, True) for h in hx]
    hx_m = None if not with_hx else tuple(leaves_m[1:]) if kind == "LSTM" else leaves_m[1]
    hx_t = None if not with_hx else tuple(leaves_t[1:]) if kind == "LSTM" else leaves_t[1]
    out_m, h_m = ours(leaves_m[0], hx_m)
    out_t, h_t = theirs(leaves_t[0], hx_t)
    outs_m = [out_m, *(h_m if kind == "LSTM" else [h_m])]
    outs_t = [out_t, *(h_t if kind == "LSTM" else [h_t])]
    assert out_m.shape == (5, 4 * (1 + bidirectional))
    for a, b in zip(outs_m, outs_t):
        close(a, b, rtol=1e-12, atol=1e-14)
    total_m = sum((o * m(np.linspace(-1, 1, o.data.size).reshape(o.shape))).sum() for o in outs_m)
    total_t = sum((o * t(np.linspace(-1, 1, o.numel()).reshape(o.shape))).sum() for o in outs_t)
    total_m.backward()
    total_t.backward()
    params = dict(theirs.named_parameters())
    pairs = list(zip(leaves_m, leaves_t)) + [(p, params[n]) for n, p in ours.named_parameters()]
    for a, b in pairs:
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("kind", LAYERS)
def test_recurrent_dtype_and_hx_errors_match(kind):
    ours, theirs = LAYERS[kind](3, 4), getattr(torch.nn, kind)(3, 4)
    cases = [np.zeros((5, 2, 3)), np.zeros((5, 3)), np.zeros((5, 2, 3), np.int32)]
    for x in cases:
        both_raise(lambda x=x: ours(m(x)), lambda x=x: theirs(t(x)), ValueError)
    message = f"{kind}: input must have the type float32 (the layer's weights), got type float64"
    with pytest.raises(ValueError, match=re.escape(message)):
        ours(m(np.zeros((5, 2, 3))))
    ours.double()
    theirs.double()
    both_raise(lambda: ours(mg.zeros(5, 2, 3)), lambda: theirs(torch.zeros(5, 2, 3)), ValueError)

    def hx(lib, shape):
        h = lib.zeros(*shape, dtype=lib.float64 if lib is torch else np.float64)
        return (h, h) if kind == "LSTM" else h

    # unbatched input with a batched hx, and the other way round
    both_raise(lambda: ours(mg.zeros(5, 3, dtype=np.float64), hx(mg, (1, 1, 4))),
               lambda: theirs(torch.zeros(5, 3, dtype=torch.float64), hx(torch, (1, 1, 4))),
               (ValueError, RuntimeError))
    both_raise(lambda: ours(mg.zeros(5, 2, 3, dtype=np.float64), hx(mg, (1, 4))),
               lambda: theirs(torch.zeros(5, 2, 3, dtype=torch.float64), hx(torch, (1, 4))),
               (ValueError, RuntimeError))
    both_raise(lambda: ours(mg.zeros(0, 3, dtype=np.float64)),
               lambda: theirs(torch.zeros(0, 3, dtype=torch.float64)), (ValueError, RuntimeError))
    both_raise(lambda: ours(mg.zeros(5, dtype=np.float64)),
               lambda: theirs(torch.zeros(5, dtype=torch.float64)), ValueError)
