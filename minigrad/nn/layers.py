"""Layers: Linear, Embedding, Dropout, LayerNorm (PyTorch's shapes, defaults and
initialization), the activations Tanh, ReLU and Sigmoid as modules, the losses CrossEntropyLoss,
NLLLoss and MSELoss as modules, and Sequential."""

from __future__ import annotations

import math
import sys
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np

from minigrad.nn import functional as F
from minigrad.nn import init
from minigrad.nn.module import Module, Parameter, _Container
from minigrad.tensor import Tensor


def _positive(layer: str, **sizes: int) -> None:
    for name, n in sizes.items():
        if not isinstance(n, (int, np.integer)) or n <= 0:
            raise ValueError(f"{layer}: {name} must be a positive integer; got {n!r}")


class Linear(Module):
    """y = x @ weight.T + bias for ``x`` of shape ``(..., in_features)``.

    ``weight`` is ``(out_features, in_features)``; weight and bias start in
    U(-1/sqrt(in_features), 1/sqrt(in_features)), PyTorch's default.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        _positive("Linear", in_features=in_features, out_features=out_features)
        self.in_features, self.out_features = in_features, out_features
        self.weight = Parameter(np.empty((out_features, in_features), np.float32))
        self.bias = Parameter(np.empty(out_features, np.float32)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: kaiming_uniform with a = sqrt(5), and the bias in ±1/sqrt(in)."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the affine map to the last axis of ``x``."""
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        """Sizes, as PyTorch prints them."""
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Embedding(Module):
    """A lookup table: integer ids of any shape -> rows of ``weight (num_embeddings, dim)``.

    ``weight`` starts as N(0, 1); the row ``padding_idx`` (if given) starts at zero and never
    receives a gradient. Gradients of repeated ids accumulate.
    """

    def __init__(
        self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None
    ) -> None:
        super().__init__()
        _positive("Embedding", num_embeddings=num_embeddings, embedding_dim=embedding_dim)
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(
                    f"Embedding: padding_idx {padding_idx} is out of range for "
                    f"num_embeddings={num_embeddings}"
                )
            padding_idx %= num_embeddings
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx
        self.weight = Parameter(np.empty((num_embeddings, embedding_dim), np.float32))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """N(0, 1), with the padding row zeroed."""
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, ids: Any) -> Tensor:
        """The rows for ``ids``: shape ``ids.shape + (embedding_dim,)``."""
        return F.embedding(ids, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        """Sizes, as PyTorch prints them."""
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        return text if self.padding_idx is None else f"{text}, padding_idx={self.padding_idx}"


class Dropout(Module):
    """Inverted dropout: in training mode y = x * m / (1 - p) with m_i ~ Bernoulli(1 - p); the
    identity in eval mode. ``p`` lies in [0, 1], as in PyTorch."""

    def __init__(self, p: float = 0.5, inplace: bool = False) -> None:
        super().__init__()
        F._check_dropout_p(p, "Dropout")
        F._no_inplace(inplace, "Dropout")
        self.p, self.inplace = p, inplace

    def forward(self, x: Tensor) -> Tensor:
        """Zero elements with probability ``p`` and scale the rest by 1 / (1 - p) (training)."""
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        """The probability, as PyTorch prints it."""
        return f"p={self.p}, inplace={self.inplace}"


class LayerNorm(Module):
    """Layer normalization over the last ``len(normalized_shape)`` axes, as
    ``torch.nn.LayerNorm``::

        y = (x - E[x]) / sqrt(Var[x] + eps) * weight + bias

    (biased variance). ``weight`` starts at ones and ``bias`` at zeros, both of shape
    ``normalized_shape`` and float32; ``elementwise_affine=False`` leaves out both and
    ``bias=False`` the bias (they are then None).
    """

    def __init__(self, normalized_shape: int | Sequence[int], eps: float = 1e-5,
                 elementwise_affine: bool = True, bias: bool = True) -> None:
        super().__init__()
        self.normalized_shape = F._normalized_shape(normalized_shape, "LayerNorm")
        self.eps, self.elementwise_affine = eps, elementwise_affine
        self.weight = self.bias = None
        if elementwise_affine:
            self.weight = Parameter(np.empty(self.normalized_shape, np.float32))
            if bias:
                self.bias = Parameter(np.empty(self.normalized_shape, np.float32))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """weight = 1, bias = 0, as PyTorch starts them."""
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Normalize each ``normalized_shape`` block of ``x``, then scale and shift it."""
        return F._layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps,
                             "LayerNorm")

    def extra_repr(self) -> str:
        """The shape and options, as PyTorch prints them."""
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class Tanh(Module):
    """y = tanh(x), elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        """tanh of every element."""
        return x.tanh()


class ReLU(Module):
    """y = max(x, 0), elementwise."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        F._no_inplace(inplace, "ReLU")
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        """max(x, 0) of every element."""
        return x.relu()


class Sigmoid(Module):
    """y = 1 / (1 + e ** -x), elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        """The logistic sigmoid of every element."""
        return x.sigmoid()


class _Loss(Module):
    """Base of the loss modules: ``reduction`` ('mean', 'sum' or 'none'), or what the
    deprecated ``size_average``/``reduce`` pair means, as in PyTorch."""

    def __init__(self, size_average: bool | None = None, reduce: bool | None = None,
                 reduction: str = "mean") -> None:
        super().__init__()
        # the deprecation warning points at the caller, past the __init__s of the subclasses
        frame, stacklevel = sys._getframe(), 3
        while frame.f_back is not None and frame.f_back.f_code.co_name == "__init__" \
                and frame.f_back.f_locals.get("self") is self:
            frame, stacklevel = frame.f_back, stacklevel + 1
        self.reduction = F._reduction(size_average, reduce, reduction, type(self).__name__,
                                      stacklevel=stacklevel)


class _ClassLoss(_Loss):
    """A loss over class ids, with optional class ``weight`` (shape (C,)) and
    ``ignore_index``; ``axis`` (keyword only, minigrad's addition) is the class axis."""

    def __init__(self, weight: Tensor | None = None, size_average: bool | None = None,
                 ignore_index: int = -100, reduce: bool | None = None,
                 reduction: str = "mean", *, axis: int = 1) -> None:
        super().__init__(size_average, reduce, reduction)
        F._check_ignore_index(type(self).__name__, ignore_index)
        if weight is not None and not isinstance(weight, Tensor):
            raise TypeError(
                f"{type(self).__name__}: weight must be a Tensor of shape (C,); got a "
                f"{type(weight).__name__}"
            )
        self.weight, self.ignore_index, self.axis = weight, ignore_index, axis


class CrossEntropyLoss(_ClassLoss):
    """``F.cross_entropy`` as a module: ``CrossEntropyLoss(...)(input, target)``. See
    ``minigrad.nn.functional.cross_entropy`` for the formula (class ids or class
    probabilities, class weights, ``ignore_index`` and ``label_smoothing``)."""

    def __init__(self, weight: Tensor | None = None, size_average: bool | None = None,
                 ignore_index: int = -100, reduce: bool | None = None,
                 reduction: str = "mean", label_smoothing: float = 0.0, *,
                 axis: int = 1) -> None:
        super().__init__(weight, size_average, ignore_index, reduce, reduction, axis=axis)
        if not 0 <= label_smoothing <= 1:
            raise ValueError(
                f"CrossEntropyLoss: label_smoothing must be between 0.0 and 1.0; got "
                f"{label_smoothing}"
            )
        self.label_smoothing = label_smoothing

    def forward(self, input: Tensor, target: Any) -> Tensor:
        """The loss of ``target`` under the logits ``input``."""
        return F.cross_entropy(input, target, self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing,
                               axis=self.axis)


class NLLLoss(_ClassLoss):
    """``F.nll_loss`` as a module: loss_n = -weight[t_n] * input[n, t_n] for log-probabilities
    ``input``, reduced by ``reduction`` ('mean' divides by the kept weights)."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        """The loss of ``target`` under the log-probabilities ``input``."""
        return F.nll_loss(input, target, self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction, axis=self.axis)


class MSELoss(_Loss):
    """``F.mse_loss`` as a module: (input - target) ** 2, averaged, added or kept."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        """The squared error of ``input`` against ``target`` (the same shape)."""
        return F.mse_loss(input, target, reduction=self.reduction)


class Sequential(_Container):
    """Modules applied in turn, each to the previous one's output.

    ``Sequential(m0, m1, ...)`` registers the modules as "0", "1", ..., so parameter names
    (``0.weight``) match PyTorch's; ``Sequential(OrderedDict(name=module, ...))`` uses the given
    names. Indexing counts positions; a slice is a Sequential that keeps the names. As in
    PyTorch, ``seq[i] = m`` replaces a module (keeping its name), ``del seq[i]`` (or a slice)
    removes and renumbers, and ``append``, ``extend``, ``insert``, ``pop``, ``+``, ``+=`` and
    ``*`` (repeating the same modules) work.
    """

    def __init__(self, *modules: Module | OrderedDict[str, Module]) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                self._check(module, name)
                self.add_module(name, module)
        else:
            for module in modules:
                self.append(module)

    def forward(self, x: Any) -> Any:
        """``x`` through every module in order."""
        for module in self:
            x = module(x)
        return x

    def __getitem__(self, index: int | slice) -> Module:
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))
        return items[self._position(index)][1]

    def _other(self, other: Any, op: str) -> Sequential:
        if not isinstance(other, Sequential):
            raise ValueError(
                f"Sequential {op}: supports only Sequential operands (as in PyTorch); got a "
                f"{type(other).__name__}"
            )
        return other

    def __add__(self, other: Sequential) -> Sequential:
        return Sequential(*self, *self._other(other, "+"))

    def __iadd__(self, other: Sequential) -> Sequential:
        return self.extend(list(self._other(other, "+=")))

    def _times(self, n: Any, op: str) -> int:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"Sequential {op}: expected an int; got a {type(n).__name__}")
        if n <= 0:
            raise ValueError(f"Sequential {op}: the factor must be positive; got {n}")
        return int(n)

    def __mul__(self, n: int) -> Sequential:
        return Sequential(*(list(self) * self._times(n, "*")))

    def __rmul__(self, n: int) -> Sequential:
        return self.__mul__(n)

    def __imul__(self, n: int) -> Sequential:
        return self.extend(list(self) * (self._times(n, "*=") - 1))
