"""Draw the graphs that recurrent models build, as SVG files.

    python examples/render_graphs.py [--out docs/graphs]

Writes five drawings: one LSTM cell step, one GRU cell step, a 2-layer LSTM language model
unrolled over 35 steps with every layer collapsed to one box, a vanilla RNN unrolled over 12
steps and shaded by the norm of the gradient that reached each tensor (watch it fade going
back in time), and the backward pass of a tanh neuron drawn as ops. Rendering needs Graphviz's
``dot`` (``apt-get install graphviz``); with ``--dot-only`` it writes the DOT sources instead.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import minigrad as mg
from minigrad.models import RNN, GRUCell, LSTMCell
from minigrad.models.lm import RNNLM


def cell_step(cell: mg.nn.Module, batch: int = 2):
    """One step of a cell on random input from a zero state, drawn with its parameter names."""
    x = mg.randn(batch, cell.input_size)
    h, _ = cell(x)
    return mg.draw_graph(h, params=cell)


def collapsed_language_model():
    """A 2-layer LSTM LM over 35 steps: each layer of the stack drawn as a single box."""
    model = RNNLM(vocab_size=50, embed_size=16, hidden_size=16, num_layers=2)
    ids = np.random.default_rng(0).integers(0, 50, (35, 4))
    loss, _ = model.loss(ids[:-1], ids[1:])
    return mg.draw_graph(loss, params=model, collapse="l*", rankdir="TB")


def rnn_gradient_flow(steps: int = 12):
    """A vanilla RNN unrolled over ``steps``, shaded by the gradient norm at every tensor."""
    rnn = RNN(4, 8)
    with mg.no_grad():  # small recurrent weights: gradients shrink going back in time
        rnn.weight_hh_l0.data *= 0.5
    out, _ = rnn(mg.randn(steps, 1, 4))
    loss = out[-1].sum()
    with mg.trace_backward() as trace:
        loss.backward()
    return mg.draw_graph(loss, params=rnn, color_by=trace.grad_norm, collapse="t*")


def neuron_backward():
    """o = tanh(w·x + b) and, drawn as ops, the graph of do/dw made with create_graph=True."""
    x = mg.tensor([2.0, 0.0])
    w = mg.tensor([-3.0, 1.0], requires_grad=True)
    b = mg.tensor(6.88, requires_grad=True)
    with mg.name_scope("forward"):
        o = (w @ x + b).tanh()
    with mg.name_scope("backward"):
        dw, db = mg.grad(o, [w, b], create_graph=True)
    return mg.draw_graph(dw, db, params={"x": x, "w": w, "b": b, "o": o})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/graphs"), help="output folder")
    parser.add_argument("--dot-only", action="store_true", help="write DOT sources, no SVG")
    args = parser.parse_args()
    mg.manual_seed(0)
    drawings = {
        "lstm_cell": lambda: cell_step(LSTMCell(3, 4)),
        "gru_cell": lambda: cell_step(GRUCell(3, 4)),
        "lstm_lm_collapsed": collapsed_language_model,
        "rnn_grad_norm": rnn_gradient_flow,
        "neuron_backward": neuron_backward,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    for name, draw in drawings.items():
        graph = draw()
        if args.dot_only:
            path = args.out / f"{name}.gv"
            path.write_text(graph.source)
        else:
            path = args.out / f"{name}.svg"
            path.write_bytes(graph.pipe(format="svg"))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
