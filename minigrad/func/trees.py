"""Pytrees: tensors in tuples, lists and dicts, flattened and rebuilt."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from minigrad.tensor import Tensor


def tree_flatten(tree: Any) -> tuple[list[Tensor], Any]:
    """The tensors in ``tree`` (tuples, lists and dicts of tensors), in order, and its shape."""
    if isinstance(tree, Tensor):
        return [tree], None
    if isinstance(tree, (tuple, list)):
        parts = [tree_flatten(x) for x in tree]
        return [t for leaves, _ in parts for t in leaves], (type(tree), [s for _, s in parts])
    if isinstance(tree, dict):
        parts = [tree_flatten(x) for x in tree.values()]
        return ([t for leaves, _ in parts for t in leaves],
                (dict, list(tree), [s for _, s in parts]))
    raise TypeError(f"mg.func: expected tensors, or tuples, lists and dicts of them; got a "
                    f"{type(tree).__name__}")


def tree_unflatten(shape: Any, leaves: Sequence[Any]) -> Any:
    """The inverse of ``tree_flatten``: ``shape`` filled with ``leaves`` in order."""
    it = iter(leaves)

    def build(s: Any) -> Any:
        if s is None:
            return next(it)
        if s[0] is dict:
            return dict(zip(s[1], [build(p) for p in s[2]]))
        parts = [build(p) for p in s[1]]
        return s[0](*parts) if hasattr(s[0], "_fields") else s[0](parts)  # a named tuple

    return build(shape)
