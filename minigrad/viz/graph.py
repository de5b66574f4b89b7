"""Reading the graph behind some tensors for display: the roots, what each tensor is called, how
its values are summed up in a line, and (for ``draw_graph``) the ops in data-flow order with
the collapsed scopes that swallow them. Nothing here knows about Graphviz."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

import numpy as np

from minigrad.autograd import Function, forward_order
from minigrad.tensor import Tensor


def check_roots(who: str, roots: Sequence) -> list[Tensor]:
    """The roots without repeats; a clear error for none or for something not a Tensor."""
    if not roots:
        raise ValueError(f"{who}: give at least one tensor")
    unique: dict[int, Tensor] = {}
    for k, r in enumerate(roots):
        if not isinstance(r, Tensor):
            raise TypeError(f"{who}: root {k} must be a Tensor; got {type(r).__name__}")
        unique.setdefault(id(r), r)
    return list(unique.values())


def param_names(params: Any) -> dict[int, str]:
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


def name_of(x: Tensor, params: dict[int, str]) -> str | None:
    """What a drawing calls ``x``: its name in ``params`` (a module path), else ``x.name``."""
    name = params.get(id(x), x.name)
    return None if name is None else str(name)


def shape_text(x: Tensor) -> str:
    """``(2, 4) float32``."""
    return f"{x.shape} {x.dtype}"


def num(v: Any) -> str:
    """A number in at most four significant digits."""
    return f"{float(v):.4g}"


def size_text(n: int) -> str:
    """A number of bytes as people read it: ``512 B``, ``2.0 KiB``, ``6.2 MiB``."""
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def summary(a: np.ndarray) -> str:
    """A one-element array's value, or an array's min, mean and max."""
    if a.size == 1:
        return num(a.item())
    if a.size == 0:
        return "empty"
    return f"min {num(a.min())} mean {num(a.mean())} max {num(a.max())}"


class Graph:
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
                box_of_scope[fn.scope] = next((p for p in prefixes(fn.scope) if collapsed(p)),
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


_TIME_STEP = re.compile(r"t\d+")


def is_time_step(part: str) -> bool:
    """Whether one part of a scope path names a time step, ``t3``, as the recurrent layers of
    ``minigrad.models`` name their steps (``rnnlm.rnn.l0.fwd.t3``)."""
    return _TIME_STEP.fullmatch(part) is not None


def prefixes(scope: str) -> list[str]:
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


def collapse_rule(collapse: Any) -> Callable[[str], bool]:
    """A predicate on scope paths from ``draw_graph``'s ``collapse`` argument."""
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
