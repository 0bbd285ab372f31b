"""Direct loop kernels for the windowed and indexed primitives (conv,
reduce_window_sum/max, gather, scatter_add): plain loop nests over materialized
operand buffers, index arithmetic emitted as i64 instructions.

These are the straightforward lowerings every such primitive has (the fast paths
build on them). Operands are read from buffers: the fusion plan gives them one
(their Lowering's `buffered_operands` query, codegen/plan/fusion.py). Positions outside an operand (padding, dilation holes) are
read from a clamped, in-bounds address and replaced by the identity with a select,
so the loops have no branches and no access leaves its buffer.
"""
from __future__ import annotations

from typing import Callable, Sequence

import llvmlite.ir as lir

from ir.graph import Op, Value
from ir.types import DType

from ..errors import CodegenError
from .llvmtypes import I1, I64, index, load_element, scalar_constant, store_element
from .loops import loop_nest
from .steps import KernelEnv, KernelPlan, Step

# body(builder, pointers) emits the whole loop nest of a step
Body = Callable[[lir.IRBuilder, dict], None]


class DirectStep(Step):
    """A step whose loops are written by hand: it reads `operands`' buffers."""

    def __init__(self, operands: Sequence[Value], body: Body):
        self.operands = list(operands)
        self.body = body

    def reads(self) -> set[Value]:
        return set(self.operands)

    def emit(self, env: KernelEnv) -> None:
        self.body(env.builder, env.pointers)


def buffered_operands(op: Op, materialized: set[Value]) -> None:
    """Check that the fusion plan gave every operand a buffer (its Lowering's
    `buffered_operands` query says so); CodegenError when it did not."""
    for operand in op.operands:
        if operand not in materialized and operand.producer is not None:
            raise CodegenError(f"{op.prim}: the fusion plan left an operand without the "
                               "buffer this kernel reads")


def flat(b: lir.IRBuilder, indices: Sequence[lir.Value], shape: Sequence[int]) -> lir.Value:
    """Row-major element offset of `indices` (i64 values) in an array of `shape`."""
    offset = index(0)
    for position, size in zip(indices, shape):
        offset = b.add(b.mul(offset, index(size)), position)
    return offset


def digits(b: lir.IRBuilder, value: lir.Value, shape: Sequence[int]) -> list[lir.Value]:
    """Row-major multi-index of flat offset `value` (an i64) in `shape` (flat's inverse)."""
    found = []
    for size in reversed(shape):
        found.append(b.urem(value, index(size)))
        value = b.udiv(value, index(size))
    return list(reversed(found))


def all_of(b: lir.IRBuilder, conditions: Sequence[lir.Value]) -> lir.Value:
    result = lir.Constant(I1, 1)
    for condition in conditions:
        result = b.and_(result, condition)
    return result


def window_position(b: lir.IRBuilder, out: lir.Value, tap: lir.Value, stride: int,
                    tap_scale: int, low: int, lhs_dilation: int, size: int
                    ) -> tuple[lir.Value, lir.Value]:
    """(in-range flag, clamped operand index) read by output `out` at window `tap`:
    position out * stride + tap * tap_scale - low of the operand dilated by
    lhs_dilation (ir/ops_window.py's geometry)."""
    position = b.sub(b.add(b.mul(out, index(stride)), b.mul(tap, index(tap_scale))), index(low))
    inside = b.icmp_signed(">=", position, index(0))
    if lhs_dilation > 1:
        inside = b.and_(inside, b.icmp_signed("==", b.srem(position, index(lhs_dilation)),
                                              index(0)))
        position = b.sdiv(position, index(lhs_dilation))
    inside = b.and_(inside, b.icmp_signed("<", position, index(size)))
    return inside, b.select(inside, position, index(0))


def fill_body(dest: Value, value) -> Body:
    """Store `value` into every element of dest."""
    count = dest.type.size
    constant = scalar_constant(value, dest.dtype)

    def body(b: lir.IRBuilder, pointers: dict) -> None:
        if count:
            loop_nest(b, [count], lambda c, _: store_element(
                b, pointers[dest], c[0], dest.dtype, constant) or [])
    return body


def copy_body(source: Value, dest: Value) -> Body:
    """dest = source element by element (same shape and dtype)."""
    count = dest.type.size

    def body(b: lir.IRBuilder, pointers: dict) -> None:
        if count:
            loop_nest(b, [count], lambda c, _: store_element(
                b, pointers[dest], c[0], dest.dtype,
                load_element(b, pointers[source], c[0], dest.dtype)) or [])
    return body


def add_values(b: lir.IRBuilder, x: lir.Value, y: lir.Value, dtype: DType) -> lir.Value:
    return b.fadd(x, y) if dtype.is_float else b.add(x, y)


def reads_buffers(op: Op) -> bool:
    """The `buffered_operands` planning query of a kernel that always reads its
    operands from buffers (codegen/registry.py)."""
    return True


def plan(op: Op, materialized: set[Value], bodies: Sequence[Body]) -> KernelPlan:
    """The kernel of `op`: its bodies in order, reading the op's operands."""
    buffered_operands(op, materialized)
    return KernelPlan(op.result, [DirectStep(op.operands, body) for body in bodies])


__all__ = ["DirectStep", "I64", "add_values", "all_of", "buffered_operands", "copy_body",
           "fill_body", "flat", "plan", "reads_buffers", "window_position"]
