"""Stateless layers and losses, as in ``torch.nn.functional``: the same names, argument names
and order, defaults and results.

The classification losses follow PyTorch's layout: input ``(N, C)`` with target ``(N,)``, or
``(N, C, d1, ...)`` with target ``(N, d1, ...)``, or ``(C,)`` with a 0-d target. For an input
with the classes last, ``(..., C)`` with target ``(...)``, pass the keyword ``axis=-1`` (an
addition of minigrad's). As in PyTorch, ``ignore_index`` defaults to -100: targets equal to it
add nothing, and any other id outside ``0..C-1`` raises an IndexError (``ignore_index=None``,
minigrad's addition, ignores nothing). Class ids may be of any integer dtype. The deprecated
``size_average``/``reduce`` arguments work as in PyTorch, with its warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from minigrad.autograd import is_grad_enabled
from minigrad.ops import linalg as _la
from minigrad.ops import probability
from minigrad.ops.elementwise import ne, where
from minigrad.tensor import Tensor

__all__ = [
    "cross_entropy", "dropout", "embedding", "layer_norm", "linear", "log_softmax", "mse_loss",
    "nll_loss", "relu", "sigmoid", "softmax", "tanh",
]

_REDUCTIONS = ("mean", "sum", "none")


def _check_tensor(x: Any, op: str, what: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: {what} must be a Tensor; got a {type(x).__name__}")


def _ids(x: Any) -> Tensor:
    """Integer ids as a tensor: a Tensor as it is, anything else wrapped without a copy, so that
    they reach the ops that read them as an input (a traced program reads them at every call)."""
    return x if isinstance(x, Tensor) else Tensor._wrap(np.asarray(x))


def _check_reduction(reduction: str, op: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}; got {reduction!r}")


def _reduction(size_average: bool | None, reduce: bool | None, reduction: str, op: str,
               stacklevel: int = 3) -> str:
    """``reduction``, or what the deprecated ``size_average``/``reduce`` pair means when either
    is given (PyTorch's rule: both default to True; reduce=False gives 'none', else
    size_average picks 'mean' or 'sum'), with PyTorch's warning."""
    if size_average is None and reduce is None:
        _check_reduction(reduction, op)
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    legacy = ("mean" if size_average else "sum") if reduce else "none"
    warnings.warn(
        f"size_average and reduce args will be deprecated, please use reduction='{legacy}' "
        "instead.", UserWarning, stacklevel=stacklevel,
    )
    return legacy


def _no_inplace(inplace: bool, op: str) -> None:
    if inplace:
        raise NotImplementedError(
            f"{op}: inplace=True is not supported; use the result instead: x = {op}(x, ...)"
        )


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    return loss.mean() if reduction == "mean" else loss.sum()


# -- activations ---------------------------------------------------------------------------------


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """relu(x) = max(x, 0), elementwise (integer tensors stay integer, as in PyTorch)."""
    _check_tensor(input, "relu", "input")
    _no_inplace(inplace, "relu")
    return input.relu()


def _floating(x: Tensor) -> Tensor:
    """``x``, with integer or bool data converted to float32 first (PyTorch's promotion of an
    integer input of a floating-point function to the default dtype)."""
    return x if x.dtype.kind in "fc" else x.astype(np.float32)


def tanh(input: Tensor) -> Tensor:
    """tanh(x) = (e^x - e^-x) / (e^x + e^-x), elementwise; integer input gives float32."""
    _check_tensor(input, "tanh", "input")
    return _floating(input).tanh()


def sigmoid(input: Tensor) -> Tensor:
    """sigmoid(x) = 1 / (1 + e^-x), elementwise and without overflow; integer input gives
    float32."""
    _check_tensor(input, "sigmoid", "input")
    return _floating(input).sigmoid()


def _softmax_dim(op: str, x: Tensor, dim: int | None, axis: int | None, stacklevel: int) -> int:
    """The axis of a softmax: ``dim`` (or its alias ``axis``); without one, PyTorch's
    deprecated implicit choice (0 for 0-, 1- and 3-d input, else 1) with its warning."""
    if axis is not None:
        if dim is not None and dim != axis:
            raise TypeError(f"{op}: got dim={dim} and axis={axis}; pass one of them")
        dim = axis
    if dim is None:
        warnings.warn(
            f"Implicit dimension choice for {op} has been deprecated. Change the call to "
            "include dim=X as an argument.", UserWarning, stacklevel=stacklevel,
        )
        return 0 if x.ndim in (0, 1, 3) else 1
    n = max(x.ndim, 1)  # a 0-d tensor takes dim 0 or -1, as in PyTorch
    if not isinstance(dim, (int, np.integer)) or not -n <= dim < n:
        raise IndexError(
            f"{op}: dim {dim!r} is out of range for a tensor of shape {x.shape} (expected an "
            f"int in [{-n}, {n - 1}])"
        )
    return int(dim)


def _softmax_input(op: str, x: Any, dtype: Any) -> Tensor:
    _check_tensor(x, op, "input")
    if dtype is not None:
        x = x.astype(dtype)
    if x.dtype.kind != "f":
        raise TypeError(
            f"{op}: input must be floating point; got dtype {x.dtype} (shape {x.shape}); "
            "convert it, or pass dtype=np.float32"
        )
    return x


def softmax(
    input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None, *,
    axis: int | None = None,
) -> Tensor:
    """softmax(x)_i = exp(x_i - max x) / sum_j exp(x_j - max x) along ``dim`` (alias ``axis``).

    ``dtype`` converts the input first. Without ``dim`` PyTorch's deprecated implicit choice
    applies, with its warning; pass ``dim``.
    """
    return _along_dim(probability.softmax, "softmax", input, dim, _stacklevel + 1, dtype, axis)


def log_softmax(
    input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: Any = None, *,
    axis: int | None = None,
) -> Tensor:
    """log_softmax(x)_i = x_i - logsumexp(x) along ``dim`` (alias ``axis``), computed stably.

    ``dtype`` converts the input first. Without ``dim`` PyTorch's deprecated implicit choice
    applies, with its warning; pass ``dim``.
    """
    return _along_dim(probability.log_softmax, "log_softmax", input, dim, _stacklevel + 1, dtype,
                      axis)


def _along_dim(fn: Any, op: str, input: Tensor, dim: int | None, stacklevel: int, dtype: Any,
               axis: int | None) -> Tensor:
    """``fn(x, dim)`` (softmax or log_softmax) after checking the input and the dim; a 0-d
    input is treated as one element along dim 0, as in PyTorch."""
    x = _softmax_input(op, input, dtype)
    dim = _softmax_dim(op, x, dim, axis, stacklevel)
    if x.ndim == 0:
        return fn(x.reshape(1), 0).reshape(())
    return fn(x, dim)


# -- layers --------------------------------------------------------------------------------------


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y = x @ weight.T + bias for ``input`` x of shape ``(..., in)`` and ``weight``
    ``(out, in)``; ``bias`` is ``(out,)`` or, as in PyTorch, any shape that broadcasts to y."""
    _check_tensor(input, "linear", "input")
    if input.dtype.kind == "f" and input.dtype != weight.dtype:  # NumPy would upcast silently
        raise TypeError(
            f"linear: input of dtype {input.dtype} and weight of dtype {weight.dtype} must "
            "have the same dtype, as in PyTorch: convert the input (x.float()) or the layer "
            "(.double())"
        )
    if bias is None:
        return _la.Linear.apply(input, weight)
    return _la.Linear.apply(input, weight, bias)


def embedding(input: Any, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` picked by the integer ids ``input``: shape ``input.shape + (dim,)``.

    Gradients of repeated ids accumulate; the row ``padding_idx`` gets no gradient.
    """
    ids = _ids(input)
    if ids.dtype.kind not in "iu":
        raise TypeError(
            f"Embedding: ids must be integers; got dtype {ids.dtype} (shape {ids.shape})"
        )
    ids = probability.EmbeddingIds.apply(ids, num_embeddings=weight.shape[0])
    rows = weight[ids]
    if padding_idx is None:
        return rows
    return where(ne(ids, padding_idx)[..., None], rows, rows.detach())


def _check_dropout_p(p: float, op: str) -> None:
    """PyTorch's rule: ``p`` lies in [0, 1] (1 drops everything)."""
    if not 0 <= p <= 1:
        raise ValueError(f"{op}: dropout probability p has to be between 0 and 1; got {p}")


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
            ) -> Tensor:
    """Inverted dropout: in training, y = x * m / (1 - p) with m_i ~ Bernoulli(1 - p), so that
    E[y] = x; the identity (``input`` itself) otherwise. ``p = 1`` gives y = 0 * x. The mask
    comes from ``mg.manual_seed``'s generator."""
    _check_tensor(input, "dropout", "input")
    _check_dropout_p(p, "dropout")
    _no_inplace(inplace, "dropout")
    if not training or p == 0:
        return input
    if p == 1:
        with np.errstate(invalid="ignore"):  # inf * 0 is nan, as in PyTorch
            return input * 0.0
    return input * probability.DropoutMask.apply(input, p=p)


def _normalized_shape(normalized_shape: int | Sequence[int], op: str) -> tuple[int, ...]:
    if isinstance(normalized_shape, (int, np.integer)):
        shape = (normalized_shape,)
    else:
        shape = (tuple(normalized_shape) if isinstance(normalized_shape, (Sequence, np.ndarray))
                 else ())
    if not shape or not all(isinstance(n, (int, np.integer)) and n > 0 for n in shape):
        raise ValueError(
            f"{op}: normalized_shape must be a positive int or a non-empty sequence of "
            f"positive ints; got {normalized_shape!r}"
        )
    return tuple(int(n) for n in shape)


def layer_norm(
    input: Tensor,
    normalized_shape: int | Sequence[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Layer normalization over the last ``len(normalized_shape)`` axes::

        y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias

    with the mean and the biased variance (divided by N) taken over those axes for each
    leading index; ``weight`` and ``bias`` (optional) have shape ``normalized_shape``.
    """
    return _layer_norm(input, normalized_shape, weight, bias, eps, "layer_norm")


def _layer_norm(input: Tensor, normalized_shape: int | Sequence[int], weight: Tensor | None,
                bias: Tensor | None, eps: float, op: str) -> Tensor:
    """``layer_norm``, with ``op`` (the function or the layer) named in its errors."""
    _check_tensor(input, op, "input")
    shape = _normalized_shape(normalized_shape, op)
    k = len(shape)
    if input.ndim < k or input.shape[input.ndim - k:] != shape:
        raise ValueError(
            f"{op}: given normalized_shape={shape}, expected input with shape "
            f"(*, {', '.join(map(str, shape))}); got input of shape {input.shape}"
        )
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: input must be floating point; got dtype {input.dtype}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is None:
            continue
        _check_tensor(p, op, name)
        if p.shape != shape:
            raise ValueError(
                f"{op}: expected {name} of shape normalized_shape = {shape}; got {p.shape}"
            )
        if p.dtype != input.dtype:
            raise TypeError(
                f"{op}: input dtype {input.dtype} does not match {name} dtype {p.dtype}; "
                "all inputs must share one dtype (convert the input, or the layer with "
                ".double() / .float())"
            )
    axes = tuple(range(-k, 0))
    centered = input - input.mean(axes, True)
    var = (centered * centered).mean(axes, True)
    y = centered / (var + eps).sqrt()
    if weight is not None:
        y = y * weight
    if bias is not None:
        y = y + bias
    return y


# -- losses --------------------------------------------------------------------------------------


def _class_axis(op: str, input: Any, axis: int) -> int:
    """The class axis of the input of a classification loss, non-negative."""
    _check_tensor(input, op, "input")
    if input.dtype.kind != "f" or input.ndim == 0:
        raise TypeError(
            f"{op}: input must be floating point with at least one axis (the classes); got "
            f"dtype {input.dtype} and shape {input.shape}"
        )
    ndim = input.ndim
    axis = 0 if ndim == 1 else axis
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for input {input.shape}")
    return axis % ndim


def _class_ids(op: str, input: Tensor, target: Tensor, axis: int) -> None:
    """Check that ``target`` holds integer class ids of the input's shape without ``axis``."""
    expected = input.shape[:axis] + input.shape[axis + 1:]
    if target.dtype.kind not in "iu":
        probs = " or class probabilities of the input's shape" if op == "cross_entropy" else ""
        raise TypeError(
            f"{op}: target must hold integer class ids of shape {expected}{probs}; got dtype "
            f"{target.dtype} and shape {target.shape}"
        )
    if target.shape != expected:
        hint = ""
        if axis != input.ndim - 1 and target.shape == input.shape[:-1]:
            hint = "; for input of shape (..., C) with the classes last, pass axis=-1"
        raise ValueError(
            f"{op}: input of shape {input.shape} with classes on axis {axis} needs a target "
            f"of shape {expected}; got {target.shape}{hint}"
        )


def _class_weight(op: str, weight: Any, input: Tensor, axis: int, differentiable: bool = False
                  ) -> Tensor | None:
    """``weight`` checked: a float tensor of shape (C,) with the input's dtype (an ndarray is
    converted to it) which, unless the loss is ``differentiable`` in it, does not require grad
    while grad mode is on."""
    if weight is None:
        return None
    if isinstance(weight, np.ndarray):
        weight = Tensor(weight.astype(input.dtype))
    if not isinstance(weight, Tensor):
        hint = (" (ignore_index is the 5th argument, as in PyTorch: pass it by name)"
                if isinstance(weight, (int, np.integer)) else "")
        raise TypeError(
            f"{op}: weight must be a Tensor of shape (C,) with one weight per class; got a "
            f"{type(weight).__name__}{hint}"
        )
    classes = input.shape[axis]
    if weight.shape != (classes,):
        raise ValueError(
            f"{op}: weight must have one entry per class, shape ({classes},); got a weight of "
            f"shape {weight.shape}"
        )
    if weight.dtype != input.dtype:
        raise TypeError(
            f"{op}: weight dtype {weight.dtype} does not match the input dtype {input.dtype}"
        )
    if not differentiable and weight.requires_grad and is_grad_enabled():
        raise ValueError(
            f"{op}: weight must not require grad: the loss is not differentiable with respect "
            "to the class weights of class-id targets (as in PyTorch); pass weight.detach()"
        )
    return weight


def _check_ignore_index(op: str, ignore_index: Any) -> None:
    if ignore_index is not None and (
            isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer))):
        raise TypeError(f"{op}: ignore_index must be an int; got {ignore_index!r}")


def _class_targets(op: str, target: Tensor, classes: int, ignore_index: int | None, mean: bool,
                   dtype: np.dtype) -> tuple[Tensor, Tensor]:
    """``ClassTargets``: the target with ignored entries set to 0 (after the range check) and
    the per-entry weights (1 or 0; divided by their count when ``mean``)."""
    try:
        return probability.ClassTargets.apply(target, classes=classes, ignore_index=ignore_index,
                                      mean=mean, dtype=dtype)
    except IndexError as e:
        if op == "cross_entropy":
            raise
        raise IndexError(str(e).replace("cross_entropy:", f"{op}:", 1)) from None


def _entry_weights(op: str, target: Tensor, classes: int, weight: Tensor | None,
                   ignore_index: int | None, dtype: np.dtype) -> tuple[Tensor, Tensor, Tensor]:
    """``(t, keep, w)``: the targets with ignored entries set to 0, the mask of the entries
    kept (bool), and each entry's weight ``weight[t]`` (1 without class weights), 0 where
    ignored."""
    t, valid = _class_targets(op, target, classes, ignore_index, False, dtype)
    w = valid if weight is None else weight.detach()[t] * valid
    return t, valid > 0, w


def _broadcast_weight(weight: Tensor, ndim: int, axis: int) -> Tensor:
    """The class weights ``(C,)`` shaped to broadcast along the class ``axis``."""
    return weight.reshape([weight.shape[0] if i == axis else 1 for i in range(ndim)])


def _pick(x: Tensor, t: Tensor, axis: int) -> Tensor:
    """``x[..., t, ...]``: the entry of class ``t`` along ``axis`` at each target position."""
    grids = np.indices(t.shape, sparse=True)
    return x[(*grids[:axis], t, *grids[axis:])]


def _weighted(entries: Tensor, keep: Tensor, w: Tensor, reduction: str) -> Tensor:
    """``w * entries`` at the kept entries and 0 at the others (even where an ignored entry is
    inf or nan, as an ignored -inf log-probability), added ('sum'), added and divided by
    sum(w) ('mean'; nan when that is 0, as in PyTorch) or kept ('none')."""
    loss = where(keep, entries, 0.0) * w
    if reduction == "none":
        return loss
    loss = loss.sum()
    if reduction == "mean":
        with np.errstate(divide="ignore", invalid="ignore"):
            loss = loss / w.sum()
    return loss


def nll_loss(
    input: Tensor,
    target: Any,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    *,
    axis: int = 1,
) -> Tensor:
    """Negative log-likelihood of integer class ``target`` under log-probabilities ``input``::

        loss_n = -weight[t_n] * input[n, t_n]          (0 where t_n == ignore_index)

    'mean' divides the sum by sum_n weight[t_n] over the kept entries (nan if that is 0),
    'sum' adds, 'none' keeps one loss per target entry. The classes lie on ``axis`` (1, as in
    PyTorch; ``axis=-1`` for ``(..., C)``). ``weight`` (shape (C,)) gets no gradient.
    """
    op = "nll_loss"
    reduction = _reduction(size_average, reduce, reduction, op)
    axis = _class_axis(op, input, axis)
    target = _ids(target)
    _class_ids(op, input, target, axis)
    weight = _class_weight(op, weight, input, axis)
    _check_ignore_index(op, ignore_index)
    t, keep, w = _entry_weights(op, target, input.shape[axis], weight, ignore_index, input.dtype)
    return _weighted(-_pick(input, t, axis), keep, w, reduction)


def cross_entropy(
    input: Tensor,
    target: Any,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    *,
    axis: int = 1,
) -> Tensor:
    """Cross-entropy of ``target`` under logits ``input``: log-softmax and NLL fused, stable
    for large logits. With ``p = softmax(x)`` along the class axis and ``w = weight`` (1s by
    default):

    - integer class ids ``t`` (the input's shape without the class axis)::

          loss_n = -w[t_n] * log p[n, t_n]     (0 where t_n == ignore_index)

      'mean' divides the sum by sum_n w[t_n] over the kept entries. With
      ``label_smoothing = e``, ``loss = (1 - e) * that + e / C * smooth`` where
      ``smooth_n = -sum_c w_c log p[n, c]`` (0 at ignored entries, reduced the same way).
    - class probabilities ``q`` (a float target of the input's own shape)::

          loss_n = -sum_c w_c q[n, c] log p[n, c]      (q -> (1 - e) q + e / C when smoothing)

      'mean' divides the sum by the number of entries (not by the weights).

    The classes lie on ``axis`` (1, as in PyTorch; pass ``axis=-1`` for ``(..., C)``). 'sum'
    adds the losses and 'none' returns one per entry. With class ids ``weight`` gets no
    gradient; with probabilities an ``ignore_index`` other than -100 is an error, as in
    PyTorch.
    """
    op = "cross_entropy"
    reduction = _reduction(size_average, reduce, reduction, op)
    axis = _class_axis(op, input, axis)
    if not 0 <= label_smoothing <= 1:
        raise ValueError(
            f"{op}: label_smoothing must be between 0.0 and 1.0; got {label_smoothing}"
        )
    _check_ignore_index(op, ignore_index)
    given = isinstance(target, Tensor)
    target = _ids(target)
    if target.shape == input.shape:
        if not given and target.dtype.kind == "f":  # an array takes the input's dtype
            target = target.astype(input.dtype)
        return _cross_entropy_probs(input, target, weight, ignore_index, reduction,
                                    label_smoothing, axis)
    _class_ids(op, input, target, axis)
    weight = _class_weight(op, weight, input, axis)
    classes = input.shape[axis]
    if weight is None and label_smoothing == 0:  # one fused op, with its targets as inputs
        t, w = _class_targets(op, target, classes, ignore_index, reduction == "mean",
                              input.dtype)
        return probability.CrossEntropy.apply(input, t, w, axis=axis, reduction=reduction)
    t, keep, w = _entry_weights(op, target, classes, weight, ignore_index, input.dtype)
    if label_smoothing == 0:
        if reduction == "mean":
            with np.errstate(divide="ignore", invalid="ignore"):  # no weight at all: nan
                w = w / w.sum()
        return probability.CrossEntropy.apply(input, t, w, axis=axis, reduction=reduction)
    logp = probability.log_softmax(input, axis)
    nll = _weighted(-_pick(logp, t, axis), keep, w, reduction)
    if weight is not None:
        logp = logp * _broadcast_weight(weight.detach(), input.ndim, axis)
    smooth = where(keep, -logp.sum(axis), 0.0)
    if reduction != "none":
        smooth = smooth.sum()
        if reduction == "mean":
            with np.errstate(divide="ignore", invalid="ignore"):
                smooth = smooth / w.sum()
    return nll * (1 - label_smoothing) + smooth * (label_smoothing / classes)


def _cross_entropy_probs(input: Tensor, target: Tensor, weight: Any, ignore_index: int | None,
                         reduction: str, label_smoothing: float, axis: int) -> Tensor:
    """Cross-entropy with class probabilities as the target (see ``cross_entropy``)."""
    op = "cross_entropy"
    if target.dtype.kind != "f":
        raise TypeError(
            f"{op}: a target of the input's shape {input.shape} holds class probabilities and "
            f"must be floating point; got dtype {target.dtype} (class ids have shape "
            f"{input.shape[:axis] + input.shape[axis + 1:]})"
        )
    if ignore_index not in (-100, None):
        raise ValueError(
            f"{op}: ignore_index is not supported for a target of class probabilities; got "
            f"ignore_index={ignore_index}"
        )
    classes = input.shape[axis]
    weight = _class_weight(op, weight, input, axis, differentiable=True)
    if label_smoothing > 0:
        target = target * (1 - label_smoothing) + label_smoothing / classes
    terms = probability.log_softmax(input, axis) * target
    if weight is not None:
        terms = terms * _broadcast_weight(weight, input.ndim, axis)
    loss = -terms.sum(axis)
    if reduction != "mean":
        return _reduce(loss, reduction)
    count = input.data.size // classes if classes else 0
    return loss.sum() / (count or np.nan)  # no entries: nan, as in PyTorch


def mse_loss(
    input: Tensor,
    target: Any,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """Squared error (x - target) ** 2, averaged ('mean'), added ('sum') or kept ('none').

    With ``weight`` (the input's shape): w * (x - target) ** 2, and 'mean' divides the sum by
    sum(w), as in PyTorch. Unlike PyTorch, a target of another shape is an error (PyTorch
    broadcasts it with a warning, which is rarely what was meant).
    """
    _check_tensor(input, "mse_loss", "input")
    reduction = _reduction(size_average, reduce, reduction, "mse_loss")
    if not isinstance(target, Tensor):  # an input of the ops below, converted by an op
        target = Tensor._wrap(np.asarray(target)).astype(input.dtype)
    if target.shape != input.shape:
        raise ValueError(
            f"mse_loss: input of shape {input.shape} and target of shape {target.shape} must "
            "have the same shape"
        )
    diff = input - target
    loss = diff * diff
    if weight is None:
        return _reduce(loss, reduction)
    _check_tensor(weight, "mse_loss", "weight")
    if weight.shape != input.shape:
        raise ValueError(
            f"mse_loss: weight of shape {weight.shape} and input of shape {input.shape} must "
            "have the same shape"
        )
    loss = loss * weight
    if reduction == "mean":
        return loss.sum() / weight.sum()
    return _reduce(loss, reduction)
