"""minigrad.nn.functional: cross_entropy, nll_loss, mse_loss, linear, layer_norm, dropout,
softmax, log_softmax and the activations."""

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from minigrad.nn import functional as F
from minigrad.ops.probability import DropoutMask
from tests.strategies import arrays, leaf, shapes

REDUCTIONS = ("mean", "sum", "none")


@st.composite
def ce_cases(draw):
    """(logits, target, ignore_index, reduction, axis): classes on axis 1 (N, C, d...) or last
    (..., C), some targets ignored, at least one not."""
    n, c = draw(st.integers(1, 3)), draw(st.integers(2, 4))
    extra = tuple(draw(st.lists(st.integers(1, 3), max_size=2)))
    axis = draw(st.sampled_from([1, -1]))
    shape = (n, c) + extra if axis == 1 else (n,) + extra + (c,)
    logits = draw(arrays(shape, -3.0, 3.0))
    target = draw(hnp.arrays(np.int64, (n,) + extra, elements=st.integers(0, c - 1)))
    ignore_index = draw(st.sampled_from([None, -100, 0]))
    if ignore_index is not None:
        dropped = draw(hnp.arrays(bool, target.shape))
        target = np.where(dropped, ignore_index, target)
        target.flat[0] = c - 1
    return logits, target, ignore_index, draw(st.sampled_from(REDUCTIONS)), axis


def reference_cross_entropy(logits, target, ignore_index, reduction, axis):
    """-log(exp(x[t]) / sum(exp(x))) entry by entry, in float64."""
    x = np.moveaxis(np.asarray(logits, np.float64), axis, -1)
    losses = np.zeros(target.shape)
    for idx in np.ndindex(target.shape):
        if target[idx] != ignore_index:
            row = x[idx]
            losses[idx] = -np.log(np.exp(row[target[idx]]) / np.exp(row).sum())
    if reduction == "none":
        return losses
    return losses.sum() / ((target != ignore_index).sum() if reduction == "mean" else 1)


@given(ce_cases())
def test_cross_entropy_matches_numpy_reference(case):
    logits, target, ignore_index, reduction, axis = case
    for dtype, rtol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        loss = F.cross_entropy(mg.tensor(logits, dtype=dtype), target,
                               ignore_index=ignore_index, reduction=reduction, axis=axis)
        assert loss.dtype == dtype
        assert loss.shape == (target.shape if reduction == "none" else ())
        expected = reference_cross_entropy(logits, target, ignore_index, reduction, axis)
        np.testing.assert_allclose(loss.data, expected, rtol=rtol, atol=rtol)


@given(ce_cases())
def test_cross_entropy_gradcheck(case):
    logits, target, ignore_index, reduction, axis = case
    x = leaf(logits)
    assert mg.gradcheck(lambda x: F.cross_entropy(x, target, ignore_index=ignore_index,
                                                  reduction=reduction, axis=axis), [x])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_second_derivatives(reduction):
    rng = np.random.default_rng(0)
    x = leaf(rng.standard_normal((2, 3, 2)))
    target = np.array([[0, -100], [2, 1]])
    assert mg.gradgradcheck(lambda x: F.cross_entropy(x, target, reduction=reduction), [x])


def test_cross_entropy_equals_log_softmax_then_pick():
    rng = np.random.default_rng(1)
    logits = rng.standard_normal((5, 4))
    x1, x2 = leaf(logits), leaf(logits)
    target = np.array([3, 0, 1, 1, 2])
    fused = F.cross_entropy(x1, target, reduction="sum")
    composed = -F.log_softmax(x2, axis=1)[np.arange(5), target].sum()
    np.testing.assert_allclose(fused.data, composed.data, rtol=1e-12)
    fused.backward()
    composed.backward()
    np.testing.assert_allclose(x1.grad.data, x2.grad.data, rtol=1e-12, atol=1e-15)


def test_cross_entropy_is_stable_for_huge_logits():
    x = mg.tensor([[1000.0, 0.0, -1000.0]] * 3, requires_grad=True)
    loss = F.cross_entropy(x, [0, 1, 2], reduction="none")
    np.testing.assert_allclose(loss.data, [0.0, 1000.0, 2000.0])
    loss.sum().backward()
    np.testing.assert_allclose(x.grad.data, [[0, 0, 0], [1, -1, 0], [1, 0, -1]], atol=1e-6)
    shifted = F.cross_entropy(mg.tensor([[1001.0, 1000.0]]), [1])
    np.testing.assert_allclose(shifted.data, np.log1p(np.e), rtol=1e-6)


def test_cross_entropy_mean_averages_over_kept_targets_only():
    logits = np.array([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    target = np.array([0, 0, 1])
    per_entry = F.cross_entropy(mg.tensor(logits), target, reduction="none").data
    mean = F.cross_entropy(mg.tensor(logits), np.array([0, 7, 1]), ignore_index=7)
    np.testing.assert_allclose(mean.data, (per_entry[0] + per_entry[2]) / 2, rtol=1e-12)
    kept = F.cross_entropy(mg.tensor(logits), np.array([0, 7, 1]), ignore_index=7,
                           reduction="none")
    np.testing.assert_allclose(kept.data, [per_entry[0], 0.0, per_entry[2]], rtol=1e-12)
    with np.errstate(invalid="ignore"):
        assert np.isnan(F.cross_entropy(mg.tensor(logits), np.full(3, 7), ignore_index=7).item())


def test_cross_entropy_unbatched_logits():
    loss = F.cross_entropy(mg.tensor([1.0, 2.0, 3.0], dtype=np.float64), np.int64(2))
    np.testing.assert_allclose(loss.data, reference_cross_entropy(
        np.array([[1.0, 2.0, 3.0]]), np.array([2]), None, "mean", -1))


def test_cross_entropy_errors():
    x = mg.randn(2, 3, 4)
    with pytest.raises(ValueError, match=r"\(2, 3, 4\).*target of shape \(2, 4\).*axis=-1"):
        F.cross_entropy(x, np.zeros((2, 3), np.int64))
    with pytest.raises(TypeError, match=r"integer class ids of shape \(2, 4\) or class "
                                        r"probabilities of the input's shape; got dtype float64"):
        F.cross_entropy(x, np.zeros((2, 4)))
    with pytest.raises(IndexError, match="target 3 is out of range for 3 classes"):
        F.cross_entropy(x, np.array([[0, 1, 2, 3], [0, 0, 0, 0]]))
    with pytest.raises(IndexError, match="target -1 is out of range"):
        F.cross_entropy(mg.randn(2, 3), [-1, 0])
    with pytest.raises(ValueError, match="reduction must be one of"):
        F.cross_entropy(mg.randn(2, 3), [0, 1], reduction="avg")
    with pytest.raises(ValueError, match="axis 3 is out of range"):
        F.cross_entropy(x, np.zeros((2, 3), np.int64), axis=3)
    with pytest.raises(TypeError, match="cross_entropy: input must be a Tensor; got a ndarray"):
        F.cross_entropy(np.zeros((2, 3)), [0, 1])
    assert F.cross_entropy(mg.randn(2, 3), [-100, 1], ignore_index=-100).shape == ()


@st.composite
def weighted_cases(draw):
    """ce_cases plus class weights (or None) and a label smoothing."""
    logits, target, ignore_index, reduction, axis = draw(ce_cases())
    classes = logits.shape[axis]
    weight = draw(st.none() | arrays((classes,), 0.1, 2.0))
    smoothing = draw(st.sampled_from([0.0, 0.25]))
    return logits, target, ignore_index, reduction, axis, weight, smoothing


def reference_nll(logp, target, ignore_index, reduction, axis, weight):
    """-w[t] * logp[t] entry by entry, 'mean' divided by the kept weights, in float64."""
    x = np.moveaxis(np.asarray(logp, np.float64), axis, -1)
    w = np.ones(x.shape[-1]) if weight is None else weight
    losses, total = np.zeros(target.shape), 0.0
    for idx in np.ndindex(target.shape):
        if target[idx] != ignore_index:
            losses[idx] = -w[target[idx]] * x[idx][target[idx]]
            total += w[target[idx]]
    if reduction == "none":
        return losses
    return losses.sum() / (total if reduction == "mean" else 1)


def reference_smoothed_cross_entropy(logits, target, ignore_index, reduction, axis, weight, e):
    """(1 - e) * nll(log_softmax) + e / C * sum_c -w_c log p_c, as PyTorch defines it."""
    x = np.moveaxis(np.asarray(logits, np.float64), axis, -1)
    logp = x - np.log(np.exp(x).sum(-1, keepdims=True))
    c = x.shape[-1]
    w = np.ones(c) if weight is None else weight
    nll = reference_nll(logp, target, ignore_index, reduction, -1, weight)
    kept = target != ignore_index
    smooth = np.where(kept, -(logp * w).sum(-1), 0.0)
    if reduction != "none":
        smooth = smooth.sum() / (w[np.where(kept, target, 0)][kept].sum()
                                 if reduction == "mean" else 1)
    return (1 - e) * nll + e / c * smooth


@given(weighted_cases())
def test_nll_loss_matches_its_definition_and_gradchecks(case):
    logits, target, ignore_index, reduction, axis, weight, _ = case
    w = None if weight is None else mg.tensor(weight)
    loss = F.nll_loss(mg.tensor(logits), target, w, ignore_index=ignore_index,
                      reduction=reduction, axis=axis)
    expected = reference_nll(logits, target, ignore_index, reduction, axis, weight)
    assert loss.dtype == np.float64 and loss.shape == np.shape(expected)
    np.testing.assert_allclose(loss.data, expected, rtol=1e-12, atol=1e-12)
    x = leaf(logits)
    assert mg.gradcheck(lambda x: F.nll_loss(x, target, w, ignore_index=ignore_index,
                                             reduction=reduction, axis=axis), [x])


@given(weighted_cases())
def test_cross_entropy_with_weights_and_label_smoothing_matches_and_gradchecks(case):
    logits, target, ignore_index, reduction, axis, weight, smoothing = case
    w = None if weight is None else mg.tensor(weight)
    options = dict(ignore_index=ignore_index, reduction=reduction, label_smoothing=smoothing,
                   axis=axis)
    loss = F.cross_entropy(mg.tensor(logits), target, w, **options)
    expected = reference_smoothed_cross_entropy(logits, target, ignore_index, reduction, axis,
                                                weight, smoothing)
    np.testing.assert_allclose(loss.data, expected, rtol=1e-10, atol=1e-12)
    assert mg.gradcheck(lambda x: F.cross_entropy(x, target, w, **options), [leaf(logits)])


@given(st.data())
def test_cross_entropy_with_class_probabilities_gradchecks_in_both_inputs(data):
    shape = data.draw(st.sampled_from([(3,), (2, 3), (2, 3, 2)]))
    logits, probs = leaf(data.draw(arrays(shape))), leaf(data.draw(arrays(shape, 0.0, 1.0)))
    reduction = data.draw(st.sampled_from(REDUCTIONS))
    smoothing = data.draw(st.sampled_from([0.0, 0.3]))
    loss = F.cross_entropy(logits, probs, reduction=reduction, label_smoothing=smoothing)
    axis = 0 if len(shape) == 1 else 1
    q = probs.data * (1 - smoothing) + smoothing / shape[axis]
    logp = logits.data - np.log(np.exp(logits.data).sum(axis, keepdims=True))
    entries = -(q * logp).sum(axis)
    expected = {"none": entries, "sum": entries.sum(),
                "mean": entries.sum() / max(entries.size, 1)}[reduction]
    np.testing.assert_allclose(loss.data, expected, rtol=1e-12, atol=1e-12)
    assert mg.gradcheck(lambda x, p: F.cross_entropy(x, p, reduction=reduction,
                                                     label_smoothing=smoothing), [logits, probs])


def test_nll_loss_ignores_minus_100_by_default_and_skips_ignored_infinities():
    logp = mg.tensor([[0.0, -np.inf], [-np.inf, 0.0]], dtype=np.float64, requires_grad=True)
    loss = F.nll_loss(logp, [-100, 1], reduction="none")  # the ignored row picks -inf at 0
    np.testing.assert_array_equal(loss.data, [0.0, -0.0])
    loss.sum().backward()
    np.testing.assert_array_equal(logp.grad.data, [[0.0, 0.0], [0.0, -1.0]])


def test_nll_loss_errors_name_nll_loss():
    x = mg.randn(2, 3)
    with pytest.raises(IndexError, match="nll_loss: target 3 is out of range for 3 classes"):
        F.nll_loss(x, [0, 3])
    with pytest.raises(TypeError, match=r"nll_loss: target must hold integer class ids of shape "
                                        r"\(2,\); got dtype float64"):
        F.nll_loss(x, np.zeros(2))
    with pytest.raises(ValueError, match=r"nll_loss: weight must have one entry per class, "
                                         r"shape \(3,\); got a weight of shape \(2,\)"):
        F.nll_loss(x, [0, 1], mg.ones(2))
    with pytest.raises(TypeError, match="nll_loss: weight dtype float64 does not match the "
                                        "input dtype float32"):
        F.nll_loss(x, [0, 1], mg.tensor(np.ones(3)))
    with pytest.raises(TypeError, match="ignore_index is the 5th argument, as in PyTorch"):
        F.nll_loss(x, [0, 1], -100)
    with pytest.raises(ValueError, match="nll_loss: weight must not require grad"):
        F.nll_loss(x, [0, 1], mg.ones(3, requires_grad=True))
    with pytest.raises(TypeError, match="nll_loss: input must be floating point"):
        F.nll_loss(mg.tensor([1, 2]), 0)


def test_softmax_functions_take_dim_or_axis_and_a_dtype():
    a = np.random.default_rng(0).standard_normal((2, 3, 4))
    x = mg.tensor(a)
    for fn, ref in ((F.softmax, lambda v, d: np.exp(v) / np.exp(v).sum(d, keepdims=True)),
                    (F.log_softmax,
                     lambda v, d: v - np.log(np.exp(v).sum(d, keepdims=True)))):
        for dim in (0, 1, -1):
            np.testing.assert_allclose(fn(x, dim).data, ref(a, dim), rtol=1e-12)
            np.testing.assert_allclose(fn(x, axis=dim).data, ref(a, dim), rtol=1e-12)
        assert fn(x, 1, dtype=np.float32).dtype == np.float32
        with pytest.raises(TypeError, match="got dim=0 and axis=1; pass one of them"):
            fn(x, 0, axis=1)
        with pytest.raises(IndexError, match=re.escape(
                f"{fn.__name__}: dim 3 is out of range for a tensor of shape (2, 3, 4) (expected "
                "an int in [-3, 2])")):
            fn(x, 3)
        with pytest.warns(UserWarning, match=f"Implicit dimension choice for {fn.__name__}"):
            np.testing.assert_allclose(fn(x).data, ref(a, 0), rtol=1e-12)  # 3-d: dim 0
        np.testing.assert_allclose(fn(mg.tensor(2.0), 0).data, ref(np.array(2.0), None))
        assert mg.gradcheck(lambda v, f=fn: f(v, 1), [leaf(a)])


def test_activation_functions():
    a = np.array([-1.5, 0.5, 2.0])
    np.testing.assert_allclose(F.relu(mg.tensor(a)).data, np.maximum(a, 0))
    np.testing.assert_allclose(F.tanh(mg.tensor(a)).data, np.tanh(a), rtol=1e-12)
    np.testing.assert_allclose(F.sigmoid(mg.tensor(a)).data, 1 / (1 + np.exp(-a)), rtol=1e-12)
    ints = mg.tensor(np.array([-2, 3]))
    assert F.relu(ints).dtype == np.int64  # as torch: relu keeps integers
    assert F.tanh(ints).dtype == F.sigmoid(ints).dtype == np.float32  # the default float
    with pytest.raises(TypeError, match="sigmoid: input must be a Tensor; got a list"):
        F.sigmoid([1.0])


@given(st.data())
def test_layer_norm_function_gradchecks_in_input_weight_and_bias(data):
    shape = data.draw(shapes(min_dims=1))
    k = data.draw(st.integers(1, len(shape)))
    normalized = shape[len(shape) - k:]
    x, w, b = (leaf(data.draw(arrays(s))) for s in (shape, normalized, normalized))
    assert mg.gradcheck(lambda x, w, b: F.layer_norm(x, normalized, w, b, 0.1), [x, w, b])


@given(st.data())
def test_mse_loss_values_and_gradients(data):
    shape = data.draw(shapes())
    a, b = data.draw(arrays(shape)), data.draw(arrays(shape))
    for reduction in REDUCTIONS:
        loss = F.mse_loss(mg.tensor(a), b, reduction=reduction)
        expected = {"none": (a - b) ** 2, "sum": ((a - b) ** 2).sum(),
                    "mean": ((a - b) ** 2).mean()}[reduction]
        np.testing.assert_allclose(loss.data, expected, rtol=1e-12, atol=1e-15)
        x, y = leaf(a), leaf(b)
        assert mg.gradcheck(lambda x, y, r=reduction: F.mse_loss(x, y, reduction=r), [x, y])


def test_mse_loss_errors():
    with pytest.raises(ValueError, match=r"input of shape \(2, 3\) and target of shape \(3,\)"):
        F.mse_loss(mg.randn(2, 3), np.zeros(3))
    with pytest.raises(ValueError, match="reduction"):
        F.mse_loss(mg.randn(2), np.zeros(2), reduction="mine")


def test_linear_function():
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((4, 2, 3)), rng.standard_normal((5, 3)), rng.standard_normal(5)
    y = F.linear(mg.tensor(x), mg.tensor(w), mg.tensor(b))
    np.testing.assert_allclose(y.data, x @ w.T + b, rtol=1e-12)
    np.testing.assert_allclose(F.linear(mg.tensor(x[0, 0]), mg.tensor(w)).data, w @ x[0, 0])
    with pytest.raises(ValueError, match=r"input of shape \(4, 2\) does not fit weight of shape"):
        F.linear(mg.randn(4, 2), mg.randn(5, 3))
    with pytest.raises(ValueError, match=r"bias of shape \(4,\) does not broadcast to the "
                                         r"output shape \(4, 5\)"):
        F.linear(mg.randn(4, 3), mg.randn(5, 3), mg.randn(4))
    with pytest.raises(ValueError, match=r"bias of shape \(3, 4, 5\) does not broadcast"):
        F.linear(mg.randn(4, 3), mg.randn(5, 3), mg.randn(3, 4, 5))


@given(st.data())
def test_linear_bias_may_broadcast_to_the_output(data):
    """Any bias that broadcasts to y, as PyTorch accepts: (out,), (1, out), y's own shape."""
    lead = data.draw(st.sampled_from([(3,), (2, 3)]))
    bias_shape = data.draw(st.sampled_from([(2,), (1, 2), lead + (2,), lead[:-1] + (1, 2)]))
    x, w, b = leaf(data.draw(arrays(lead + (4,)))), leaf(data.draw(arrays((2, 4)))), \
        leaf(data.draw(arrays(bias_shape)))
    y = F.linear(x, w, b)
    np.testing.assert_allclose(y.data, x.data @ w.data.T + b.data, rtol=1e-12)
    assert mg.gradcheck(lambda x, w, b: F.linear(x, w, b), [x, w, b])


def test_dropout_function_errors_and_identity():
    x = mg.randn(3, 4)
    np.testing.assert_array_equal(F.dropout(x, 1.0).data, np.zeros((3, 4)))  # p = 1 drops all
    with pytest.raises(NotImplementedError, match="dropout: inplace=True is not supported"):
        F.dropout(x, 0.5, inplace=True)
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    for p in (-0.1, 1.0001, 2.0):
        with pytest.raises(ValueError, match="dropout: dropout probability p has to be between 0 "
                                             f"and 1; got {p}"):
            F.dropout(x, p)
    assert F.dropout(x, 0.5, False) is x
    with pytest.raises(TypeError, match="dropout: input must be a Tensor"):
        F.dropout(np.ones(3), 0.5)


def test_dropout_draws_its_mask_in_an_op_so_that_running_the_op_again_redraws_it():
    """y = x * mask, the mask made by the DropoutMask op from minigrad's generator: replaying
    that op after the same seed gives the same mask, as a compiled call must."""
    x = mg.randn(5, 6, requires_grad=True)
    mg.manual_seed(11)
    y = F.dropout(x, 0.3)
    mul = y.grad_fn
    assert mul.name == "Mul" and mul.inputs[0] is x and not mul.inputs[1].requires_grad
    mg.manual_seed(11)
    replayed = DropoutMask(p=0.3).forward(x.data)
    np.testing.assert_array_equal(mul.inputs[1].data, replayed)
    np.testing.assert_array_equal(y.data, x.data * replayed)


def test_cross_entropy_reads_its_target_as_an_input():
    """The target (not a copy) reaches the op as an input, and so do the ignore mask and the
    weights made from it: nothing about the target is an option of the op."""
    target = np.array([2, 0, 1])
    loss = F.cross_entropy(mg.randn(3, 4, requires_grad=True), target, ignore_index=None)
    x, t, w = loss.grad_fn.inputs
    assert t.data is target and not (t.requires_grad or w.requires_grad)
    assert loss.grad_fn.axis == 1 and loss.grad_fn.reduction == "mean"
    # with PyTorch's default ignore_index=-100 the op reads the target with -100s set to 0
    default = F.cross_entropy(mg.randn(3, 4, requires_grad=True), np.array([2, -100, 1]))
    np.testing.assert_array_equal(default.grad_fn.inputs[1].data, [2, 0, 1])
    np.testing.assert_array_equal(default.grad_fn.inputs[2].data, [0.5, 0.0, 0.5])
    ignoring = F.cross_entropy(mg.randn(3, 4, requires_grad=True), mg.tensor(target),
                               ignore_index=0, reduction="sum")
    np.testing.assert_array_equal(ignoring.grad_fn.inputs[1].data, [2, 0, 1])
    np.testing.assert_array_equal(ignoring.grad_fn.inputs[2].data, [1.0, 0.0, 1.0])


@given(st.data())
def test_linear_second_derivatives(data):
    lead = data.draw(st.sampled_from([(), (3,), (2, 3)]))
    x = leaf(data.draw(arrays(lead + (4,))))
    w = leaf(data.draw(arrays((2, 4))))
    b = leaf(data.draw(arrays((2,))))
    assert mg.gradgradcheck(lambda x, w, b: F.linear(x, w, b).tanh(), [x, w, b])
