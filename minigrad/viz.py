"""Computation graphs you can read: draw them with Graphviz, print them, trace backward.

``draw_graph`` turns the graph behind some tensors into a ``graphviz.Digraph``: tensors are boxes
with their name, shape and dtype, ops are small ovals, and every op sits in a nested cluster for
the name scope (module path, time step) that created it. Everything is found by walking
``grad_fn`` and ``inputs`` iteratively, so drawing never recurses, never needs the arrays that
backward frees, and gives the same DOT source every time for the same computation.

Run ``python -m minigrad.viz {lstm_cell,gru_unroll,tanh_neuron} -o graph.svg`` to draw a demo.
"""

from __future__ import annotations

import argparse
import html
import math
import os
import sys
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, TextIO

import graphviz
import numpy as np

from minigrad.autograd import Function, forward_order, name_scope, no_grad, observe_backward
from minigrad.ops.shape import sum_to
from minigrad.tensor import Tensor, tensor

_INSTALL_HINT = (
    "rendering needs Graphviz's `dot` program, which is not on PATH. Install Graphviz "
    "(Debian/Ubuntu: `apt-get install graphviz`; macOS: `brew install graphviz`; conda: "
    "`conda install graphviz`). The DOT text in `.source` needs no install."
)
_PARAM_FILL = "#dbe8f6"
_OP_FILL = "#eeeeee"
_BOX_FILL = "#e6def3"
_CLUSTER_FILLS = ("#f6f8fb", "#eaeff6", "#dee6f0")
_RAMP = ("#ffffcc", "#fed976", "#fd8d3c", "#e31a1c", "#800026")  # small -> large, YlOrRd
_ZERO_FILL = "#bdbdbd"
_NONFINITE_FILL = "#c51b8a"
_MAX_INDENT = 24  # print_graph stops indenting deeper than this and shows the depth instead


class GraphvizNotFoundError(graphviz.ExecutableNotFound):
    """Raised when a drawing is rendered but Graphviz's ``dot`` is not installed."""

    def __init__(self) -> None:
        RuntimeError.__init__(self, _INSTALL_HINT)


class Drawing(graphviz.Digraph):
    """The ``graphviz.Digraph`` that ``draw_graph`` returns; rendering it without Graphviz
    installed raises ``GraphvizNotFoundError``, which says how to install it."""

    def pipe(self, *args, **kwargs):
        """Render with ``dot`` and return the output (see ``graphviz.Digraph.pipe``)."""
        with _needs_dot():
            return super().pipe(*args, **kwargs)

    def render(self, *args, **kwargs):
        """Save the source and render it to a file (see ``graphviz.Digraph.render``)."""
        with _needs_dot():
            return super().render(*args, **kwargs)


@contextmanager
def _needs_dot() -> Iterator[None]:
    try:
        yield
    except graphviz.ExecutableNotFound as e:
        raise GraphvizNotFoundError() from e


# ----------------------------------------------------------------------------------------------
# draw_graph


def draw_graph(
    *roots: Tensor,
    params: Mapping[str, Tensor] | Any = None,
    show_values: bool = False,
    show_grads: bool = False,
    collapse: str | Sequence[str] | Callable[[str], bool] | None = None,
    color_by: str | Callable[[Tensor], float | None] | None = None,
    rankdir: str = "LR",
) -> graphviz.Digraph:
    """Draw the graph that computed ``roots`` (edges follow the data from inputs to roots).

    Args:
        roots: the tensors to draw the history of (e.g. a loss, or gradients made with
            ``create_graph=True``, which draws the backward computation as ops).
        params: names for tensors: a dict name -> Tensor, or a Module (anything with
            ``named_parameters()``). Named tensors show their name in bold.
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
        rankdir: Graphviz layout direction: ``"LR"`` (default), ``"TB"``, ``"RL"`` or ``"BT"``.

    Returns a ``graphviz.Digraph``: ``.source`` is the DOT text; ``.render()``, ``.pipe()`` and
    Jupyter display need Graphviz's ``dot`` program. ``dot`` lays out a few hundred nodes in
    seconds but thousands in minutes: collapse long unrolls before rendering them.
    """
    roots = _check_roots("draw_graph", roots)
    if rankdir not in ("LR", "TB", "RL", "BT"):
        raise ValueError(f"draw_graph: rankdir must be 'LR', 'TB', 'RL' or 'BT'; got {rankdir!r}")
    names = _names(params)
    shade, legend_title = _shading(color_by)

    g = _Graph(roots, _collapse_rule(collapse))
    values = {id(x): shade(x) for x in g.tensors if not g.hidden(x)} if shade is not None else {}
    scale = _LogScale([v for v in values.values() if v is not None])

    nodes: list[tuple[str, str, dict]] = []  # (cluster scope, node id, attributes)
    edges: list[tuple[str, str, dict]] = []
    tensor_ids: dict[int, str] = {}

    def add_tensor(x: Tensor) -> str:
        if id(x) not in tensor_ids:
            tensor_ids[id(x)] = f"t{len(tensor_ids)}"
            attrs = _tensor_attrs(x, names.get(id(x)), show_values, show_grads)
            if id(x) in g.root_ids:
                attrs["penwidth"] = "2"
            if shade is not None:
                scale.paint(attrs, values[id(x)], legend_title)
            nodes.append((g.place_tensor(x), tensor_ids[id(x)], attrs))
        return tensor_ids[id(x)]

    for k, (key, members) in enumerate(g.groups()):
        if isinstance(key, Function):
            inputs = list(key.inputs)  # x * x keeps both edges
            nid, attrs = f"op{k}", _op_attrs(key)
        else:  # each outside input once; tensors made inside the box stay inside
            inputs = list({id(x): x for m in members for x in m.inputs
                           if g.box.get(x.grad_fn) != key}.values())
            nid, attrs = f"box{k}", _box_attrs(key, len(members))
        tails = [add_tensor(x) for x in inputs]
        nodes.append((g.place(members[0]), nid, attrs))
        edges += [(tail, nid, {}) for tail in tails]
        for m in members:
            for y in g.outputs.get(m, ()):
                # taillabel, not label: dot lays out labelled edges much more slowly
                pick = {"taillabel": str(y.output_nr)} if m is key and len(m.outputs) > 1 else {}
                edges.append((nid, add_tensor(y), pick))
    for r in roots:
        add_tensor(r)

    graph = Drawing(
        graph_attr={"rankdir": rankdir, "fontname": "Helvetica", "nodesep": "0.2",
                    "ranksep": "0.3"},
        node_attr={"fontname": "Helvetica", "fontsize": "11", "shape": "box",
                   "style": "rounded,filled", "fillcolor": "#ffffff"},
        edge_attr={"arrowsize": "0.6", "color": "#555555", "fontsize": "9"},
    )
    _add_clusters(graph, nodes)
    if shade is not None and scale.seen:
        missing = any(v is None for v in values.values())
        graph.node("legend", label=scale.legend(legend_title, missing), shape="plaintext")
    for tail, head, attrs in edges:
        graph.edge(tail, head, **attrs)
    return graph


class _Graph:
    """The graph behind some roots: its ops in data-flow order, the consumers of each tensor,
    and the collapsed scope (if any) that swallows each op."""

    def __init__(self, roots: list[Tensor], collapsed: Callable[[str], bool]) -> None:
        self.root_ids = {id(r) for r in roots}
        self.ops = forward_order(roots)
        self.consumers: dict[int, list[Function]] = {}
        tensors: dict[int, Tensor] = {}
        for fn in self.ops:
            for x in fn.inputs:
                tensors.setdefault(id(x), x)
                self.consumers.setdefault(id(x), []).append(fn)
        for r in roots:
            tensors.setdefault(id(r), r)
        self.tensors = list(tensors.values())
        box_of_scope: dict[str, str | None] = {}
        for fn in self.ops:
            if fn.scope not in box_of_scope:  # the outermost matching scope wins
                box_of_scope[fn.scope] = next((p for p in _prefixes(fn.scope) if collapsed(p)),
                                              None)
        self.box = {fn: box_of_scope[fn.scope] for fn in self.ops}
        self.outputs: dict[Function, list[Tensor]] = {}  # the drawn outputs of each op
        for x in self.tensors:
            if x.grad_fn is not None and not self.hidden(x):
                self.outputs.setdefault(x.grad_fn, []).append(x)
        for ys in self.outputs.values():
            ys.sort(key=lambda y: y.output_nr)

    def hidden(self, x: Tensor) -> bool:
        """Whether ``x`` is made and used only inside one collapsed scope."""
        key = self.box.get(x.grad_fn)
        return key is not None and id(x) not in self.root_ids and all(
            self.box[c] == key for c in self.consumers.get(id(x), ()))

    def place(self, fn: Function) -> str:
        """The scope whose cluster holds an op, or the box that swallowed it."""
        key = self.box[fn]
        return fn.scope if key is None else key.rpartition(".")[0]

    def place_tensor(self, x: Tensor) -> str:
        """Where a tensor is drawn: with the op that made it, or (a leaf) in the innermost scope
        enclosing everything that uses it."""
        if x.grad_fn is not None:
            return self.place(x.grad_fn)
        return _common_scope([self.place(c) for c in self.consumers.get(id(x), ())])

    def groups(self) -> list[tuple[Function | str, list[Function]]]:
        """The op nodes to draw, ``(op, [op])`` or ``(collapsed scope, its ops)``, each in
        data-flow order of its last op, so that all of a box's inputs come before it."""
        members: dict[Function | str, list[Function]] = {}
        for fn in self.ops:
            members.setdefault(self.box[fn] or fn, []).append(fn)
        position = {fn: k for k, fn in enumerate(self.ops)}
        return sorted(members.items(), key=lambda item: position[item[1][-1]])


def _check_roots(who: str, roots: Sequence) -> list[Tensor]:
    if not roots:
        raise ValueError(f"{who}: give at least one tensor to draw")
    unique: dict[int, Tensor] = {}
    for k, r in enumerate(roots):
        if not isinstance(r, Tensor):
            raise TypeError(f"{who}: root {k} must be a Tensor; got {type(r).__name__}")
        unique.setdefault(id(r), r)
    return list(unique.values())


def _names(params: Any) -> dict[int, str]:
    """id(tensor) -> name, from a dict or from anything with ``named_parameters()``."""
    if params is None:
        return {}
    if hasattr(params, "named_parameters"):
        items = params.named_parameters()
    elif isinstance(params, Mapping):
        items = params.items()
    else:
        raise TypeError(
            "params must be a dict name -> Tensor or a Module (with named_parameters()); got "
            f"{type(params).__name__}"
        )
    names: dict[int, str] = {}
    for name, t in items:
        if not isinstance(t, Tensor):
            raise TypeError(f"params: {name!r} must name a Tensor; got {type(t).__name__}")
        names.setdefault(id(t), str(name))
    return names


def _prefixes(scope: str) -> list[str]:
    """``"a.b.c"`` -> ``["a", "a.b", "a.b.c"]``: the scope and its enclosing scopes, outermost
    first."""
    parts = scope.split(".") if scope else []
    return [".".join(parts[:k]) for k in range(1, len(parts) + 1)]


def _common_scope(scopes: list[str]) -> str:
    """The innermost scope enclosing all of ``scopes`` (the top level ``""`` for none)."""
    if not scopes:
        return ""
    return ".".join(os.path.commonprefix([s.split(".") if s else [] for s in scopes]))


def _scope_matches(pattern: str, scope: str) -> bool:
    """Whether the dot-separated parts of ``pattern`` match the last parts of ``scope``."""
    want, have = pattern.split("."), scope.split(".")
    return len(want) <= len(have) and all(map(fnmatchcase, have[len(have) - len(want):], want))


def _collapse_rule(collapse: Any) -> Callable[[str], bool]:
    if collapse is None:
        return lambda scope: False
    if callable(collapse):
        return collapse
    patterns = [collapse] if isinstance(collapse, str) else collapse
    if not isinstance(patterns, (list, tuple)) or not all(isinstance(p, str) for p in patterns):
        raise TypeError(
            "collapse must be a scope pattern such as 't*', a list of patterns, or a predicate "
            f"on the scope path; got {collapse!r}"
        )
    return lambda scope: any(_scope_matches(p, scope) for p in patterns)


def _shading(color_by: Any) -> tuple[Callable[[Tensor], float | None] | None, str]:
    """The function giving each tensor's colour value, and the legend's title."""
    if color_by is None:
        return None, ""
    if isinstance(color_by, str):
        if color_by == "grad_norm":
            return _grad_norm, "grad norm"
    elif callable(color_by):
        return color_by, getattr(color_by, "__name__", "value").replace("_", " ")
    raise ValueError(
        f"color_by must be None, 'grad_norm' or a function Tensor -> number; got {color_by!r}"
    )


def _grad_norm(x: Tensor) -> float | None:
    return None if x.grad is None else _norm(x.grad.data)


def _norm(a: np.ndarray) -> float:
    """The 2-norm of all entries, summed in float64 so float32 gradients cannot overflow."""
    return float(np.sqrt(np.sum(np.square(a, dtype=np.float64))))


# -- labels and styles ----------------------------------------------------------------------------


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _html(*lines: str) -> str:
    """An HTML-like Graphviz label from lines of already escaped HTML."""
    return "<" + "<BR/>".join(lines) + ">"


def _small(line: str) -> str:
    return f'<FONT POINT-SIZE="9">{line}</FONT>'


def _num(v: Any) -> str:
    return f"{float(v):.4g}"


def _summary(a: np.ndarray) -> str:
    """A one-element array's value, or an array's min, mean and max."""
    if a.size == 1:
        return _num(a.item())
    if a.size == 0:
        return "empty"
    return f"min {_num(a.min())} mean {_num(a.mean())} max {_num(a.max())}"


def _shape_text(x: Tensor) -> str:
    return f"{x.shape} {x.dtype}"


def _tensor_attrs(x: Tensor, name: str | None, show_values: bool, show_grads: bool) -> dict:
    lines = [f"<B>{_esc(name)}</B>"] if name else []
    lines.append(_esc(_shape_text(x)))
    constant = x.grad_fn is None and not x.requires_grad and x.size == 1
    if show_values or constant:
        lines.append(_small(_esc(_summary(x.data))))
    if show_grads and x.grad is not None:
        lines.append(_small("grad " + _esc(_summary(x.grad.data))))
    attrs = {"label": _html(*lines)}  # shape, style and fill: the graph's node defaults
    if name is not None and x.is_leaf and x.requires_grad:
        attrs["fillcolor"] = _PARAM_FILL
    return attrs


def _op_attrs(fn: Function) -> dict:
    attrs = {"label": _html(_esc(fn.name)), "shape": "ellipse", "style": "filled",
             "fillcolor": _OP_FILL, "fontsize": "10", "height": "0.3", "margin": "0.05,0.02"}
    notes = [fn.scope] if fn.scope else []
    if fn.freed:  # dashed: backward has run through it and freed what it saved
        attrs["style"] = "filled,dashed"
        notes.append("saved arrays freed by backward")
    if notes:
        attrs["tooltip"] = graphviz.escape("; ".join(notes))
    return attrs


def _box_attrs(scope: str, n_ops: int) -> dict:
    label = _html(f"<B>{_esc(scope.rpartition('.')[2])}</B>",
                  _small(f"{n_ops} op{'s' if n_ops != 1 else ''}"))
    return {"label": label, "shape": "box3d", "style": "filled", "fillcolor": _BOX_FILL,
            "tooltip": graphviz.escape(scope)}


def _add_clusters(graph: graphviz.Digraph, nodes: list[tuple[str, str, dict]]) -> None:
    """Declare each node inside nested clusters, one per scope (``a.b`` inside ``a``)."""
    clusters: dict[str, graphviz.Digraph] = {"": graph}
    for scope, nid, attrs in nodes:
        for s in _prefixes(scope):
            if s not in clusters:
                depth = s.count(".")
                clusters[s] = graphviz.Digraph(name=f"cluster_{len(clusters) - 1}", graph_attr={
                    "label": _html(f"<B>{_esc(s.rpartition('.')[2])}</B>"),
                    "tooltip": graphviz.escape(s), "style": "rounded,filled",
                    "fillcolor": _CLUSTER_FILLS[depth % len(_CLUSTER_FILLS)],
                    "color": "#9aa5b1", "fontsize": "10", "labeljust": "l",
                })
        clusters[scope].node(nid, **attrs)
    # A cluster's text is copied into its parent when added, so add the innermost first.
    for s in sorted(clusters, key=lambda s: -s.count(".") if s else 1):
        if s:
            clusters[s.rpartition(".")[0]].subgraph(clusters[s])


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

    def paint(self, attrs: dict, v: float | None, title: str) -> None:
        """Fill a tensor's node by ``v`` and add the value to its label."""
        if v is None:
            attrs["fillcolor"] = "#ffffff"
            return
        attrs["fillcolor"] = self.color(v)
        dark = math.isfinite(v) and v > 0 and math.log10(v) > self.lo + 0.6 * (self.hi - self.lo)
        if dark:
            attrs["fontcolor"] = "#ffffff"
        attrs["label"] = attrs["label"][:-1] + "<BR/>" + _small(f"{_esc(title)} {v:.3g}") + ">"

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


# ----------------------------------------------------------------------------------------------
# print_graph


def print_graph(root: Tensor, params: Mapping[str, Tensor] | Any = None,
                file: TextIO | None = None) -> None:
    """Print the graph that computed ``root`` as an indented tree, root first.

    Each line is a tensor with its shape and dtype: ``%3 = MatMul(w, %4)`` for a tensor an op
    made (indented below it: its inputs), or a leaf (``param`` if ``params`` names it, ``leaf``
    if it requires grad, ``const`` otherwise). A tensor reached a second time is not expanded
    again but referred to as ``(see above)``. Past 24 levels the indentation stops growing and
    a line starts with its depth, ``(25)``. ``params`` is as for ``draw_graph``.
    """
    (root,) = _check_roots("print_graph", (root,))
    names = _names(params)
    labels: dict[int, str] = {}
    unnamed = 0

    def label(x: Tensor) -> str:
        nonlocal unnamed
        if id(x) not in labels:
            labels[id(x)] = names.get(id(x)) or f"%{unnamed}"
            unnamed += id(x) not in names
        return labels[id(x)]

    rows: list[tuple[int, str, str]] = []  # (depth, what, shape and notes)
    shown: set[int] = set()
    stack = [(root, 0)]
    while stack:
        x, depth = stack.pop()
        info = _shape_text(x)
        fn = x.grad_fn
        if id(x) in shown:
            rows.append((depth, f"{label(x)} (see above)", info))
            continue
        shown.add(id(x))
        if fn is None:
            kind = "param" if id(x) in names else "leaf" if x.requires_grad else "const"
            if kind == "const" and x.size == 1:
                kind += " " + _summary(x.data)
            rows.append((depth, label(x), f"{info}  {kind}"))
            continue
        made = label(x)
        pick = f"[{x.output_nr}]" if len(fn.outputs) > 1 else ""
        args = ", ".join(label(i) for i in fn.inputs)
        scope = f"  @{fn.scope}" if fn.scope else ""
        rows.append((depth, f"{made} = {fn.name}({args}){pick}", info + scope))
        stack.extend((i, depth + 1) for i in reversed(fn.inputs))
    lines = [("  " * min(d, _MAX_INDENT) + (f"({d}) " if d > _MAX_INDENT else "") + what, info)
             for d, what, info in rows]
    width = min(max(len(w) for w, _ in lines), 72)
    print("\n".join(f"{w:<{width}}  {i}" for w, i in lines), file=file or sys.stdout)


# ----------------------------------------------------------------------------------------------
# trace_backward


@dataclass(frozen=True)
class TraceRecord:
    """One op as backward visited it: the norms of the gradients of its outputs (flowing in)
    and of the gradients it sent to each input (flowing out; None where none was needed)."""

    step: int
    op: str
    scope: str
    grad_in: tuple[float, ...]
    grad_out: tuple[float | None, ...]


class Trace:
    """What ``trace_backward`` recorded: ``records`` in the order the engine visited the ops."""

    def __init__(self) -> None:
        self.records: list[TraceRecord] = []
        self._norms: dict[int, tuple[weakref.ref, float]] = {}  # id -> (tensor, grad norm)
        self._leaf_grads: dict[int, tuple[weakref.ref, np.ndarray]] = {}

    def grad_norm(self, t: Tensor) -> float | None:
        """The norm of the gradient that reached ``t`` in the traced backward (None if none);
        pass ``color_by=trace.grad_norm`` to ``draw_graph`` to shade every tensor by it."""
        entry = self._norms.get(id(t))
        if entry is not None and entry[0]() is t:
            return entry[1]
        entry = self._leaf_grads.get(id(t))
        if entry is not None and entry[0]() is t:
            return _norm(entry[1])
        return None

    def table(self) -> str:
        """The records as a text table, one op per line (``print(trace.table())``)."""
        def norms(vs: tuple) -> str:  # the first few of a many-output op's norms
            text = ", ".join("-" if v is None else f"{v:.4g}" for v in vs[:4])
            return text + f", ... ({len(vs)} in all)" if len(vs) > 4 else text

        rows = [("step", "op", "scope", "|grad in|", "|grad out| per input")]
        rows += [(str(r.step), r.op, r.scope, norms(r.grad_in), norms(r.grad_out))
                 for r in self.records]
        widths = [max(len(row[k]) for row in rows) for k in range(4)]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[4]
                         for row in rows)

    def _record(self, fn: Function, grads: tuple[Tensor, ...], in_grads: tuple) -> None:
        grad_in = tuple(_norm(g.data) for g in grads)
        for ref, n in zip(fn.outputs, grad_in):
            if ref() is not None:
                self._norms[id(ref())] = (ref, n)
        grad_out = []
        for x, g in zip(fn.inputs, in_grads):
            if g is None or not x.requires_grad:
                grad_out.append(None)
                continue
            a = _delivered(x, g)
            grad_out.append(_norm(a))
            if x.grad_fn is None:
                prev = self._leaf_grads.get(id(x))
                self._leaf_grads[id(x)] = (weakref.ref(x), a if prev is None else prev[1] + a)
        self.records.append(TraceRecord(len(self.records), fn.name, fn.scope, grad_in,
                                        tuple(grad_out)))


def _delivered(x: Tensor, g: Tensor) -> np.ndarray:
    """The gradient as the engine hands it to ``x``: broadcast axes summed away."""
    if g.shape == x.shape:
        return g.data
    try:
        with no_grad():
            return sum_to(g, x.shape).data
    except ValueError:  # the engine reports the bad shape right after
        return g.data


@contextmanager
def trace_backward() -> Iterator[Trace]:
    """Record every op that backward visits inside the block, in order, with gradient norms.

    ``with mg.trace_backward() as tr: loss.backward()`` then ``print(tr.table())``.
    """
    trace = Trace()
    with observe_backward(trace._record):
        yield trace


# ----------------------------------------------------------------------------------------------
# demo graphs and the command line


def _demo_tensors(rng: np.random.Generator, named: dict[str, tuple[int, ...]],
                  grad: bool) -> dict[str, Tensor]:
    return {name: tensor((0.5 * rng.standard_normal(shape)).astype(np.float32),
                         requires_grad=grad) for name, shape in named.items()}


def _lstm_cell(**options) -> graphviz.Digraph:
    """One LSTM step: gates from one fused matmul per input, split by chunk (i, f, g, o)."""
    batch, n_in, n_hid = 2, 3, 4
    rng = np.random.default_rng(0)
    p = _demo_tensors(rng, {"weight_ih": (4 * n_hid, n_in), "weight_hh": (4 * n_hid, n_hid),
                       "bias_ih": (4 * n_hid,), "bias_hh": (4 * n_hid,)}, grad=True)
    p |= _demo_tensors(rng, {"x": (batch, n_in), "h": (batch, n_hid), "c": (batch, n_hid)},
                       grad=False)
    with name_scope("lstm_cell"):
        gates = p["x"] @ p["weight_ih"].T + p["bias_ih"] + p["h"] @ p["weight_hh"].T + p["bias_hh"]
        i, f, g, o = gates.chunk(4, axis=1)
        c = f.sigmoid() * p["c"] + i.sigmoid() * g.tanh()
        h = o.sigmoid() * c.tanh()
    return draw_graph(h, c, params=p | {"h'": h, "c'": c}, **options)


def _gru_unroll(**options) -> graphviz.Digraph:
    """A GRU unrolled over 3 steps, one cluster per step (PyTorch's gates r, z, n)."""
    batch, n_in, n_hid, steps = 2, 3, 4, 3
    rng = np.random.default_rng(0)
    p = _demo_tensors(rng, {"weight_ih": (3 * n_hid, n_in), "weight_hh": (3 * n_hid, n_hid),
                       "bias_ih": (3 * n_hid,), "bias_hh": (3 * n_hid,)}, grad=True)
    xs = _demo_tensors(rng, {f"x{t}": (batch, n_in) for t in range(steps)}
                       | {"h0": (batch, n_hid)}, grad=False)
    h = xs["h0"]
    with name_scope("gru"):
        for t in range(steps):
            with name_scope(f"t{t}"):
                i_r, i_z, i_n = (xs[f"x{t}"] @ p["weight_ih"].T + p["bias_ih"]).chunk(3, axis=1)
                h_r, h_z, h_n = (h @ p["weight_hh"].T + p["bias_hh"]).chunk(3, axis=1)
                r, z = (i_r + h_r).sigmoid(), (i_z + h_z).sigmoid()
                n = (i_n + r * h_n).tanh()
                h = (1 - z) * n + z * h
    return draw_graph(h, params=p | xs, **options)


def _tanh_neuron(**options) -> graphviz.Digraph:
    """micrograd's neuron o = tanh(x1 w1 + x2 w2 + b), with its backward pass drawn as ops."""
    values = {"x1": 2.0, "x2": 0.0, "w1": -3.0, "w2": 1.0, "b": 6.8813735870195432}
    p = {k: tensor(v, requires_grad=True) for k, v in values.items()}
    with name_scope("forward"):
        o = (p["x1"] * p["w1"] + p["x2"] * p["w2"] + p["b"]).tanh()
    with name_scope("backward"):
        o.backward(create_graph=True)
    grads = {f"do/d{k}": t.grad for k, t in p.items()}
    return draw_graph(o, *grads.values(), params=p | grads | {"o": o},
                      **{"show_values": True} | options)


DEMOS: dict[str, Callable[..., graphviz.Digraph]] = {
    "lstm_cell": _lstm_cell, "gru_unroll": _gru_unroll, "tanh_neuron": _tanh_neuron,
}


def demo_graph(name: str, **options) -> graphviz.Digraph:
    """One of the built-in demo drawings, ``"lstm_cell"``, ``"gru_unroll"`` or
    ``"tanh_neuron"``; ``options`` go to ``draw_graph`` (e.g. ``collapse="t*"``)."""
    if name not in DEMOS:
        raise ValueError(f"demo_graph: unknown demo {name!r}; choose from {', '.join(DEMOS)}")
    return DEMOS[name](**options)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m minigrad.viz MODEL_NAME -o graph.svg``: draw a demo graph to a file."""
    parser = argparse.ArgumentParser(prog="python -m minigrad.viz", description=main.__doc__)
    parser.add_argument("model", choices=sorted(DEMOS), help="which demo graph to draw")
    parser.add_argument("-o", "--output", help="output file; its suffix picks the format "
                        "(svg, png, pdf, ... or gv/dot for DOT text); default MODEL.svg")
    parser.add_argument("--collapse", action="append", metavar="PATTERN",
                        help="draw scopes matching PATTERN (e.g. 't*') as one box; repeatable")
    parser.add_argument("--rankdir", default="LR", choices=["LR", "TB", "RL", "BT"],
                        help="layout direction (default LR)")
    args = parser.parse_args(argv)
    out = args.output or f"{args.model}.svg"
    fmt = os.path.splitext(out)[1].lstrip(".").lower() or "svg"
    graph = demo_graph(args.model, collapse=args.collapse, rankdir=args.rankdir)
    if fmt in ("gv", "dot"):
        data = graph.source.encode()
    else:
        try:
            data = graph.pipe(format=fmt)
        except GraphvizNotFoundError as e:
            parser.exit(1, f"error: {e}\n")
    with open(out, "wb") as f:
        f.write(data)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
