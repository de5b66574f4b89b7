"""Recurrent layers: any cell run over a sequence, stacked, optionally bidirectional.

``Recurrent`` keeps PyTorch's layout: input ``(T, B, I)`` (``(B, T, I)`` with
``batch_first=True``) or unbatched ``(T, I)``, output ``(T, B, D*H)`` (unbatched ``(T, D*H)``)
with the two directions concatenated as ``[h→; h←]``, final states ``(L*D, B, H)`` (unbatched
``(L*D, H)``), and parameters named ``weight_ih_l{k}[_reverse]`` and so on, so a
``torch.nn.LSTM`` state_dict converted to NumPy loads as it is. The input must have the
weights' dtype, as in PyTorch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import minigrad as mg
from minigrad.nn import Module, ModuleList
from minigrad.nn import functional as F

from .cells import GRUCell, LSTMCell, RNNCell, State, _shapes


def _stack_states(states: Sequence[State]) -> State:
    if isinstance(states[0], tuple):
        return tuple(mg.stack(parts) for parts in zip(*states))
    return mg.stack(states)


def scan(cell: Module, xs: mg.Tensor, state: State, reverse: bool = False,
         checkpoint: int | str | None = None) -> tuple[mg.Tensor, State]:
    """Run ``cell`` over ``xs (T, B, I)`` from ``state``; return outputs ``(T, B, H)`` and the
    final state. A cell with ``project_input``/``step`` gets its input side for all T steps in
    one matmul; any other cell is called as ``cell(x_t, state)``. Each step runs in name scope
    ``t{t}``; the first step's new state must be shaped like ``state``.

    ``checkpoint=k`` runs the steps in segments of ``k`` (``"sqrt"``: about sqrt(T) steps), each
    under ``mg.checkpoint``: backward keeps the state between segments and recomputes one
    segment at a time, so memory grows with T / k + k steps instead of T, for one more forward.
    """
    size = segment_size(checkpoint, len(xs), "scan")
    if size is None or not mg.is_grad_enabled():
        return _steps(cell, xs, state, reverse, 0)
    starts = range(0, len(xs), size)
    outputs: list[mg.Tensor | None] = [None] * len(starts)
    parts = state if isinstance(state, tuple) else (state,)
    for k in reversed(range(len(starts))) if reverse else range(len(starts)):
        start = starts[k]
        out, *parts = mg.checkpoint(_segment, cell, xs[start:start + size], reverse, start,
                                    isinstance(state, tuple), *parts)
        outputs[k] = out
    joined = mg.concat(outputs)
    for k, piece in enumerate(outputs):  # the pieces become views of the joined outputs (the
        piece.data = joined.data[k * size:k * size + len(piece)]  # same values): kept once
    return joined, (tuple(parts) if isinstance(state, tuple) else parts[0])


def segment_size(checkpoint: int | str | None, steps: int, owner: str) -> int | None:
    """The steps per checkpointed segment for ``checkpoint`` (None: no checkpointing)."""
    if checkpoint is None:
        return None
    if checkpoint == "sqrt":
        return max(1, math.ceil(math.sqrt(steps)))
    if isinstance(checkpoint, bool) or not isinstance(checkpoint, int) or checkpoint < 1:
        raise ValueError(f"{owner}: checkpoint must be None, a positive number of steps per "
                         f"segment, or 'sqrt'; got {checkpoint!r}")
    return checkpoint


def _segment(cell: Module, xs: mg.Tensor, reverse: bool, start: int, tuple_state: bool,
             *parts: mg.Tensor) -> tuple[mg.Tensor, ...]:
    """One checkpointed segment: the steps over ``xs``, which start at step ``start``;
    returns the outputs and the state's parts."""
    out, state = _steps(cell, xs, parts if tuple_state else parts[0], reverse, start)
    return (out, *(state if tuple_state else (state,)))


def _steps(cell: Module, xs: mg.Tensor, state: State, reverse: bool, start: int
           ) -> tuple[mg.Tensor, State]:
    """The steps of ``scan`` over ``xs``, whose first is step ``start`` of the sequence."""
    if hasattr(cell, "project_input") and hasattr(cell, "step"):
        xs, step = cell.project_input(xs), cell.step
    else:
        step = cell
    inputs = mg.unbind(xs)  # one op for all steps, and one stack after them
    outputs: list[mg.Tensor | None] = [None] * len(inputs)
    first = len(inputs) - 1 if reverse else 0
    for t in reversed(range(len(inputs))) if reverse else range(len(inputs)):
        with mg.name_scope(f"t{start + t}"):
            if t == first:
                outputs[t], state = _checked_step(cell, step, inputs[t], state)
            else:
                outputs[t], state = step(inputs[t], state)
    return mg.stack(outputs), state


def _checked_step(cell: Module, step: Callable, x: mg.Tensor, state: State
                  ) -> tuple[mg.Tensor, State]:
    """``step(x, state)``, checking that the new state is shaped like the old one. A cell whose
    state is a tuple but that gets one tensor (it has no ``init_state`` of its own) would
    otherwise unpack that tensor's rows as ``h, c`` and fail far away, or not at all."""
    hint = (f"{type(cell).__name__}'s first step got its state as one tensor of shape "
            f"{_shapes(state)}; if the cell's state is a tuple such as (h, c), the cell defines "
            "init_state(batch, dtype) to return it (see Cell)")
    try:
        out, new_state = step(x, state)
    except Exception as e:
        if not isinstance(state, tuple):
            e.add_note(hint)
        raise
    if _shapes(new_state) != _shapes(state):
        raise ValueError(
            f"{type(cell).__name__}: a step returned a state of shape {_shapes(new_state)} from "
            f"a state of shape {_shapes(state)}; the new state must be shaped like the old"
            + ("" if isinstance(state, tuple) else f". {hint}")
        )
    return out, new_state


class Recurrent(Module):
    """Turn any cell into a multi-layer, optionally bidirectional recurrent layer.

    ``cell_type(input_size, hidden_size, **cell_kwargs)`` builds each cell. Layer k > 0 reads
    layer k-1's output, through dropout in training mode; with ``residual=True`` it also adds
    its input to its output when the widths match. ``forward(x, hx=None)`` returns
    ``(output, h_n)``, where ``hx``/``h_n`` hold one ``(L*D, B, H)`` tensor per state tensor
    of the cell (a tuple for LSTM-like cells). Without ``hx`` each cell starts from its
    ``init_state(batch, dtype)``, or from zeros of shape ``(B, H)`` if it has none: a cell of
    your own whose state is a tuple defines ``init_state``.
    """

    _flat_children = ("cells",)

    def __init__(self, cell_type: Callable[..., Module], input_size: int, hidden_size: int,
                 num_layers: int = 1, bidirectional: bool = False, dropout: float = 0.0,
                 batch_first: bool = False, residual: bool = False,
                 checkpoint: int | str | None = None, **cell_kwargs) -> None:
        super().__init__()
        name = type(self).__name__
        segment_size(checkpoint, 1, name)  # a bad value raises here, not at the first call
        if isinstance(cell_type, Module) or not callable(cell_type):
            got = ("a cell instance, " if isinstance(cell_type, Module) else "") + repr(cell_type)
            raise TypeError(
                f"{name}: cell_type must be a cell class (or a function that builds a cell), "
                f"as in Recurrent(LSTMCell, 3, 5): it builds one cell per layer and direction; "
                f"got {got}"
            )
        if num_layers < 1:
            raise ValueError(f"{name}: num_layers must be at least 1; got {num_layers}")
        if not 0 <= dropout < 1:
            raise ValueError(f"{name}: dropout must be in [0, 1); got {dropout}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bidirectional, self.dropout = bidirectional, dropout
        self.batch_first, self.residual, self.checkpoint = batch_first, residual, checkpoint
        self.num_directions = 2 if bidirectional else 1
        # The cells are submodules (train, eval and apply reach them); their parameters are
        # also registered here under PyTorch's names (weight_ih_l0, weight_hh_l0_reverse, ...),
        # the only names that named_parameters and state_dict give them (_flat_children).
        self.cells = ModuleList()
        for k in range(num_layers):
            width = input_size if k == 0 else hidden_size * self.num_directions
            for suffix in ("", "_reverse")[: self.num_directions]:
                cell = cell_type(width, hidden_size, **cell_kwargs)
                if not isinstance(cell, Module):
                    raise TypeError(f"{name}: cell_type({width}, {hidden_size}) must return a "
                                    f"Module; got {cell!r} ({type(cell).__name__})")
                for pname, p in cell.named_parameters():
                    setattr(self, f"{pname.replace('.', '_')}_l{k}{suffix}", p)
                self.cells.append(cell)

    def _initial_states(self, hx: State | None, batch: int, dtype, unbatched: bool = False
                        ) -> list[State]:
        """Each cell's state: from ``hx`` (checked: its shapes, and its dtype against the
        layer's), or the cell's zero state. An unbatched ``hx`` is ``(L*D, H)`` per part."""
        name = type(self).__name__
        zero = [cell.init_state(batch, dtype) if hasattr(cell, "init_state")
                else mg.zeros(batch, self.hidden_size, dtype=dtype) for cell in self.cells]
        if hx is None:
            return zero
        tuple_state = isinstance(zero[0], tuple)
        want = ((len(self.cells), self.hidden_size) if unbatched
                else (len(self.cells), batch, self.hidden_size))
        if _shapes(hx) != (tuple([want] * len(zero[0])) if tuple_state else want):
            what = (f"a tuple of {len(zero[0])} tensors, one per part of the cell's state "
                    f"(an LSTM's is (h_0, c_0)), each" if tuple_state else "a tensor")
            axes = "layers*directions, hidden" if unbatched else "layers*directions, batch, hidden"
            got = (f"a tuple of shapes {_shapes(hx)}" if isinstance(hx, tuple)
                   else f"a tensor of shape {hx.shape}" if isinstance(hx, mg.Tensor)
                   else f"a {type(hx).__name__}")
            raise ValueError(
                f"{name}: expected hx as {what} of shape {want} ({axes}"
                f"{'; the input is unbatched, (T, I)' if unbatched else ''}); got {got}"
            )
        parts = hx if tuple_state else (hx,)
        for part in parts:
            if part.dtype != dtype:
                raise ValueError(
                    f"{name}: hx must have the type {dtype} (the input's and the weights'), got "
                    f"type {part.dtype}"
                )
        if unbatched:
            parts = tuple(part.unsqueeze(1) for part in parts)
        per_cell = zip(*(mg.unbind(p) for p in parts))
        return [s if tuple_state else s[0] for s in per_cell]

    def _check_input(self, x: mg.Tensor) -> None:
        """Shape ``(T, B, I)`` / ``(B, T, I)`` or unbatched ``(T, I)``, T > 0, and the weights'
        dtype (as PyTorch, a float32 layer does not silently compute in float64)."""
        name = type(self).__name__
        if not isinstance(x, mg.Tensor):
            raise TypeError(f"{name}: expected the input as a Tensor; got a {type(x).__name__}")
        layout = "(B, T, I)" if self.batch_first else "(T, B, I)"
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            raise ValueError(
                f"{name}: expected input of shape {layout} or, unbatched, (T, I) with "
                f"I = {self.input_size}; got {x.shape}"
            )
        if x.shape[1 if self.batch_first and x.ndim == 3 else 0] == 0:
            raise ValueError(f"{name}: expected a sequence of length T > 0; got input of shape "
                             f"{x.shape}")
        weight = next((p for p in self._parameters.values() if p is not None), None)
        want = weight.dtype if weight is not None else None
        if x.dtype.kind != "f" or (want is not None and x.dtype != want):
            expected = want or "floating point"
            fix = (f"convert the input, x.astype(np.{want}), or the layer, "
                   f"layer.to(np.{x.dtype})" if want is not None and x.dtype.kind == "f"
                   else f"convert the input, x.astype(np.{want or 'float32'})")
            raise ValueError(
                f"{name}: input must have the type {expected} (the layer's weights), got type "
                f"{x.dtype}: {fix}"
            )

    def forward(self, x: mg.Tensor, hx: State | None = None) -> tuple[mg.Tensor, State]:
        """Run the stack over ``x``; return ``(output, h_n)``.

        ``x`` is ``(T, B, I)`` (``(B, T, I)`` with ``batch_first``) or unbatched ``(T, I)``;
        then ``hx`` parts are ``(L*D, H)``, the output ``(T, D*H)`` and ``h_n`` ``(L*D, H)``,
        as in PyTorch.
        """
        self._check_input(x)
        unbatched = x.ndim == 2
        if unbatched:
            x = x.unsqueeze(1)
        elif self.batch_first:
            x = x.swapaxes(0, 1)
        states = self._initial_states(hx, x.shape[1], x.dtype, unbatched)
        finals: list[State] = []
        layer_input = x
        for k in range(self.num_layers):
            with mg.name_scope(f"l{k}"):
                if k > 0:
                    layer_input = F.dropout(layer_input, self.dropout, self.training)
                outputs = []
                for d in range(self.num_directions):
                    i = k * self.num_directions + d
                    with mg.name_scope("bwd" if d else "fwd"):
                        out, final = scan(self.cells[i], layer_input, states[i],
                                          reverse=d == 1, checkpoint=self.checkpoint)
                    outputs.append(out)
                    finals.append(final)
                out = outputs[0] if len(outputs) == 1 else mg.concat(outputs, axis=-1)
                if self.residual and k > 0 and out.shape == layer_input.shape:
                    out = out + layer_input
            layer_input = out
        h_n = _stack_states(finals)
        if unbatched:
            h_n = (tuple(part.squeeze(1) for part in h_n) if isinstance(h_n, tuple)
                   else h_n.squeeze(1))
            return layer_input.squeeze(1), h_n
        output = layer_input.swapaxes(0, 1) if self.batch_first else layer_input
        return output, h_n

    def extra_repr(self) -> str:
        """Sizes and options, as PyTorch prints them."""
        text = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        for option in ("batch_first", "bidirectional", "residual"):
            if getattr(self, option):
                text += f", {option}=True"
        text += f", checkpoint={self.checkpoint!r}" if self.checkpoint is not None else ""
        return text + (f", dropout={self.dropout}" if self.dropout else "")


class RNN(Recurrent):
    """Elman RNN with PyTorch's signature; ``forward(x, hx=None) -> (output, h_n)``."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, *,
                 checkpoint: int | str | None = None) -> None:
        super().__init__(RNNCell, input_size, hidden_size, num_layers, bidirectional, dropout,
                         batch_first, checkpoint=checkpoint, nonlinearity=nonlinearity, bias=bias)


class LSTM(Recurrent):
    """LSTM with PyTorch's signature; ``forward(x, hx=None) -> (output, (h_n, c_n))``."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, *,
                 checkpoint: int | str | None = None) -> None:
        super().__init__(LSTMCell, input_size, hidden_size, num_layers, bidirectional, dropout,
                         batch_first, checkpoint=checkpoint, bias=bias)


class GRU(Recurrent):
    """GRU with PyTorch's signature; ``forward(x, hx=None) -> (output, h_n)``."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, *,
                 checkpoint: int | str | None = None) -> None:
        super().__init__(GRUCell, input_size, hidden_size, num_layers, bidirectional, dropout,
                         batch_first, checkpoint=checkpoint, bias=bias)


LAYERS: dict[str, type[Recurrent]] = {"lstm": LSTM, "gru": GRU, "rnn": RNN}


def layer_class(cell: str, owner: str) -> type[Recurrent]:
    """The layer class for ``cell`` ('lstm', 'gru' or 'rnn'); ``owner`` names the caller in
    the error for any other name."""
    if cell not in LAYERS:
        raise ValueError(f"{owner}: cell must be one of {sorted(LAYERS)}; got {cell!r}")
    return LAYERS[cell]
