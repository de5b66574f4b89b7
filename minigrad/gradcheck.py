"""Check analytic gradients against central finite differences, in float64."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from minigrad.autograd import grad
from minigrad.tensor import Tensor


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with its finite-difference estimate."""


def _outputs(fn: Callable, inputs: Sequence[Tensor]) -> list[Tensor]:
    out = fn(*inputs)
    return [out] if isinstance(out, Tensor) else list(out)


def _flat_outputs(fn: Callable, inputs: Sequence[Tensor]) -> np.ndarray:
    return np.concatenate([y.data.ravel() for y in _outputs(fn, inputs)])


def _differentiable(inputs: Sequence[Tensor]) -> list[int]:
    chosen = []
    for i, x in enumerate(inputs):
        if not isinstance(x, Tensor):
            raise TypeError(f"gradcheck: input {i} is a {type(x).__name__}, expected a Tensor")
        if x.requires_grad:
            if x.grad_fn is not None:
                raise ValueError(
                    f"gradcheck: input {i} (shape {x.shape}) was made by {x.grad_fn.name}; "
                    "inputs must be leaves (create them with mg.tensor(..., requires_grad=True))"
                )
            if x.dtype != np.float64:
                raise TypeError(
                    f"gradcheck: input {i} (shape {x.shape}) is {x.dtype}; finite differences "
                    "need float64 inputs (e.g. mg.tensor(a, dtype=np.float64, requires_grad=True))"
                )
            chosen.append(i)
    if not chosen:
        raise ValueError("gradcheck: no input requires grad, so there is nothing to check")
    return chosen


def _central_difference(fn, inputs, x: Tensor, direction: np.ndarray, eps: float) -> np.ndarray:
    """(f(x + eps d) - f(x - eps d)) / 2 eps, restoring x afterwards."""
    original = x.data.copy()
    try:
        np.copyto(x.data, original + eps * direction)
        plus = _flat_outputs(fn, inputs)
        np.copyto(x.data, original - eps * direction)
        minus = _flat_outputs(fn, inputs)
    finally:
        np.copyto(x.data, original)
    return (plus - minus) / (2 * eps)


def _analytic_vjp(fn, inputs, chosen, v: np.ndarray) -> list[np.ndarray]:
    """vᵀJ for each chosen input, with v laid out over the flattened outputs."""
    outputs = _outputs(fn, inputs)
    pieces, start = [], 0
    for y in outputs:
        pieces.append(Tensor(v[start:start + y.numel()].reshape(y.shape), dtype=y.dtype))
        start += y.numel()
    live = [(y, g) for y, g in zip(outputs, pieces) if y.requires_grad]
    if not live:
        return [np.zeros(inputs[i].shape) for i in chosen]
    grads = grad([y for y, _ in live], [inputs[i] for i in chosen], [g for _, g in live],
                 retain_graph=False, allow_unused=True)
    return [np.zeros(inputs[i].shape) if g is None else g.data for i, g in zip(chosen, grads)]


def _fail(index: int, where: str, analytic: float, numeric: float, extra: str = "") -> None:
    raise GradcheckError(
        f"gradcheck: gradient of input {index} disagrees with finite differences at {where}: "
        f"analytic {analytic:.10g} vs numeric {numeric:.10g} "
        f"(difference {abs(analytic - numeric):.3g}){extra}"
    )


def gradcheck(
    fn: Callable[..., Tensor | Sequence[Tensor]],
    inputs: Sequence[Tensor],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    fast_mode: bool = False,
) -> bool:
    """Compare the gradients of ``fn(*inputs)`` with central differences; True or raise.

    Every input that requires grad (float64) is perturbed in place, so ``fn`` may also read
    them through a closure (a model's parameters, say). The slow mode compares the whole
    Jacobian; ``fast_mode=True`` compares one random projection vᵀJu per input, which costs
    two forward passes per input and one backward pass in all.
    """
    inputs = list(inputs)
    chosen = _differentiable(inputs)
    n_out = _flat_outputs(fn, inputs).size
    rng = np.random.default_rng(0)
    if fast_mode:
        v = rng.standard_normal(n_out)
        analytic = _analytic_vjp(fn, inputs, chosen, v)
        for i, a in zip(chosen, analytic):
            u = rng.standard_normal(inputs[i].shape)
            numeric = float(v @ _central_difference(fn, inputs, inputs[i], u, eps))
            value = float((a * u).sum())
            if not abs(value - numeric) <= atol + rtol * abs(numeric):
                _fail(i, "a random projection vᵀJu", value, numeric,
                      " (rerun with fast_mode=False to find the element)")
        return True
    jacobians = [np.empty((n_out, inputs[i].numel())) for i in chosen]
    for k in range(n_out):
        onehot = np.zeros(n_out)
        onehot[k] = 1
        for jac, row in zip(jacobians, _analytic_vjp(fn, inputs, chosen, onehot)):
            jac[k] = row.ravel()
    for i, analytic in zip(chosen, jacobians):
        x = inputs[i]
        numeric = np.empty_like(analytic)
        for j in range(x.numel()):
            direction = np.zeros(x.numel())
            direction[j] = 1
            numeric[:, j] = _central_difference(fn, inputs, x, direction.reshape(x.shape), eps)
        excess = np.abs(analytic - numeric) - (atol + rtol * np.abs(numeric))
        excess[np.isnan(excess)] = np.inf
        if (excess > 0).any():
            k, j = np.unravel_index(np.argmax(excess), excess.shape)
            element = tuple(int(n) for n in np.unravel_index(j, x.shape))
            where = f"element {element} (output element {k})"
            _fail(i, where, analytic[k, j], numeric[k, j])
    return True


def gradgradcheck(
    fn: Callable[..., Tensor | Sequence[Tensor]],
    inputs: Sequence[Tensor],
    grad_outputs: Sequence[Tensor] | None = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    fast_mode: bool = False,
) -> bool:
    """Check second derivatives: gradcheck the map (inputs, v) -> vᵀJ built with create_graph.

    ``grad_outputs`` (float64, one per output) default to random tensors that require grad.
    """
    inputs = list(inputs)
    chosen = _differentiable(inputs)
    outputs = _outputs(fn, inputs)
    if grad_outputs is None:
        rng = np.random.default_rng(1)
        grad_outputs = [Tensor(rng.standard_normal(y.shape), requires_grad=True) for y in outputs]
    grad_outputs = list(grad_outputs)
    n = len(inputs)

    def first_derivatives(*args: Tensor) -> list[Tensor]:
        xs, vs = args[:n], args[n:]
        ys = _outputs(fn, xs)
        gs = grad(ys, [xs[i] for i in chosen], vs, create_graph=True, allow_unused=True)
        return [g for g in gs if g is not None]

    return gradcheck(first_derivatives, inputs + grad_outputs, eps, atol, rtol, fast_mode)
