"""Graphviz: a drawing's nodes, clusters and edges as a ``graphviz.Digraph``.

The one module of minigrad.viz that imports graphviz; ``draw_graph`` imports it on first use,
so ``import minigrad`` does not pay for it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import graphviz

_INSTALL_HINT = (
    "rendering needs Graphviz's `dot` program, which is not on PATH. Install Graphviz "
    "(Debian/Ubuntu: `apt-get install graphviz`; macOS: `brew install graphviz`; conda: "
    "`conda install graphviz`). The DOT text in `.source` needs no install."
)

Node = tuple[str, str, dict]  # (scope whose cluster holds it, node id, attributes)
Edge = tuple[str, str, dict]  # (tail id, head id, attributes)


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


def to_digraph(nodes: list[Node], edges: list[Edge], clusters: Mapping[str, dict],
               **defaults: dict) -> Drawing:
    """A ``Drawing`` with each node declared inside nested clusters, one per scope (``a.b``
    inside ``a``, attributes from ``clusters``), then the edges. ``defaults`` are the
    ``graph_attr``, ``node_attr`` and ``edge_attr`` of the whole drawing. Tooltips are plain
    text: backslashes and ``<...>`` in them are shown as they are."""
    graph = Drawing(**defaults)
    subgraphs: dict[str, graphviz.Digraph] = {"": graph}
    for k, (scope, attrs) in enumerate(clusters.items()):
        subgraphs[scope] = graphviz.Digraph(name=f"cluster_{k}", graph_attr=_plain(attrs))
    for scope, nid, attrs in nodes:
        subgraphs[scope].node(nid, **_plain(attrs))
    # A cluster's text is copied into its parent when added, so add the innermost first.
    for scope in sorted(clusters, key=lambda s: -s.count(".")):
        subgraphs[scope.rpartition(".")[0]].subgraph(subgraphs[scope])
    for tail, head, attrs in edges:
        graph.edge(tail, head, **attrs)
    return graph


def _plain(attrs: dict) -> dict:
    if "tooltip" not in attrs:
        return attrs
    return attrs | {"tooltip": graphviz.escape(attrs["tooltip"])}
