"""softmax and log_softmax: forward values against NumPy, gradients and second derivatives,
stability at large magnitudes, dtypes and errors; the ops without gradient that read class
targets and embedding ids and draw dropout masks; cross-entropy's gradient as one op.
(cross_entropy, dropout and embedding themselves are tested with the functions and layers that
use them.)"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from minigrad.ops.probability import (
    ClassTargets,
    CrossEntropy,
    CrossEntropyGrad,
    DropoutMask,
    EmbeddingIds,
    OneHot,
)
from tests.strategies import arrays, axis, leaf, shapes


def naive_softmax(a: np.ndarray, ax: int) -> np.ndarray:
    e = np.exp(a)
    return e / e.sum(axis=ax, keepdims=True)


def naive_log_softmax(a: np.ndarray, ax: int) -> np.ndarray:
    return a - np.log(np.exp(a).sum(axis=ax, keepdims=True))


OPS = {
    "softmax": (mg.Tensor.softmax, mg.softmax, naive_softmax),
    "log_softmax": (mg.Tensor.log_softmax, mg.log_softmax, naive_log_softmax),
}


@st.composite
def inputs(draw, lo: float = -3.0, hi: float = 3.0) -> tuple[np.ndarray, int]:
    """An array of one or more axes with values in ``[lo, hi]``, and one of its axes."""
    a = draw(arrays(draw(shapes(min_dims=1)), lo, hi))
    return a, draw(axis(a.ndim))


@pytest.mark.parametrize("name", OPS)
@given(inputs())
def test_forward_matches_numpy(name: str, case) -> None:
    method, free, reference = OPS[name]
    a, ax = case
    expected = reference(a, ax)
    np.testing.assert_allclose(method(mg.tensor(a), ax).data, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(free(mg.tensor(a), ax).data, expected, rtol=1e-12, atol=1e-15)


@given(inputs())
def test_softmax_is_a_distribution_and_log_softmax_its_log(case) -> None:
    a, ax = case
    p = mg.tensor(a).softmax(ax).data
    assert (p > 0).all()
    np.testing.assert_allclose(p.sum(axis=ax), 1.0, rtol=1e-12)
    np.testing.assert_allclose(mg.tensor(a).log_softmax(ax).data, np.log(p), rtol=1e-12,
                               atol=1e-15)


@pytest.mark.parametrize("name", OPS)
@given(inputs())
def test_gradients(name: str, case) -> None:
    method, free, _ = OPS[name]
    a, ax = case
    x = leaf(a)
    assert mg.gradcheck(lambda t: method(t, ax), [x])
    assert mg.gradgradcheck(lambda t: free(t, ax), [x])


@pytest.mark.parametrize("name", OPS)
def test_default_axis_is_the_last(name: str) -> None:
    method, free, reference = OPS[name]
    a = np.arange(6.0).reshape(2, 3) / 4
    np.testing.assert_allclose(method(mg.tensor(a)).data, reference(a, -1), rtol=1e-12)
    np.testing.assert_allclose(free(mg.tensor(a)).data, reference(a, -1), rtol=1e-12)


@pytest.mark.parametrize("shift", [1000.0, -1000.0])
@pytest.mark.parametrize("name", OPS)
@given(case=inputs())
def test_stable_at_large_magnitudes(name: str, shift: float, case) -> None:
    """softmax(x + c) = softmax(x) and log_softmax(x + c) = log_softmax(x), even for huge c."""
    method, _, reference = OPS[name]
    a, ax = case
    x = leaf(a + shift)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = method(x, ax)
        y.sum().backward()
    np.testing.assert_allclose(y.data, reference(a, ax), rtol=1e-9, atol=1e-12)
    assert np.isfinite(x.grad.data).all()
    assert mg.gradcheck(lambda t: method(t, ax), [leaf(a + shift)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_far_apart_logits(dtype) -> None:
    """Logits 1000 apart: one class takes all the mass; gradients stay finite."""
    x = leaf(np.array([[-1000.0, 0.0, 1000.0], [1000.0, 1000.0, -1000.0]]), dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = x.softmax(axis=1)
        logp = x.log_softmax(axis=1)
        (p.sum() + logp.sum()).backward()
    assert p.dtype == logp.dtype == x.grad.dtype == dtype
    np.testing.assert_allclose(p.data, [[0.0, 0.0, 1.0], [0.5, 0.5, 0.0]], atol=1e-30)
    log2 = np.log(2.0)
    np.testing.assert_allclose(logp.data, [[-2000.0, -1000.0, 0.0],
                                           [-log2, -log2, -2000.0 - log2]], rtol=1e-6)
    assert np.isfinite(x.grad.data).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", OPS)
def test_keeps_dtype(name: str, dtype) -> None:
    x = leaf(np.arange(6.0).reshape(2, 3), dtype=dtype)
    y = OPS[name][0](x, 0)
    assert y.dtype == dtype
    (y * mg.tensor(np.arange(6.0).reshape(2, 3), dtype=dtype)).sum().backward()
    assert x.grad.dtype == dtype


@pytest.mark.parametrize("ax", [2, -3])
@pytest.mark.parametrize("name", OPS)
def test_out_of_range_axis_is_a_clear_error(name: str, ax: int) -> None:
    method, free, _ = OPS[name]
    x = leaf(np.ones((2, 3)))
    for fn in (method, free):
        with pytest.raises(ValueError, match=rf"^{name}: axis {ax} is out of range.* 2 dim"):
            fn(x, ax)
    assert x.grad is None and x.grad_fn is None


# -- ops without gradient: class targets, one-hot, embedding ids, dropout masks -----------------


@st.composite
def targets(draw):
    """Integer targets, a class count above all of them, and an ignore_index (None, or a value
    that some entries take: inside or outside the classes)."""
    classes = draw(st.integers(1, 4))
    t = draw(hnp.arrays(np.int64, draw(shapes()), elements=st.integers(0, classes - 1)))
    ignore_index = draw(st.sampled_from([None, -100, 0]))
    if ignore_index is not None:
        t = np.where(draw(hnp.arrays(bool, t.shape)), ignore_index, t)
    return t, classes, ignore_index


@given(targets(), st.booleans(), st.sampled_from([np.float32, np.float64]))
def test_class_targets_give_safe_ids_and_weights(case, mean: bool, dtype) -> None:
    t, classes, ignore_index = case
    safe, w = ClassTargets.apply(mg.tensor(t), classes=classes, ignore_index=ignore_index,
                                 mean=mean, dtype=dtype)
    valid = t != ignore_index
    np.testing.assert_array_equal(safe.data, np.where(valid, t, 0))
    expected = valid / valid.sum() if mean and valid.any() else valid.astype(float)
    if mean and not valid.any():
        assert np.isnan(w.data).all()
    else:
        np.testing.assert_allclose(w.data, expected, rtol=1e-6)
    assert w.dtype == dtype and not (safe.requires_grad or w.requires_grad)


def test_class_targets_check_every_id_but_the_ignored_ones() -> None:
    t = mg.tensor([2, -100, 3])
    with pytest.raises(IndexError, match=r"cross_entropy: target 3 is out of range for 3 "
                                         r"classes \(valid ids are 0\.\.2\)"):
        ClassTargets.apply(t, classes=3, ignore_index=-100, mean=True, dtype=np.float32)
    safe, _ = ClassTargets.apply(t, classes=4, ignore_index=-100, mean=True, dtype=np.float32)
    np.testing.assert_array_equal(safe.data, [2, 0, 3])


@given(targets(), st.data())
def test_one_hot_puts_a_one_at_each_target_class(case, data) -> None:
    t, classes, _ = case
    t = np.clip(t, 0, classes - 1)  # only ClassTargets' safe ids reach OneHot
    ax = data.draw(st.integers(0, t.ndim))
    y = OneHot.apply(mg.tensor(t), classes=classes, axis=ax, dtype=np.float64)
    expected = np.moveaxis(np.eye(classes)[t], -1, ax)
    assert y.shape == expected.shape and y.dtype == np.float64
    np.testing.assert_array_equal(y.data, expected)


def test_embedding_ids_pass_the_same_array_through_or_name_the_bad_id() -> None:
    ids = np.array([[0, 4], [2, 1]])
    assert EmbeddingIds.apply(mg.from_numpy(ids), num_embeddings=5).data is ids
    with pytest.raises(IndexError, match=r"Embedding: id 5 is out of range for "
                                         r"num_embeddings=5 \(valid ids are 0\.\.4\)"):
        EmbeddingIds.apply(mg.tensor([1, 5, -1]), num_embeddings=5)


@given(st.integers(0, 2 ** 32 - 1), st.sampled_from([0.1, 0.5, 0.9]), shapes(),
       st.sampled_from([np.float32, np.float64]))
def test_dropout_mask_is_drawn_from_minigrads_generator_at_every_call(seed, p, shape,
                                                                       dtype) -> None:
    x = leaf(np.ones(shape), dtype=dtype)
    mg.manual_seed(seed)
    first, second = DropoutMask.apply(x, p=p), DropoutMask.apply(x, p=p)
    rng = np.random.default_rng(seed)
    for m in (first, second):
        kept = rng.random(shape, dtype=np.float32) >= p
        np.testing.assert_array_equal(m.data, kept.astype(dtype) / (1 - p))
        assert m.dtype == dtype and not m.requires_grad


# -- cross-entropy's gradient as one op --------------------------------------------------------


@st.composite
def cross_entropy_grad_cases(draw):
    """(x, t, w, g, axis, reduction): logits with the classes on a drawn axis, the safe targets
    and weights that ClassTargets makes for cross_entropy (some targets ignored), and a
    gradient ``g`` of the loss's shape."""
    t, classes, ignore_index = draw(targets())
    reduction = draw(st.sampled_from(["mean", "sum", "none"]))
    ax = draw(st.integers(0, t.ndim))
    x = draw(arrays(t.shape[:ax] + (classes,) + t.shape[ax:], -3.0, 3.0))
    g = draw(arrays(t.shape if reduction == "none" else (), -2.0, 2.0))
    safe, w = ClassTargets.apply(mg.tensor(t), classes=classes, ignore_index=ignore_index,
                                 mean=reduction == "mean", dtype=np.float64)
    assume(np.isfinite(w.data).all())  # a mean over no kept target is nan
    return x, safe, w, g, ax, reduction


@given(cross_entropy_grad_cases())
def test_cross_entropy_grad_is_weighted_softmax_minus_one_hot(case) -> None:
    x, t, w, g, ax, reduction = case
    onehot = np.moveaxis(np.eye(x.shape[ax])[t.data], -1, ax)
    expected = np.expand_dims(w.data * g, ax) * (naive_softmax(x, ax) - onehot)
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-6)):
        logits = mg.tensor(x, dtype=dtype)
        before = logits.data.copy()
        y = CrossEntropyGrad.apply(logits, t, mg.tensor(w.data, dtype=dtype),
                                   mg.tensor(g, dtype=dtype), axis=ax, reduction=reduction)
        assert y.shape == x.shape and y.dtype == dtype
        np.testing.assert_allclose(y.data, expected, rtol=tol, atol=tol)
        np.testing.assert_array_equal(logits.data, before)  # worked on a copy of the logits


@given(cross_entropy_grad_cases())
def test_cross_entropy_grad_gradients_by_finite_differences(case) -> None:
    x, t, w, g, ax, reduction = case
    assert mg.gradcheck(
        lambda x, g: CrossEntropyGrad.apply(x, t, w, g, axis=ax, reduction=reduction),
        [leaf(x), leaf(g)],
    )


@given(cross_entropy_grad_cases())
def test_cross_entropy_records_its_gradient_as_one_op_equal_to_the_eager_one(case) -> None:
    x, t, w, g, ax, reduction = case
    grads = []
    for create_graph in (False, True):
        logits = leaf(x)
        loss = CrossEntropy.apply(logits, t, w, axis=ax, reduction=reduction)
        grads += mg.grad(loss, [logits], [mg.tensor(g)], create_graph=create_graph)
    eager, recorded = grads
    assert eager.grad_fn is None and type(recorded.grad_fn) is CrossEntropyGrad
    np.testing.assert_array_equal(recorded.data, eager.data)


@given(cross_entropy_grad_cases())
def test_cross_entropy_backward_is_the_same_with_and_without_create_graph(case) -> None:
    """One path through cross-entropy's backward: recorded or not, the gradients of logits made
    by an op (x * s) are equal, and equal to w * g * (softmax - onehot) taken back through it."""
    x, t, w, g, ax, reduction = case
    grads = []
    for create_graph in (False, True):
        a, s = leaf(x), leaf(np.array(1.5))
        loss = CrossEntropy.apply(a * s, t, w, axis=ax, reduction=reduction)
        grads.append(mg.grad(loss, [a, s], [mg.tensor(g)], create_graph=create_graph))
    (da, ds), (da_recorded, ds_recorded) = grads
    assert da_recorded.requires_grad and not da.requires_grad
    np.testing.assert_array_equal(da_recorded.data, da.data)
    np.testing.assert_array_equal(ds_recorded.data, ds.data)
    onehot = np.moveaxis(np.eye(x.shape[ax])[t.data], -1, ax)
    dlogits = np.expand_dims(w.data * g, ax) * (naive_softmax(1.5 * x, ax) - onehot)
    assert da.dtype == ds.dtype == np.float64
    np.testing.assert_allclose(da.data, 1.5 * dlogits, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ds.data, (dlogits * x).sum(), rtol=1e-12, atol=1e-12)

