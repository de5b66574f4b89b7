"""Tests of minigrad.viz: DOT source of drawn graphs, SVG rendering, print_graph, trace_backward,
and the drawings of examples/render_graphs.py.

Tests that render need Graphviz's `dot`; without it they skip and say why (`pytest -rs`)."""

from __future__ import annotations

import importlib.util
import io
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import graphviz
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad.models import LSTMCell
from minigrad.viz.render import GraphvizNotFoundError

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None,
    reason="rendering needs Graphviz's `dot`, which is not on PATH (apt-get install graphviz)",
)
_spec = importlib.util.spec_from_file_location("render_graphs", ROOT / "examples/render_graphs.py")
render_graphs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(render_graphs)
NODE = re.compile(r"^\s*(\w+) \[(.*)\]$")
EDGE = re.compile(r"^\s*(\w+) -> (\w+)(?: \[(.*)\])?$")


class Dot:
    """What a test needs from DOT source: nodes with attributes, edges, nested clusters."""

    def __init__(self, source: str) -> None:
        self.nodes: dict[str, str] = {}
        self.edges: list[tuple[str, str, str]] = []
        self.clusters: dict[str, dict] = {}  # scope path -> parent path, label, direct nodes
        stack = [""]
        for line in source.splitlines():
            text = line.strip()
            if text.startswith("subgraph cluster"):
                stack.append(None)  # named by the tooltip on its next line
            elif text == "}":
                stack.pop()
            elif text.startswith("graph [") and stack[-1] is None:
                path = _attr(text, "tooltip")
                self.clusters[path] = {"parent": stack[-2], "label": _lines(text)[0], "nodes": []}
                stack[-1] = path
            elif m := EDGE.match(line):
                self.edges.append((m.group(1), m.group(2), m.group(3) or ""))
            elif (m := NODE.match(line)) and m.group(1) not in ("graph", "node", "edge"):
                self.nodes[m.group(1)] = m.group(2)
                if stack[-1]:
                    self.clusters[stack[-1]]["nodes"].append(m.group(1))

    def ids(self, prefix: str) -> list[str]:
        """Ids t0, t1, ... (tensors), op0, ... (ops) or box0, ... (collapsed scopes), in the
        order draw_graph numbered them (data-flow order)."""
        found = [n for n in self.nodes if re.fullmatch(prefix + r"\d+", n)]
        return sorted(found, key=lambda n: int(n[len(prefix):]))

    def lines(self, nid: str) -> list[str]:
        return _lines(self.nodes[nid])

    def labels(self, prefix: str) -> list[str]:
        """The first label line of each node with that prefix."""
        return [self.lines(n)[0] for n in self.ids(prefix)]

    def with_label(self, first_line: str) -> str:
        (nid,) = [n for n in self.nodes if n != "legend" and self.lines(n)[0] == first_line]
        return nid


def _lines(attrs: str) -> list[str]:
    """The lines of an HTML-like label (one line, or the cells of a table), tags dropped
    (entities kept)."""
    start = attrs.index("label=<") + len("label=")
    depth = 0
    for end in range(start, len(attrs)):
        depth += {"<": 1, ">": -1}.get(attrs[end], 0)
        if depth == 0:
            break
    label = attrs[start + 1:end]
    parts = re.findall(r"<TD[^>]*>(.*?)</TD>", label) if label.startswith("<TABLE") else [label]
    return [re.sub(r"<[^>]*>", "", part) for part in parts]


def _attr(attrs: str, key: str) -> str | None:
    m = re.search(key + r'=("(?:[^"\\]|\\.)*"|[^ \]]+)', attrs)
    return None if m is None else m.group(1).strip('"')


def neuron():
    """micrograd's neuron: five leaves, four ops of arithmetic and a tanh."""
    p = {k: mg.tensor(v, requires_grad=True)
         for k, v in {"x1": 2.0, "x2": 0.0, "w1": -3.0, "w2": 1.0, "b": 6.8813735870195432}.items()}
    o = (p["x1"] * p["w1"] + p["x2"] * p["w2"] + p["b"]).tanh()
    return o, p


def rnn(steps=3, layers=1, seed=0):
    """A vanilla RNN under scopes rnn.l{k}.t{t}; returns the loss, the states and the weights."""
    rng = np.random.default_rng(seed)
    weights = {f"W{k}": mg.tensor(0.3 * rng.standard_normal((3, 3)), dtype=np.float32,
                                  requires_grad=True) for k in range(layers)}
    xs = [mg.tensor(rng.standard_normal((2, 3)), dtype=np.float32) for _ in range(steps)]
    states = []
    with mg.name_scope("rnn"):
        for k in range(layers):
            h = mg.zeros(2, 3)
            with mg.name_scope(f"l{k}"):
                for t in range(steps):
                    with mg.name_scope(f"t{t}"):
                        h = (xs[t] @ weights[f"W{k}"] + h).tanh()
                    states.append(h)
                    xs[t] = h
    return h.sum(), states, weights


# ----------------------------------------------------------------------------------------------
# nodes, labels, names


def test_neuron_has_the_expected_nodes_and_edges():
    o, p = neuron()
    dot = Dot(mg.draw_graph(o, params=p).source)
    assert sorted(dot.labels("op")) == ["Add", "Add", "Mul", "Mul", "Tanh"]
    assert len(dot.ids("t")) == 10  # 5 leaves, 4 intermediate results, the output
    assert len(dot.edges) == 9 + 5  # one per op input, one per op output
    assert {n for e in dot.edges for n in e[:2]} == set(dot.nodes)
    for name in p:
        nid = dot.with_label(name)
        assert dot.lines(nid) == [name, "() float32"]
        assert _attr(dot.nodes[nid], "fillcolor") == "#dbe8f6"  # a parameter


def test_labels_show_shape_and_dtype():
    a = mg.tensor(np.ones((2, 3)), requires_grad=True)  # float64 stays float64
    b = mg.tensor(np.ones((3, 4), np.float32), requires_grad=True)
    y = a.astype(np.float32) @ b
    labels = Dot(mg.draw_graph(y).source).labels("t")
    assert sorted(labels) == ["(2, 3) float32", "(2, 3) float64", "(2, 4) float32",
                              "(3, 4) float32"]


def test_params_from_anything_with_named_parameters():
    class Net:  # what draw_graph needs of a Module
        def __init__(self):
            self.w = mg.tensor(np.ones((2, 2)), requires_grad=True)

        def named_parameters(self):
            yield "encoder.weight", self.w
            yield "decoder.weight", self.w  # tied: the first name wins

    net = Net()
    y = (net.w @ net.w).sum()
    source = mg.draw_graph(y, params=net).source
    assert Dot(source).lines(Dot(source).with_label("encoder.weight"))[1] == "(2, 2) float64"
    assert "decoder.weight" not in source
    with pytest.raises(TypeError, match="params must be a dict name -> Tensor or a Module"):
        mg.draw_graph(y, params=[net.w])
    with pytest.raises(TypeError, match="params: 'w' must name a Tensor; got ndarray"):
        mg.draw_graph(y, params={"w": np.ones(2)})


def test_outputs_of_multi_output_ops_say_which_output_they_are_in_their_own_label():
    x = mg.tensor(np.arange(6.0), requires_grad=True)
    a, _, c = x.chunk(3)
    dot = Dot(mg.draw_graph(a * c).source)
    split = dot.with_label("Split")
    outputs = [head for tail, head, _ in dot.edges if tail == split]
    assert [dot.lines(t) for t in outputs] == [["[0] (2,) float64"], ["[2] (2,) float64"]]
    assert all(label == "" for _, _, label in dot.edges)  # no edge labels to pile up
    assert len(dot.ids("t")) == 4  # the unused piece is not drawn


def test_unbind_outputs_are_labelled_on_their_nodes_and_named_ones_keep_the_number():
    x = mg.tensor(np.ones((12, 2)), requires_grad=True)
    parts = mg.unbind(x)
    parts[5].named("x5")
    dot = Dot(mg.draw_graph(mg.stack(parts)).source)
    unbind = dot.with_label("Unbind")
    outputs = [head for tail, head, _ in dot.edges if tail == unbind]
    assert [dot.lines(t)[-1] for t in outputs] == [f"[{k}] (2,) float64" for k in range(12)]
    assert dot.lines(outputs[5]) == ["x5", "[5] (2,) float64"]
    with mg.name_scope("s"):
        parts = mg.unbind(x)
    boxed = Dot(mg.draw_graph(mg.stack(parts), collapse="s").source)
    labels = [line for t in boxed.ids("t") for line in boxed.lines(t)]
    assert boxed.labels("box") == ["s"] and labels.count("(2,) float64") == 12
    assert not any("[" in line for line in labels)  # no number for the outputs of a box


def test_tensor_names_label_drawings_and_printed_graphs_and_params_win():
    w = mg.tensor(np.ones((2, 3)), requires_grad=True).named("not shown")
    x = mg.tensor(np.ones(3)).named("x")
    h = (w @ x).tanh().named("h")
    assert h.name == "h" and (w @ x).name is None  # ops make unnamed tensors
    dot = Dot(mg.draw_graph(h, params={"w": w}).source)
    assert dot.lines(dot.with_label("h")) == ["h", "(2,) float64"]
    assert dot.lines(dot.with_label("x")) == ["x", "(3,) float64"]
    assert dot.with_label("w") and "not shown" not in mg.draw_graph(h, params={"w": w}).source
    out = io.StringIO()
    mg.print_graph(h, params={"w": w}, file=out)
    assert [_left(line) for line in out.getvalue().splitlines()] == [
        "h = Tanh(%0)", "  %0 = MatMul(w, x)", "    w", "    x"]


def test_print_graph_tells_apart_tensors_that_share_a_name():
    h = mg.tensor(np.ones(2), requires_grad=True).named("h")
    for _ in range(2):
        h = (h * 2).named("h")
    out = io.StringIO()
    mg.print_graph(h, file=out)
    assert [_left(line) for line in out.getvalue().splitlines()] == [
        "h = Mul(h_1, %0)", "  h_1 = Mul(h_2, %1)", "    h_2", "    %1", "  %0"]


def test_named_sets_the_name_and_returns_the_tensor_and_rejects_a_non_string():
    t = mg.tensor([1.0])
    assert t.name is None and t.named("c") is t and t.name == "c"
    assert t.detach().name is None
    with pytest.raises(TypeError, match="Tensor.named: name must be a str; got int"):
        t.named(3)
    assert t.name == "c"


def test_built_in_cells_name_their_gates_and_states_as_their_equations_do():
    from minigrad.models import CoupledLSTMCell, GRUCell, PeepholeLSTMCell, RNNCell

    x = mg.randn(2, 3)
    for cell, names in [(RNNCell(3, 4), {"h"}), (GRUCell(3, 4), set("rznh")),
                        (LSTMCell(3, 4), set("ifgoch")), (PeepholeLSTMCell(3, 4), set("ifgoch")),
                        (CoupledLSTMCell(3, 4), set("fgoch"))]:
        h, state = cell(x)
        assert h.name == "h" and (not isinstance(state, tuple) or state[1].name == "c")
        dot = Dot(mg.draw_graph(h, params=cell).source)
        named = {dot.lines(t)[0] for t in dot.ids("t")} - {n for n, _ in cell.named_parameters()}
        assert {n for n in named if "float32" not in n} == names, type(cell).__name__


def test_the_legend_explains_fills_borders_and_dashes_and_stays_off_by_default():
    o, p = neuron()
    assert "parameter (leaf with grad)" not in mg.draw_graph(o).source
    source = mg.draw_graph(o, legend=True).source
    (graph_line,) = [line for line in source.splitlines() if line.strip().startswith("graph [")]
    rows = re.findall(r'<TD BORDER="(\d)" BGCOLOR="([^"]*)" STYLE="([^"]*)"[^>]*></TD>'
                      r'<TD ALIGN="LEFT"><FONT POINT-SIZE="9">([^<]*)</FONT>', graph_line)
    assert rows == [("1", "#dbe8f6", "rounded", "parameter (leaf with grad)"),
                    ("1", "#e3f1dc", "rounded", "input (leaf without grad)"),
                    ("2", "#ffffff", "rounded", "root (drawn from)"),
                    ("1", "#eeeeee", "dashed", "op: saved arrays freed by backward")]
    assert "labelloc=b" in graph_line  # below the drawing, not beside it
    w, x = mg.tensor(1.0, requires_grad=True), mg.tensor([1.0, 2.0])
    fills = Dot(mg.draw_graph((w * x).sum()).source)  # w, x, w * x, the sum
    assert [_attr(fills.nodes[t], "fillcolor") for t in fills.ids("t")] == [
        "#dbe8f6", "#e3f1dc", None, None]  # the made ones take the default, white
    o.backward()
    shaded = mg.draw_graph(o, legend=True, color_by="grad_norm").source
    assert "root (drawn from)" in shaded and "parameter (leaf with grad)" not in shaded


def test_constants_show_their_value_and_values_and_grads_are_summarised():
    x = mg.tensor([[1.0, -2.0, 4.0]], requires_grad=True)
    y = (x * 3).sum()
    assert ["() float32", "3"] in [Dot(mg.draw_graph(y).source).lines(n) for n in ("t0", "t1")]
    y.backward()
    dot = Dot(mg.draw_graph(y, params={"x": x}, show_values=True, show_grads=True).source)
    assert dot.lines(dot.with_label("x")) == [
        "x", "(1, 3) float32", "min -2 mean 1 max 4", "grad min 3 mean 3 max 3"]
    (root,) = [n for n in dot.ids("t") if "penwidth=2" in dot.nodes[n]]
    assert dot.lines(root) == ["() float32", "9"]  # no grad line: a non-leaf keeps no .grad


# ----------------------------------------------------------------------------------------------
# scopes, clusters, collapse


def test_clusters_nest_by_scope_and_leaves_sit_in_their_common_scope():
    loss, _, weights = rnn(steps=2, layers=2)
    dot = Dot(mg.draw_graph(loss, params=weights).source)
    c = dot.clusters
    assert set(c) == {"rnn", "rnn.l0", "rnn.l1", "rnn.l0.t0", "rnn.l0.t1", "rnn.l1.t0",
                      "rnn.l1.t1"}
    assert c["rnn"]["parent"] == "" and c["rnn.l1"]["parent"] == "rnn"
    assert c["rnn.l1.t0"]["parent"] == "rnn.l1" and c["rnn.l1.t0"]["label"] == "t0"
    assert [dot.lines(n)[0] for n in c["rnn.l0.t1"]["nodes"] if n.startswith("op")] == [
        "MatMul", "Add", "Tanh"]
    assert dot.with_label("W1") in c["rnn.l1"]["nodes"]  # used by every step of layer 1
    assert dot.with_label("Sum") not in [n for v in c.values() for n in v["nodes"]]


def test_collapse_draws_each_time_step_as_one_box_with_its_inputs_and_outputs():
    loss, _, weights = rnn(steps=3)
    full = Dot(mg.draw_graph(loss, params=weights).source)
    dot = Dot(mg.draw_graph(loss, params=weights, collapse="t*").source)
    assert [dot.lines(b) for b in dot.ids("box")] == [[f"t{t}", "3 ops"] for t in range(3)]
    assert dot.labels("op") == ["Sum"]
    # per step, 3 ops and 2 tensors (x @ W, then + h) disappear into one box
    assert len(dot.nodes) == len(full.nodes) - 3 * (3 + 2) + 3
    box1 = dot.ids("box")[1]
    inputs = sorted(dot.lines(a)[0] for a, b, _ in dot.edges if b == box1)
    assert inputs == ["(2, 3) float32", "(2, 3) float32", "W0"]  # x1, h1, W0
    (out,) = [b for a, b, _ in dot.edges if a == box1]
    assert (box1, out, "") in dot.edges and (out, dot.ids("box")[2], "") in dot.edges
    assert set(dot.clusters) == {"rnn", "rnn.l0"}


@pytest.mark.parametrize("collapse, boxes", [
    ("t*", ["t0", "t1", "t0", "t1"]),
    ("l0.t*", ["t0", "t1"]),
    (["l1", "l0.t0"], ["t0", "l1"]),
    ("rnn", ["rnn"]),
    ("rnn.l*", ["l0", "l1"]),
    ("r*.t1", []),  # a * never crosses a dot
    (lambda path: path.endswith("l0.t1"), ["t1"]),
])
def test_collapse_patterns_match_the_last_parts_of_a_scope_path(collapse, boxes):
    loss, _, _ = rnn(steps=2, layers=2)
    dot = Dot(mg.draw_graph(loss, collapse=collapse).source)
    assert [dot.lines(b)[0] for b in dot.ids("box")] == boxes


def test_collapse_rejects_what_is_not_a_pattern():
    loss, _, _ = rnn(steps=1)
    with pytest.raises(TypeError, match="collapse must be a scope pattern"):
        mg.draw_graph(loss, collapse=3)
    with pytest.raises(TypeError, match="collapse must be a scope pattern"):
        mg.draw_graph(loss, collapse=["t*", None])


OPS = ["add", "mul", "tanh", "split"]
SCOPES = ["", "a", "a.t0", "a.t1", "b"]


@st.composite
def random_graphs(draw):
    """A random DAG of ops on 1-3 leaves of shape (2,), each op made in one of a few scopes;
    "split" uses one of its two outputs and sometimes keeps the other alive, unused."""
    pool = [mg.tensor(np.full(2, k + 1.0), requires_grad=True)
            for k in range(draw(st.integers(1, 3)))]
    unused = []
    for _ in range(draw(st.integers(1, 12))):
        op, i, j = draw(st.sampled_from(OPS)), draw(st.integers(0, 99)), draw(st.integers(0, 99))
        x, y = pool[i % len(pool)], pool[j % len(pool)]
        with mg.name_scope(draw(st.sampled_from(SCOPES))):
            if op == "split":
                used, other = x.split([1, 1])[:: 1 if j % 2 else -1]
                pool.append(mg.concat([used, used]))
                unused += [other] if i % 2 else []
            else:
                pool.append(x + y if op == "add" else x * y if op == "mul" else x.tanh())
    return pool[-1] * 1.0, unused


@given(random_graphs())
def test_drawings_of_random_graphs_hold_every_op_and_tensor_once(graph):
    root, _ = graph
    ops, tensors, stack = set(), {id(root)}, [root.grad_fn]
    while stack:
        fn = stack.pop()
        if fn not in ops:
            ops.add(fn)
            tensors.update(id(x) for x in fn.inputs)
            stack.extend(x.grad_fn for x in fn.inputs if x.grad_fn is not None)
    dot = Dot(mg.draw_graph(root).source)
    assert len(dot.ids("op")) == len(ops)
    assert len(dot.ids("t")) == len(tensors)
    drawn_outputs = sum(1 for fn in ops for ref in fn.outputs if id(ref()) in tensors)
    assert len(dot.edges) == sum(len(fn.inputs) for fn in ops) + drawn_outputs

    boxed = Dot(mg.draw_graph(root, collapse="t*").source)
    steps = {fn.scope for fn in ops} & {"a.t0", "a.t1"}
    assert sorted(boxed.labels("box")) == sorted(s[2:] for s in steps)
    assert len(boxed.ids("op")) == sum(1 for fn in ops if fn.scope not in steps)
    assert {n for e in boxed.edges for n in e[:2]} <= set(boxed.nodes)
    for b in boxed.ids("box"):  # a box never feeds itself
        outs = {h for t, h, _ in boxed.edges if t == b}
        assert not any(t in outs and h == b for t, h, _ in boxed.edges)


# ----------------------------------------------------------------------------------------------
# determinism, size, freed graphs


def test_the_same_computation_gives_the_same_source():
    def draw():
        loss, _, weights = rnn(steps=3, layers=2, seed=7)
        with mg.trace_backward() as tr:
            loss.backward()
        return [mg.draw_graph(loss, params=weights, **kw).source for kw in (
            {}, {"collapse": "t*"}, {"color_by": tr.grad_norm, "show_values": True})]

    first, second = draw(), draw()
    assert first == second
    assert len(set(first)) == 3


def test_a_10000_op_chain_draws_and_prints_without_recursion():
    y = mg.tensor(0.5, requires_grad=True)
    for _ in range(10_000):
        y = y.tanh()
    dot = Dot(mg.draw_graph(y).source)
    assert len(dot.ids("op")) == 10_000 and len(dot.ids("t")) == 10_001
    out = io.StringIO()
    mg.print_graph(y, file=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 10_001
    assert lines[-1].startswith(" " * 48 + "(10000) %10000 ")  # indentation stops growing
    assert lines[-1].split()[-3:] == ["()", "float32", "leaf"]


def test_drawing_works_after_backward_freed_the_graph():
    loss, _, weights = rnn(steps=2)
    before = Dot(mg.draw_graph(loss, params=weights, show_values=True).source)
    loss.backward(retain_graph=True)
    retained = mg.draw_graph(loss, params=weights, show_values=True).source
    assert retained == mg.draw_graph(loss, params=weights, show_values=True).source
    assert "dashed" not in retained and Dot(retained).nodes == before.nodes
    loss.backward()
    after = Dot(mg.draw_graph(loss, params=weights, show_values=True).source)
    assert after.edges == before.edges and list(after.nodes) == list(before.nodes)
    assert [after.lines(n) for n in after.nodes] == [before.lines(n) for n in before.nodes]
    for op in after.ids("op"):
        assert "dashed" not in before.nodes[op] and "dashed" in after.nodes[op]
        assert "saved arrays freed by backward" in _attr(after.nodes[op], "tooltip")
    with pytest.raises(mg.GraphFreedError):  # drawing touched nothing
        loss.backward()


def test_backward_graph_made_with_create_graph_is_drawn_as_ops():
    o, p = neuron()
    with mg.name_scope("backward"):
        o.backward(create_graph=True)
    dot = Dot(mg.draw_graph(p["w1"].grad, params=p).source)
    back = dot.clusters["backward"]["nodes"]
    assert sorted(dot.lines(n)[0] for n in back if n.startswith("op")) == [
        "Mul", "TanhGrad"]  # dy * (1 - y*y) as one op, then times x1
    assert dot.with_label("x1") not in back and "Tanh" in dot.labels("op")


# ----------------------------------------------------------------------------------------------
# color_by


def test_color_by_grad_norm_shades_on_a_log_scale_with_a_legend():
    a, b, c, d = (mg.tensor(np.ones(1), requires_grad=True) for _ in range(4))
    loss = (a * 1e-4).sum() + (b * 1e-2).sum() + c.sum() + (d * 0.0).sum()
    loss.backward()
    dot = Dot(mg.draw_graph(loss, params=dict(a=a, b=b, c=c, d=d), color_by="grad_norm").source)
    fill = {k: _attr(dot.nodes[dot.with_label(k)], "fillcolor") for k in "abcd"}
    assert fill == {"a": "#ffffcc", "b": "#fd8d3c", "c": "#800026", "d": "#bdbdbd"}
    assert dot.lines(dot.with_label("a"))[-1] == "grad norm 0.0001"
    legend = dot.nodes["legend"]
    assert "<B>grad norm</B> (log scale)" in legend
    assert re.findall(r'<TD ALIGN="LEFT">([^<]*)</TD>', legend) == [
        "1", "0.1", "0.01", "0.001", "0.0001", "0", "none"]  # "none": sums keep no .grad
    with pytest.raises(ValueError, match="color_by must be None, 'grad_norm'"):
        mg.draw_graph(loss, color_by="norm")


def test_trace_grad_norm_shades_intermediate_tensors_too():
    loss, states, weights = rnn(steps=4)
    with mg.trace_backward() as tr:
        loss.backward()
    dot = Dot(mg.draw_graph(loss, params=weights, color_by=tr.grad_norm).source)
    shaded = [n for n in dot.ids("t") if dot.lines(n)[-1].startswith("grad norm")]
    assert len(shaded) == 3 * 4 + 2  # per step x @ W, + h and tanh; W0 and the loss
    assert all(_attr(dot.nodes[n], "fillcolor") != "#ffffff" for n in shaded)
    norms = [tr.grad_norm(h) for h in states]
    assert norms == sorted(norms)  # with small weights, gradients fade going back in time


# ----------------------------------------------------------------------------------------------
# escaping and rendering


def _svg_text(graph) -> str:
    return " ".join(el.text for el in ET.fromstring(graph.pipe(format="svg")).iter() if el.text)


@needs_dot
def test_awkward_names_are_escaped_for_dot_and_html():
    w = mg.tensor([1.0, 2.0], requires_grad=True)
    with mg.name_scope('sc<o>pe"&\\'):
        y = (w * w).sum().named("<&y>")
    graph = mg.draw_graph(y, params={"<a&b>": w})
    assert "<B>&lt;a&amp;b&gt;</B>" in graph.source and "<B>&lt;&amp;y&gt;</B>" in graph.source
    assert '<B>sc&lt;o&gt;pe"&amp;\\</B>' in graph.source
    text = _svg_text(graph)
    assert "<a&b>" in text and "<&y>" in text and 'sc<o>pe"&\\' in text
    assert 'sc<o>pe"&\\' in _svg_text(mg.draw_graph(y, collapse="sc*"))


@pytest.mark.parametrize("name, labels", [
    ("lstm_cell", ["lstmcell", "weight_ih", "x", "h", "c", "i", "f", "g", "o", "[3] (2, 4) float32",
                   "Split", "Sigmoid", "root (drawn from)"]),
    ("gru_cell", ["grucell", "weight_hh", "r", "z", "n", "h", "[2] (2, 4) float32"]),
    ("lstm_collapsed", ["l0", "l1", "389 ops", "weight_hh_l1", "(35, 4, 16) float32"]),
    ("rnn_grad_norm", ["t5", "grad norm", "[5] (1, 8) float32", "Unbind"]),
    ("neuron_backward", ["forward", "backward", "do/dw", "do/db", "0.7071", "0.5", "TanhGrad"]),
    ("compiled_lstm", ["as traced", "after the passes", "x (s0)", "weight_ih (s3)", "c' (s20)",
                       "h' (s22)", "Sigmoid", "2 Split, 5 Add, 3 Sigmoid, 2 Tanh, 3 Mul"]),
])
@needs_dot
def test_rendered_drawings_parse_as_svg_and_show_their_labels(name, labels):
    text = _svg_text(render_graphs.draw(name))
    assert all(label in text.split("  ") or f" {label} " in f" {text} " for label in labels)


def test_the_readme_drawing_is_one_lstm_step_top_to_bottom_with_named_gates_and_states():
    dot = Dot(render_graphs.draw("lstm_cell").source)
    first = [dot.lines(t)[0] for t in dot.ids("t")]
    assert sorted(n for n in first if "float32" not in n) == sorted(
        ["bias_hh", "bias_ih", "weight_hh", "weight_ih", "x", "h", "c", "i", "f", "g", "o",
         "c", "h"])
    roots = [dot.lines(t)[0] for t in dot.ids("t") if "penwidth=2" in dot.nodes[t]]
    assert sorted(roots) == ["c", "h"]  # the new state
    source = render_graphs.draw("lstm_cell").source
    assert "rankdir=TB" in source and "root (drawn from)" in source
    assert len(dot.ids("op")) <= 15 and len(dot.ids("t")) <= 25  # small enough to read


def _readme_drawing_code() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Drawing graphs"):]
    return section[section.index("```python\n") + 10:section.index("```\n")]


def test_the_readme_snippet_draws_the_readme_picture():
    code = _readme_drawing_code()
    assert "graph.render(" in code
    mg.manual_seed(0)
    scope = {}
    exec("\n".join(line for line in code.splitlines() if ".render(" not in line), scope)
    assert scope["graph"].source == render_graphs.draw("lstm_cell").source


@needs_dot
def test_the_readme_snippet_runs_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(_readme_drawing_code(), {})
    svg = ET.parse(tmp_path / "lstm_cell.svg").getroot()
    assert {"x", "i", "f", "g", "o", "weight_ih"} <= {el.text for el in svg.iter()}


def test_the_same_drawing_comes_out_every_time():
    for name in render_graphs.DRAWINGS:
        assert render_graphs.draw(name).source == render_graphs.draw(name).source


def test_missing_dot_says_to_install_graphviz(monkeypatch, tmp_path):
    o, _ = neuron()
    graph = mg.draw_graph(o)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert graph.source.startswith("digraph")  # the source needs no binary
    for render in (lambda: graph.pipe(format="svg"),
                   lambda: graph.render(outfile=tmp_path / "g.svg")):
        with pytest.raises(GraphvizNotFoundError, match="apt-get install graphviz") as info:
            render()
        assert isinstance(info.value, graphviz.ExecutableNotFound)


def test_bad_arguments_raise_clear_errors():
    o, _ = neuron()
    with pytest.raises(ValueError, match="draw_graph: give at least one tensor"):
        mg.draw_graph()
    with pytest.raises(TypeError, match="draw_graph: root 1 must be a Tensor; got ndarray"):
        mg.draw_graph(o, np.ones(2))
    with pytest.raises(ValueError, match="rankdir must be"):
        mg.draw_graph(o, rankdir="up")


# ----------------------------------------------------------------------------------------------
# print_graph and trace_backward


def _left(line: str) -> str:
    """The tree part of a print_graph line (before the shape column)."""
    return re.match(r"^(.*?\S)\s{2,}\(", line).group(1)


def test_print_graph_shows_a_tree_with_shapes_and_shared_nodes_once(capsys):
    w = mg.tensor(np.ones((2, 3)), dtype=np.float32, requires_grad=True)
    x = mg.tensor(np.ones((3,)), dtype=np.float32)
    with mg.name_scope("layer"):
        h = (w @ x).tanh()
    mg.print_graph((h * h).sum() * 2, params={"w": w})
    lines = capsys.readouterr().out.splitlines()
    assert [_left(line) for line in lines] == [
        "%0 = Mul(%1, %2)",
        "  %1 = Sum(%3)",
        "    %3 = Mul(%4, %4)",
        "      %4 = Tanh(%5)",
        "        %5 = MatMul(w, %6)",
        "          w",
        "          %6",
        "      %4 (see above)",
        "  %2",
    ]
    assert lines[4].endswith("(2,) float32  @layer")
    assert lines[5].endswith("(2, 3) float32  param")
    assert lines[6].endswith("(3,) float32  const")
    assert lines[8].endswith("() float32  const 2")


def test_print_graph_names_which_output_of_a_multi_output_op():
    out = io.StringIO()
    x = mg.tensor(np.arange(4.0), requires_grad=True)
    mg.print_graph(x.chunk(2)[1], file=out)
    assert out.getvalue().splitlines() == [
        "%0 = Split(%1)[1]  (2,) float64", "  %1               (4,) float64  leaf"]


def test_trace_backward_records_ops_in_engine_order_with_gradient_norms():
    w = mg.tensor(np.arange(6.0).reshape(2, 3) / 10, requires_grad=True)
    b = mg.tensor(np.array([0.1, -0.2]), requires_grad=True)
    x = mg.tensor(np.ones((4, 3)))
    with mg.name_scope("layer"):
        h = (x @ w.T + b).tanh()
    loss = (h * h).sum()
    with mg.trace_backward() as tr:
        loss.backward()
    assert [(r.step, r.op, r.scope) for r in tr.records] == [
        (0, "Sum", ""), (1, "Mul", ""), (2, "Tanh", "layer"), (3, "Add", "layer"),
        (4, "MatMul", "layer"), (5, "Transpose", "layer")]
    norm, hd = np.linalg.norm, h.data
    total, mul, tanh, add, matmul, _ = tr.records
    assert total.grad_in == (1.0,) and total.grad_out == pytest.approx((np.sqrt(8),))
    assert mul.grad_out == pytest.approx((norm(hd), norm(hd)))
    assert tanh.grad_in == pytest.approx((2 * norm(hd),))
    da = 2 * hd * (1 - hd**2)
    assert add.grad_out == pytest.approx((norm(da), norm(da.sum(0))))  # b's: summed over batch
    assert add.grad_out[1] == pytest.approx(norm(b.grad.data))
    assert matmul.grad_out[0] is None  # x does not require grad
    assert tr.grad_norm(w) == pytest.approx(norm(w.grad.data))
    assert tr.grad_norm(h) == pytest.approx(2 * norm(hd))
    assert tr.grad_norm(x) is None
    table = tr.table().splitlines()
    assert table[0].split() == ["step", "op", "scope", "|grad", "in|", "|grad", "out|", "per",
                                "input"]
    assert len(table) == 7 and table[5].split()[:3] == ["4", "MatMul", "layer"]
    assert table[5].split()[4] == "-,"


def test_trace_backward_stops_watching_when_the_block_ends_even_on_error():
    x = mg.tensor(0.3, requires_grad=True)
    with pytest.raises(RuntimeError, match="boom"):
        with mg.trace_backward() as tr:
            x.tanh().backward()
            raise RuntimeError("boom")
    x.tanh().backward()
    assert [r.op for r in tr.records] == ["Tanh"]  # nothing recorded outside the block


# ----------------------------------------------------------------------------------------------
# command line


@needs_dot
def test_command_line_writes_an_svg(tmp_path):
    run = subprocess.run([sys.executable, "examples/render_graphs.py", "gru_cell", "--out",
                          str(tmp_path)], capture_output=True, text=True, cwd=ROOT, env=ENV)
    assert run.returncode == 0, run.stderr
    out = tmp_path / "gru_cell.svg"
    assert run.stderr == "" and run.stdout == f"wrote {out}\n"
    text = " ".join(el.text for el in ET.parse(out).getroot().iter() if el.text)
    assert all(f" {n} " in f" {text} " for n in ["r", "z", "n", "h", "weight_ih"])


def test_command_line_writes_dot_sources_without_graphviz_and_rejects_unknown_names(tmp_path):
    render_graphs.main(["lstm_cell", "neuron_backward", "--out", str(tmp_path), "--format", "gv"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lstm_cell.gv", "neuron_backward.gv"]
    assert (tmp_path / "lstm_cell.gv").read_text() == render_graphs.draw("lstm_cell").source
    bad = subprocess.run([sys.executable, "examples/render_graphs.py", "mlp"],
                         capture_output=True, text=True, cwd=ROOT, env=ENV)
    assert bad.returncode == 2 and "unknown drawing 'mlp'; choose from lstm_cell" in bad.stderr


def test_missing_dot_gives_a_clear_error_on_the_command_line(tmp_path):
    env = ENV | {"PATH": str(tmp_path)}
    run = subprocess.run([sys.executable, "examples/render_graphs.py", "gru_cell", "--out",
                          str(tmp_path)], capture_output=True, text=True, cwd=ROOT, env=env)
    assert run.returncode == 1 and "apt-get install graphviz" in run.stderr


def test_import_minigrad_puts_the_graph_tools_in_view_without_loading_graphviz():
    code = ("import sys, pydoc, minigrad as mg; print('graphviz' in sys.modules); "
            "print(all(f in dir(mg) and f in pydoc.render_doc(mg) for f in "
            "('draw_graph', 'print_graph', 'trace_backward')))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV)
    assert run.stdout.split() == ["False", "True"], run.stderr
