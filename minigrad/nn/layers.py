"""Layers: Linear, Embedding, Dropout (PyTorch's shapes, defaults and initialization), the
activations Tanh, ReLU and Sigmoid as modules, and Sequential."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np

from minigrad.nn import functional as F
from minigrad.nn import init
from minigrad.nn.module import Module, Parameter
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
    """Inverted dropout with probability ``p`` in training mode; the identity in eval mode."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1); got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        """Zero elements with probability ``p`` and scale the rest by 1 / (1 - p) (training)."""
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        """The probability, as PyTorch prints it."""
        return f"p={self.p}"


class Tanh(Module):
    """y = tanh(x), elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        """tanh of every element."""
        return x.tanh()


class ReLU(Module):
    """y = max(x, 0), elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        """max(x, 0) of every element."""
        return x.relu()


class Sigmoid(Module):
    """y = 1 / (1 + e ** -x), elementwise."""

    def forward(self, x: Tensor) -> Tensor:
        """The logistic sigmoid of every element."""
        return x.sigmoid()


class Sequential(Module):
    """Modules applied in turn, each to the previous one's output.

    ``Sequential(m0, m1, ...)`` registers the modules as "0", "1", ..., so parameter names
    (``0.weight``) match PyTorch's; ``Sequential(OrderedDict(name=module, ...))`` uses the given
    names. Indexing counts positions; a slice is a Sequential that keeps the names.
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

    def _check(self, module: Any, name: str) -> None:
        if not isinstance(module, Module):
            raise TypeError(
                f"Sequential: module {name} must be a Module; got a {type(module).__name__}"
            )

    def append(self, module: Module) -> Sequential:
        """Add ``module`` at the end, under the name ``str(len(self))``."""
        self._check(module, str(len(self)))
        self.add_module(str(len(self)), module)
        return self

    def forward(self, x: Any) -> Any:
        """``x`` through every module in order."""
        for module in self:
            x = module(x)
        return x

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __getitem__(self, index: int | slice) -> Module:
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"Sequential: indices must be integers or slices; got {index!r}")
        if not -len(items) <= index < len(items):
            raise IndexError(
                f"Sequential: index {index} is out of range for {len(items)} modules"
            )
        return items[index][1]
