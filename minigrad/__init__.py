"""minigrad: a reverse-mode autograd engine on NumPy, small enough to read in an afternoon."""

__version__ = "0.1.0"  # the one place the version is written; pyproject.toml reads it

from minigrad.tensor import (  # noqa: I001  (binds the ops)
    Tensor, arange, ones, ones_like, randn, tensor, zeros, zeros_like,
)
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
from minigrad.ops.elementwise import (
    eq, exp, log, maximum, minimum, ne, relu, sigmoid, sqrt, tanh, where,
)
from minigrad.ops.linalg import matmul
from minigrad.ops.nn import log_softmax, softmax
from minigrad.ops.shape import cat, concat, split, stack, unbind
from minigrad.random import manual_seed
from minigrad import nn, optim
from minigrad.checkpoint import load, save
from minigrad.viz import draw_graph, print_graph, trace_backward
from minigrad.compile import compile

__all__ = [
    "AnomalyError", "arange", "cat", "concat", "detect_anomaly", "draw_graph", "enable_grad", "eq",
    "exp", "Function", "grad", "gradcheck", "GradcheckError", "gradgradcheck", "GraphFreedError",
    "is_grad_enabled", "load", "log", "log_softmax", "manual_seed", "matmul", "maximum", "minimum",
    "name_scope", "ne", "nn", "no_grad", "ones", "ones_like", "optim", "print_graph", "randn",
    "relu", "save", "set_grad_enabled", "sigmoid", "softmax", "split", "sqrt", "stack", "tanh",
    "Tensor", "tensor", "trace_backward", "unbind", "where", "zeros", "zeros_like", "compile",
]
