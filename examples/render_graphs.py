"""Draw the graphs that recurrent models build: the pictures in docs/graphs/.

    python examples/render_graphs.py [NAME ...] [--out docs/graphs] [--format svg]

Eight drawings (all of them unless NAMEs are given):
  lstm_cell          one LSTM cell step, top to bottom, its gates and states named as in the
                     cell's code (x, h, c in; i, f, g, o; the new c and h), with a legend
  gru_cell           one GRU cell step (r, z, n, h)
  lstm_collapsed     a 2-layer LSTM over 35 steps, each layer one box
  rnn_grad_norm      a vanilla RNN over 6 steps, each tensor shaded by the norm of the gradient
                     that reached it (watch it fade going back in time)
  neuron_backward    o = tanh(w·x + b) and the graph of its gradients, made with
                     create_graph=True and drawn as ops, with their values
  compiled_lstm      the forward program of one LSTM cell step compiled by mg.compile, as
                     traced and after the passes, side by side: the nine elementwise ops from
                     the gates to the new c and h become one fused kernel
  neuron_jvp         o = tanh(w·x + b) pushed forward along ẇ (mg.func.jvp): each value and
                     its tangent, made by the ops' jvp rules
  neuron_hvp         a Hessian-vector product of o² / 2, forward over reverse: the gradient's
                     ops pushed forward along v
Rendering needs Graphviz's ``dot`` (``apt-get install graphviz``); ``--format gv`` writes the
DOT sources, which need nothing.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import graphviz

import minigrad as mg
from minigrad import func
from minigrad.models import LSTM, RNN, GRUCell, LSTMCell
from minigrad.viz.render import Drawing, GraphvizNotFoundError


def lstm_cell_step() -> graphviz.Digraph:
    """One LSTMCell step, top to bottom, with a legend: x, h and c in, then the gates and the
    new c and h, named by the cell."""
    cell = LSTMCell(3, 4)
    x, h, c = mg.randn(2, 3).named("x"), mg.randn(2, 4).named("h"), mg.randn(2, 4).named("c")
    h, (h, c) = cell(x, (h, c))
    return mg.draw_graph(h, c, params=cell, rankdir="TB", legend=True)


def gru_cell_step() -> graphviz.Digraph:
    """One GRUCell step, top to bottom: x and h in, then r, z, n and the new h."""
    cell = GRUCell(3, 4)
    x, h = mg.randn(2, 3).named("x"), mg.randn(2, 4).named("h")
    h, _ = cell(x, h)
    return mg.draw_graph(h, params=cell, rankdir="TB")


def collapsed_lstm() -> graphviz.Digraph:
    """A 2-layer LSTM over 35 steps, each layer drawn as a single box with its inputs."""
    lstm = LSTM(16, 16, num_layers=2)
    out, _ = lstm(mg.randn(35, 4, 16).named("x"))
    return mg.draw_graph(out, params=lstm, collapse="l[0-9]")


def rnn_gradient_flow(steps: int = 6) -> graphviz.Digraph:
    """A vanilla RNN unrolled over ``steps``, shaded by the gradient norm at every tensor."""
    rnn = RNN(4, 8)
    with mg.no_grad():  # small recurrent weights: gradients shrink going back in time
        rnn.weight_hh_l0.data *= 0.5
    out, _ = rnn(mg.randn(steps, 1, 4).named("x"))
    loss = out[-1].sum()
    with mg.trace_backward() as trace:
        loss.backward()
    return mg.draw_graph(loss, params=rnn, color_by=trace.grad_norm, collapse="t*",
                         rankdir="TB")


def neuron_backward() -> graphviz.Digraph:
    """o = tanh(w·x + b) and, drawn as ops, the graph of do/dw made with create_graph=True."""
    x = mg.tensor([2.0, 0.0]).named("x")
    w = mg.tensor([-3.0, 1.0], requires_grad=True).named("w")
    b = mg.tensor(6.8813735870195432, requires_grad=True).named("b")  # o = 1/√2
    with mg.name_scope("forward"):
        o = (w @ x + b).tanh().named("o")
    with mg.name_scope("backward"):
        dw, db = mg.grad(o, [w, b], create_graph=True)
    return mg.draw_graph(dw.named("do/dw"), db.named("do/db"), show_values=True, rankdir="TB")


def neuron_jvp() -> graphviz.Digraph:
    """o = tanh(w·x + b) pushed forward along ẇ with mg.func.jvp: each op's output and, beside
    it, its tangent, made by the op's jvp rule from the tangents of its inputs."""
    x = mg.tensor([2.0, 0.0]).named("x")
    w = mg.tensor([-3.0, 1.0], requires_grad=True).named("w")
    b = mg.tensor(6.8813735870195432, requires_grad=True).named("b")  # o = 1/√2
    tw = mg.tensor([1.0, 0.5], requires_grad=True).named("ẇ")  # recorded, to be drawn
    o, to = func.jvp(lambda w: (w @ x + b).tanh(), (w,), (tw,))
    return mg.draw_graph(o.named("o"), to.named("ȯ"), show_values=True, rankdir="TB")


def neuron_hvp() -> graphviz.Digraph:
    """A Hessian-vector product, forward over reverse: the gradient of L = o² / 2, with
    o = tanh(w·x + b), made by backward's ops, then pushed forward along v by their jvp
    rules."""
    x = mg.tensor([2.0, 0.0]).named("x")
    w = mg.tensor([-3.0, 1.0], requires_grad=True).named("w")
    b = mg.tensor(6.8813735870195432).named("b")
    v = mg.tensor([1.0, 0.5], requires_grad=True).named("v")

    def loss(w: mg.Tensor) -> mg.Tensor:
        return ((w @ x + b).tanh() ** 2).sum() / 2

    _, hv = func.jvp(func.grad(loss), (w,), (v,))
    return mg.draw_graph(hv.named("Hv"), show_values=True, rankdir="TB")


def compiled_lstm_step() -> graphviz.Digraph:
    """The forward program of a compiled LSTMCell step, as traced (left) and after the passes
    (right), its inputs and outputs named."""
    cell = LSTMCell(3, 4)
    step = mg.compile(cell)
    with mg.no_grad():  # no backward program, so the forward one returns only h' and c'
        step(mg.randn(2, 3), (mg.randn(2, 4), mg.randn(2, 4)))
    (spec,) = step.traces
    params = {id(p): name for name, p in cell.named_parameters()}
    # a program's inputs are the arguments, then the tensors read from outside (the weights)
    inputs = ["x", "h", "c"] + [params[id(t)] for t in spec.trace.leaves]
    names = dict(zip(spec.forward.inputs, inputs))
    names.update(zip(spec.forward.outputs, ["h'", "h'", "c'"]))  # step returns h', (h', c')
    graph = Drawing(graph_attr={"nodesep": "0.15", "ranksep": "0.3"},
                    node_attr={"margin": "0.06,0.03", "width": "0.4"})
    for prefix, title, program in (("a", "as traced", spec.traced[0]),
                                   ("b", "after the passes", spec.forward)):
        part = program.draw(names=names, prefix=prefix)
        graph.subgraph(graphviz.Digraph(name=f"cluster_{prefix}", body=part.body,
                                        graph_attr={"label": title}, node_attr=part.node_attr))
    return graph


DRAWINGS: dict[str, Callable[[], graphviz.Digraph]] = {
    "lstm_cell": lstm_cell_step,
    "gru_cell": gru_cell_step,
    "lstm_collapsed": collapsed_lstm,
    "rnn_grad_norm": rnn_gradient_flow,
    "neuron_backward": neuron_backward,
    "compiled_lstm": compiled_lstm_step,
    "neuron_jvp": neuron_jvp,
    "neuron_hvp": neuron_hvp,
}


def draw(name: str) -> graphviz.Digraph:
    """One of the drawings, from the same seed every time."""
    mg.manual_seed(0)
    return DRAWINGS[name]()


def main(argv: list[str] | None = None) -> None:
    """Write the drawings named on the command line (all by default) to the output folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"drawings to write (default all): {', '.join(DRAWINGS)}")
    parser.add_argument("--out", type=Path, default=Path("docs/graphs"),
                        help="output folder (default docs/graphs)")
    parser.add_argument("--format", default="svg",
                        help="svg (default), png, pdf, ... or gv for the DOT source")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in DRAWINGS]
    if unknown:
        parser.error(f"unknown drawing {unknown[0]!r}; choose from {', '.join(DRAWINGS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.names or DRAWINGS:
        graph, path = draw(name), args.out / f"{name}.{args.format}"
        if args.format == "gv":
            path.write_text(graph.source)
        else:
            try:
                path.write_bytes(graph.pipe(format=args.format))
            except GraphvizNotFoundError as e:
                parser.exit(1, f"error: {e}\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
