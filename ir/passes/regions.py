"""Passes inside regions: a control-flow op's nested graphs are simplified on their
own, each a complete graph with a fixed signature (same inputs, same outputs), so
nothing moves across a loop or branch boundary: loop-invariant work stays in the
body, and no value of the enclosing graph is ever read inside one.
"""
from __future__ import annotations

from typing import Callable

from ..builder import Builder
from ..graph import Graph, Op, Value
from .rebuild import rebuild


def simplify_regions(graph: Graph, simplify: Callable[[Graph], Graph]) -> Graph:
    """`graph` with `simplify` applied to every region of every control-flow op (the
    enclosing graph itself is copied unchanged); the graph itself when it has none."""
    if not any(op.regions() for op in graph.ops):
        return graph

    def rewrite(builder: Builder, op: Op, operands: list[Value]):
        if not op.regions():
            return None
        attrs = dict(op.attrs)
        for name, region in op.regions():
            attrs[name] = simplify(region)
        if all(attrs[name] is region for name, region in op.regions()):
            return None   # no region changed: the op is kept as it is
        return builder.emit(op.prim, *operands, loc=op.loc, **attrs)

    return rebuild(graph, rewrite)
