"""Dead code elimination: drop every op whose result no graph output depends on.

Graph inputs are kept even when unused, since they are the graph's signature. No
primitive has side effects, so liveness is plain reachability from the outputs
(the same idea as `dce_jaxpr` in JAX, written here from scratch).
"""
from __future__ import annotations

from ..graph import Graph, Op, Value
from .rebuild import copy_ops


def live_ops(graph: Graph) -> set[Op]:
    """The ops that some graph output transitively reads."""
    live: set[Op] = set()
    pending: list[Value] = list(graph.outputs)
    while pending:
        producer = pending.pop().producer
        if producer is None or producer in live:
            continue
        live.add(producer)
        pending.extend(producer.operands)
    return live


def dce(graph: Graph) -> Graph:
    """A graph without dead ops (`graph` itself when it has none); inputs, outputs
    and op order are kept."""
    live = live_ops(graph)
    if len(live) == len(graph.ops):
        return graph
    return copy_ops(graph, lambda op: op in live)
