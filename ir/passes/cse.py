"""Common subexpression elimination: ops with the same primitive, the same operands
and the same attributes compute the same value, so only the first is kept.

Every primitive is a pure function of its operands and attributes, so this is safe
for all of them, constants included (two `constant` ops with identical arrays merge:
`attrs_key` compares arrays by dtype, shape and bytes, so 0.0 and -0.0 stay apart).
Source locations do not take part in the key; the first op's location survives.
"""
from __future__ import annotations

from ..graph import Graph, Op, Value, attrs_key
from .rebuild import copy_ops


def cse(graph: Graph) -> Graph:
    """A graph in which each distinct (prim, operands, attrs) is computed once:
    `graph` itself when no two ops compute the same (no copy is made)."""
    first: dict[tuple, Op] = {}
    same: dict[Value, Value] = {}   # a duplicate's result -> the first op's
    for op in graph.ops:
        operands = tuple(same.get(v, v) for v in op.operands)
        found = first.setdefault((op.prim, operands, attrs_key(op.attrs)), op)
        if found is not op:
            same.update(zip(op.results, found.results))
    if not same:
        return graph
    return copy_ops(graph, lambda op: True, same)
