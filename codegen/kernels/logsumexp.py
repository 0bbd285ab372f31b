"""Lowering of `logsumexp`: one kernel, two register passes per output element.

For each output element the loops over its reduced elements run twice, reading the
operand (or recomputing its fused expression) while the values are in cache:
1. m = max(x) (llvm.maximum: NaN propagates);
2. s = sum(exp(x - shift)) with shift = m, or 0 where m is infinite;
then one store of shift + log(s). That is the stable form: no exp overflows, an
all -inf (or empty) row gives log(0) = -inf, a row holding +inf gives +inf, NaN
stays NaN, the same cases as the interpreter's NumPy implementation. The reduced
axes are iterated innermost whatever the layout (a reduction over a leading axis
reads with a stride).
"""
from __future__ import annotations

import math

import llvmlite.ir as lir

from ir.graph import Op, Value
from ir.types import DType

from ..plan.affine import Affine, flat_offset
from ..emit.elementwise import intrinsic
from ..emit.expr import Emitter, ExprBuilder
from ..emit.kernels import fill_step
from ..emit.llvmtypes import index, scalar_constant, store_element
from ..emit.loops import loop_nest
from .mathlib import emit_exp, emit_log
from ..emit.steps import KernelPlan, ReduceStep, element_count, node_cost

# Step.work units per reduced element: two reads, max, sub, exp (~10), add
_WORK_PER_ELEMENT = 15


class LogSumExpStep(ReduceStep):
    """A register reduction whose `_reduce_at` makes the two passes above."""

    def __init__(self, sizes: list[int], outer: int, exprs: ExprBuilder, node, dest: Value,
                 dest_offset: Affine, dtype: DType):
        super().__init__(sizes, outer, exprs, [node], None, scalar_constant(-math.inf, dtype),
                         dest, dest_offset, dtype, in_register=True)

    def work(self) -> int:
        return element_count(self.plan.sizes) * (2 * node_cost(self.nodes) + _WORK_PER_ELEMENT)

    def _reduce_at(self, b: lir.IRBuilder, pointers: dict, outer_counters: list,
                   mathlib: bool) -> None:
        inner_sizes = self.plan.sizes[self.outer:]
        kind = scalar_constant(0.0, self.dtype).type

        def element(inner_counters):
            point = Emitter(b, pointers, self.plan, outer_counters + inner_counters, mathlib)
            return point.emit(self.nodes[0])

        (top,) = loop_nest(b, inner_sizes, lambda counters, acc: [
            intrinsic(b, "llvm.maximum", [acc[0], element(counters)])], [self.init])
        infinite = b.fcmp_ordered("==", intrinsic(b, "llvm.fabs", [top]),
                                  lir.Constant(kind, math.inf))
        shift = b.select(infinite, lir.Constant(kind, 0.0), top)
        (total,) = loop_nest(b, inner_sizes, lambda counters, acc: [
            b.fadd(acc[0], emit_exp(b, b.fsub(element(counters), shift)), flags=("reassoc",))],
            [lir.Constant(kind, 0.0)])
        result = b.fadd(shift, emit_log(b, total))
        point = Emitter(b, pointers, self.plan, outer_counters + [index(0)] * len(inner_sizes),
                        mathlib)
        store_element(b, pointers[self.dest], point.offset(self.dest_offset), self.dtype, result)


def lower_logsumexp(op: Op, materialized: set[Value]) -> KernelPlan:
    """The kernel of one logsumexp op (see the module docstring)."""
    (operand,) = op.operands
    axes = op.attrs["axes"]
    dtype = op.result.dtype
    shape = operand.shape
    kept = [a for a in range(len(shape)) if a not in axes]
    if any(shape[a] == 0 for a in axes):  # log of an empty sum
        return KernelPlan(op.result, [fill_step(op.result.shape, dtype, -math.inf, op.result)])
    order = kept + sorted(axes)
    rank = len(order)
    exprs = ExprBuilder(materialized, rank)
    access = tuple(Affine.counter(order.index(a), rank) for a in range(len(shape)))
    node = exprs.read(operand, access)
    dest_offset = flat_offset(tuple(access[a] for a in kept), op.result.shape, rank)
    step = LogSumExpStep([shape[a] for a in order], len(kept), exprs, node, op.result,
                         dest_offset, dtype)
    return KernelPlan(op.result, [step])


__all__ = ["LogSumExpStep", "lower_logsumexp"]
