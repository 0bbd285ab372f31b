"""Pytrees: nested tuples, lists and dicts with arrays (or anything else) at the leaves.

Functions take and return pytrees; tracing flattens them to a list of leaves plus a
`TreeDef` describing the structure, and rebuilds outputs from the TreeDef. Rules:
- tuples (namedtuples too), lists and dicts are nodes; dict keys are visited in
  sorted order, so `{"b": .., "a": ..}` and `{"a": .., "b": ..}` flatten alike;
- None is an empty subtree: it has no leaves and comes back as None;
- everything else is a leaf.
Same idea as JAX's pytrees (`jax/_src/tree_util.py`), reduced to these node kinds.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

LEAF = "leaf"
NONE = "none"
TUPLE = "tuple"
LIST = "list"
DICT = "dict"
NAMEDTUPLE = "namedtuple"


@dataclass(frozen=True)
class TreeDef:
    """The structure of a pytree: node kind, node metadata and child structures.

    `meta` is the sorted key tuple for dicts and the class for namedtuples.
    TreeDefs are hashable and compare structurally (used as cache keys).
    """

    kind: str
    meta: Any = None
    children: tuple["TreeDef", ...] = ()

    @property
    def num_leaves(self) -> int:
        if self.kind == LEAF:
            return 1
        return sum(child.num_leaves for child in self.children)

    def __str__(self) -> str:
        if self.kind == LEAF:
            return "*"
        if self.kind == NONE:
            return "None"
        inner = [str(c) for c in self.children]
        if self.kind == DICT:
            return "{" + ", ".join(f"{k!r}: {v}" for k, v in zip(self.meta, inner)) + "}"
        if self.kind == LIST:
            return "[" + ", ".join(inner) + "]"
        if self.kind == NAMEDTUPLE:
            return f"{self.meta.__name__}(" + ", ".join(inner) + ")"
        return "(" + ", ".join(inner) + ("," if len(inner) == 1 else "") + ")"


LEAF_DEF = TreeDef(LEAF)
NONE_DEF = TreeDef(NONE)


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(type(x), "_fields")


def sorted_keys(d: dict) -> list:
    """Dict keys in the order pytrees visit them; TypeError if they cannot be ordered."""
    try:
        return sorted(d)
    except TypeError:
        raise TypeError(f"pytree dict keys must be sortable, got {list(d)!r}") from None


_LEAF_TYPES = (np.ndarray, float, int, bool)


def _children(tree: Any) -> tuple[str, Any, list] | None:
    """(kind, meta, children) of a node, or None for a leaf."""
    kind = type(tree)
    if kind in _LEAF_TYPES:  # the common leaves, decided without isinstance chains
        return None
    if kind is tuple:
        return TUPLE, None, list(tree)
    if kind is list:
        return LIST, None, list(tree)
    if tree is None:
        return NONE, None, []
    if isinstance(tree, dict):
        keys = sorted_keys(tree)
        return DICT, tuple(keys), [tree[k] for k in keys]
    if _is_namedtuple(tree):
        return NAMEDTUPLE, type(tree), list(tree)
    if isinstance(tree, tuple):
        return TUPLE, None, list(tree)
    if isinstance(tree, list):
        return LIST, None, list(tree)
    return None


def tree_flatten(tree: Any) -> tuple[list, TreeDef]:
    """Leaves of `tree` in order, and its structure."""
    leaves: list = []
    treedef = _flatten_into(tree, leaves)
    return leaves, treedef


def _flatten_into(tree: Any, leaves: list) -> TreeDef:
    node = _children(tree)
    if node is None:
        leaves.append(tree)
        return LEAF_DEF
    kind, meta, children = node
    return TreeDef(kind, meta, tuple(_flatten_into(c, leaves) for c in children))


def tree_unflatten(treedef: TreeDef, leaves: list) -> Any:
    """Rebuild a pytree of structure `treedef` from its leaves."""
    leaves = list(leaves)
    if len(leaves) != treedef.num_leaves:
        raise ValueError(f"tree_unflatten: structure {treedef} has {treedef.num_leaves} "
                         f"leaves, got {len(leaves)}")
    iterator = iter(leaves)
    return _build(treedef, iterator)


def _build(treedef: TreeDef, leaves) -> Any:
    if treedef.kind == LEAF:
        return next(leaves)
    if treedef.kind == NONE:
        return None
    children = [_build(c, leaves) for c in treedef.children]
    if treedef.kind == DICT:
        return dict(zip(treedef.meta, children))
    if treedef.kind == LIST:
        return children
    if treedef.kind == NAMEDTUPLE:
        return treedef.meta(*children)
    return tuple(children)


def tree_leaves(tree: Any) -> list:
    return tree_flatten(tree)[0]


def tree_structure(tree: Any) -> TreeDef:
    return tree_flatten(tree)[1]


def tree_paths(tree: Any, root: str = "") -> list[str]:
    """One path string per leaf, in leaf order, e.g. `args[0]['W'][1]` for root 'args'."""
    paths: list[str] = []
    _paths_into(tree, root, paths)
    return paths


def _paths_into(tree: Any, prefix: str, paths: list[str]) -> None:
    node = _children(tree)
    if node is None:
        paths.append(prefix)
        return
    kind, meta, children = node
    for i, child in enumerate(children):
        key = f"[{meta[i]!r}]" if kind == DICT else f"[{i}]"
        _paths_into(child, prefix + key, paths)


def tree_map(fn: Callable[..., Any], tree: Any, *rest: Any) -> Any:
    """Apply `fn` to every leaf of `tree` (and the matching parts of `rest`).

    Each tree in `rest` must have `tree`'s structure down to `tree`'s leaves; at a
    leaf of `tree` the whole matching subtree of each rest tree is passed (so a
    None in a gradient tree reaches `fn` as None). ValueError names the first
    place where the structures differ.
    """
    return _map(fn, tree, rest, "")


def _map(fn: Callable[..., Any], tree: Any, rest: tuple, path: str) -> Any:
    node = _children(tree)
    if node is None:
        return fn(tree, *rest)
    kind, meta, children = node
    rest_children = [_matching_children(kind, meta, len(children), other, path) for other in rest]
    mapped = []
    for i, child in enumerate(children):
        key = f"[{meta[i]!r}]" if kind == DICT else f"[{i}]"
        mapped.append(_map(fn, child, tuple(rc[i] for rc in rest_children), path + key))
    if kind == NONE:
        return None
    if kind == DICT:
        return dict(zip(meta, mapped))
    if kind == LIST:
        return mapped
    if kind == NAMEDTUPLE:
        return meta(*mapped)
    return tuple(mapped)


def _matching_children(kind: str, meta: Any, count: int, other: Any, path: str) -> list:
    node = _children(other)
    where = path or "the root"
    if node is None or node[0] != kind or (kind == DICT and node[1] != meta) or len(node[2]) != count:
        raise ValueError(f"tree_map: structures differ at {where}: expected a {kind} "
                         f"like {tree_structure_str(kind, meta, count)}, got {type(other).__name__}"
                         + (f" with keys {sorted_keys(other)}" if isinstance(other, dict) else ""))
    return node[2]


def tree_structure_str(kind: str, meta: Any, count: int) -> str:
    if kind == DICT:
        return "{" + ", ".join(repr(k) for k in meta) + "}"
    if kind == NONE:
        return "None"
    return f"{kind} of {count}"
