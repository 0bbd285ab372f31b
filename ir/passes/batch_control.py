"""Batching rules of `scan` and `cond` (ir/control_flow.py): the region itself is
batched, so a batch of loops stays one loop (and the graph does not grow with the
batch size).

- scan: every operand gets the batch axis (unbatched ones are materialized), the xs
  are transposed so the scanned axis stays first (T, batch, ...), the body is batched
  with all its inputs batched, and the stacked ys are transposed back.
- cond with an unbatched predicate: one cond whose branches are batched. With a
  batched predicate, each example takes its own branch: both batched branches run
  and a select per example picks (what the interpreter of a loop would give).
while_loop keeps the per-example fallback (ir/passes/batch_rules.py): its examples
may stop after different trip counts.
"""
from __future__ import annotations

from ..builder import Builder
from ..control_flow import scan_parts
from ..graph import Graph, Value
from .batch_rules import all_batched, register
from .batching import batch_graph


def _batched_region(region: Graph, size: int) -> Graph:
    """`region` with every input and output carrying a leading batch axis."""
    inner = batch_graph(region, [True] * len(region.inputs), size)
    if all(inner.out_batched):
        return inner.graph
    b = Builder(region.name)
    inputs = [b.input(v.type) for v in inner.graph.inputs]
    outputs = b.inline(inner.graph, inputs)
    b.output(*[v if flag else b.broadcast_in_dim(v, shape=(size,) + v.shape,
                                                  dims=tuple(range(1, v.ndim + 1)))
               for v, flag in zip(outputs, inner.out_batched)])
    return b.build()


def _swap_leading(b: Builder, value: Value) -> Value:
    """(a, b, ...) -> (b, a, ...)."""
    return b.transpose(value, perm=(1, 0) + tuple(range(2, value.ndim)))


@register("scan")
def _scan(b, op, operands, batched, size):
    consts, carry, xs = scan_parts(op.attrs, all_batched(b, operands, batched, size))
    body = _batched_region(op.attrs["body"], size)
    results = b.emit("scan", *consts, *carry, *[_swap_leading(b, x) for x in xs],
                     **{**op.attrs, "body": body})
    count = op.attrs["num_carry"]
    return tuple(results[:count]) + tuple(_swap_leading(b, y) for y in results[count:])


@register("cond")
def _cond(b, op, operands, batched, size):
    rest = all_batched(b, operands[1:], batched[1:], size)
    branches = {name: _batched_region(op.attrs[name], size)
                for name in ("true_branch", "false_branch")}
    if not batched[0]:
        return tuple(b.emit("cond", operands[0], *rest, **branches))
    taken = b.inline(branches["true_branch"], rest)
    other = b.inline(branches["false_branch"], rest)
    picked = []
    for first, second in zip(taken, other):
        pred = b.broadcast_in_dim(operands[0], shape=first.shape, dims=(0,))
        picked.append(b.select(pred, first, second))
    return tuple(picked)
