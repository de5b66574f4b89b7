"""PyTorch conformance: the idioms a PyTorch user writes in the first weeks, run twice.

Each idiom below is a few lines of PyTorch-style code written once, as a function of the
namespace ``t``, and registered by the ``@idiom`` decorator. ``test_idiom`` runs it with
``t = torch`` and with ``t = minigrad`` and compares what the two return with ``compare``:

- the kind of result: tensor, NumPy array, Python bool/int/float/str/None, dtype, tuple
  (``torch.Size`` counts as a tuple), list, dict, or a named tuple with ``values``/``indices``;
- for tensors and arrays the dtype (by name: ``torch.float32`` and ``np.float32`` are both
  "float32"), the shape and the values (``assert_allclose``, rtol 1e-5 / atol 1e-6 for float32;
  integers and bools exactly);
- ``@idiom(raises=True)`` marks code that PyTorch rejects: both libraries must raise some
  Exception; the two exception classes are recorded as the test's properties
  (``torch_raises``, ``minigrad_raises``; see ``--junitxml``).

Gradients are compared by returning them (``y.sum().backward(); return x.grad``).
Inputs are deterministic: literal lists, or float32 arrays from ``np.random.default_rng(k)``
passed through ``t.tensor`` (``data``, ``leaf``); parameters of layers are overwritten the
same way (``set_params``). Idioms that use the libraries' own generators return only shapes,
dtypes and range checks.

A failing idiom is a difference from PyTorch, to be fixed in minigrad (or documented as a
deliberate one, and the idiom then removed); never weaken an idiom to make it pass.

One adapter, ``recurrent(t)``: minigrad's recurrent layers live in ``minigrad.models`` (the
design keeps ``minigrad.nn`` free of models), PyTorch's in ``torch.nn``; their signatures,
parameter names and return values are PyTorch's.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import minigrad
import minigrad.models

torch = pytest.importorskip("torch")

IDIOMS = []


def idiom(fn=None, *, raises: bool = False):
    """Register ``fn(t)`` as an idiom; ``raises=True``: PyTorch raises, so must minigrad."""

    def register(f):
        assert f.__name__ not in {g.__name__ for g in IDIOMS}, f"duplicate idiom {f.__name__}"
        f.raises = raises
        IDIOMS.append(f)
        return f

    return register(fn) if fn is not None else register


def recurrent(t):
    """Where the recurrent layers (RNN, LSTM, GRU) live: ``torch.nn``, ``minigrad.models``."""
    return torch.nn if t is torch else minigrad.models


# -- inputs -------------------------------------------------------------------------------------


def data(k: int, *shape: int) -> np.ndarray:
    """Standard normal float32 samples from ``np.random.default_rng(k)``."""
    return np.random.default_rng(k).standard_normal(shape).astype(np.float32)


def leaf(t, k: int, *shape: int):
    """A leaf tensor that requires grad, holding ``data(k, *shape)``."""
    return t.tensor(data(k, *shape), requires_grad=True)


def set_params(t, module, seed: int = 0):
    """Overwrite ``module``'s parameters, in order of name, with values from ``seed``."""
    rng = np.random.default_rng(seed)
    with t.no_grad():
        for _, p in sorted(module.named_parameters(), key=lambda item: item[0]):
            p.copy_(t.tensor(rng.uniform(-0.5, 0.5, tuple(p.shape)).astype(np.float32)))
    return module


# -- comparing ----------------------------------------------------------------------------------


def is_tensor(x) -> bool:
    return isinstance(x, (torch.Tensor, minigrad.Tensor))


def to_numpy(x) -> np.ndarray:
    """The values of a torch or minigrad tensor (or an array) as a NumPy array."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, minigrad.Tensor):
        return np.asarray(x.data)
    return np.asarray(x)


def dtype_name(dtype) -> str:
    """``torch.float32`` and ``np.dtype("float32")`` both as "float32"."""
    if isinstance(dtype, torch.dtype):
        return str(dtype).removeprefix("torch.")
    return np.dtype(dtype).name


def kind(x) -> str:
    """What sort of value ``x`` is, in terms common to both libraries."""
    if x is None:
        return "None"
    for name, types in (("bool", bool), ("int", int), ("float", float), ("str", str)):
        if isinstance(x, types):
            return name
    if isinstance(x, (torch.dtype, np.dtype)):
        return "dtype"
    if is_tensor(x):
        return "tensor"
    if isinstance(x, np.ndarray):
        return "ndarray"
    if isinstance(x, np.generic):
        return f"NumPy scalar {type(x).__name__}"
    if isinstance(x, tuple):
        fields = [f for f in ("values", "indices") if hasattr(x, f)]
        return f"named tuple ({', '.join(fields)})" if fields else "tuple"
    if isinstance(x, (list, dict)):
        return type(x).__name__
    return type(x).__qualname__


def describe(x) -> str:
    """A short description of a result for failure messages."""
    k = kind(x)
    if k == "None":
        return "None"
    if k in ("tensor", "ndarray"):
        values = np.array2string(to_numpy(x), threshold=12, precision=5).replace("\n", "")
        return f"{k} {dtype_name(x.dtype)} {tuple(x.shape)} {values}"
    if k == "dtype":
        return f"dtype {dtype_name(x)}"
    if k.startswith("named tuple") or k in ("tuple", "list"):
        return f"{k} [{', '.join(describe(v) for v in x)}]"
    if k == "dict":
        return f"dict with keys {list(x)}"
    return f"{k} {x!r}"


def assert_values(expected: np.ndarray, actual: np.ndarray, where: str) -> None:
    if expected.dtype.kind == "f" or np.dtype(actual.dtype).kind == "f":
        rtol, atol = (1e-5, 1e-6) if expected.dtype != np.float64 else (1e-9, 1e-12)
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, err_msg=where)
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=where)


def compare(expected, actual, where: str = "result") -> None:
    """Assert that minigrad's ``actual`` is what PyTorch's ``expected`` is (see the docstring)."""
    ek, ak = kind(expected), kind(actual)
    difference = f"{where}: torch gives {describe(expected)}; minigrad gives {describe(actual)}"
    assert ek == ak, difference
    if ek in ("tensor", "ndarray"):
        assert dtype_name(expected.dtype) == dtype_name(actual.dtype), difference
        assert tuple(expected.shape) == tuple(actual.shape), difference
        assert_values(to_numpy(expected), to_numpy(actual), difference)
    elif ek == "dtype":
        assert dtype_name(expected) == dtype_name(actual), difference
    elif ek.startswith("named tuple") or ek in ("tuple", "list"):
        assert len(expected) == len(actual), difference
        for i, (e, a) in enumerate(zip(expected, actual)):
            compare(e, a, f"{where}[{i}]")
    elif ek == "dict":
        assert list(expected) == list(actual), difference
        for key in expected:
            compare(expected[key], actual[key], f"{where}[{key!r}]")
    elif ek == "float":
        assert math.isclose(expected, actual, rel_tol=1e-5, abs_tol=1e-6) or (
            math.isnan(expected) and math.isnan(actual)), difference
    else:
        assert expected == actual, difference


def run(fn, t):
    """``(result, None)`` or ``(None, exception)`` of ``fn(t)``."""
    try:
        return fn(t), None
    except Exception as e:  # any exception is a result here
        return None, e


def raised(e: Exception) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"


# ==============================================================================================
# creation and dtypes


@idiom
def idiom_tensor_int_list_dtype(t):
    return t.tensor([1, 2])


@idiom
def idiom_tensor_float_list_dtype(t):
    return t.tensor([1.0, 2.0])


@idiom
def idiom_tensor_bool_list_dtype(t):
    return t.tensor([True, False])


@idiom
def idiom_tensor_mixed_int_float_list(t):
    return t.tensor([1, 2.5])


@idiom
def idiom_tensor_nested(t):
    return t.tensor([[1.0, 2.0], [3.0, 4.0]])


@idiom
def idiom_tensor_scalar_0d(t):
    x = t.tensor(3.5)
    return x, x.shape, x.dim()


@idiom
def idiom_tensor_dtype_kwarg(t):
    return t.tensor([1, 2], dtype=t.float32), t.tensor([1.7, -2.7], dtype=t.long)


@idiom
def idiom_tensor_from_float32_array(t):
    return t.tensor(data(0, 2, 3))


@idiom
def idiom_tensor_from_float64_array_keeps_float64(t):
    return t.tensor(np.arange(3.0))


@idiom
def idiom_tensor_from_int_array(t):
    return t.tensor(np.array([[1, 2], [3, 4]], dtype=np.int64))


@idiom
def idiom_tensor_of_one_element_tensors(t):
    losses = [t.tensor(0.5), t.tensor(1.5)]
    return t.tensor(losses)


@idiom(raises=True)
def idiom_tensor_ragged_list_raises(t):
    return t.tensor([[1, 2], [3]])


@idiom
def idiom_dtype_aliases(t):
    return t.long == t.int64, t.float == t.float32, t.double == t.float64, t.int == t.int32


@idiom
def idiom_dtype_objects(t):
    return t.float32, t.float64, t.int64, t.int32, t.bool


@idiom
def idiom_dtype_equality_check(t):
    x = t.tensor([1.0])
    return x.dtype == t.float32, x.dtype == t.float64, x.is_floating_point()


@idiom
def idiom_zeros_ones(t):
    return t.zeros(2, 3), t.ones(4), t.zeros((2, 2), dtype=t.int64), t.ones(2, dtype=t.bool)


@idiom
def idiom_zeros_requires_grad(t):
    x = t.zeros(3, requires_grad=True)
    return x.requires_grad, x.is_leaf


@idiom
def idiom_full(t):
    return t.full((2, 2), 7.0), t.full((3,), 3), t.full((2,), 1.5, dtype=t.float64)


@idiom
def idiom_arange(t):
    return t.arange(5), t.arange(2, 7, 2), t.arange(0, 1, 0.25), t.arange(4, dtype=t.float32)


@idiom
def idiom_linspace(t):
    return t.linspace(0, 1, 5)


@idiom
def idiom_eye(t):
    return t.eye(3), t.eye(2, 3)


@idiom
def idiom_like_constructors(t):
    x = t.tensor([[1, 2, 3]])
    y = t.tensor(data(0, 2, 2))
    return t.zeros_like(x), t.ones_like(y), t.full_like(y, 0.5), t.zeros_like(x, dtype=t.float32)


@idiom
def idiom_new_zeros(t):
    x = t.tensor([1.0], dtype=t.float64)
    return x.new_zeros(2, 3), x.new_ones((2,))


@idiom
def idiom_empty_shape_dtype(t):
    x = t.empty(2, 3)
    return x.shape, x.dtype


@idiom
def idiom_from_numpy_shares_memory(t):
    a = np.zeros(3, dtype=np.float32)
    x = t.from_numpy(a)
    a[0] = 5.0
    return x


@idiom
def idiom_from_numpy_keeps_dtype(t):
    return t.from_numpy(np.arange(3.0)), t.from_numpy(np.arange(3, dtype=np.int32))


@idiom
def idiom_rand_shape_dtype_range(t):
    t.manual_seed(0)
    x = t.rand(3, 4)
    return x.shape, x.dtype, bool(((x >= 0) & (x < 1)).all())


@idiom
def idiom_randn_shape_dtype(t):
    t.manual_seed(0)
    x = t.randn(2, 3)
    return x.shape, x.dtype, bool(t.isfinite(x).all()), t.randn(5).shape


@idiom
def idiom_randn_requires_grad(t):
    return t.randn(2, requires_grad=True).requires_grad


@idiom
def idiom_randint_shape_dtype_range(t):
    t.manual_seed(0)
    x = t.randint(0, 10, (50,))
    y = t.randint(5, (3, 2))
    return x.shape, x.dtype, bool(((x >= 0) & (x < 10)).all()), y.shape, int(y.max()) < 5


@idiom
def idiom_manual_seed_reproducible(t):
    t.manual_seed(123)
    a = t.randn(4)
    t.manual_seed(123)
    b = t.randn(4)
    return bool((a == b).all())


@idiom
def idiom_is_tensor(t):
    return t.is_tensor(t.tensor([1.0])), t.is_tensor([1.0])


# ==============================================================================================
# arithmetic and type promotion


@idiom
def idiom_int_tensor_plus_float_scalar(t):
    return t.tensor([1, 2]) + 0.5


@idiom
def idiom_int_tensor_times_int_scalar(t):
    return t.tensor([1, 2]) * 3


@idiom
def idiom_int_tensor_plus_float_tensor(t):
    return t.tensor([1, 2]) + t.tensor([0.5, 0.25])


@idiom
def idiom_int_div_int_is_float(t):
    return t.tensor([1, 2]) / t.tensor([2, 4]), t.tensor([3, 4]) / 2


@idiom
def idiom_int32_plus_int64(t):
    return t.tensor([1, 2], dtype=t.int32) + t.tensor([1, 2])


@idiom
def idiom_bool_plus_int(t):
    return t.tensor([True, False]) + 1


@idiom
def idiom_float32_scalar_ops_stay_float32(t):
    x = t.tensor(data(0, 3))
    return x * 2.5, x + 1, 1 - x, x / 3, 2.0 ** x


@idiom
def idiom_float32_with_float64_0d_tensor(t):
    return t.tensor(data(0, 3)) * t.tensor(2.0, dtype=t.float64)


@idiom
def idiom_float32_plus_float64_tensor(t):
    return t.tensor(data(0, 3)) + t.tensor(data(1, 3), dtype=t.float64)


@idiom
def idiom_pow_scalar_and_tensor_exponent(t):
    x = t.tensor([2.0, 3.0])
    return x ** 2, x ** t.tensor([3.0, 0.5]), x.pow(3), t.pow(x, 2)


@idiom
def idiom_floordiv(t):
    return t.tensor([7, -7]) // 2, t.tensor([7.5, -7.5]) // 2


@idiom
def idiom_remainder(t):
    return t.tensor([7, -7]) % 3, t.tensor([7.5, -7.5]) % 2


@idiom
def idiom_div_rounding_floor(t):
    return t.tensor([7.0, -7.0]).div(2, rounding_mode="floor")


@idiom
def idiom_add_sub_alpha(t):
    x, y = t.tensor(data(0, 3)), t.tensor(data(1, 3))
    return x.add(y, alpha=2), x.sub(y, alpha=0.5), x.mul(y), x.div(y)


@idiom
def idiom_broadcasting(t):
    return t.tensor(data(0, 3, 1)) + t.tensor(data(1, 4)), t.tensor(data(2, 2, 3)) * t.ones(3)


@idiom
def idiom_neg_abs_sign_square(t):
    x = t.tensor([-1.5, 0.0, 2.0])
    return -x, abs(x), x.abs(), x.sign(), x.square()


@idiom
def idiom_maximum_minimum(t):
    x, y = t.tensor(data(0, 4)), t.tensor(data(1, 4))
    return t.maximum(x, y), t.minimum(x, y), t.max(x, y)


# ==============================================================================================
# comparisons and masks


@idiom
def idiom_eq_ne_bool_tensors(t):
    a, b = t.tensor([1, 2, 3]), t.tensor([1, 0, 3])
    return a == b, a != b, a.eq(b), a.ne(0), t.eq(a, b)


@idiom
def idiom_eq_int_float(t):
    return t.tensor([1, 2]) == t.tensor([1.0, 3.0])


@idiom
def idiom_order_comparisons(t):
    x = t.tensor(data(0, 5))
    return x > 0, x >= 0.5, x < 0, x <= -0.5, x.gt(0), x.lt(t.zeros(5))


@idiom
def idiom_mask_multiply(t):
    x, tgt = t.tensor(data(0, 4)), t.tensor([3, 0, 5, 0])
    return x * (tgt != 0)


@idiom
def idiom_masked_mean_loss(t):
    losses, tgt = t.tensor(data(0, 2, 3)).abs(), t.tensor([[3, 1, 0], [2, 0, 0]])
    mask = tgt != 0
    return (losses * mask).sum() / mask.sum(), mask.sum(dim=1)


@idiom
def idiom_where_scalar_first(t):
    tgt, x = t.tensor([0, 1, 0, 2]), t.tensor(data(0, 4))
    return t.where(tgt == 0, 0.0, x)


@idiom
def idiom_where_tensors_and_scalar_other(t):
    x = t.tensor(data(0, 5))
    return t.where(x > 0, x, t.zeros_like(x)), t.where(x > 0, x, 0.0)


@idiom
def idiom_and_or_invert(t):
    a, b = t.tensor([True, True, False]), t.tensor([True, False, False])
    return a & b, a | b, ~a, a ^ b, t.logical_not(a), t.logical_and(a, b)


@idiom
def idiom_accuracy(t):
    pred, tgt = t.tensor([1, 2, 3, 4]), t.tensor([1, 0, 3, 0])
    correct = pred.eq(tgt).sum().item()
    return correct, (pred == tgt).float().mean(), correct / len(tgt)


@idiom
def idiom_isnan_isinf(t):
    x = t.tensor([1.0, float("nan"), float("inf"), -float("inf")])
    return t.isnan(x), x.isinf(), t.isfinite(x), t.isnan(x).any().item()


# ==============================================================================================
# reductions


@idiom
def idiom_sum_all_and_dim(t):
    x = t.tensor(data(0, 2, 3))
    return x.sum(), x.sum(dim=0), x.sum(1), x.sum(-1), t.sum(x, dim=1)


@idiom
def idiom_sum_keepdim(t):
    x = t.tensor(data(0, 2, 3))
    return x.sum(dim=1, keepdim=True), x.sum(dim=(0, 1))


@idiom
def idiom_sum_axis_keepdims(t):
    x = t.tensor(data(0, 2, 3))
    return x.sum(axis=1, keepdims=True), x.sum(axis=0)


@idiom
def idiom_bool_and_int_sums_are_int64(t):
    return t.tensor([True, False, True]).sum(), t.tensor([1, 2], dtype=t.int32).sum()


@idiom
def idiom_mean_dim(t):
    x = t.tensor(data(0, 2, 3))
    return x.mean(), x.mean(dim=0), x.mean(1, keepdim=True), t.mean(x)


@idiom
def idiom_mean_axis_keepdims(t):
    x = t.tensor(data(0, 2, 3))
    return x.mean(axis=-1, keepdims=True)


@idiom(raises=True)
def idiom_mean_of_int_raises(t):
    return t.tensor([1, 2]).mean()


@idiom
def idiom_max_min_all(t):
    x = t.tensor(data(0, 3, 4))
    return x.max(), x.min(), t.max(x)


@idiom
def idiom_max_dim_named_tuple(t):
    return t.tensor(data(0, 3, 4)).max(dim=1)


@idiom
def idiom_max_dim_fields(t):
    r = t.tensor(data(0, 3, 4)).max(1)
    return r.values, r.indices, r[0], r[1]


@idiom
def idiom_max_dim_keepdim(t):
    return t.tensor(data(0, 3, 4)).max(dim=0, keepdim=True)


@idiom
def idiom_min_dim_unpack(t):
    values, indices = t.min(t.tensor(data(0, 3, 4)), dim=1)
    return values, indices


@idiom
def idiom_max_axis_keepdims(t):
    return t.tensor(data(0, 3, 4)).max(axis=1, keepdims=True)


@idiom
def idiom_amax_amin(t):
    x = t.tensor(data(0, 2, 3, 4))
    return x.amax(dim=1), x.amax(dim=(0, 2)), x.amin(-1, keepdim=True)


@idiom
def idiom_argmax_argmin(t):
    x = t.tensor(data(0, 3, 4))
    return x.argmax(), x.argmax(dim=1), t.argmax(x, dim=0, keepdim=True), x.argmin(1)


@idiom
def idiom_var_std_default_unbiased(t):
    x = t.tensor(data(0, 3, 4))
    return x.var(), x.std(), x.var(dim=1), x.std(0)


@idiom
def idiom_var_std_biased(t):
    x = t.tensor(data(0, 3, 4))
    return x.var(unbiased=False), x.std(dim=1, unbiased=False), x.var(1, correction=0)


@idiom
def idiom_std_keepdim(t):
    return t.tensor(data(0, 3, 4)).std(dim=1, keepdim=True)


@idiom
def idiom_all_any(t):
    m = t.tensor([[True, False], [True, True]])
    return m.all(), m.any(), m.all(dim=1), m.any(dim=0), t.all(m), (m.sum() > 2).item()


@idiom
def idiom_all_any_axis_keepdims(t):
    m = t.tensor([[True, False], [True, True]])
    return m.all(axis=1), m.any(axis=0, keepdims=True)


@idiom
def idiom_all_any_on_ints(t):
    return t.tensor([1, 0, 2]).any(), t.tensor([1, 0, 2]).all()


@idiom
def idiom_logsumexp(t):
    x = t.tensor(data(0, 3, 4))
    return t.logsumexp(x, dim=1), x.logsumexp(dim=-1, keepdim=True)


@idiom
def idiom_logsumexp_axis(t):
    return t.logsumexp(t.tensor(data(0, 3, 4)), axis=1)


@idiom
def idiom_norm(t):
    x = t.tensor(data(0, 3, 4))
    return x.norm(), x.norm(dim=1), x.norm(p=1), x.norm(2, dim=-1, keepdim=True), t.norm(x)


@idiom
def idiom_sort(t):
    x = t.tensor(data(0, 3, 4))
    return x.sort(), x.sort(dim=0), t.sort(x, descending=True)


@idiom
def idiom_sort_unpack(t):
    values, indices = t.tensor(data(0, 6)).sort(descending=True)
    return values, indices


@idiom
def idiom_argsort(t):
    x = t.tensor(data(0, 3, 4))
    return x.argsort(), x.argsort(dim=0, descending=True), t.argsort(x)


@idiom
def idiom_topk(t):
    x = t.tensor(data(0, 3, 5))
    return x.topk(2), x.topk(3, dim=0), t.topk(x, 2, largest=False)


@idiom
def idiom_topk1_greedy_decode(t):
    decoder_output = t.tensor(data(0, 2, 7)).log_softmax(dim=1)
    topv, topi = decoder_output.topk(1)
    return topv, topi, topi.squeeze(-1).detach()


# ==============================================================================================
# shape ops


@idiom
def idiom_view_reshape(t):
    x = t.tensor(data(0, 2, 3, 4))
    return x.view(6, 4), x.view(-1), x.reshape(2, -1), x.reshape((4, 6)), x.view(2, 3, 2, 2)


@idiom
def idiom_view_as_reshape_as(t):
    x, y = t.tensor(data(0, 2, 6)), t.zeros(3, 4)
    return x.view_as(y), x.reshape_as(y)


@idiom(raises=True)
def idiom_view_bad_size_raises(t):
    return t.tensor(data(0, 2, 3)).view(4, -1)


@idiom(raises=True)
def idiom_view_after_transpose_raises(t):
    return t.tensor(data(0, 2, 3)).transpose(0, 1).view(-1)


@idiom
def idiom_transpose_contiguous_view(t):
    out = t.tensor(data(0, 5, 2, 3))  # (T, B, H)
    return out.transpose(0, 1).contiguous().view(2, -1)


@idiom
def idiom_permute(t):
    x = t.tensor(data(0, 2, 3, 4))
    return x.permute(2, 0, 1), x.permute((1, 2, 0)), t.permute(x, (0, 2, 1))


@idiom
def idiom_transpose_3d(t):
    x = t.tensor(data(0, 2, 3, 4))
    return x.transpose(0, 1), x.transpose(-1, -2), t.transpose(x, 1, 2)


@idiom
def idiom_T_2d_and_mT(t):
    x, y = t.tensor(data(0, 2, 3)), t.tensor(data(1, 4, 2, 3))
    return x.T, y.mT


@idiom
def idiom_t_method(t):
    return t.tensor(data(0, 2, 3)).t()


@idiom
def idiom_size_shape_numel_dim(t):
    x = t.tensor(data(0, 2, 3, 4))
    return x.size(), x.size(0), x.size(-1), x.shape, x.shape[1], x.numel(), x.dim(), x.ndim


@idiom
def idiom_size_equals_tuple(t):
    x = t.tensor(data(0, 2, 3))
    return x.size() == (2, 3), x.shape == (2, 3), len(x), t.numel(x)


@idiom
def idiom_unsqueeze(t):
    x = t.tensor(data(0, 2, 3))
    return x.unsqueeze(0), x.unsqueeze(1), x.unsqueeze(-1), t.unsqueeze(x, 2)


@idiom
def idiom_squeeze(t):
    x = t.tensor(data(0, 1, 3, 1))
    return x.squeeze(), x.squeeze(0), x.squeeze(-1), x.squeeze(1), t.squeeze(x, 2)


@idiom
def idiom_squeeze_tuple_dims(t):
    return t.tensor(data(0, 1, 3, 1)).squeeze((0, 2))


@idiom
def idiom_flatten(t):
    x = t.tensor(data(0, 2, 3, 4))
    return x.flatten(), x.flatten(1), x.flatten(0, 1), t.flatten(x, start_dim=1)


@idiom
def idiom_expand(t):
    x = t.tensor(data(0, 3, 1))
    return x.expand(3, 4), x.expand(-1, 2), x.expand(2, 3, 5), x.expand((3, 2))


@idiom
def idiom_expand_as(t):
    x, y = t.tensor(data(0, 1, 4)), t.zeros(3, 4)
    return x.expand_as(y)


@idiom
def idiom_repeat(t):
    x = t.tensor(data(0, 2, 3))
    return x.repeat(2, 1), x.repeat(1, 2), x.repeat(2, 1, 1)


@idiom
def idiom_flip(t):
    x = t.tensor(data(0, 2, 3))
    return x.flip(0), x.flip([0, 1]), t.flip(x, dims=(1,))


@idiom
def idiom_chunk_even(t):
    return t.tensor(data(0, 6, 2)).chunk(3)


@idiom
def idiom_chunk_uneven_5_into_2(t):
    return t.tensor(data(0, 5, 2)).chunk(2)


@idiom
def idiom_chunk_uneven_6_into_4(t):
    return t.tensor(data(0, 6, 2)).chunk(4)


@idiom
def idiom_chunk_gates(t):
    gates = t.tensor(data(0, 2, 12))
    i, f, g, o = gates.chunk(4, 1)
    return i, f, g, o


@idiom
def idiom_chunk_function(t):
    return t.chunk(t.tensor(data(0, 2, 6)), 2, dim=-1)


@idiom
def idiom_split_int(t):
    return t.tensor(data(0, 6, 2)).split(2)


@idiom
def idiom_split_int_uneven(t):
    return t.tensor(data(0, 5, 2)).split(2)


@idiom
def idiom_split_list(t):
    return t.tensor(data(0, 5, 2)).split([1, 4]), t.tensor(data(1, 2, 5)).split([2, 3], dim=1)


@idiom
def idiom_split_function(t):
    return t.split(t.tensor(data(0, 2, 5)), 2, dim=1)


@idiom(raises=True)
def idiom_split_list_bad_sum_raises(t):
    return t.tensor(data(0, 5, 2)).split([1, 2])


@idiom
def idiom_cat(t):
    a, b = t.tensor(data(0, 2, 3)), t.tensor(data(1, 2, 3))
    return t.cat([a, b]), t.cat((a, b), dim=1), t.cat([a, b], dim=-1), t.concat([a, b], dim=0)


@idiom
def idiom_cat_bidirectional_hidden(t):
    h = t.tensor(data(0, 2, 3, 4))  # (layers * directions, B, H)
    return t.cat((h[-2], h[-1]), dim=1)


@idiom(raises=True)
def idiom_cat_mismatched_shapes_raises(t):
    return t.cat([t.zeros(2, 3), t.zeros(2, 4)])


@idiom
def idiom_stack(t):
    a, b = t.tensor(data(0, 2, 3)), t.tensor(data(1, 2, 3))
    return t.stack([a, b]), t.stack((a, b), dim=1), t.stack([a, b], dim=-1)


@idiom
def idiom_stack_loop_outputs(t):
    outputs = [t.tensor(data(k, 2, 3)) for k in range(4)]
    return t.stack(outputs, dim=1), t.stack([t.tensor(1.0), t.tensor(2.0)])


@idiom
def idiom_unbind(t):
    x = t.tensor(data(0, 3, 2))
    return x.unbind(), x.unbind(1), t.unbind(x, dim=1)


@idiom
def idiom_narrow(t):
    x = t.tensor(data(0, 3, 5))
    return x.narrow(1, 1, 2), t.narrow(x, 0, 0, 2)


@idiom
def idiom_index_select(t):
    x = t.tensor(data(0, 4, 3))
    idx = t.tensor([2, 0, 2])
    return x.index_select(0, idx), t.index_select(x, 1, idx)


@idiom
def idiom_gather_target_logprob(t):
    logp = t.tensor(data(0, 3, 5)).log_softmax(dim=1)
    target = t.tensor([4, 0, 2])
    return logp.gather(1, target.unsqueeze(1)).squeeze(1)


@idiom
def idiom_gather_3d(t):
    x = t.tensor(data(0, 2, 3, 4))
    index = t.tensor([[[0, 3], [1, 1], [2, 0]], [[3, 3], [0, 1], [2, 2]]])
    return x.gather(2, index), t.gather(x, -1, index)


@idiom
def idiom_masked_fill(t):
    x = t.tensor(data(0, 2, 3))
    mask = t.tensor([[True, False, True], [False, False, True]])
    return x.masked_fill(mask, 0.0), x.masked_fill(~mask, -1), t.masked_fill(x, mask, 2.0)


@idiom
def idiom_masked_fill_broadcast_inf_softmax(t):
    scores = t.tensor(data(0, 2, 3, 4))  # (B, S, T)
    mask = t.tensor([[1, 1, 1, 0], [1, 1, 0, 0]]).unsqueeze(1)  # (B, 1, T)
    return scores.masked_fill(mask == 0, float("-inf")).softmax(dim=-1)


@idiom
def idiom_contiguous_clone(t):
    x = t.tensor(data(0, 2, 3))
    y = x.clone()
    x.mul_(0)
    return x.transpose(0, 1).contiguous(), y


# ==============================================================================================
# indexing and assignment


@idiom
def idiom_index_int_slices(t):
    x = t.tensor(data(0, 4, 5))
    return x[0], x[-1], x[1:3], x[:, 0], x[:, -1], x[::2], x[1:, 2:4], x[..., -1]


@idiom
def idiom_index_scalar_element_is_0d_tensor(t):
    x = t.tensor(data(0, 4, 5))
    return x[0, 1], x[0][1], t.tensor([5, 6])[1]


@idiom
def idiom_index_none(t):
    x = t.tensor(data(0, 2, 3))
    return x[None], x[:, None], x[..., None], x[None, :, None].shape


@idiom
def idiom_index_int_arrays(t):
    x = t.tensor(data(0, 4, 3))
    return x[[0, 2]], x[t.tensor([3, 3, 0])], x[:, [2, 0]], x[[0, 1], [2, 2]]


@idiom
def idiom_index_pick_per_row(t):
    logp = t.tensor(data(0, 3, 5))
    target = t.tensor([4, 0, 2])
    return logp[t.arange(3), target], logp[range(3), target]


@idiom
def idiom_index_bool_mask(t):
    x = t.tensor(data(0, 3, 4))
    return x[x > 0], x[t.tensor([True, False, True])]


@idiom(raises=True)
def idiom_index_out_of_range_raises(t):
    return t.tensor([1, 2])[5]


@idiom
def idiom_setitem_row_and_column(t):
    x = t.zeros(3, 4)
    x[0] = 1
    x[:, 1] = t.tensor([7.0, 8.0, 9.0])
    x[2, 3] = 5.0
    return x


@idiom
def idiom_setitem_mask(t):
    x = t.tensor(data(0, 3, 4))
    x[x < 0] = 0
    return x


@idiom
def idiom_setitem_int_to_float_and_float_to_int(t):
    x, y = t.zeros(3), t.zeros(3, dtype=t.long)
    x[1] = 2
    y[1] = 2.7
    return x, y


@idiom
def idiom_setitem_non_leaf_in_graph(t):
    x = leaf(t, 0, 4)
    y = x * 1
    y[0] = 0.0
    y.sum().backward()
    return y, x.grad


@idiom
def idiom_setitem_collects_outputs_with_grad(t):
    x = leaf(t, 0, 3, 2)
    outputs = t.zeros(3, 2)
    for i in range(3):
        outputs[i] = x[i] * (i + 1)
    outputs.sum().backward()
    return outputs, outputs.requires_grad, x.grad


@idiom(raises=True)
def idiom_setitem_leaf_requiring_grad_raises(t):
    x = leaf(t, 0, 4)
    x[0] = 0.0


# ==============================================================================================
# in-place ops and autograd's checks


@idiom
def idiom_inplace_arithmetic(t):
    x = t.tensor(data(0, 3))
    x.add_(1)
    x.sub_(t.tensor([0.5, 0.5, 0.5]))
    x.mul_(2)
    x.div_(4)
    x.add_(t.ones(3), alpha=3)
    return x


@idiom
def idiom_inplace_after_an_op_read_the_tensor_keeps_that_ops_gradient(t):
    w = leaf(t, 0, 3)
    x = t.zeros(3)
    y = x + w  # recorded before x took a place in the graph
    x.add_(w)
    y.sum().backward()
    return w.grad


@idiom
def idiom_inplace_on_a_non_leaf_after_an_op_read_it(t):
    w = leaf(t, 0, 3)
    x = w * 1.0
    y = x + 0.0  # reads x before the write; add's backward reads no input
    x.mul_(3.0)
    (y * 2 + x).sum().backward()  # y's gradient goes to w once, x's three times
    return w.grad


@idiom
def idiom_inplace_returns_self(t):
    x = t.zeros(3)
    return x.add_(1) is x, x.zero_() is x, x.fill_(2.0) is x


@idiom
def idiom_augmented_assignment(t):
    x = t.tensor(data(0, 3))
    y = x
    x += 1
    x *= 3
    x -= t.ones(3)
    x /= 2
    return x, y is x


@idiom
def idiom_zero_fill_copy_(t):
    x, y, z = t.tensor(data(0, 3)), t.tensor(data(1, 2, 3)), t.zeros(2, 3)
    x.zero_()
    y.fill_(2.5)
    z.copy_(t.tensor(data(2, 3)))
    return x, y, z


@idiom
def idiom_clamp_masked_fill_inplace(t):
    x, y = t.tensor(data(0, 5)), t.tensor(data(1, 5))
    x.clamp_(-0.5, 0.5)
    y.masked_fill_(y > 0, 0.0)
    return x, y


@idiom
def idiom_sgd_by_hand_under_no_grad(t):
    w = leaf(t, 0, 3)
    (w * w).sum().backward()
    with t.no_grad():
        w -= 0.1 * w.grad
        w.add_(1)
    w.grad.zero_()
    return w, w.grad, w.requires_grad, w.is_leaf, w.grad_fn is None


@idiom(raises=True)
def idiom_inplace_on_leaf_requiring_grad_raises(t):
    x = leaf(t, 0, 3)
    x.add_(1)


@idiom(raises=True)
def idiom_augmented_assignment_on_leaf_requiring_grad_raises(t):
    x = leaf(t, 0, 3)
    x += 1


@idiom(raises=True)
def idiom_modified_saved_output_under_no_grad_raises(t):
    x = leaf(t, 0, 3)
    y = x.sigmoid()
    with t.no_grad():
        y.mul_(2)
    y.sum().backward()


@idiom(raises=True)
def idiom_modified_saved_output_raises(t):
    x = leaf(t, 0, 3)
    y = x.exp()
    y.add_(1)
    y.sum().backward()


@idiom(raises=True)
def idiom_modified_saved_input_raises(t):
    x = leaf(t, 0, 3)
    w = t.tensor([1.0, 2.0, 3.0])
    y = x * w
    w.mul_(2)
    y.sum().backward()


@idiom
def idiom_inplace_after_op_that_saves_nothing(t):
    x = leaf(t, 0, 3)
    z = x * 2
    z.add_(1)
    z.sum().backward()
    return z, x.grad


# ==============================================================================================
# conversions


@idiom
def idiom_to_dtype(t):
    x = t.tensor([-1.7, 0.4, 2.7])
    return x.to(t.float64), x.to(t.long), x.to(dtype=t.float32), x.to("cpu")


@idiom
def idiom_float_double_long_int_bool(t):
    x = t.tensor([-1.7, 0.0, 2.7])
    return x.double(), x.long(), x.int(), x.bool(), t.tensor([1, 2]).float()


@idiom
def idiom_to_other_and_type_as(t):
    x, i = t.tensor([1.5, 2.5]), t.tensor([1, 2])
    return x.to(i), i.type_as(x), x.type_as(i)


@idiom
def idiom_tolist(t):
    return t.tensor([[1.5, 2.0], [3.0, 4.0]]).tolist(), t.tensor([1, 2]).tolist(), \
        t.tensor(2.5).tolist()


@idiom
def idiom_item_types(t):
    return t.tensor([2.5]).item(), t.tensor(3).item(), t.tensor(True).item()


@idiom
def idiom_float_int_bool_builtins(t):
    return float(t.tensor(2.5)), int(t.tensor(3.7)), bool(t.tensor([1.0])), int(t.tensor([4]))


@idiom(raises=True)
def idiom_item_of_many_raises(t):
    return t.tensor([1.0, 2.0]).item()


@idiom
def idiom_loss_item_accumulation(t):
    total = 0.0
    for k in range(3):
        total += t.tensor(data(k, 4)).pow(2).mean().item()
    return total


@idiom
def idiom_numpy_values(t):
    return t.tensor([[1.0, 2.0]]).numpy(), t.tensor([1, 2]).numpy(), t.tensor([True]).numpy()


@idiom
def idiom_numpy_shares_memory(t):
    x = t.zeros(3)
    x.numpy()[0] = 1.0
    return x


@idiom
def idiom_detach_numpy(t):
    x = leaf(t, 0, 3)
    return (x * 2).detach().numpy()


@idiom(raises=True)
def idiom_numpy_of_tensor_requiring_grad_raises(t):
    return leaf(t, 0, 3).numpy()


@idiom
def idiom_device(t):
    x = t.tensor([1.0])
    return str(x.device), x.cpu()


# ==============================================================================================
# elementwise math and activations


@idiom
def idiom_clamp_clip(t):
    x = t.tensor(data(0, 6))
    return x.clamp(-0.5, 0.5), x.clamp(min=0), x.clamp(max=0.1), x.clip(-1, 1), \
        t.clamp(x, min=-0.2), t.clip(x, 0, 1)


@idiom
def idiom_exp_log_sqrt(t):
    x = t.tensor(data(0, 5)).abs() + 0.1
    return x.exp(), x.log(), x.sqrt(), t.exp(x), t.log(x), t.sqrt(x)


@idiom
def idiom_exp_log_sqrt_edges(t):
    x = t.tensor([0.0, -1.0, 100.0])
    return x.exp(), x.log(), x.sqrt(), t.isnan(x.sqrt())


@idiom
def idiom_tanh_sigmoid_relu(t):
    x = t.tensor(data(0, 6))
    return x.tanh(), x.sigmoid(), x.relu(), t.tanh(x), t.sigmoid(x), t.relu(x)


@idiom
def idiom_sigmoid_no_overflow(t):
    return t.tensor([-100.0, -30.0, 0.0, 30.0, 100.0]).sigmoid()


@idiom
def idiom_softmax_log_softmax(t):
    x = t.tensor(data(0, 3, 4))
    return x.softmax(dim=1), x.softmax(0), t.softmax(x, dim=-1), x.log_softmax(dim=1), \
        t.log_softmax(x, dim=0)


@idiom
def idiom_softmax_large_logits(t):
    x = t.tensor([[1000.0, 0.0, -1000.0], [5.0, 5.0, 5.0]])
    return x.softmax(dim=1), x.log_softmax(dim=1)


# ==============================================================================================
# matrix products


@idiom
def idiom_matmul_1d_1d(t):
    return t.tensor(data(0, 3)) @ t.tensor(data(1, 3))


@idiom
def idiom_matmul_2d_and_vectors(t):
    a, v, w = t.tensor(data(0, 2, 3)), t.tensor(data(1, 3)), t.tensor(data(2, 2))
    return a @ v, w @ a, a @ a.T, t.matmul(a, v), a.matmul(a.T)


@idiom
def idiom_matmul_batched_broadcast(t):
    a, b = t.tensor(data(0, 4, 2, 3)), t.tensor(data(1, 3, 5))
    c = t.tensor(data(2, 2, 1, 3, 4))
    return a @ b, a @ t.tensor(data(3, 4, 3, 2)), c @ t.tensor(data(4, 5, 4, 2))


@idiom
def idiom_mm_bmm(t):
    a, b = t.tensor(data(0, 2, 3)), t.tensor(data(1, 3, 4))
    p, q = t.tensor(data(2, 5, 2, 3)), t.tensor(data(3, 5, 3, 4))
    return t.mm(a, b), a.mm(b), t.bmm(p, q), p.bmm(q)


@idiom
def idiom_attention_bmm_softmax(t):
    q, k = t.tensor(data(0, 2, 1, 4)), t.tensor(data(1, 2, 5, 4))
    weights = t.softmax(t.bmm(q, k.transpose(1, 2)), dim=-1)
    return weights, t.bmm(weights, k)


@idiom(raises=True)
def idiom_matmul_mismatch_raises(t):
    return t.zeros(2, 3) @ t.zeros(2, 3)


@idiom(raises=True)
def idiom_mm_of_3d_raises(t):
    return t.mm(t.zeros(2, 2, 3), t.zeros(3, 4))


@idiom(raises=True)
def idiom_bmm_of_2d_raises(t):
    return t.bmm(t.zeros(2, 3), t.zeros(3, 4))


@idiom
def idiom_einsum_matmul(t):
    a, b = t.tensor(data(0, 2, 3)), t.tensor(data(1, 3, 4))
    return t.einsum("ij,jk->ik", a, b), t.einsum("ij->ji", a), t.einsum("ij,ij->i", a, a)


@idiom
def idiom_einsum_batched(t):
    a, b = t.tensor(data(0, 5, 2, 3)), t.tensor(data(1, 5, 3, 4))
    return t.einsum("bij,bjk->bik", a, b), t.einsum("bi,bi->b", a[:, 0], a[:, 1])


@idiom
def idiom_einsum_diagonal(t):
    return t.einsum("ii->i", t.tensor(data(0, 3, 3)))


# ==============================================================================================
# autograd


@idiom
def idiom_backward_leaf_grad(t):
    x = leaf(t, 0, 3)
    y = (x ** 2).sum()
    y.backward()
    return x.grad, y.requires_grad, x.is_leaf, y.is_leaf


@idiom
def idiom_grad_fn_and_requires_grad_flow(t):
    x, c = leaf(t, 0, 3), t.tensor(data(1, 3))
    y = x * c
    return x.grad_fn is None, y.grad_fn is not None, y.requires_grad, c.requires_grad, \
        (c * 2).requires_grad


@idiom
def idiom_grad_accumulates_over_two_backwards(t):
    x = leaf(t, 0, 3)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    return x.grad


@idiom
def idiom_retain_graph(t):
    x = leaf(t, 0, 3)
    y = (x.tanh() * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    return x.grad


@idiom(raises=True)
def idiom_second_backward_without_retain_graph_raises(t):
    x = leaf(t, 0, 3)
    y = (x.tanh() * x).sum()
    y.backward()
    y.backward()


@idiom(raises=True)
def idiom_backward_non_scalar_raises(t):
    x = leaf(t, 0, 3)
    (x * 2).backward()


@idiom
def idiom_backward_with_gradient_argument(t):
    x = leaf(t, 0, 3)
    y = x * 2
    y.backward(t.tensor([1.0, 0.5, 0.0]))
    return x.grad


@idiom(raises=True)
def idiom_backward_without_requires_grad_raises(t):
    t.tensor([1.0, 2.0]).sum().backward()


@idiom
def idiom_non_leaf_grad_is_none_unless_retained(t):
    x = leaf(t, 0, 3)
    h, k = x * 2, x * 3
    k.retain_grad()
    (h * k).sum().backward()
    return h.grad, k.grad, x.grad


@idiom
def idiom_detach(t):
    x = leaf(t, 0, 3)
    d = (x * 2).detach()
    return d, d.requires_grad, d.grad_fn is None, d.is_leaf


@idiom
def idiom_detach_shares_storage(t):
    x = leaf(t, 0, 3)
    x.detach().zero_()
    return x


@idiom
def idiom_detach_stops_gradient(t):
    x = leaf(t, 0, 3)
    (x * x.detach()).sum().backward()
    return x.grad


@idiom
def idiom_requires_grad_(t):
    x = t.tensor(data(0, 3))
    y = x.requires_grad_()
    return y is x, x.requires_grad, x.requires_grad_(False).requires_grad


@idiom(raises=True)
def idiom_requires_grad_on_int_raises(t):
    return t.tensor([1, 2]).requires_grad_()


@idiom(raises=True)
def idiom_int_tensor_requires_grad_kwarg_raises(t):
    return t.tensor([1, 2], requires_grad=True)


@idiom
def idiom_no_grad(t):
    x = leaf(t, 0, 3)
    with t.no_grad():
        y = x * 2
        inside = t.is_grad_enabled()
    return y.requires_grad, y.grad_fn is None, inside, t.is_grad_enabled()


@idiom
def idiom_enable_grad_inside_no_grad(t):
    x = leaf(t, 0, 3)
    with t.no_grad():
        with t.enable_grad():
            y = x * 2
        z = x * 2
    return y.requires_grad, z.requires_grad


@idiom
def idiom_set_grad_enabled(t):
    x = leaf(t, 0, 3)
    with t.set_grad_enabled(False):
        y = x * 2
    return y.requires_grad, t.is_grad_enabled()


@idiom
def idiom_no_grad_decorator(t):
    @t.no_grad()
    def evaluate(x):
        return x * 2, t.is_grad_enabled()

    y, enabled = evaluate(leaf(t, 0, 3))
    return y.requires_grad, enabled, t.is_grad_enabled()


@idiom
def idiom_autograd_grad(t):
    x = leaf(t, 0, 3)
    (g,) = t.autograd.grad((x ** 3).sum(), x)
    return g, x.grad


@idiom
def idiom_autograd_grad_two_inputs(t):
    x, w = leaf(t, 0, 3), leaf(t, 1, 3)
    gx, gw = t.autograd.grad((x * w).sum(), [x, w])
    return gx, gw


@idiom
def idiom_autograd_grad_create_graph_second_derivative(t):
    x = leaf(t, 0, 3)
    (g,) = t.autograd.grad((x ** 3).sum(), x, create_graph=True)
    g.sum().backward()
    return g, x.grad


@idiom
def idiom_register_hook(t):
    x = leaf(t, 0, 3)
    y = x * 2
    y.register_hook(lambda g: g * 10)
    y.sum().backward()
    return x.grad


@idiom
def idiom_grad_zero_manually(t):
    x = leaf(t, 0, 3)
    (x * 2).sum().backward()
    x.grad.zero_()
    (x * 3).sum().backward()
    return x.grad


@idiom
def idiom_grad_broadcasting(t):
    a, b = leaf(t, 0, 3, 1), leaf(t, 1, 1, 4)
    (a * b + a).sum().backward()
    return a.grad, b.grad


@idiom
def idiom_grad_elementwise(t):
    x = t.tensor(np.abs(data(0, 5)) + 0.1, requires_grad=True)
    (x.exp() + x.log() + x.sqrt() + x.tanh() + x.sigmoid() + x.relu() + x ** 1.5).sum().backward()
    return x.grad


@idiom
def idiom_grad_pow_tensor_exponent(t):
    x, p = t.tensor([2.0, 3.0], requires_grad=True), t.tensor([3.0, 0.5], requires_grad=True)
    (x ** p).sum().backward()
    return x.grad, p.grad


@idiom
def idiom_grad_clamp_at_bounds(t):
    x = t.tensor([-1.0, 0.0, 0.5, 1.0, 2.0], requires_grad=True)
    x.clamp(0, 1).sum().backward()
    return x.grad


@idiom
def idiom_grad_relu_abs_at_zero(t):
    x, y = t.tensor([-1.0, 0.0, 2.0], requires_grad=True), t.tensor([-1.0, 0.0, 2.0],
                                                                      requires_grad=True)
    x.relu().sum().backward()
    y.abs().sum().backward()
    return x.grad, y.grad


@idiom
def idiom_grad_max_all_with_ties(t):
    x, y = t.tensor([1.0, 3.0, 3.0], requires_grad=True), t.tensor([1.0, 3.0, 3.0],
                                                                     requires_grad=True)
    x.max().backward()
    y.amax().backward()
    return x.grad, y.grad


@idiom
def idiom_grad_max_dim(t):
    x = leaf(t, 0, 3, 4)
    x.max(dim=1).values.sum().backward()
    return x.grad


@idiom
def idiom_grad_reductions(t):
    x = leaf(t, 0, 3, 4)
    (x.mean() + x.var() + x.std(dim=1).sum() + x.norm() + x.logsumexp(dim=0).sum()).backward()
    return x.grad


@idiom
def idiom_grad_softmax_weighted(t):
    x = leaf(t, 0, 2, 4)
    w = t.tensor(data(1, 2, 4))
    ((x.softmax(dim=1) * w).sum() + (x.log_softmax(dim=0) * w).sum()).backward()
    return x.grad


@idiom
def idiom_grad_indexing_accumulates(t):
    x = leaf(t, 0, 4, 2)
    (x[[0, 0, 2]].sum() + x[1:3].sum() * 2 + x[x > 0].sum()).backward()
    return x.grad


@idiom
def idiom_grad_view_unsqueeze_expand(t):
    x = leaf(t, 0, 2, 3)
    y = x.view(3, 2).reshape(-1).unsqueeze(0).expand(2, 6)
    (y * t.tensor(data(1, 2, 6))).sum().backward()
    return x.grad


@idiom
def idiom_grad_transpose(t):
    x = leaf(t, 0, 2, 3, 4)
    (x.transpose(0, 1) * t.tensor(data(1, 3, 2, 4))).sum().backward()
    return x.grad


@idiom
def idiom_grad_permute(t):
    x = leaf(t, 0, 2, 3, 4)
    (x.permute(2, 0, 1) * t.tensor(data(1, 4, 2, 3))).sum().backward()
    return x.grad


@idiom
def idiom_grad_T_2d(t):
    x = leaf(t, 0, 2, 3)
    (x.T * t.tensor(data(1, 3, 2))).sum().backward()
    return x.grad


@idiom
def idiom_grad_cat_stack_split_chunk(t):
    a, b = leaf(t, 0, 2, 3), leaf(t, 1, 2, 3)
    c = t.cat([a, b], dim=1) * t.tensor(data(2, 2, 6))
    s = t.stack([a, b]).sum(0)
    p, q = c.split([2, 4], dim=1)
    r1, r2 = s.chunk(2)
    (p.sum() * 2 + q.sum() + r1.sum() * 3 + r2.sum()).backward()
    return a.grad, b.grad


@idiom
def idiom_grad_gather_masked_fill_where(t):
    x = leaf(t, 0, 3, 4)
    g = x.gather(1, t.tensor([[0], [3], [3]])).sum()
    m = x.masked_fill(x > 0.5, 0.0).sum()
    w = t.where(x < 0, x * 3, x).sum()
    (g + m + w).backward()
    return x.grad


@idiom
def idiom_grad_matmul(t):
    a, b = leaf(t, 0, 2, 3, 4), leaf(t, 1, 4, 5)
    (a @ b).pow(2).sum().backward()
    return a.grad, b.grad


@idiom
def idiom_grad_repeat_flip_index_select(t):
    x = leaf(t, 0, 3, 2)
    y = x.repeat(2, 1).flip(0).index_select(0, t.tensor([0, 5, 5]))
    (y * t.tensor(data(1, 3, 2))).sum().backward()
    return x.grad


@idiom
def idiom_grad_clone(t):
    x = leaf(t, 0, 3)
    (x.clone() * 2).sum().backward()
    return x.grad


# ==============================================================================================
# nn


@idiom
def idiom_linear_shapes(t):
    lin = t.nn.Linear(4, 3)
    y = lin(t.tensor(data(0, 5, 4)))
    return lin.weight.shape, lin.bias.shape, y.shape, lin.in_features, lin.out_features


@idiom
def idiom_linear_no_bias(t):
    lin = t.nn.Linear(4, 3, bias=False)
    return lin.bias is None, len(list(lin.parameters()))


@idiom
def idiom_linear_values_3d_input(t):
    lin = set_params(t, t.nn.Linear(4, 3))
    return lin(t.tensor(data(1, 2, 5, 4)))


@idiom
def idiom_linear_grads(t):
    lin = set_params(t, t.nn.Linear(4, 3))
    lin(t.tensor(data(1, 5, 4))).pow(2).sum().backward()
    return lin.weight.grad, lin.bias.grad


@idiom
def idiom_functional_linear(t):
    x, w, b = t.tensor(data(0, 5, 4)), t.tensor(data(1, 3, 4)), t.tensor(data(2, 3))
    return t.nn.functional.linear(x, w, b), t.nn.functional.linear(x, w)


@idiom
def idiom_embedding(t):
    emb = set_params(t, t.nn.Embedding(10, 4))
    ids = t.tensor([[1, 2, 9], [3, 1, 0]])
    return emb.weight.shape, emb(ids), emb.num_embeddings, emb.embedding_dim


@idiom
def idiom_embedding_grad_accumulates(t):
    emb = set_params(t, t.nn.Embedding(5, 3))
    emb(t.tensor([1, 1, 2])).sum().backward()
    return emb.weight.grad


@idiom
def idiom_embedding_padding_idx(t):
    emb = t.nn.Embedding(5, 3, padding_idx=0)
    row0 = emb.weight[0].detach().clone()
    emb(t.tensor([[0, 2], [0, 0]])).sum().backward()
    return row0, emb.weight.grad[0], emb.padding_idx


@idiom(raises=True)
def idiom_embedding_id_out_of_range_raises(t):
    return t.nn.Embedding(5, 3)(t.tensor([5]))


@idiom
def idiom_lstm_batch_first_shapes(t):
    lstm = recurrent(t).LSTM(3, 4, batch_first=True)
    out, (h, c) = lstm(t.tensor(data(0, 2, 5, 3)))
    return out.shape, h.shape, c.shape


@idiom
def idiom_lstm_seq_first_two_layers_bidirectional_shapes(t):
    lstm = recurrent(t).LSTM(3, 4, num_layers=2, bidirectional=True)
    out, (h, c) = lstm(t.tensor(data(0, 5, 2, 3)))
    return out.shape, h.shape, c.shape


@idiom
def idiom_lstm_unbatched_input(t):
    lstm = recurrent(t).LSTM(3, 4)
    out, (h, c) = lstm(t.tensor(data(0, 5, 3)))
    return out.shape, h.shape, c.shape


@idiom
def idiom_gru_rnn_batch_first_shapes(t):
    gru = recurrent(t).GRU(3, 4, batch_first=True)
    rnn = recurrent(t).RNN(3, 4, batch_first=True, num_layers=2)
    x = t.tensor(data(0, 2, 5, 3))
    (out, h), (out2, h2) = gru(x), rnn(x)
    return out.shape, h.shape, out2.shape, h2.shape


@idiom
def idiom_gru_unbatched_input(t):
    out, h = recurrent(t).GRU(3, 4)(t.tensor(data(0, 5, 3)))
    return out.shape, h.shape


@idiom
def idiom_rnn_unbatched_input(t):
    out, h = recurrent(t).RNN(3, 4)(t.tensor(data(0, 5, 3)))
    return out.shape, h.shape


@idiom
def idiom_lstm_values(t):
    lstm = set_params(t, recurrent(t).LSTM(3, 4, batch_first=True), seed=1)
    out, (h, c) = lstm(t.tensor(data(0, 2, 5, 3)))
    return out, h, c


@idiom
def idiom_lstm_grads(t):
    lstm = set_params(t, recurrent(t).LSTM(3, 4), seed=1)
    x = leaf(t, 0, 5, 2, 3)
    out, (h, c) = lstm(x)
    (out.pow(2).sum() + c.sum()).backward()
    return x.grad, lstm.weight_ih_l0.grad, lstm.weight_hh_l0.grad, lstm.bias_hh_l0.grad


@idiom
def idiom_lstm_batch_first_grads(t):
    lstm = set_params(t, recurrent(t).LSTM(3, 4, batch_first=True), seed=1)
    out, _ = lstm(t.tensor(data(0, 2, 5, 3)))
    out.pow(2).sum().backward()
    return lstm.weight_hh_l0.grad


@idiom
def idiom_lstm_with_initial_state(t):
    lstm = set_params(t, recurrent(t).LSTM(3, 4), seed=1)
    h0, c0 = t.tensor(data(1, 1, 2, 4)), t.tensor(data(2, 1, 2, 4))
    out, (h, c) = lstm(t.tensor(data(0, 5, 2, 3)), (h0, c0))
    return out, h, c


@idiom
def idiom_gru_rnn_values(t):
    gru = set_params(t, recurrent(t).GRU(3, 4), seed=2)
    rnn = set_params(t, recurrent(t).RNN(3, 4, nonlinearity="relu"), seed=3)
    x = t.tensor(data(0, 5, 2, 3))
    return gru(x), rnn(x)


@idiom
def idiom_lstm_parameter_names_and_shapes(t):
    lstm = recurrent(t).LSTM(3, 4, num_layers=2, bidirectional=True)
    return [(name, tuple(p.shape)) for name, p in lstm.named_parameters()]


@idiom
def idiom_cross_entropy(t):
    logits, target = t.tensor(data(0, 4, 5)), t.tensor([1, 0, 4, 2])
    F = t.nn.functional
    return F.cross_entropy(logits, target), F.cross_entropy(logits, target, reduction="sum"), \
        F.cross_entropy(logits, target, reduction="none")


@idiom
def idiom_cross_entropy_ignore_index(t):
    logits, target = t.tensor(data(0, 6, 5)), t.tensor([1, 0, 4, 0, 2, 0])
    return t.nn.functional.cross_entropy(logits, target, ignore_index=0)


@idiom
def idiom_cross_entropy_seq2seq_flattened(t):
    logits, target = leaf(t, 0, 2, 4, 6), t.tensor([[1, 5, 2, 0], [3, 0, 0, 0]])
    loss = t.nn.functional.cross_entropy(logits.view(-1, 6), target.view(-1), ignore_index=0)
    loss.backward()
    return loss, logits.grad


@idiom
def idiom_cross_entropy_class_dim_1(t):
    logits, target = t.tensor(data(0, 2, 6, 4)), t.tensor([[1, 5, 2, 0], [3, 0, 0, 0]])
    return t.nn.functional.cross_entropy(logits, target)


@idiom(raises=True)
def idiom_cross_entropy_target_out_of_range_raises(t):
    return t.nn.functional.cross_entropy(t.tensor(data(0, 2, 3)), t.tensor([1, 3]))


@idiom
def idiom_cross_entropy_loss_module(t):
    logits, target = t.tensor(data(0, 6, 5)), t.tensor([1, 0, 4, 0, 2, 0])
    return t.nn.CrossEntropyLoss()(logits, target), \
        t.nn.CrossEntropyLoss(ignore_index=0)(logits, target)


@idiom
def idiom_nll_loss(t):
    logp, target = t.tensor(data(0, 4, 5)).log_softmax(dim=1), t.tensor([1, 0, 4, 2])
    F = t.nn.functional
    return F.nll_loss(logp, target), F.nll_loss(logp, target, ignore_index=0)


@idiom
def idiom_mse_loss(t):
    x, y = t.tensor(data(0, 3, 4)), t.tensor(data(1, 3, 4))
    F = t.nn.functional
    return F.mse_loss(x, y), F.mse_loss(x, y, reduction="sum")


@idiom
def idiom_mse_loss_module(t):
    return t.nn.MSELoss()(t.tensor(data(0, 3, 4)), t.tensor(data(1, 3, 4)))


@idiom
def idiom_functional_activations(t):
    F = t.nn.functional
    x = t.tensor(data(0, 2, 4))
    return F.relu(x), F.softmax(x, dim=1), F.log_softmax(x, dim=-1), t.nn.ReLU()(x), \
        t.nn.Tanh()(x), t.nn.Sigmoid()(x)


@idiom
def idiom_layer_norm_module(t):
    ln = t.nn.LayerNorm(4)
    return ln(t.tensor(data(0, 3, 4))), ln.weight.shape, ln.bias.shape


@idiom
def idiom_functional_layer_norm(t):
    x = t.tensor(data(0, 3, 4))
    return t.nn.functional.layer_norm(x, (4,)), \
        t.nn.functional.layer_norm(x, [4], t.tensor(data(1, 4)), t.tensor(data(2, 4)))


@idiom
def idiom_dropout_eval_and_p0(t):
    x = t.tensor(data(0, 3, 4))
    d = t.nn.Dropout(0.5)
    d.eval()
    return d(x), t.nn.Dropout(0.0)(x), t.nn.functional.dropout(x, p=0.5, training=False)


@idiom
def idiom_dropout_train_scales(t):
    t.manual_seed(0)
    y = t.nn.Dropout(0.5)(t.ones(1000))
    return y.shape, y.dtype, bool(((y == 0) | (y == 2)).all()), 300 < int((y == 0).sum()) < 700


@idiom
def idiom_sequential_indexing(t):
    model = t.nn.Sequential(t.nn.Linear(4, 8), t.nn.Tanh(), t.nn.Linear(8, 2))
    return len(model), model[0].weight.shape, type(model[1]).__name__, model[-1].out_features, \
        type(model[:2]).__name__, len(model[:2])


@idiom
def idiom_sequential_forward(t):
    model = set_params(t, t.nn.Sequential(t.nn.Linear(4, 8), t.nn.ReLU(), t.nn.Linear(8, 2)))
    return model(t.tensor(data(1, 3, 4)))


@idiom
def idiom_parameters_count_and_state_dict_keys(t):
    model = t.nn.Sequential(t.nn.Linear(4, 8), t.nn.Tanh(), t.nn.Linear(8, 2))
    return len(list(model.parameters())), sum(p.numel() for p in model.parameters()), \
        list(model.state_dict().keys()), [name for name, _ in model.named_parameters()]


@idiom
def idiom_module_subclass(t):
    class Net(t.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = t.nn.Embedding(10, 3)
            self.fc = t.nn.Linear(3, 2)

        def forward(self, ids):
            return self.fc(self.emb(ids)).relu()

    net = set_params(t, Net())
    y = net(t.tensor([[1, 2], [3, 4]]))
    return y, list(net.state_dict()), len(list(net.children())), net.training


@idiom
def idiom_train_eval_flags(t):
    model = t.nn.Sequential(t.nn.Linear(2, 2), t.nn.Dropout(0.1))
    model.eval()
    flags = model.training, model[1].training
    model.train()
    return flags, model.training, model[1].training


@idiom
def idiom_load_state_dict_roundtrip(t):
    a, b = set_params(t, t.nn.Linear(3, 2)), t.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    return b.weight, b(t.tensor(data(1, 3)))


@idiom
def idiom_module_double(t):
    lin = t.nn.Linear(3, 2).double()
    return lin.weight.dtype, lin(t.tensor(data(1, 3), dtype=t.float64)).dtype


@idiom
def idiom_module_zero_grad_set_to_none(t):
    lin = t.nn.Linear(3, 2)
    lin(t.ones(1, 3)).sum().backward()
    had = lin.weight.grad is not None
    lin.zero_grad(set_to_none=True)
    return had, lin.weight.grad, lin.bias.grad


@idiom
def idiom_module_zero_grad_default(t):
    lin = t.nn.Linear(3, 2)
    lin(t.ones(1, 3)).sum().backward()
    lin.zero_grad()
    return lin.weight.grad


@idiom
def idiom_clip_grad_norm(t):
    w = leaf(t, 0, 4)
    (w * 10).sum().backward()
    total = t.nn.utils.clip_grad_norm_([w], max_norm=1.0)
    return total, w.grad


@idiom
def idiom_clip_grad_value(t):
    w = leaf(t, 0, 4)
    (w * t.tensor([0.5, -3.0, 2.0, 0.1])).sum().backward()
    t.nn.utils.clip_grad_value_([w], clip_value=1.0)
    return w.grad


@idiom
def idiom_parameter(t):
    p = t.nn.Parameter(t.tensor(data(0, 3)))
    return p, p.requires_grad, p.is_leaf, isinstance(p, t.Tensor)


# ==============================================================================================
# optim


def quadratic_steps(t, make_optimizer, steps: int = 3):
    """``steps`` steps of ``make_optimizer([w])`` on sum((w - 1) ** 2); the final w and loss."""
    w = t.tensor([1.5, -2.0, 3.0], requires_grad=True)
    opt = make_optimizer([w])
    for _ in range(steps):
        opt.zero_grad()
        loss = ((w - 1) ** 2).sum()
        loss.backward()
        opt.step()
    return w, loss.item()


@idiom
def idiom_sgd_step(t):
    return quadratic_steps(t, lambda params: t.optim.SGD(params, lr=0.1), steps=1)


@idiom
def idiom_sgd_momentum_weight_decay(t):
    return quadratic_steps(
        t, lambda params: t.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=0.01))


@idiom
def idiom_adam(t):
    return quadratic_steps(t, lambda params: t.optim.Adam(params, lr=0.1), steps=5)


@idiom
def idiom_adamw_default_weight_decay(t):
    return quadratic_steps(t, lambda params: t.optim.AdamW(params, lr=0.1), steps=5)


@idiom
def idiom_adam_on_linear_regression(t):
    lin = set_params(t, t.nn.Linear(3, 1))
    opt = t.optim.Adam(lin.parameters(), lr=0.01)
    x, y = t.tensor(data(1, 8, 3)), t.tensor(data(2, 8, 1))
    for _ in range(3):
        opt.zero_grad()
        t.nn.functional.mse_loss(lin(x), y).backward()
        opt.step()
    return lin.weight, lin.bias


@idiom
def idiom_optimizer_zero_grad_sets_none(t):
    w = leaf(t, 0, 3)
    opt = t.optim.SGD([w], lr=0.1)
    w.sum().backward()
    opt.zero_grad()
    return w.grad


@idiom
def idiom_optimizer_param_groups_lr(t):
    w = leaf(t, 0, 3)
    opt = t.optim.SGD([w], lr=0.1)
    for group in opt.param_groups:
        group["lr"] = 0.05
    w.sum().backward()
    opt.step()
    return opt.param_groups[0]["lr"], w


@idiom
def idiom_step_lr(t):
    w = leaf(t, 0, 3)
    opt = t.optim.SGD([w], lr=1.0)
    sched = t.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    lrs = []
    for _ in range(5):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    return lrs, sched.get_last_lr()


# ==============================================================================================
# sampling


@idiom
def idiom_multinomial_shape_dtype_range(t):
    t.manual_seed(0)
    probs = t.tensor([[0.1, 0.9, 0.0], [0.5, 0.2, 0.3]])
    s = t.multinomial(probs, 1)
    r = t.multinomial(probs, num_samples=4, replacement=True)
    return s.shape, s.dtype, r.shape, bool(((r >= 0) & (r < 3)).all()), bool((r[0] != 2).all())


@idiom
def idiom_multinomial_certain(t):
    rows = t.tensor([[0.0, 2.0], [3.0, 0.0]])
    return t.multinomial(t.tensor([0.0, 1.0, 0.0]), 1), t.multinomial(rows, 1)


@idiom
def idiom_multinomial_method(t):
    return t.tensor([[0.0, 0.0, 2.0]]).multinomial(1)


@idiom
def idiom_multinomial_without_replacement_distinct(t):
    t.manual_seed(0)
    s = t.multinomial(t.tensor([0.2, 0.3, 0.5]), 3)
    return s.shape, sorted(s.tolist())


@idiom
def idiom_greedy_argmax_decode(t):
    logits = t.tensor(data(0, 2, 7))
    return logits.argmax(dim=-1), t.argmax(logits, dim=1).tolist()


# ==============================================================================================


@pytest.mark.parametrize("fn", IDIOMS, ids=lambda fn: fn.__name__.removeprefix("idiom_"))
def test_idiom(fn, record_property) -> None:
    expected, torch_error = run(fn, torch)
    actual, minigrad_error = run(fn, minigrad)
    if torch_error is not None:
        record_property("torch_raises", type(torch_error).__name__)
    if minigrad_error is not None:
        record_property("minigrad_raises", type(minigrad_error).__name__)
    if fn.raises:
        assert torch_error is not None, f"the idiom is marked raises=True, but torch gives " \
                                        f"{describe(expected)}"
        assert minigrad_error is not None, (
            f"torch raises {raised(torch_error)}; minigrad raises nothing, returns "
            f"{describe(actual)}"
        )
        return
    if torch_error is not None:
        raise AssertionError(f"the idiom itself is wrong: torch raises {raised(torch_error)}") \
            from torch_error
    if minigrad_error is not None:
        raise AssertionError(f"torch gives {describe(expected)}; minigrad raises "
                             f"{raised(minigrad_error)}") from minigrad_error
    compare(expected, actual)
