"""Common subexpression elimination: ops with the same primitive, the same operands
and the same attributes compute the same value, so only the first is kept.

Every primitive is a pure function of its operands and attributes, so this is safe
for all of them, constants included (two `constant` ops with identical arrays merge:
`attrs_key` compares arrays by dtype, shape and bytes, so 0.0 and -0.0 stay apart).
Source locations do not take part in the key; the first op's location survives.
"""
from __future__ import annotations

from ..builder import Builder
from ..graph import Graph, Op, Value, attrs_key
from .rebuild import copy_op, rebuild


def cse(graph: Graph) -> Graph:
    """A new graph in which each distinct (prim, operands, attrs) is computed once."""
    seen: dict[tuple, Value] = {}

    def merge(builder: Builder, op: Op, operands: list[Value]) -> Value:
        key = (op.prim, tuple(operands), attrs_key(op.attrs))
        found = seen.get(key)
        if found is None:
            found = copy_op(builder, op, operands)
            seen[key] = found
        return found

    return rebuild(graph, merge)
