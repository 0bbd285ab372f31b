"""Copying a graph op by op through a Builder, letting a rewrite replace each op.

Every simplification pass is a function from a graph to a new graph; none mutates its
input. They share this one walk: inputs are recreated, each op's operands are mapped
to their new values, and a `rewrite(builder, op, operands)` hook either returns the
value that stands for the op's result (possibly emitting new ops first) or None to
copy the op unchanged. Ops emitted inside the hook carry the old op's source location.
"""
from __future__ import annotations

from typing import Callable

from ..builder import Builder
from ..errors import IRError
from ..graph import Graph, Op, Value, as_results, bind_results

Rewrite = Callable[[Builder, Op, list[Value]], "Value | None"]


def copy_op(builder: Builder, op: Op, operands: list[Value]) -> "Value | tuple[Value, ...]":
    """Emit `op` unchanged on new operands, keeping its attributes and location.

    Returns the new result, or the tuple of new results for a control-flow op."""
    return builder.copy(op, operands)


def _mapped(graph: Graph, mapping: dict[Value, Value], value: Value, user: str) -> Value:
    found = mapping.get(value)
    if found is None:
        raise IRError(f"graph @{graph.name}: {user} uses a value that is never defined")
    return found


def finish(graph: Graph, builder: Builder, mapping: dict[Value, Value]) -> Graph:
    """Add the outputs and copy the graph's residual bookkeeping."""
    builder.output(*[_mapped(graph, mapping, v, "an output") for v in graph.outputs])
    result = builder.build()
    result.residual_inputs = graph.residual_inputs
    result.residual_outputs = graph.residual_outputs
    return result


def start(graph: Graph) -> tuple[Builder, dict[Value, Value]]:
    """A builder holding fresh copies of `graph`'s inputs, and the old->new map."""
    builder = Builder(graph.name)
    mapping = {v: builder.input(v.type) for v in graph.inputs}
    return builder, mapping


def rebuild(graph: Graph, rewrite: Rewrite) -> Graph:
    """A new graph where each op of `graph` is replaced by what `rewrite` returns, or
    `graph` itself when `rewrite` replaces nothing.

    The replacement must have the op's exact result type; a rule that breaks this is
    a bug in the pass, reported as an IRError naming the op. `rewrite` must depend
    only on the op and its operands: until it first replaces something, each op is
    offered with its own operands on a scratch builder and nothing is copied, so a
    pass that changes nothing (the last round of `simplify`'s fixpoint) costs no copy
    of the graph.
    """
    scratch = Builder(graph.name)
    for index, op in enumerate(graph.ops):
        with scratch.at(op.loc):
            new = rewrite(scratch, op, list(op.operands))
        if new is not None or scratch.graph.ops:
            break
    else:
        return graph
    builder, mapping = start(graph)
    for kept in graph.ops[:index]:
        bind_results(mapping, kept, copy_op(builder, kept, _operands(graph, mapping, kept)))
    for made in scratch.graph.ops:   # the first replacement, made on the original values
        bind_results(mapping, made, copy_op(builder, made, _operands(graph, mapping, made)))
    _replace(builder, mapping, op, new if new is None else tuple(
        mapping.get(value, value) for value in as_results(new)))
    for op in graph.ops[index + 1:]:
        operands = _operands(graph, mapping, op)
        with builder.at(op.loc):
            new = rewrite(builder, op, operands)
        _replace(builder, mapping, op, new, operands)
    return finish(graph, builder, mapping)


def _operands(graph: Graph, mapping: dict[Value, Value], op: Op) -> list[Value]:
    return [_mapped(graph, mapping, v, op.prim) for v in op.operands]


def _replace(builder: Builder, mapping: dict[Value, Value], op: Op,
             new: "Value | tuple[Value, ...] | None", operands: list[Value] | None = None
             ) -> None:
    """Map `op`'s results to `new` (None: a copy of `op` on `operands`, by default
    its mapped own ones), checking that the types are the op's."""
    if new is None:
        new = copy_op(builder, op, operands if operands is not None else
                      [mapping[v] for v in op.operands])
    new_types = tuple(v.type for v in as_results(new))
    if new_types != op.result_types:
        raise IRError(f"internal: rewriting {op.prim} at {op.loc} changed its type "
                      f"from {op.result_types} to {new_types}")
    bind_results(mapping, op, new)


def copy_ops(graph: Graph, keep: Callable[[Op], bool],
             same: dict[Value, Value] | None = None) -> Graph:
    """A new graph with only the ops for which `keep(op)` is true (in order); an op
    whose results are keys of `same` is dropped too, each of its results standing
    for the (earlier) value it maps to."""
    same = same or {}
    builder, mapping = start(graph)
    for op in graph.ops:
        if op.results[0] in same:
            for result in op.results:
                mapping[result] = mapping[same[result]]
        elif keep(op):
            bind_results(mapping, op, copy_op(builder, op, _operands(graph, mapping, op)))
    return finish(graph, builder, mapping)
