"""Computation graphs you can read: draw them with Graphviz, print them, trace backward.

- ``draw.py``: ``draw_graph``, the graph behind some tensors as a ``graphviz.Digraph``;
- ``text.py``: ``print_graph``, the same graph as an indented tree of text;
- ``trace.py``: ``trace_backward``, the ops that backward visits, in order, with the norms of
  the gradients flowing through them;
- ``explore.py``: ``explore``, the drawing as a page to click through in a browser (with
  ``drawing.js``, ``explorer.js`` and ``explorer.css``): statistics of every tensor, steppers
  through forward and backward, folding and search; ``compiled.explore()`` makes the same kind
  of page of a compiled program after each pass (``program.js``);
- ``graph.py``: what those share: roots, tensor names, summaries, scopes;
- ``render.py``: the hand-over to Graphviz (imported on the first drawing only);
- ``live.py``: ``Live``, a ``Trainer`` callback that draws training in a notebook, updated in
  place: the loss, and the gradient norm reaching each time step.

Graphs are walked iteratively (no recursion, a 10,000-step unroll is fine), never need the
arrays that backward frees, and give the same output every time for the same computation.
``examples/render_graphs.py`` draws the pictures in ``docs/graphs/``.
"""

from minigrad.viz.draw import draw_graph
from minigrad.viz.explore import Explorer, explore
from minigrad.viz.live import Live, grad_norms_by_time_step
from minigrad.viz.text import print_graph
from minigrad.viz.trace import Trace, TraceRecord, trace_backward

__all__ = ["Explorer", "Live", "Trace", "TraceRecord", "draw_graph", "explore",
           "grad_norms_by_time_step", "print_graph", "trace_backward"]
