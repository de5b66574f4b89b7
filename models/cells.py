"""Recurrent cells, each written as its textbook equations with minigrad ops.

A cell is a Module whose ``forward(x, state)`` returns ``(h, new_state)``. The cells here split
that step in two so that a layer can project a whole sequence at once:
``project_input(x)`` computes the input side ``W_ih x + b_ih`` (one matmul for all time steps;
it also adds ``b_hh`` when every gate adds both biases) and ``step(xp, state)`` does the rest.
Parameter names, shapes, gate order and initialization follow PyTorch's ``RNNCell``,
``LSTMCell`` and ``GRUCell``, so their weights load as they are.
"""

from __future__ import annotations

import math

import numpy as np

import minigrad as mg
from minigrad.nn import Module, Parameter, init
from minigrad.nn import functional as F

State = mg.Tensor | tuple[mg.Tensor, ...]


class Cell(Module):
    """Base class: fused weights ``weight_ih (gates*H, I)``, ``weight_hh (gates*H, H)`` and
    biases, initialized uniform in ±1/√H, an input projection and a zero initial state.

    Subclasses define ``step(xp, state) -> (h, new_state)``; a cell whose state is not a single
    ``(B, H)`` tensor also overrides ``init_state``. A cell whose gates only ever add
    ``b_ih + b_hh`` sets ``fold_hidden_bias``: ``b_hh`` then comes with the input side, added
    once per sequence, and ``project_hidden`` leaves it out.
    """

    gates = 1
    fold_hidden_bias = False

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        if input_size <= 0 or hidden_size <= 0:
            raise ValueError(
                f"{type(self).__name__}: input_size and hidden_size must be positive; got "
                f"{input_size} and {hidden_size}"
            )
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        rows = self.gates * hidden_size
        self.weight_ih = Parameter(np.empty((rows, input_size), np.float32))
        self.weight_hh = Parameter(np.empty((rows, hidden_size), np.float32))
        self.bias_ih = Parameter(np.empty(rows, np.float32)) if bias else None
        self.bias_hh = Parameter(np.empty(rows, np.float32)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw every parameter from U(-1/√H, 1/√H), as PyTorch does."""
        bound = 1 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def init_state(self, batch: int, dtype=np.float32) -> State:
        """The zero state for a batch."""
        return mg.zeros(batch, self.hidden_size, dtype=dtype)

    def project_input(self, x: mg.Tensor) -> mg.Tensor:
        """W_ih x + b_ih (+ b_hh when folded), for any leading shape (a whole sequence at once)."""
        if x.shape[-1] != self.input_size:
            raise ValueError(
                f"{type(self).__name__}: expected input with last axis {self.input_size}; "
                f"got shape {x.shape}"
            )
        bias = self.bias_ih + self.bias_hh if self.bias and self.fold_hidden_bias else self.bias_ih
        return F.linear(x, self.weight_ih, bias)

    def project_hidden(self, h: mg.Tensor, xp: mg.Tensor | None = None) -> mg.Tensor:
        """xp + W_hh h + b_hh from the projected input ``xp``, as one op when b_hh is folded
        into ``xp``; without ``xp``, W_hh h (+ b_hh unless folded)."""
        if self.fold_hidden_bias:
            return F.linear(h, self.weight_hh, xp)
        out = F.linear(h, self.weight_hh, self.bias_hh)
        return out if xp is None else xp + out

    def step(self, xp: mg.Tensor, state: State) -> tuple[mg.Tensor, State]:
        """One step from the projected input ``xp``."""
        raise NotImplementedError(f"{type(self).__name__} must define step")

    def forward(self, x: mg.Tensor, state: State | None = None) -> tuple[mg.Tensor, State]:
        """One step: ``(h, new_state)`` from input ``x (B, I)`` and ``state`` (zeros if None)."""
        if x.ndim != 2:
            raise ValueError(
                f"{type(self).__name__}: expected input of shape (batch, {self.input_size}); "
                f"got {x.shape}"
            )
        zero = self.init_state(x.shape[0], x.dtype)
        if state is None:
            state = zero
        elif _shapes(state) != _shapes(zero):
            raise ValueError(
                f"{type(self).__name__}: expected a state of shape {_shapes(zero)} for a batch "
                f"of {x.shape[0]}; got {_shapes(state)}"
            )
        return self.step(self.project_input(x), state)

    def extra_repr(self) -> str:
        """Sizes, as PyTorch prints them."""
        return f"{self.input_size}, {self.hidden_size}" + ("" if self.bias else ", bias=False")


def _name(**tensors: mg.Tensor) -> None:
    """Name each tensor after its keyword: the names ``draw_graph`` and ``print_graph`` show."""
    for name, t in tensors.items():
        t.named(name)


def _shapes(state: State) -> tuple:
    """The shape of a state, or the tuple of its parts' shapes."""
    if isinstance(state, tuple):
        return tuple(getattr(part, "shape", None) for part in state)
    return getattr(state, "shape", None)


class RNNCell(Cell):
    """Elman cell: h' = f(W_ih x + b_ih + W_hh h + b_hh), f = tanh or relu."""

    fold_hidden_bias = True

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh") -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"RNNCell: nonlinearity must be 'tanh' or 'relu'; got {nonlinearity!r}"
            )
        super().__init__(input_size, hidden_size, bias)
        self.nonlinearity = nonlinearity

    def step(self, xp, h):
        pre = self.project_hidden(h, xp)
        h = pre.tanh() if self.nonlinearity == "tanh" else pre.relu()
        _name(h=h)
        return h, h


class LSTMCell(Cell):
    """LSTM: i, f, g, o = σ, σ, tanh, σ of (W_ih x + b_ih + W_hh h + b_hh);
    c' = f⊙c + i⊙g; h' = o⊙tanh(c'). State is (h, c)."""

    gates = 4
    fold_hidden_bias = True

    def init_state(self, batch: int, dtype=np.float32) -> State:
        """Zero hidden and cell states."""
        return super().init_state(batch, dtype), super().init_state(batch, dtype)

    def step(self, xp, state):
        h, c = state
        i, f, g, o = self.project_hidden(h, xp).chunk(4, -1)
        i, f, g, o = i.sigmoid(), f.sigmoid(), g.tanh(), o.sigmoid()
        c = f * c + i * g
        h = o * c.tanh()
        _name(i=i, f=f, g=g, o=o, c=c, h=h)
        return h, (h, c)


class GRUCell(Cell):
    """GRU: r, z = σ(W_i{r,z} x + b_i{r,z} + W_h{r,z} h + b_h{r,z});
    n = tanh(W_in x + b_in + r⊙(W_hn h + b_hn)); h' = (1 − z)⊙n + z⊙h."""

    gates = 3  # b_hh stays with the hidden side: b_hn sits inside r⊙(…)

    def step(self, xp, h):
        x_r, x_z, x_n = xp.chunk(3, -1)
        h_r, h_z, h_n = self.project_hidden(h).chunk(3, -1)
        r = (x_r + h_r).sigmoid()
        z = (x_z + h_z).sigmoid()
        n = (x_n + r * h_n).tanh()
        h = (1 - z) * n + z * h
        _name(r=r, z=z, n=n, h=h)
        return h, h


class PeepholeLSTMCell(LSTMCell):
    """LSTM whose gates also see the cell state (Gers & Schmidhuber, 2000):
    i = σ(… + p_i⊙c), f = σ(… + p_f⊙c), c' = f⊙c + i⊙g, o = σ(… + p_o⊙c'), h' = o⊙tanh(c').
    The peephole weights are vectors (diagonal matrices)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__(input_size, hidden_size, bias)
        self.peephole_i = Parameter(np.empty(hidden_size, np.float32))
        self.peephole_f = Parameter(np.empty(hidden_size, np.float32))
        self.peephole_o = Parameter(np.empty(hidden_size, np.float32))
        self.reset_parameters()  # again, now that the peepholes exist

    def step(self, xp, state):
        h, c = state
        i, f, g, o = self.project_hidden(h, xp).chunk(4, -1)
        i = (i + self.peephole_i * c).sigmoid()
        f = (f + self.peephole_f * c).sigmoid()
        g = g.tanh()
        c = f * c + i * g
        o = (o + self.peephole_o * c).sigmoid()
        h = o * c.tanh()
        _name(i=i, f=f, g=g, o=o, c=c, h=h)
        return h, (h, c)


class CoupledLSTMCell(LSTMCell):
    """LSTM with coupled input and forget gates (no input gate): f, g, o from the weights,
    i = 1 − f; c' = f⊙c + (1 − f)⊙g; h' = o⊙tanh(c')."""

    gates = 3

    def step(self, xp, state):
        h, c = state
        f, g, o = self.project_hidden(h, xp).chunk(3, -1)
        f, g, o = f.sigmoid(), g.tanh(), o.sigmoid()
        c = f * c + (1 - f) * g
        h = o * c.tanh()
        _name(f=f, g=g, o=o, c=c, h=h)
        return h, (h, c)
