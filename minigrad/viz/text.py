"""print_graph: the graph behind a tensor as an indented tree of text, root first."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TextIO

from minigrad.tensor import Tensor
from minigrad.viz.graph import check_roots, name_of, param_names, shape_text, summary

_MAX_INDENT = 24  # deeper than this, the indentation stops growing and shows the depth instead


def print_graph(root: Tensor, params: Mapping[str, Tensor] | Any = None,
                file: TextIO | None = None) -> None:
    """Print the graph that computed ``root`` as an indented tree, root first.

    Each line is a tensor with its shape and dtype: ``%3 = MatMul(w, %4)`` for a tensor an op
    made (indented below it: its inputs), or a leaf (``param`` if ``params`` names it, ``leaf``
    if it requires grad, ``const`` otherwise). A tensor goes by its name in ``params``, else by
    its ``name`` (``t.named("c")``; a name used again becomes ``c_1``, ``c_2``, ...), else by a
    number ``%k``. A tensor reached a second time is not expanded again but referred to as
    ``(see above)``. Past 24 levels the indentation stops growing and a line starts with its
    depth, ``(25)``. ``params`` is as for ``draw_graph``.
    """
    (root,) = check_roots("print_graph", (root,))
    names = param_names(params)
    labels: dict[int, str] = {}
    taken: set[str] = set()
    unnamed = 0

    def label(x: Tensor) -> str:
        nonlocal unnamed
        if id(x) not in labels:
            name = name_of(x, names)
            if name is None:
                name, unnamed = f"%{unnamed}", unnamed + 1
            text, k = name, 0
            while text in taken:  # two tensors named "h" (two time steps): h and h_1
                k += 1
                text = f"{name}_{k}"
            taken.add(text)
            labels[id(x)] = text
        return labels[id(x)]

    rows: list[tuple[int, str, str]] = []  # (depth, what, shape and notes)
    shown: set[int] = set()
    stack = [(root, 0)]
    while stack:
        x, depth = stack.pop()
        info = shape_text(x)
        fn = x.grad_fn
        if id(x) in shown:
            rows.append((depth, f"{label(x)} (see above)", info))
            continue
        shown.add(id(x))
        if fn is None:
            kind = "param" if id(x) in names else "leaf" if x.requires_grad else "const"
            if kind == "const" and x.numel() == 1:
                kind += " " + summary(x.data)
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
