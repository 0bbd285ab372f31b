"""Batching as an IR -> IR pass: `batch_graph(graph, batched, size)`.

The result computes `graph` for `size` examples at once. Each input listed as
batched gets a leading batch axis of length `size`; the others are shared by every
example. Ops are copied in order; an op with no batched operand is copied unchanged
(it is the same for every example, so computed once), and an op with a batched
operand is rewritten by its rule in `BATCH_RULES` (ir/passes/batch_rules.py),
whose result carries the batch axis at position 0. The graph's size does not
depend on `size`: every rule emits a fixed number of ops.

Custom-VJP regions (`Graph.custom_vjps`) are carried over with their backward
graph batched the same way; a cotangent is summed over the batch where its input
is shared by every example.

Outputs keep their batched-ness: `BatchedGraph.out_batched[i]` says whether output
i carries the batch axis (an output that depends on no batched input does not);
the caller broadcasts or moves axes as its API needs. (Same idea as JAX's
`batch_jaxpr` with the batch dimension always leading, written from scratch.)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..builder import Builder
from ..errors import IRError
from ..graph import CustomVJP, Graph, Value, as_results, bind_results
from ..types import TensorType
from ..verify import verify
from .batch_rules import BATCH_RULES, materialize
from .rebuild import copy_op


class BatchingError(IRError, ValueError):
    """A graph cannot be batched as asked (bad flags, missing rule)."""


@dataclass(frozen=True)
class BatchedGraph:
    """The batched graph, whether each output has the batch axis, and the map from
    the original graph's values to the batched graph's (with their batched-ness)."""

    graph: Graph
    out_batched: tuple[bool, ...]
    mapping: dict[Value, Value]
    batched_values: frozenset[Value]


def batched_type(type: TensorType, size: int) -> TensorType:
    """The type of a per-example value of `type` with a leading batch axis."""
    return type.with_shape((size,) + type.shape)


def batch_graph(graph: Graph, batched: Sequence[bool], size: int) -> BatchedGraph:
    """`graph` run on a batch of `size` examples (see the module docstring)."""
    if len(batched) != len(graph.inputs):
        raise BatchingError(f"batch_graph @{graph.name}: {len(batched)} batched flags for "
                            f"{len(graph.inputs)} inputs")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise BatchingError(f"batch_graph @{graph.name}: batch size must be an int >= 0, "
                            f"got {size!r}")
    b = Builder(graph.name)
    mapping: dict[Value, Value] = {}
    is_batched: set[Value] = set()
    for value, flag in zip(graph.inputs, batched):
        mapping[value] = b.input(batched_type(value.type, size) if flag else value.type)
        if flag:
            is_batched.add(value)
    for op in graph.ops:
        operands = [mapping[v] for v in op.operands]
        flags = [v in is_batched for v in op.operands]
        if not any(flags):
            bind_results(mapping, op, copy_op(b, op, operands))
            continue
        rule = BATCH_RULES.get(op.prim)
        if rule is None:
            raise BatchingError(f"no batching rule for primitive {op.prim!r} (at {op.loc})")
        with b.at(op.loc):
            result = rule(b, op, operands, flags, size)
        for old, new in zip(op.results, as_results(result)):   # several: control flow
            expected = batched_type(old.type, size)
            if new.type != expected:
                raise IRError(f"internal: batching rule of {op.prim} gave {new.type}, "
                              f"expected {expected}")
            mapping[old] = new
            is_batched.add(old)
    b.output(*[mapping[v] for v in graph.outputs])
    result_graph = b.build()
    result_graph.custom_vjps.extend(_batch_region(region, mapping, is_batched, size)
                                    for region in graph.custom_vjps)
    verify(result_graph)
    return BatchedGraph(result_graph, tuple(v in is_batched for v in graph.outputs), mapping,
                        frozenset(is_batched))


def _batch_region(region: CustomVJP, mapping: dict[Value, Value], is_batched: set[Value],
                  size: int) -> CustomVJP:
    """A custom-VJP region of the batched graph: its backward batched like its
    residuals and outputs, each cotangent batched exactly when its input is."""
    flags = [v in is_batched for v in region.residuals + region.outputs]
    inner = batch_graph(region.backward, flags, size)
    b = Builder(region.backward.name)
    inputs = [b.input(v.type) for v in inner.graph.inputs]
    results = b.inline(inner.graph, inputs)
    cotangents = []
    for value, ct, ct_batched in zip(region.inputs, results, inner.out_batched):
        wanted = value in is_batched
        if ct_batched and not wanted:
            ct = b.reduce_sum(ct, axes=(0,))
        elif wanted and not ct_batched:
            ct = materialize(b, ct, size)
        cotangents.append(ct)
    b.output(*cotangents)
    moved = region.remap(mapping)
    return CustomVJP(moved.name, moved.inputs, moved.closed, moved.outputs, moved.residuals,
                     b.build(), moved.loc)
