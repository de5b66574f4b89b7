"""The drawings in docs/graphs/ are what examples/render_graphs.py draws now.

Each drawing is drawn again (render_graphs seeds every drawing, so the numbers in its labels are
the same every time) and rendered to SVG, and its structure is compared with the committed
SVG's: the multiset of node labels (the text lines of each node), of edges as (tail label, head
label) pairs, of cluster labels and of the drawing's own text (a legend). Coordinates, colours
and bytes are not compared, so a new Graphviz version or a changed colour does not fail here,
nor does the hash that names a fused kernel (compiled_lstm); a renamed, added or removed node or
edge does, naming the command that draws the file again.

Rendering needs Graphviz's `dot`; without it these tests skip and say why (`pytest -rs`)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import xml.etree.ElementTree as ET
from collections import Counter
from functools import cache
from pathlib import Path
from types import ModuleType

import graphviz
import pytest

ROOT = Path(__file__).resolve().parents[1]
GRAPHS = ROOT / "docs" / "graphs"
SVG = "{http://www.w3.org/2000/svg}"
needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None,
    reason="rendering needs Graphviz's `dot`, which is not on PATH (apt-get install graphviz)",
)


@cache
def render_graphs() -> ModuleType:
    """Import ``examples/render_graphs.py`` as a module (examples/ is a folder of scripts)."""
    path = ROOT / "examples" / "render_graphs.py"
    spec = importlib.util.spec_from_file_location("example_render_graphs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


KERNEL_HASH = re.compile(r"\bfused_[0-9a-f]{10}")
"""A fused kernel is named by a hash of its generated source (compile/kernels.py): a cache key
that changes with any change to code generation, not something the drawing shows a reader."""


def _text(element: ET.Element) -> str:
    """The text lines of an SVG group, whitespace collapsed, joined with ' | ', kernel hashes
    replaced by ``fused_<hash>``."""
    lines = (" ".join("".join(t.itertext()).split()) for t in element.iter(f"{SVG}text"))
    return KERNEL_HASH.sub("fused_<hash>", " | ".join(line for line in lines if line))


def structure(svg: str | bytes) -> dict[str, Counter]:
    """What a reader sees in a Graphviz SVG, without positions or colours: multisets of node
    labels, edges ``tail label -> head label`` (with the edge's own label, if any), cluster
    labels and the text drawn on the graph itself (a legend)."""
    root = ET.fromstring(svg)
    groups = [(g.get("class"), g) for g in root.iter(f"{SVG}g")]
    label = {g.findtext(f"{SVG}title"): _text(g) for kind, g in groups if kind == "node"}

    def node(end: str) -> str:  # an edge's end is a node id, perhaps with a :port
        return label[end] if end in label else label[end.split(":")[0]]

    found = {"nodes": Counter(), "edges": Counter(), "clusters": Counter(), "graph text": Counter()}
    for kind, g in groups:
        if kind == "node":
            found["nodes"][_text(g)] += 1
        elif kind == "cluster":
            found["clusters"][_text(g)] += 1
        elif kind == "edge":
            tail, head = g.findtext(f"{SVG}title").split("->")
            own = _text(g)
            found["edges"][f"{node(tail)}  ->  {node(head)}" + (f"  [{own}]" if own else "")] += 1
        elif kind == "graph":  # only the graph's direct <text>: nodes and clusters are nested
            found["graph text"].update(t for t in map(_text, g.findall(f"{SVG}text")) if t)
    return found


def differences(name: str, committed: dict[str, Counter], now: dict[str, Counter]) -> str:
    """'' when the two structures are equal, else a message naming the drawing, a few of the
    labels that differ and the command that draws the file again."""
    lines = []
    for part in committed:
        missing, extra = committed[part] - now[part], now[part] - committed[part]
        for count, what, where in ((missing, "only in the committed file", "no longer drawn"),
                                   (extra, "only in what the code draws now", "new")):
            if count:
                shown = sorted(count.elements())
                lines.append(f"  {part}: {len(shown)} {what} ({where}), e.g. {shown[:4]}")
    if not lines:
        return ""
    return "\n".join([f"docs/graphs/{name}.svg differs from what examples/render_graphs.py "
                      f"draws now:", *lines,
                      f"draw it again with: python examples/render_graphs.py {name}"])


def test_every_committed_drawing_has_its_function_and_every_function_its_drawing():
    names = set(render_graphs().DRAWINGS)
    files = {path.stem for path in GRAPHS.glob("*.svg")}
    assert files - names == set(), f"SVGs in docs/graphs/ that no drawing makes: {files - names}"
    assert names - files == set(), (
        f"drawings not committed in docs/graphs/: {sorted(names - files)}; write them with: "
        f"python examples/render_graphs.py {' '.join(sorted(names - files))}")


@needs_dot
@pytest.mark.parametrize("name", ["lstm_cell", "gru_cell", "lstm_collapsed", "rnn_grad_norm",
                                  "neuron_backward", "compiled_lstm", "neuron_jvp",
                                  "neuron_hvp"])
def test_the_committed_drawing_has_the_structure_the_code_draws_now(name):
    committed = structure((GRAPHS / f"{name}.svg").read_bytes())
    now = structure(render_graphs().draw(name).pipe(format="svg"))
    assert sum(committed["nodes"].values()) > 5 and sum(committed["edges"].values()) > 5
    message = differences(name, committed, now)
    if message:
        pytest.fail(message, pytrace=False)


@needs_dot
def test_the_comparison_sees_a_renamed_node_and_a_moved_edge_but_not_colours_or_layout():
    def svg(names: str | list[str], edges: list[tuple[str, str]], **attrs) -> bytes:
        graph = graphviz.Digraph(graph_attr={"label": "legend"}, node_attr=attrs)
        for i, label in enumerate(names):
            graph.node(f"n{i}", f"{label}\n(2, 3) float32")
        for tail, head in edges:
            graph.edge(f"n{names.index(tail)}:s", f"n{names.index(head)}")
        return graph.pipe(format="svg")

    before = structure(svg("xyz", [("x", "y"), ("y", "z")]))
    assert before["nodes"] == Counter(["x | (2, 3) float32", "y | (2, 3) float32",
                                       "z | (2, 3) float32"])
    assert before["edges"] == Counter(["x | (2, 3) float32  ->  y | (2, 3) float32",
                                       "y | (2, 3) float32  ->  z | (2, 3) float32"])
    assert before["graph text"] == Counter(["legend"])
    restyled = structure(svg("xyz", [("x", "y"), ("y", "z")], color="red", shape="box"))
    assert differences("toy", before, restyled) == ""
    kernels = [structure(svg([f"fused_{h * 10}", "y"], [(f"fused_{h * 10}", "y")]))
               for h in "ab"]
    assert kernels[0] == kernels[1] and "fused_<hash> | (2, 3) float32" in kernels[0]["nodes"]

    message = differences("toy", before, structure(svg("xyw", [("x", "y"), ("x", "w")])))
    assert message.startswith("docs/graphs/toy.svg differs from what")
    assert ("nodes: 1 only in the committed file (no longer drawn), e.g. ['z | (2, 3) float32']"
            in message)
    assert "nodes: 1 only in what the code draws now (new), e.g. ['w | (2, 3) float32']" in message
    assert "'y | (2, 3) float32  ->  z | (2, 3) float32'" in message
    assert message.endswith("draw it again with: python examples/render_graphs.py toy")
