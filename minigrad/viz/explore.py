"""explore: the graph behind some tensors as one page to click through in a browser.

The page shows ``draw_graph``'s drawing (laid out by Graphviz's ``dot`` as SVG) with, for every
tensor, its statistics and histograms, for every op its rule and what it keeps for backward, and
steppers through the ops in forward order and in the order backward visits them. This module
collects those data; ``explorer.js`` and ``explorer.css`` (package data) show them. The page is
self-contained: the SVG, the data, the script and the style are inline, and it loads nothing.
"""

from __future__ import annotations

import html
import inspect
import json
import math
import shutil
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from minigrad.autograd import Function, grad, observe_backward
from minigrad.tensor import Tensor
from minigrad.viz.draw import _draw, _Drawn, draw_graph
from minigrad.viz.graph import (
    Graph,
    check_roots,
    collapse_rule,
    is_time_step,
    name_of,
    param_names,
    shape_text,
)
from minigrad.viz.trace import Trace, norm

DOT_SECONDS = 10.0
"""How long ``dot`` may take over a layout when there are two (steps unrolled and folded)."""

FOLD_PAST = 600
"""Past this many nodes unrolled, the page opens with its time steps folded."""

_BINS = 20  # a histogram's bars
_HERE = Path(__file__).parent
_SVG = "{http://www.w3.org/2000/svg}"
_XLINK_TITLE = "{http://www.w3.org/1999/xlink}title"


class Explorer:
    """A page that explores a graph: ``save(path)`` writes it, ``html()`` returns it, and in
    Jupyter it shows itself inline (in an iframe, so that its script and style stay its own).
    ``data`` is what the page shows, as the dict that it reads as JSON."""

    def __init__(self, data: dict) -> None:
        self.data = data

    def html(self) -> str:
        """The page: one self-contained HTML document."""
        blob = json.dumps(self.data, separators=(",", ":"), allow_nan=False)
        script, toolbar = _KINDS[self.data["kind"]]
        return _PAGE.format(
            css=(_HERE / "explorer.css").read_text(encoding="utf-8"),
            js="\n".join((_HERE / name).read_text(encoding="utf-8")
                         for name in ("drawing.js", script)),
            toolbar=toolbar,
            data=blob.replace("<", "\\u003c"),  # no "</script>" can end the data early
        )

    def save(self, path: str | Path) -> Path:
        """Write the page to ``path`` (e.g. ``"graph.html"``); returns the path."""
        path = Path(path)
        path.write_text(self.html(), encoding="utf-8")
        return path

    def _repr_html_(self) -> str:
        return (f'<iframe srcdoc="{html.escape(self.html())}" style="width: 100%; '
                'height: 640px; border: 1px solid #ccc"></iframe>')

    def __repr__(self) -> str:
        if self.data["kind"] == "program":
            return (f"<Explorer: {self.data['signature']}, {len(self.data['stages'])} stages of "
                    "the pipeline>")
        shown = ", ".join(layout["label"] for layout in self.data["layouts"])
        return (f"<Explorer: {len(self.data['ops'])} ops, {len(self.data['tensors'])} tensors; "
                f"{shown}>")


_DRAW_OPTIONS = {name: p.default for name, p in inspect.signature(draw_graph).parameters.items()
                 if name not in ("roots", "params")}  # explore passes them on


def explore(*roots: Tensor, params: Mapping[str, Tensor] | Any = None,
            **draw_options: Any) -> Explorer:
    """A page to explore the graph that computed ``roots``: ``mg.explore(loss).save("x.html")``,
    or ``mg.explore(loss, params=model)`` as the last line of a notebook cell.

    The page shows ``mg.draw_graph(*roots, params=params, **draw_options)`` and lets you

    - click a tensor: its name, shape, dtype, min, max, mean, std (NumPy's), norm, counts of
      zeros and of non-finite values, and histograms of its data and of its gradient (the
      statistics and histograms are of the finite values);
    - click an op: its rule (the first paragraph of its class's docstring), the shapes it reads
      and makes, and what it keeps for backward (as ``mg.memory_report`` counts it);
    - step through the ops in forward order, and in the order backward visits them, with the
      norms of the gradients that reach each op and that it sends to each input (as
      ``mg.trace_backward`` records them);
    - fold and unfold a module's or a time step's cluster by clicking its label, pan (drag),
      zoom (wheel, +/-), and find tensors by name.

    Gradients: while the graph holds what backward needs, ``explore`` runs backward itself, as
    ``mg.grad`` does with ``retain_graph=True``: no ``.grad`` changes, and every tensor (not only
    the leaves) shows the gradient that reached it. A scalar root starts with gradient 1, any
    other with ones (the page says so). Tensor hooks run, as in any backward. Once a backward
    without ``retain_graph=True`` has freed the graph, the page shows the ``.grad`` that tensors
    have and says why the backward stepper is off: call ``explore`` before ``backward``.

    Layouts: ``dot`` lays out an unrolled LSTM language model (batch 2, hidden 32) of 35 steps
    (937 nodes) in 0.2 s, 70 steps (1847) in 0.5 s and 140 steps (3667) in 1.7 s; with its time
    steps collapsed into boxes (``draw_graph(collapse=...)``) the same model takes 0.8 s at 35
    steps but 42 s at 70, as every box sits on its own rank and the edges from the weights and to
    the final ``Stack`` grow long (dot 2.43). So when the graph has time steps (a scope part such
    as ``t3``), both layouts are made at once and each is kept if ``dot`` finishes it within
    ``DOT_SECONDS`` (10 s; so the 140-step model takes 11 s, and keeps only its unrolled
    layout); the page switches between them (steps unrolled / steps folded) and says which one
    was left out and why. Past ``FOLD_PAST`` (600) nodes unrolled, too many to read at a zoom
    that shows much of the graph, the page opens with the steps folded, if they were made (the
    35-step model: 937 nodes unrolled, 166 folded). A graph without time steps has one layout,
    with no time limit. Rendering needs ``dot`` (``minigrad.viz.render.GraphvizNotFoundError``
    says how to get it).
    """
    roots = check_roots("explore", roots)
    unknown = sorted(set(draw_options) - set(_DRAW_OPTIONS))
    if unknown:
        raise TypeError(f"explore: unknown option(s) {', '.join(unknown)}; the options are "
                        f"draw_graph's: {', '.join(_DRAW_OPTIONS)}")
    options = _DRAW_OPTIONS | draw_options
    unrolled = _draw("explore", roots, params, **options)
    g = unrolled.graph
    drawn = [("graph", unrolled)]
    if any(g.box[fn] is None and _has_step(fn.scope) for fn in g.ops):
        chosen = collapse_rule(options["collapse"])
        folded = options | {"collapse": lambda scope: chosen(scope) or _has_step(scope)}
        drawn = [("steps unrolled", unrolled),
                 ("steps folded", _draw("explore", roots, params, **folded))]
    svgs = dot_svgs([d.digraph.source for _, d in drawn],
                    DOT_SECONDS if len(drawn) > 1 else None)

    index = {id(x): k for k, x in enumerate(g.tensors)}
    position = {fn: k for k, fn in enumerate(g.ops)}
    layouts, left_out = [], []
    for (label, d), (svg, why) in zip(drawn, svgs):
        if svg is None:
            left_out.append([label, f"{len(d.places)} nodes: {why}"])
        else:
            layouts.append(_layout(label, d, svg, index, position))
    if not layouts:
        raise RuntimeError(f"explore: dot laid out neither layout of the graph within "
                           f"{DOT_SECONDS:g} s ({'; '.join(map(': '.join, left_out))}); draw "
                           "fewer nodes, e.g. with collapse= (a pattern of scopes to draw as "
                           "boxes)")
    layouts[-1 if len(unrolled.places) > FOLD_PAST else 0]["default"] = True  # folded if made

    names = param_names(params)
    backward = _backward(roots, g, position)
    grads = backward.pop("grads")
    return Explorer({
        "kind": "graph",
        "tensors": [_tensor(x, name_of(x, names), grads.get(id(x)), position)
                    for x in g.tensors],
        "ops": _ops(roots, g, index),
        "backward": backward,
        "layouts": layouts,
        "leftOut": left_out,
    })


def _has_step(scope: str) -> bool:
    """Whether a scope path is (in) a time step: a part such as ``t3``."""
    return any(is_time_step(part) for part in scope.split("."))


def dot_svgs(sources: list[str], seconds: float | None) -> list[tuple[str | None, str]]:
    """Each DOT source laid out by ``dot`` as SVG, all at once; ``(svg, "")``, or ``(None,
    why)`` for a layout that failed or took longer than ``seconds`` (None: no limit)."""
    dot = shutil.which("dot")
    if dot is None:
        from minigrad.viz.render import GraphvizNotFoundError

        raise GraphvizNotFoundError()
    results = []
    with tempfile.TemporaryDirectory(prefix="minigrad-explore-") as folder:
        runs = []
        for k, source in enumerate(sources):
            Path(folder, f"{k}.gv").write_text(source, encoding="utf-8")
            with open(Path(folder, f"{k}.err"), "wb") as err:  # (a pipe could fill and block)
                runs.append(subprocess.Popen([dot, "-Tsvg", "-o", f"{k}.svg", f"{k}.gv"],
                                             cwd=folder, stdout=subprocess.DEVNULL, stderr=err))
        deadline = None if seconds is None else time.monotonic() + seconds
        for k, run in enumerate(runs):
            try:
                run.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                run.kill()
                run.wait()
                results.append((None, f"dot took longer than {seconds:g} s"))
                continue
            if run.returncode != 0:
                error = Path(folder, f"{k}.err").read_text(errors="replace").strip()
                results.append((None, f"dot failed: {error.splitlines()[0] if error else ''}"))
                continue
            results.append((Path(folder, f"{k}.svg").read_text(encoding="utf-8"), ""))
    return results


def _layout(label: str, d: _Drawn, svg: str, index: dict[int, int],
            position: dict[Function, int]) -> dict:
    """One layout for the page: its SVG (ready to inline), what each node is (a tensor or an op,
    by index, or a box of ops) and the scope of the cluster holding it, and each cluster's scope
    and count of ops."""
    nodes = {nid: {"kind": "tensor", "index": index[key], "place": d.places[nid]}
             for key, nid in d.tensor_nodes.items()}
    for fn, nid in d.op_nodes.items():
        box = d.graph.box[fn]
        if box is None:
            nodes[nid] = {"kind": "op", "index": position[fn], "place": d.places[nid]}
        else:
            nodes.setdefault(nid, {"kind": "box", "scope": box, "ops": [],
                                   "place": d.places[nid]})["ops"].append(position[fn])
    clusters = {}  # the SVG's cluster title -> [scope, ops inside]
    for c in ET.fromstring(svg).iter(f"{_SVG}g"):
        if c.get("class") == "cluster":
            scope = c.find(f".//{_SVG}a").get(_XLINK_TITLE)  # draw_graph's tooltip
            inside = sum(fn.scope == scope or fn.scope.startswith(scope + ".")
                         for fn in d.graph.ops)
            clusters[c.findtext(f"{_SVG}title")] = [scope, inside]
    return {"label": label, "svg": inline_svg(svg), "nodes": nodes, "clusters": clusters,
            "opNodes": [d.op_nodes[fn] for fn in d.graph.ops], "default": False}


def inline_svg(svg: str) -> str:
    """Graphviz's SVG ready to go inside the page: no XML prolog or DTD, and no namespace
    URLs (HTML knows them), so that the page names no address at all."""
    svg = svg[svg.index("<svg"):]
    return svg.replace(' xmlns="http://www.w3.org/2000/svg"', "").replace(
        ' xmlns:xlink="http://www.w3.org/1999/xlink"', "")


def _tensor(x: Tensor, name: str | None, gradient: np.ndarray | None,
            position: dict[Function, int]) -> dict:
    return {"name": name, "shape": str(x.shape), "dtype": str(x.dtype),
            "maker": None if x.grad_fn is None else position[x.grad_fn],
            "leaf": None if x.grad_fn is not None else
                    "parameter" if x.requires_grad else "input",
            "data": _stats(x.data), "grad": None if gradient is None else _stats(gradient)}


def _stats(a: np.ndarray) -> dict | None:
    """Statistics and a histogram of the finite values of ``a``, counts of zeros and of the
    rest; None for an array that is not numbers (nor booleans)."""
    if a.dtype.kind not in "biuf":
        return None
    a = np.asarray(a, dtype=np.float64).ravel()
    finite = a[np.isfinite(a)]
    stats = {"size": int(a.size), "zeros": int(np.count_nonzero(a == 0)),
             "nonfinite": int(a.size - finite.size)}
    if finite.size:
        counts, edges = np.histogram(finite, bins=_BINS)
        stats |= {"min": float(finite.min()), "max": float(finite.max()),
                  "mean": float(finite.mean()), "std": float(finite.std()),
                  "norm": norm(finite), "hist": counts.tolist(),
                  "lo": float(edges[0]), "hi": float(edges[-1])}
    return stats


def _ops(roots: list[Tensor], g: Graph, index: dict[int, int]) -> list[dict]:
    """Each op, in forward order: what it reads and makes, its rule, what it keeps."""
    from minigrad.memory import _held, memory_report

    report = memory_report(*roots)  # its records are in the same (forward) order as g.ops
    ops = []
    for fn, kept in zip(g.ops, report.records):
        outputs = []
        for k, ref in enumerate(fn.outputs):
            y = ref()
            if y is None:  # a piece of a split that nothing used: gone, its shape known
                outputs.append([None, "{} {}".format(*fn.output_meta[k])])
            else:
                outputs.append([index.get(id(y)), shape_text(y)])
        saved = [[f"{a.shape} {a.dtype}", int(a.nbytes)] for a, _ in _held(fn.saved or ())]
        ops.append({"name": fn.name, "scope": fn.scope, "rule": _rule(fn),
                    "inputs": [[index[id(x)], shape_text(x)] for x in fn.inputs],
                    "outputs": outputs, "saved": saved, "freed": fn.freed,
                    "arrays": kept.arrays, "bytes": kept.bytes})
    return ops


def _rule(fn: Function) -> str:
    """The first paragraph of the op class's own docstring, on one line."""
    doc = type(fn).__doc__ or ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def _number(v: float | None) -> float | str | None:
    """A norm for JSON, which has no NaN or infinity: those become text."""
    return v if v is None or math.isfinite(v) else str(v)


def _backward(roots: list[Tensor], g: Graph, position: dict[Function, int]) -> dict:
    """Backward from ``roots`` as the engine runs it, watched: each op it visits (as its index
    in ``g.ops``) with the norms ``trace_backward`` records, and the gradient that reached each
    tensor (``grads``, by id). When backward cannot run: why, and the tensors' ``.grad``."""
    starts = [r for r in roots if r.requires_grad]
    if any(fn.freed for fn in g.ops):
        return _without_backward(g, "a backward without retain_graph=True has freed what this "
                                 "graph saved; call mg.explore before backward (or backward "
                                 "with retain_graph=True)")
    if not starts:
        return _without_backward(g, "no root requires grad: there is no backward to step "
                                 "through")
    trace, visited, grads = Trace(), [], {}

    def watch(fn: Function, grad_outputs: tuple[Tensor, ...], grad_inputs: tuple) -> None:
        trace._record(fn, grad_outputs, grad_inputs)
        visited.append(fn)
        for ref, gy in zip(fn.outputs, grad_outputs):
            if ref() is not None:
                grads[id(ref())] = gy.data

    leaves = [x for x in g.tensors if x.grad_fn is None and x.requires_grad]
    ones = [np.ones(r.shape, r.dtype) for r in starts]
    try:
        with observe_backward(watch):
            found = grad(starts, leaves, ones, retain_graph=True, allow_unused=True)
    except (RuntimeError, ValueError) as e:  # e.g. a saved tensor changed in place since
        return _without_backward(g, f"backward raised {type(e).__name__}: {e}")
    grads |= {id(x): gx.data for x, gx in zip(leaves, found) if gx is not None}
    wide = [shape_text(r) for r in starts if r.numel() != 1]
    return {
        "steps": [{"op": position[fn], "gradIn": [_number(v) for v in r.grad_in],
                   "gradOut": [_number(v) for v in r.grad_out]}
                  for fn, r in zip(visited, trace.records)],
        "unavailable": "",
        "note": ("backward starts from ones at the root(s) that are not scalars: "
                 + ", ".join(wide)) if wide else "",
        "source": "the gradient that backward brought to this tensor (explore's own backward, "
                  "as mg.grad runs it: no .grad was changed)",
        "grads": grads,
    }


def _without_backward(g: Graph, why: str) -> dict:
    """What the page shows when backward cannot run: why, and the ``.grad`` tensors have."""
    return {"steps": [], "unavailable": why, "note": "", "source": "the tensors' .grad",
            "grads": {id(x): x.grad.data for x in g.tensors if x.grad is not None}}


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>minigrad explorer</title>
<link rel="icon" href="data:,">
<style>
{css}
</style>
</head>
<body>
<div id="app">
  <div id="toolbar">
    <span class="group">
      <button id="zoom-out" title="zoom out (or the mouse wheel)">&minus;</button>
      <button id="zoom-in" title="zoom in (or the mouse wheel)">+</button>
      <button id="fit" title="show the whole drawing">fit</button>
    </span>
{toolbar}
  </div>
  <div id="main">
    <div id="stage"></div>
    <div id="panel"></div>
  </div>
</div>
<script type="application/json" id="explorer-data">{data}</script>
<script>
{js}
</script>
</body>
</html>
"""

_GRAPH_TOOLBAR = """    <span id="layouts" class="group"></span>
    <span class="group">
      <input id="search" type="search" placeholder="find a tensor by name" size="18">
      <span id="matches" class="count"></span>
    </span>
""" + "\n".join(f"""    <span class="group" id="{which}">
      <span class="label">{label}</span>
      <button id="{which}-back" title="previous op">&#9664;</button>
      <button id="{which}-next" title="next op">&#9654;</button>
      <button id="{which}-play" title="play / pause">play</button>
      <span id="{which}-count" class="count"></span>
    </span>""" for which, label in (("fwd", "forward"), ("bwd", "backward")))  # the steppers

_PROGRAM_TOOLBAR = """    <span class="group">
      <button id="show-forward" title="the forward program">forward</button>
      <button id="show-backward" title="the backward program">backward</button>
    </span>
    <span class="group">
      <input id="passes" type="range" min="0" value="0" title="the pipeline's steps">
      <span id="stage-name" class="count"></span>
    </span>"""

_KINDS = {"graph": ("explorer.js", _GRAPH_TOOLBAR), "program": ("program.js", _PROGRAM_TOOLBAR)}
"""Each kind of page: its script (after drawing.js) and its tools beside the zoom buttons."""
