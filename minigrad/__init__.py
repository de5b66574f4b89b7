"""minigrad: a reverse-mode autograd engine on NumPy, small enough to read in an afternoon."""

__version__ = "0.1.0"  # the one place the version is written; pyproject.toml reads it

import builtins  # noqa: I001  (the order below binds the ops)
import collections.abc
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import types

import numpy as np

from minigrad.tensor import (  # noqa: I001  (binds the ops)
    FUNCTIONS, Tensor, arange, empty, eye, from_numpy, full, full_like, linspace, ones, ones_like,
    rand, randint, randn, tensor, zeros, zeros_like,
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
from minigrad.ops.linalg import bmm, einsum, matmul, mm
from minigrad.ops.probability import log_softmax, multinomial, softmax
from minigrad.ops.shape import cat, concat, split, stack, unbind
from minigrad.random import manual_seed
from minigrad import func, nn, optim
from minigrad.memory import checkpoint, memory_report
from minigrad.serialization import load, save
from minigrad.viz import draw_graph, explore, print_graph, trace_backward
from minigrad.compile import compile

globals().update(FUNCTIONS)  # mg.sum, mg.max, mg.transpose...: the Tensor methods as functions

# dtypes under PyTorch's names: NumPy's, so that t.dtype == mg.float32 holds
float16 = half = np.dtype(np.float16)
float32 = float = np.dtype(np.float32)
float64 = double = np.dtype(np.float64)
int8, int16, uint8 = np.dtype(np.int8), np.dtype(np.int16), np.dtype(np.uint8)
int32 = int = np.dtype(np.int32)
int64 = long = np.dtype(np.int64)
bool = np.dtype(np.bool_)


def is_tensor(obj: object) -> builtins.bool:
    """Whether ``obj`` is a minigrad Tensor."""
    return isinstance(obj, Tensor)


class _CheckoutModels(importlib.abc.MetaPathFinder):
    """Finds ``minigrad.models`` in a checkout's top-level ``models/`` (a plain checkout, or an
    editable install). A wheel ships that folder as ``minigrad/models/``; a checkout has no such
    folder, as a symlink would be a text file where git makes none (Windows). This finder gives
    that one name the folder; its submodules are then found the usual way, one copy of each."""

    def find_spec(self, fullname: str, path: collections.abc.Sequence[str] | None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "minigrad.models":
            return None
        return importlib.util.spec_from_file_location(
            fullname, os.path.join(_CHECKOUT_MODELS, "__init__.py"),
            submodule_search_locations=[_CHECKOUT_MODELS])


_HERE = os.path.dirname(os.path.abspath(__file__))
_CHECKOUT_MODELS = os.path.join(os.path.dirname(_HERE), "models")
if not os.path.isdir(os.path.join(_HERE, "models")) and os.path.isfile(
        os.path.join(_CHECKOUT_MODELS, "__init__.py")):
    sys.meta_path.append(_CheckoutModels())


__all__ = [
    "bmm", "einsum", "empty", "eye", "from_numpy", "full", "full_like", "is_tensor", "linspace",
    "mm",
    "multinomial", "rand", "randint", *FUNCTIONS, "float16", "half", "float32", "float",
    "float64", "double", "int8", "int16", "uint8", "int32", "int", "int64", "long", "bool",
    "AnomalyError", "arange", "cat", "checkpoint", "concat", "detect_anomaly", "draw_graph",
    "enable_grad", "eq", "explore", "memory_report",
    "exp", "Function", "grad", "gradcheck", "GradcheckError", "gradgradcheck", "GraphFreedError",
    "is_grad_enabled", "load", "log", "log_softmax", "manual_seed", "matmul", "maximum", "minimum",
    "name_scope", "ne", "nn", "no_grad", "ones", "ones_like", "optim", "print_graph", "randn",
    "relu", "save", "set_grad_enabled", "sigmoid", "softmax", "split", "sqrt", "stack", "tanh",
    "Tensor", "tensor", "trace_backward", "unbind", "where", "zeros", "zeros_like", "compile",
    "func",
]
