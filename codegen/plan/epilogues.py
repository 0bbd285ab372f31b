"""Epilogue planning: which elementwise kernels run inside a product's kernel.

A product P (a kernel whose lowering has an `EpilogueRule`: dot; conv can plug in
with one rule) and an elementwise kernel E (the map writing a materialized
elementwise/view/source value) are fused when
- E reads P, with P's shape and dtype, only at the element E writes;
- no other kernel reads P, and P is not a graph output;
- P's rule accepts (for dot: it is one non-batched sgemm writing C row-major).
Then P's kernel runs at E's place, writes E's buffer, and runs E's expression on
each finished block while it is in cache (codegen/kernels/matmul_epilogue.py):
`tanh(x @ W + b)`, `(dz @ W.T) * (1 - h*h)` and `W - lr * (x.T @ dz)` each run in
one pass, and P's own buffer disappears. Moving P later, to E's place, is always
legal: only E reads P, and the buffer plan computes lifetimes from the kernel list.
"""
from __future__ import annotations

from ir.graph import Graph, Op, Value

from ..options import CompileOptions
from ..registry import lowering_of
from .affine import flat_offset, identity_access
from .expr_tree import ExprBuilder


def plan_epilogues(graph: Graph, live: list[Op], materialized: frozenset,
                   options: CompileOptions) -> dict[Value, Value]:
    """consumer value -> the product whose kernel computes it per block (the rules
    read the compile's kernel switches in `options`)."""
    readers: dict[Value, list[Op]] = {}
    for op in live:
        for operand in op.operands:
            readers.setdefault(operand, []).append(op)
    outputs = set(graph.outputs)
    chosen: dict[Value, Value] = {}
    for op in live:
        if not _consumer(op, materialized):
            continue
        for product in _read_in_place(op, materialized):
            rule = lowering_of(product.producer.prim).epilogue
            if (rule is not None and product not in outputs
                    and _reading_kernels(product, readers, materialized) == {op}
                    and rule.accepts(product.producer, materialized, options)):
                chosen[op.result] = product
                break
    return chosen


def _consumer(op: Op, materialized: frozenset) -> bool:
    """An op whose kernel is one map over its non-empty result (not a kernel
    primitive, not a module-global constant)."""
    lowering = lowering_of(op.prim)
    return (op.result in materialized and lowering.kind != "kernel"
            and lowering.needs_buffer is None and op.result.type.size > 0)


def _read_in_place(op: Op, materialized: frozenset) -> list[Value]:
    """Computed values of the consumer's type that its expression loads only at the
    element it writes (the candidates, in the order the expression loads them)."""
    value = op.result
    rank = value.ndim
    exprs = ExprBuilder(materialized, rank)
    access = identity_access(rank)
    exprs.compute(value, access)
    here = flat_offset(access, value.shape, rank)
    found: list[Value] = []
    for load in exprs.loads:
        candidate = load.value
        if (candidate in found or candidate.producer is None or candidate.type != value.type):
            continue
        if all(other.offset == here for other in exprs.loads if other.value is candidate):
            found.append(candidate)
    return found


def _reading_kernels(value: Value, readers: dict, materialized: frozenset) -> set[Op]:
    """The ops whose kernels load `value`: its readers with buffers, and through
    fused readers, the kernels those end up in."""
    found: set[Op] = set()
    stack, seen = [value], {value}
    while stack:
        current = stack.pop()
        for reader in readers.get(current, ()):
            if reader.result in materialized:
                found.add(reader)
            elif reader.result not in seen:
                seen.add(reader.result)
                stack.append(reader.result)
    return found


__all__ = ["plan_epilogues"]
