"""Which values get a buffer ("materialized") and which are computed inside the loops
that read them ("fused").

Rules, in one forward pass over the ops:
- graph inputs and outputs, kernel results (reductions, dot, pad, concatenate)
  and non-uniform constants (module globals) have buffers;
- an elementwise/view/iota value is fused into its readers, except when
  * readers that end up in different kernels read it and its fused computation
    does arithmetic (recomputing it per kernel would repeat work), or
  * a broadcast that enlarges it reads it and it does arithmetic (the work would
    be repeated per broadcast copy), or
  * a kernel with `view_operands` (dot) reads it through views: dot indexes its
    operands K or N times per element, so the operand's base gets a buffer.
- `refine` adds a value the kernel planner could not fuse (`NeedsMaterialize`).
"""
from __future__ import annotations

from ir.graph import Graph, Value

from ..registry import lowering_of


def plan_fusion(graph: Graph) -> set[Value]:
    """The set of values that get their own buffer."""
    materialized: set[Value] = set(graph.inputs) | set(graph.outputs)
    for op in graph.ops:
        lowering = lowering_of(op.prim)
        if lowering.kind == "kernel":
            materialized.add(op.result)
            if op.regions():          # a loop or branch reads and writes whole buffers
                materialized.update(op.results)
                materialized.update(op.operands)
            if lowering.view_operands:
                for operand in op.operands:
                    materialized.add(view_base(operand))
        elif lowering.needs_buffer is not None and lowering.needs_buffer(op):
            materialized.add(op.result)
    _materialize_repeated_work(graph, materialized)
    return materialized


def view_base(value: Value) -> Value:
    """Follow view ops down to the value they look at (maybe `value` itself)."""
    while value.producer is not None and lowering_of(value.producer.prim).kind == "view":
        value = value.producer.operands[0]
    return value


def _materialize_repeated_work(graph: Graph, materialized: set[Value]) -> None:
    """Give buffers to fused arithmetic that would otherwise be recomputed."""
    work = _broadcast_rule(graph, materialized)
    _shared_value_rule(graph, materialized, work)


def _broadcast_rule(graph: Graph, materialized: set[Value]) -> dict[Value, int]:
    """Forward pass: arithmetic ops fused into each value; an enlarging view of a
    value with arithmetic gets that value a buffer. Returns the work per value."""
    work: dict[Value, int] = {}
    for op in graph.ops:
        if op.result in materialized:
            work[op.result] = 0
            continue
        lowering = lowering_of(op.prim)
        own = 1 if lowering.kind == "elementwise" else 0
        total = own + sum(work.get(v, 0) for v in op.operands)
        if _enlarging_view(op, lowering.kind) and work.get(op.operands[0], 0) > 0:
            materialized.add(op.operands[0])
            total = 0
        work[op.result] = total
    return work


def _shared_value_rule(graph: Graph, materialized: set[Value], work: dict[Value, int]) -> None:
    """Backward pass: find the kernel each fused value ends up in; a value with
    arithmetic whose readers end up in different kernels gets a buffer. (Readers in
    one kernel share it: expression trees are memoised.)"""
    readers: dict[Value, list] = {}
    for op in graph.ops:
        for operand in op.operands:
            readers.setdefault(operand, []).append(op)
    kernel_of: dict[Value, Value] = {}
    for op in reversed(graph.ops):
        value = op.result
        if value in materialized:
            kernel_of[value] = value
            continue
        kernels = {kernel_of.get(reader.result, reader.result) for reader in readers.get(value, [])}
        if len(kernels) > 1 and work.get(value, 0) > 0:
            materialized.add(value)
            kernel_of[value] = value
        elif kernels:
            kernel_of[value] = kernels.pop()


def _enlarging_view(op, kind: str) -> bool:
    """A broadcast: a view with more elements than what it looks at."""
    return kind == "view" and op.result.type.size > op.operands[0].type.size
