"""Pytree structures as JSON, for an export's manifest (propc/aot_export.py writes
it, propc/exported.py reads it back in a process that may never import the rest
of propc).

    {"kind": "leaf"}   {"kind": "none"}
    {"kind": "tuple" | "list", "children": [...]}
    {"kind": "dict", "keys": [...], "children": [...]}         keys: str or int
    {"kind": "namedtuple", "type": "Params", "fields": [...], "children": [...]}

A namedtuple comes back as a namedtuple class of the same name and fields, made
afresh (the user's class may not be importable where the library is loaded).
"""
from __future__ import annotations

import collections
import functools
from typing import Any

from .pytree import DICT, LEAF, LEAF_DEF, LIST, NAMEDTUPLE, NONE, NONE_DEF, TUPLE, TreeDef


def tree_to_json(tree: TreeDef) -> dict:
    """The JSON form of a TreeDef; TypeError for dict keys JSON cannot keep."""
    if tree.kind in (LEAF, NONE):
        return {"kind": tree.kind}
    found: dict[str, Any] = {"kind": tree.kind,
                             "children": [tree_to_json(child) for child in tree.children]}
    if tree.kind == DICT:
        for key in tree.meta:
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise TypeError(f"an exported pytree's dict keys must be str or int, got "
                                f"{key!r} ({type(key).__name__})")
        found["keys"] = list(tree.meta)
    elif tree.kind == NAMEDTUPLE:
        found["type"] = tree.meta.__name__
        found["fields"] = list(tree.meta._fields)
    return found


def tree_from_json(data: dict) -> TreeDef:
    """The TreeDef of a JSON form written by `tree_to_json`; ValueError if malformed."""
    try:
        kind = data["kind"]
        if kind == LEAF:
            return LEAF_DEF
        if kind == NONE:
            return NONE_DEF
        children = tuple(tree_from_json(child) for child in data["children"])
        if kind in (TUPLE, LIST):
            return TreeDef(kind, None, children)
        if kind == DICT:
            return TreeDef(kind, tuple(data["keys"]), children)
        if kind == NAMEDTUPLE:
            return TreeDef(kind, _record(data["type"], tuple(data["fields"])), children)
    except (KeyError, TypeError) as err:
        raise ValueError(f"malformed pytree in an export manifest: {err!r}") from None
    raise ValueError(f"malformed pytree in an export manifest: unknown kind {kind!r}")


@functools.lru_cache(maxsize=None)
def _record(name: str, fields: tuple[str, ...]) -> type:
    """One namedtuple class per (name, fields), so equal manifests give equal TreeDefs."""
    return collections.namedtuple(name, fields)


__all__ = ["tree_from_json", "tree_to_json"]
