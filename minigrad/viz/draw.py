"""draw_graph: the graph behind some tensors as a Graphviz drawing.

Tensors are boxes with their name, shape and dtype, ops are small ovals, and every op sits in a
nested cluster for the name scope (module path, time step) that created it. This module decides
what to draw and how it looks; ``render`` hands it to Graphviz.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from minigrad.autograd import Function
from minigrad.tensor import Tensor
from minigrad.viz.graph import (
    Graph,
    check_roots,
    collapse_rule,
    name_of,
    param_names,
    prefixes,
    shape_text,
    size_text,
    summary,
)
from minigrad.viz.trace import norm

if TYPE_CHECKING:
    import graphviz

    from minigrad.viz.render import Drawing

_PARAM_FILL = "#dbe8f6"
_INPUT_FILL = "#e3f1dc"
_OP_FILL = "#eeeeee"
_BOX_FILL = "#e6def3"
_CLUSTER_FILLS = ("#f6f8fb", "#eaeff6", "#dee6f0")
_RAMP = ("#ffffcc", "#fed976", "#fd8d3c", "#e31a1c", "#800026")  # small -> large, YlOrRd
_ZERO_FILL = "#bdbdbd"
_NONFINITE_FILL = "#c51b8a"


def draw_graph(
    *roots: Tensor,
    params: Mapping[str, Tensor] | Any = None,
    show_values: bool = False,
    show_grads: bool = False,
    collapse: str | Sequence[str] | Callable[[str], bool] | None = None,
    color_by: str | Callable[[Tensor], float | None] | None = None,
    rankdir: str = "LR",
    legend: bool = False,
) -> graphviz.Digraph:
    """Draw the graph that computed ``roots`` (edges follow the data from inputs to roots).

    Args:
        roots: the tensors to draw the history of (e.g. a loss, or gradients made with
            ``create_graph=True``, which draws the backward computation as ops).
        params: names for tensors: a dict name -> Tensor, or a Module (anything with
            ``named_parameters()``). Other tensors show their ``name`` if they have one
            (``t.named("c")``, as the built-in cells name their gates and states).
        show_values / show_grads: add a summary of ``data`` / ``grad`` to each tensor (a
            one-element tensor shows its value, others min, mean and max). Constant scalars,
            such as the 2 in ``x * 2``, always show their value.
        collapse: name scopes to draw as one box each, with only their inputs and outputs. A
            pattern matches a scope path when its dot-separated parts match the path's last
            parts, each by ``fnmatch`` (so ``*`` never crosses a dot): ``"t*"`` matches every
            time step ``rnnlm.rnn.l0.t3``, ``"l0.t*"`` only those of layer 0, ``"rnn"`` the
            whole ``rnnlm.rnn``. Give a pattern, a list of patterns, or a predicate on the path.
            A path is one box however many ops share it (a module called twice in the same
            scope is one box); when nested scopes match, the outermost wins.
        color_by: ``"grad_norm"`` fills each tensor by the norm of its ``.grad`` on a log scale
            and adds a legend (after backward; call ``retain_grad()`` on the intermediate tensors
            to shade, or pass ``trace.grad_norm`` from ``trace_backward``, which knows every
            gradient). Any callable Tensor -> number or None works the same way.
            ``"saved_bytes"`` fills each op instead, by the bytes it keeps for backward, as
            ``mg.memory_report`` counts them (each array once, at the first op that holds it;
            a collapsed box by its ops' sum).
        rankdir: Graphviz layout direction: ``"LR"`` (default), ``"TB"``, ``"RL"`` or ``"BT"``.
            Top to bottom (``"TB"``) suits a single step, which is deep rather than long.
        legend: add a small key below the drawing: the fills of parameters and inputs (leaves
            with and without grad; left out under ``color_by``, whose fills replace them), the
            roots' thick border, and the dashed border of an op whose saved arrays backward
            has freed.

    The output of an op with several outputs (``chunk``, ``split``, ``unbind``) shows which one
    it is as ``[k]`` before its shape. Returns a ``graphviz.Digraph``: ``.source`` is the DOT
    text; ``.render()``, ``.pipe()`` and Jupyter display need Graphviz's ``dot`` program
    (without it they raise ``minigrad.viz.render.GraphvizNotFoundError``, which says how to
    install it). ``dot`` lays out an unrolled LSTM language model of 140 steps (about 3,700
    nodes) in 2 s, but with its time steps collapsed into boxes it can take longer than
    unrolled (42 s at 70 steps with dot 2.43): ``mg.explore`` tries both, each in a time limit.
    """
    return _draw("draw_graph", roots, params, show_values, show_grads, collapse, color_by,
                 rankdir, legend).digraph


class _Drawn(NamedTuple):
    """A drawing and where each op and tensor is in it (what ``explore`` needs to find them)."""

    digraph: Drawing
    graph: Graph
    op_nodes: dict[Function, str]  # each op's node id: its own, or that of the box it is in
    tensor_nodes: dict[int, str]  # id(tensor) -> node id
    places: dict[str, str]  # node id -> the scope whose cluster holds the node


def _draw(who: str, roots: Sequence[Tensor], params: Mapping[str, Tensor] | Any,
          show_values: bool, show_grads: bool,
          collapse: str | Sequence[str] | Callable[[str], bool] | None,
          color_by: str | Callable[[Tensor], float | None] | None, rankdir: str,
          legend: bool) -> _Drawn:
    """``draw_graph``'s work, for the function named ``who``: the drawing, and its node ids."""
    roots = check_roots(who, roots)
    if rankdir not in ("LR", "TB", "RL", "BT"):
        raise ValueError(f"{who}: rankdir must be 'LR', 'TB', 'RL' or 'BT'; got {rankdir!r}")
    names = param_names(params)
    g = Graph(roots, collapse_rule(collapse))
    if color_by == "saved_bytes":  # the ops are shaded, not the tensors
        from minigrad.memory import memory_report

        report, shade, legend_title = memory_report(*roots), None, "saved bytes"
        kept = {key: sum(report.saved_bytes(m) or 0 for m in members)
                for key, members in g.groups()}
        scale = _LogScale(list(kept.values()))
    else:
        shade, legend_title = _shading(color_by)
        values = ({id(x): shade(x) for x in g.tensors if not g.hidden(x)}
                  if shade is not None else {})
        scale = _LogScale([v for v in values.values() if v is not None])

    nodes: list[tuple[str, str, dict]] = []  # (cluster scope, node id, attributes)
    edges: list[tuple[str, str, dict]] = []
    tensor_ids: dict[int, str] = {}
    op_ids: dict[Function, str] = {}

    def add_tensor(x: Tensor) -> str:
        if id(x) not in tensor_ids:
            tensor_ids[id(x)] = f"t{len(tensor_ids)}"
            picked = x.grad_fn is not None and len(x.grad_fn.outputs) > 1 and not g.box[x.grad_fn]
            attrs, lines = _tensor_style(x, name_of(x, names), x.output_nr if picked else None,
                                         show_values, show_grads)
            if id(x) in g.root_ids:
                attrs["penwidth"] = "2"
            if shade is not None:
                lines += scale.paint(attrs, values[id(x)], legend_title)
            attrs["label"] = _html(*lines)
            nodes.append((g.place_tensor(x), tensor_ids[id(x)], attrs))
        return tensor_ids[id(x)]

    for k, (key, members) in enumerate(g.groups()):
        size = size_text(kept[key]) if color_by == "saved_bytes" else ""
        if isinstance(key, Function):
            inputs = list(key.inputs)  # x * x keeps both edges
            nid, attrs = f"op{k}", _op_attrs(key, size)
        else:  # each outside input once; tensors made inside the box stay inside
            inputs = list({id(x): x for m in members for x in m.inputs
                           if g.box.get(x.grad_fn) != key}.values())
            nid, attrs = f"box{k}", _box_attrs(key, len(members), size)
        if size:
            scale.paint(attrs, kept[key], legend_title)  # the fill; the label says the size
        op_ids |= dict.fromkeys(members, nid)
        tails = [add_tensor(x) for x in inputs]
        nodes.append((g.place(members[0]), nid, attrs))
        edges += [(tail, nid, {}) for tail in tails]
        edges += [(nid, add_tensor(y), {}) for m in members for y in g.outputs.get(m, ())]
    for r in roots:
        add_tensor(r)
    if (shade is not None or color_by == "saved_bytes") and scale.seen:
        missing = shade is not None and any(v is None for v in values.values())
        nodes.append(("", "legend", {"label": scale.legend(legend_title, missing),
                                     "shape": "plaintext"}))
    graph_attr = {"rankdir": rankdir, "fontname": "Helvetica", "nodesep": "0.2", "ranksep": "0.3"}
    if legend:  # as the graph's label, below the drawing: it takes no room beside it
        graph_attr |= {"label": _key(fills=shade is None), "labelloc": "b", "labeljust": "l"}

    from minigrad.viz.render import to_digraph  # graphviz loads on the first drawing

    clusters = {s: _cluster_attrs(s) for scope, _, _ in nodes for s in prefixes(scope)}
    digraph = to_digraph(
        nodes, edges, clusters,
        graph_attr=graph_attr,
        node_attr={"fontname": "Helvetica", "fontsize": "11", "shape": "box",
                   "style": "rounded,filled", "fillcolor": "#ffffff"},
        edge_attr={"arrowsize": "0.6", "color": "#555555"},
    )
    return _Drawn(digraph, g, op_ids, tensor_ids, {nid: scope for scope, nid, _ in nodes})


def _shading(color_by: Any) -> tuple[Callable[[Tensor], float | None] | None, str]:
    """The function giving each tensor's colour value, and the legend's title."""
    if color_by is None:
        return None, ""
    if isinstance(color_by, str):
        if color_by == "grad_norm":
            return _grad_norm, "grad norm"
    elif callable(color_by):
        return color_by, getattr(color_by, "__name__", "value").replace("_", " ")
    raise ValueError(f"color_by must be None, 'grad_norm', 'saved_bytes' or a function Tensor "
                     f"-> number; got {color_by!r}")


def _grad_norm(x: Tensor) -> float | None:
    return None if x.grad is None else norm(x.grad.data)


# -- labels and styles ----------------------------------------------------------------------------


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _html(*lines: str) -> str:
    """An HTML-like Graphviz label from lines of already escaped HTML; several lines go in the
    rows of a table, which keeps a name's underscores clear of the line below."""
    if len(lines) == 1:
        return f"<{lines[0]}>"
    rows = "".join(f"<TR><TD>{line}</TD></TR>" for line in lines)
    return f'<<TABLE BORDER="0" CELLPADDING="1" CELLSPACING="0">{rows}</TABLE>>'


def _small(line: str) -> str:
    return f'<FONT POINT-SIZE="9">{line}</FONT>'


def _tensor_style(x: Tensor, name: str | None, output_nr: int | None, show_values: bool,
                  show_grads: bool) -> tuple[dict, list[str]]:
    """A tensor's node attributes and the lines of its label."""
    lines = [f"<B>{_esc(name)}</B>"] if name else []
    pick = "" if output_nr is None else f"[{output_nr}] "
    lines.append(_esc(pick + shape_text(x)))
    constant = x.grad_fn is None and not x.requires_grad and x.numel() == 1
    if show_values or constant:
        lines.append(_small(_esc(summary(x.data))))
    if show_grads and x.grad is not None:
        lines.append(_small("grad " + _esc(summary(x.grad.data))))
    attrs = {}  # shape, style and fill: the graph's node defaults
    if x.grad_fn is None:
        attrs["fillcolor"] = _PARAM_FILL if x.requires_grad else _INPUT_FILL
    return attrs, lines


def _op_attrs(fn: Function, note: str = "") -> dict:
    label = _html(_esc(fn.name), _small(_esc(note))) if note else _html(_esc(fn.name))
    attrs = {"label": label, "shape": "ellipse", "style": "filled",
             "fillcolor": _OP_FILL, "fontsize": "10", "height": "0.3", "margin": "0.05,0.02"}
    notes = [fn.scope] if fn.scope else []
    if fn.freed:  # dashed: backward has run through it and freed what it saved
        attrs["style"] = "filled,dashed"
        notes.append("saved arrays freed by backward")
    if notes:
        attrs["tooltip"] = "; ".join(notes)
    return attrs


def _box_attrs(scope: str, n_ops: int, note: str = "") -> dict:
    label = _html(f"<B>{_esc(scope.rpartition('.')[2])}</B>",
                  _small(f"{n_ops} op{'s' if n_ops != 1 else ''}" + (f", {note}" if note else "")))
    return {"label": label, "shape": "box3d", "style": "filled", "fillcolor": _BOX_FILL,
            "tooltip": scope}


def _cluster_attrs(scope: str) -> dict:
    """A scope's cluster: its last name in bold, shaded deeper the deeper it is nested."""
    fill = _CLUSTER_FILLS[scope.count(".") % len(_CLUSTER_FILLS)]
    return {"label": _html(f"<B>{_esc(scope.rpartition('.')[2])}</B>"), "tooltip": scope,
            "style": "rounded,filled", "fillcolor": fill, "color": "#9aa5b1", "fontsize": "10",
            "labeljust": "l", "labelloc": "t"}


def _key(fills: bool) -> str:
    """The legend of ``legend=True``: a swatch and a few words per kind of node (the fills
    only when ``color_by`` has not taken them over)."""
    rows = [("1", _PARAM_FILL, "rounded", "parameter (leaf with grad)"),
            ("1", _INPUT_FILL, "rounded", "input (leaf without grad)")] if fills else []
    rows += [("2", "#ffffff", "rounded", "root (drawn from)"),
             ("1", _OP_FILL, "dashed", "op: saved arrays freed by backward")]
    cells = "".join(f'<TR><TD BORDER="{b}" BGCOLOR="{c}" STYLE="{s}" WIDTH="26" HEIGHT="13">'
                    f'</TD><TD ALIGN="LEFT">{_small(t)}</TD></TR>' for b, c, s, t in rows)
    return f'<<TABLE BORDER="0" CELLSPACING="3" CELLPADDING="0">{cells}</TABLE>>'


class _LogScale:
    """Maps positive numbers to colours on a log10 scale spanning the numbers it is given."""

    def __init__(self, values: list[float]) -> None:
        logs = [math.log10(v) for v in values if math.isfinite(v) and v > 0]
        self.seen = bool(values)
        self.zero = any(v == 0 for v in values)
        self.nonfinite = any(not math.isfinite(v) for v in values)
        self.lo = math.floor(min(logs)) if logs else 0
        self.hi = max(math.ceil(max(logs)) if logs else 1, self.lo + 1)

    def color(self, v: float) -> str:
        """The fill for a value: interpolated along the ramp, or the zero/non-finite colours."""
        if not math.isfinite(v):
            return _NONFINITE_FILL
        if v <= 0:
            return _ZERO_FILL
        f = (math.log10(v) - self.lo) / (self.hi - self.lo) * (len(_RAMP) - 1)
        k = min(int(f), len(_RAMP) - 2)
        a, b = (np.array([int(c[i:i + 2], 16) for i in (1, 3, 5)]) for c in _RAMP[k:k + 2])
        rgb = np.rint(a + (b - a) * (f - k)).astype(int)
        return "#" + "".join(f"{c:02x}" for c in rgb)

    def paint(self, attrs: dict, v: float | None, title: str) -> list[str]:
        """Fill a tensor's node by ``v``; the line that shows ``v`` in its label."""
        if v is None:
            attrs["fillcolor"] = "#ffffff"
            return []
        attrs["fillcolor"] = self.color(v)
        dark = math.isfinite(v) and v > 0 and math.log10(v) > self.lo + 0.6 * (self.hi - self.lo)
        if dark:
            attrs["fontcolor"] = "#ffffff"
        return [_small(f"{_esc(title)} {v:.3g}")]

    def legend(self, title: str, missing: bool) -> str:
        """An HTML table: one swatch per power of ten (at most 7), largest first."""
        step = max(1, math.ceil((self.hi - self.lo) / 6))
        powers = [10.0 ** e for e in range(self.hi, self.lo - 1, -step)]
        rows = [(self.color(p), f"{p:g}") for p in powers]
        if self.zero:
            rows.append((_ZERO_FILL, "0"))
        if self.nonfinite:
            rows.append((_NONFINITE_FILL, "nan/inf"))
        if missing:
            rows.append(("#ffffff", "none"))
        cells = "".join(f'<TR><TD BGCOLOR="{c}" WIDTH="18"> </TD><TD ALIGN="LEFT">{t}</TD></TR>'
                        for c, t in rows)
        head = f'<TR><TD COLSPAN="2"><B>{_esc(title)}</B> (log scale)</TD></TR>'
        return f'<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0">{head}{cells}</TABLE>>'
