"""minigrad: a reverse-mode autograd engine on NumPy, small enough to read in an afternoon."""

from minigrad.tensor import Tensor, ones, randn, tensor, zeros  # noqa: I001  (binds the ops)
from minigrad.autograd import (
    AnomalyError,
    Function,
    GraphFreedError,
    detect_anomaly,
    enable_grad,
    grad,
    is_grad_enabled,
    name_scope,
    no_grad,
    set_grad_enabled,
)
from minigrad.gradcheck import GradcheckError, gradcheck, gradgradcheck
from minigrad.ops.elementwise import exp, log, maximum, minimum, relu, sigmoid, sqrt, tanh, where
from minigrad.ops.linalg import matmul
from minigrad.ops.nn import log_softmax, softmax
from minigrad.ops.shape import concat, split, stack, unbind
from minigrad.random import manual_seed
from minigrad import nn, optim
from minigrad.checkpoint import load, save

__all__ = [
    "AnomalyError", "concat", "detect_anomaly", "draw_graph", "enable_grad", "exp", "Function",
    "grad", "gradcheck", "GradcheckError", "gradgradcheck", "GraphFreedError", "is_grad_enabled",
    "load", "log", "log_softmax", "manual_seed", "matmul", "maximum", "minimum", "name_scope",
    "nn", "no_grad", "ones", "optim", "print_graph", "randn", "relu", "save", "set_grad_enabled",
    "sigmoid", "softmax", "split", "sqrt", "stack", "tanh", "Tensor", "tensor", "trace_backward",
    "unbind", "where", "zeros",
]

_VIZ = ("draw_graph", "print_graph", "trace_backward")


def __getattr__(name: str):
    """Load the graph tools of minigrad.viz on first use (so `python -m minigrad.viz` runs the
    module once, without runpy's warning about a module imported before it is run)."""
    if name in _VIZ:
        from minigrad import viz

        return getattr(viz, name)
    raise AttributeError(f"module 'minigrad' has no attribute {name!r}")
