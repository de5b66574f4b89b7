"""Function transforms with ``torch.func``'s names: every way to take a derivative.

Reverse mode (``grad``, ``grad_and_value``, ``vjp``, ``jacrev``) runs the engine's backward
with ``create_graph=True``, so that its result is itself made of ops: a transform of it (a
second ``grad``, a ``jvp``) differentiates it again. Forward mode (``jvp``, ``jacfwd``) pushes a
tangent along with each value: inside ``jvp``, every op's ``jvp`` rule (beside its ``forward``
and ``backward`` in ``minigrad/ops/``) gives its outputs' tangents from its inputs' tangents,
again with ops. So the transforms compose: ``jacfwd(jacrev(f))`` is ``hessian(f)``,
``jvp(grad(f), ...)`` a Hessian-vector product by forward-over-reverse.

``vmap`` (``vectorize.py``) runs a function of one example on a whole batch: it traces the
function on one example and replays the ops on the batch by each op's batching rule
(``batching.py``); ``vmap(grad(loss))`` gives per-example gradients.

Arguments and results may be tensors or tuples, lists and dicts of them (a parameters dict).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from minigrad.autograd import DualLevel, dual_level, enable_grad
from minigrad.autograd import grad as _engine_grad
from minigrad.compile.trace import is_tracing
from minigrad.func.trees import tree_flatten, tree_unflatten
from minigrad.func.vectorize import vmap
from minigrad.nn.module import Module
from minigrad.ops.shape import stack
from minigrad.tensor import Tensor, zeros_like

__all__ = ["functional_call", "grad", "grad_and_value", "hessian", "jacfwd", "jacrev", "jvp",
           "vjp", "vmap"]


# -- reverse mode -------------------------------------------------------------------------------


def _differentiable(x: Tensor) -> Tensor:
    """``x`` as a tensor to differentiate with respect to: a view of it that requires grad and
    stays joined to whatever ``x`` is part of (an outer transform's graph or tangents)."""
    if x.dtype.kind != "f":
        raise TypeError(f"mg.func: can only differentiate with respect to floating tensors; got "
                        f"{x.dtype} of shape {x.shape}")
    view = x.reshape(x.shape)
    if not view.requires_grad:
        view.requires_grad = True
    return view


def _with_respect_to(args: tuple, argnums: int | tuple[int, ...], name: str
                     ) -> tuple[list, list[Tensor], list[tuple[Any, int]]]:
    """``args`` with the arguments at ``argnums`` replaced by differentiable views; those
    views; and, per argument at ``argnums``, its tree shape and its number of tensors."""
    numbers = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for k in numbers:
        if not -len(args) <= k < len(args):
            raise ValueError(f"mg.func.{name}: argnums {argnums} out of range for "
                             f"{len(args)} positional arguments")
    args, wrt, shapes = list(args), [], []
    for k in numbers:
        leaves, shape = tree_flatten(args[k])
        views = [_differentiable(x) for x in leaves]
        args[k] = tree_unflatten(shape, views)
        wrt += views
        shapes.append((shape, len(views)))
    return args, wrt, shapes


def _regroup(grads: Sequence[Tensor], shapes: list[tuple[Any, int]],
             argnums: int | tuple[int, ...]) -> Any:
    """Gradients, flat, back in the trees of the arguments at ``argnums``."""
    out, start = [], 0
    for shape, n in shapes:
        out.append(tree_unflatten(shape, grads[start:start + n]))
        start += n
    return out[0] if isinstance(argnums, int) else tuple(out)


def _gradients(outputs: list[Tensor], wrt: list[Tensor],
               grad_outputs: list[Tensor] | None = None) -> list[Tensor]:
    """The vector-Jacobian product of ``grad_outputs`` (ones for one-element outputs) with
    ``outputs``, for each x in ``wrt`` (zeros where they do not depend on x), made of ops."""
    found = _engine_grad(outputs, wrt, grad_outputs, create_graph=True, allow_unused=True)
    return [zeros_like(x) if g is None else g for x, g in zip(wrt, found)]


def grad_and_value(f: Callable[..., Any], argnums: int | tuple[int, ...] = 0,
                   has_aux: bool = False) -> Callable[..., tuple[Any, Any]]:
    """``f``'s gradient with respect to the arguments at ``argnums``, and its value:
    ``(grads, value)``, or ``(grads, (value, aux))`` when ``f`` returns ``(value, aux)``."""

    def transformed(*args: Any, **kwargs: Any) -> tuple[Any, Any]:
        with enable_grad():
            args, wrt, shapes = _with_respect_to(args, argnums, "grad")
            result = f(*args, **kwargs)
            value, aux = _split_aux(result, has_aux, "grad")
            if not isinstance(value, Tensor) or value.data.size != 1:
                raise ValueError(
                    f"mg.func.grad: the function must return a tensor with one element (a "
                    f"scalar loss); got {_describe(value)}. For a vector output use vjp or "
                    "jacrev")
            grads = _regroup(_gradients([value], wrt), shapes, argnums)
        return grads, ((value, aux) if has_aux else value)

    return transformed


def grad(f: Callable[..., Any], argnums: int | tuple[int, ...] = 0,
         has_aux: bool = False) -> Callable[..., Any]:
    """The function that gives ``f``'s gradient with respect to the arguments at ``argnums``
    (a tensor, or a tree of them for a tree argument; a tuple for several ``argnums``); with
    ``has_aux``, ``f`` returns ``(loss, aux)`` and the result is ``(grads, aux)``. ``f`` must
    return a one-element tensor."""
    both = grad_and_value(f, argnums, has_aux)

    def transformed(*args: Any, **kwargs: Any) -> Any:
        grads, value = both(*args, **kwargs)
        return (grads, value[1]) if has_aux else grads

    return transformed


def vjp(f: Callable[..., Any], *primals: Any, has_aux: bool = False) -> tuple:
    """``(output, vjp_fn)``: ``f(*primals)``, and the function that maps a cotangent of the
    output's shape (a tree like the output) to the vector-Jacobian products, one per primal
    (each a tree like it). With ``has_aux``: ``(output, vjp_fn, aux)``."""
    with enable_grad():
        args, wrt, shapes = _with_respect_to(primals, tuple(range(len(primals))), "vjp")
        output, aux = _split_aux(f(*args), has_aux, "vjp")
    outputs, out_shape = tree_flatten(output)

    def vjp_fn(cotangents: Any) -> tuple:
        given, shape = tree_flatten(cotangents)
        if shape != out_shape or len(given) != len(outputs):
            raise ValueError("mg.func.vjp: the cotangents must have the output's structure")
        for y, c in zip(outputs, given):
            _check_like(c, y, "vjp", "cotangent")
        with enable_grad():
            grads = _gradients(outputs, wrt, given)
        return _regroup(grads, shapes, tuple(range(len(primals))))

    return (output, vjp_fn, aux) if has_aux else (output, vjp_fn)


def jacrev(f: Callable[..., Any], argnums: int | tuple[int, ...] = 0) -> Callable[..., Any]:
    """The Jacobian of ``f`` (one tensor output) with respect to the argument at ``argnums``,
    by reverse mode: one vector-Jacobian product per output element. Its shape is the output's
    shape followed by the argument's; for an argument that is a tree of tensors, a tree like
    it of such Jacobians; a tuple of them for several ``argnums``."""

    def transformed(*args: Any) -> Any:
        numbers = (argnums,) if isinstance(argnums, int) else tuple(argnums)
        with enable_grad():
            full, wrt, shapes = _with_respect_to(args, numbers, "jacrev")
            y = f(*full)
            if not isinstance(y, Tensor):
                raise TypeError(f"mg.func.jacrev: the function must return one tensor; got "
                                f"{_describe(y)}")
            rows = []
            for k in range(y.data.size):
                basis = np.zeros(y.data.size, y.dtype)
                basis[k] = 1
                rows.append(_gradients([y], wrt, [Tensor(basis.reshape(y.shape))]))
        jacobians = [_stack([row[j] for row in rows], y.shape, x.shape)
                     for j, x in enumerate(wrt)]
        return _regroup(jacobians, shapes, argnums)  # nested like the arguments

    return transformed


def _stack(parts: list[Tensor], out_shape: tuple[int, ...], in_shape: tuple[int, ...]
           ) -> Tensor:
    """The Jacobian of shape ``out_shape + in_shape`` from its rows, one per output element
    (or, with the shapes swapped, from its columns)."""
    if not parts:
        return Tensor(np.zeros((*out_shape, *in_shape)))
    return stack(parts).reshape(*out_shape, *in_shape)


# -- forward mode -------------------------------------------------------------------------------


def jvp(f: Callable[..., Any], primals: tuple, tangents: tuple, has_aux: bool = False
        ) -> tuple:
    """``(output, tangent_out)``: ``f(*primals)`` and its directional derivative along
    ``tangents`` (one per primal, each of the primal's shape and dtype), both trees like the
    output; computed by forward mode, every op's ``jvp`` rule in turn. With ``has_aux``:
    ``(output, tangent_out, aux)``."""
    if is_tracing():
        raise RuntimeError("mg.func.jvp inside a function that mg.compile traces: a compiled "
                           "program records no tangents. Call jvp outside the compiled "
                           "function, or compile the function you pass to it")
    if not isinstance(primals, tuple) or not isinstance(tangents, tuple):
        raise TypeError("mg.func.jvp: primals and tangents must be tuples (one entry per "
                        "argument of the function)")
    leaves, shape = tree_flatten(primals)
    given, tangent_shape = tree_flatten(tangents)
    if tangent_shape != shape:
        raise ValueError("mg.func.jvp: the tangents must have the primals' structure")
    level = DualLevel()
    inputs = []
    for x, t in zip(leaves, given):
        _check_like(t, x, "jvp", "tangent")
        view = x.reshape(x.shape)  # a tensor of this level's own, joined to x
        level.set(view, t)
        inputs.append(view)
    with dual_level(level):
        output, aux = _split_aux(f(*tree_unflatten(shape, inputs)), has_aux, "jvp")
    outputs, out_shape = tree_flatten(output)
    tangent_out = tree_unflatten(out_shape, [
        zeros_like(y) if level.tangent(y) is None else level.tangent(y) for y in outputs])
    return (output, tangent_out, aux) if has_aux else (output, tangent_out)


def jacfwd(f: Callable[..., Any], argnums: int | tuple[int, ...] = 0) -> Callable[..., Any]:
    """The Jacobian of ``f`` with respect to the argument at ``argnums``, by forward mode: one
    Jacobian-vector product per input element. Each output tensor's Jacobian has the output's
    shape followed by the argument's; the result nests like ``f``'s output, with a tuple over
    the arguments for several ``argnums``. Cheaper than ``jacrev`` when the input is smaller
    than the output."""

    def transformed(*args: Any) -> Any:
        numbers = (argnums,) if isinstance(argnums, int) else tuple(argnums)
        outputs, out_shape = tree_flatten(f(*args))
        by_argument = []
        for k in numbers:
            x = args[k]
            if not isinstance(x, Tensor):
                raise TypeError(f"mg.func.jacfwd: argument {k} must be a tensor; got "
                                f"{type(x).__name__}")
            columns: list[list[Tensor]] = [[] for _ in outputs]
            for i in range(x.data.size):
                basis = np.zeros(x.data.size, x.dtype)
                basis[i] = 1
                tangents = tuple(Tensor(basis.reshape(x.shape)) if j == k % len(args)
                                 else zeros_like(a) for j, a in enumerate(args))
                for column, d in zip(columns, tree_flatten(jvp(f, tuple(args), tangents)[1])[0]):
                    column.append(d)
            by_argument.append([_by_columns(column, x, y) for column, y in zip(columns, outputs)])
        leaves = [by_argument[0][j] if isinstance(argnums, int)
                  else tuple(jacobians[j] for jacobians in by_argument)
                  for j in range(len(outputs))]
        return tree_unflatten(out_shape, leaves)

    return transformed


def _by_columns(columns: list[Tensor], x: Tensor, y: Tensor) -> Tensor:
    """The Jacobian of ``y`` with respect to ``x`` from its columns, one per element of x."""
    jacobian = _stack(columns, x.shape, y.shape)  # x's axes first
    axes = [*range(x.ndim, x.ndim + y.ndim), *range(x.ndim)]
    return jacobian.permute(*axes) if axes else jacobian


def hessian(f: Callable[..., Any], argnums: int | tuple[int, ...] = 0) -> Callable[..., Any]:
    """The Hessian of ``f`` (a one-element output) with respect to the argument at
    ``argnums``: ``jacfwd(jacrev(f))``, forward over reverse."""
    return jacfwd(jacrev(f, argnums), argnums)


# -- modules as functions -----------------------------------------------------------------------


def functional_call(module: Module, parameters: dict[str, Tensor] | Sequence[dict],
                    args: Any = (), kwargs: dict | None = None, *, strict: bool = False) -> Any:
    """Call ``module`` with the tensors of ``parameters`` (``{name: tensor}``, names as
    ``named_parameters`` gives them; or a sequence of such dicts) in place of its own, which it
    gets back afterwards. ``args`` is one argument or a tuple of them. With ``strict``, every
    parameter must be given."""
    given = dict(parameters) if isinstance(parameters, dict) else {
        k: v for d in parameters for k, v in d.items()}
    owned = dict(module.named_parameters(remove_duplicate=False))
    unknown = sorted(set(given) - set(owned))
    if unknown:
        raise ValueError(f"functional_call: {type(module).__name__} has no parameters named "
                         f"{unknown}")
    if strict and set(owned) - set(given):
        raise ValueError(f"functional_call: missing parameters "
                         f"{sorted(set(owned) - set(given))} (strict=True)")
    places: dict[int, list[tuple[Module, str]]] = {}
    for m in module.modules():
        for attr, p in m._parameters.items():
            if p is not None:
                places.setdefault(id(p), []).append((m, attr))
    swapped = []
    try:
        for name, tensor in given.items():
            if not isinstance(tensor, Tensor):
                raise TypeError(f"functional_call: {name} must be a Tensor; got "
                                f"{type(tensor).__name__}")
            for m, attr in places[id(owned[name])]:
                swapped.append((m, attr, m.__dict__[attr]))
                object.__setattr__(m, attr, tensor)  # seen by forward, not registered
        return module(*(args if isinstance(args, tuple) else (args,)), **(kwargs or {}))
    finally:
        for m, attr, value in reversed(swapped):
            object.__setattr__(m, attr, value)


# -- checks ------------------------------------------------------------------------------------


def _split_aux(result: Any, has_aux: bool, name: str) -> tuple[Any, Any]:
    if not has_aux:
        return result, None
    if not isinstance(result, tuple) or len(result) != 2:
        raise ValueError(f"mg.func.{name}(has_aux=True): the function must return a pair "
                         f"(output, aux); got {_describe(result)}")
    return result


def _check_like(t: Any, x: Tensor, name: str, what: str) -> None:
    """Raise unless ``t`` is a tensor of ``x``'s shape and dtype."""
    if not isinstance(t, Tensor):
        raise TypeError(f"mg.func.{name}: each {what} must be a Tensor; got {type(t).__name__}")
    if t.shape != x.shape or t.dtype != x.dtype:
        raise ValueError(f"mg.func.{name}: a {what} of shape {t.shape} and dtype {t.dtype} for "
                         f"a primal of shape {x.shape} and dtype {x.dtype}: they must match")



def _describe(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"a tensor of shape {value.shape}"
    return f"a {type(value).__name__}"
