"""Direct loop lowerings of `gather` and `scatter_add` (codegen/emit/direct.py).

An index is loaded, widened to i64 and clamped to the axis (out-of-range indices
clamp in every build, like the interpreter). In debug mode the access is also
checked: an out-of-range index makes the checked offset -1, so the call stops with
BoundsCheckError naming the op (codegen/emit/bounds.py).
"""
from __future__ import annotations

import llvmlite.ir as lir

from ir.graph import Op, Value
from ir.types import DType

from ..emit.bounds import check_access
from ..emit.direct import add_values, copy_body, flat, plan
from ..emit.llvmtypes import I64, index, load_element, store_element
from ..emit.loops import loop_nest
from ..emit.steps import KernelPlan


def _position(b: lir.IRBuilder, pointers: dict, indices: Value, counters: list, axis: int,
              operand: Value) -> lir.Value:
    """Flat offset into operand of the element the index at `counters` names."""
    raw = load_element(b, pointers[indices], flat(b, counters, indices.shape), indices.dtype)
    if indices.dtype is DType.i32:
        raw = b.sext(raw, I64)
    last = index(operand.shape[axis] - 1)
    below = b.icmp_signed("<", raw, index(0))
    above = b.icmp_signed(">", raw, last)
    clamped = b.select(below, index(0), b.select(above, last, raw))
    position = list(counters)
    position[axis] = clamped
    offset = flat(b, position, operand.shape)
    in_range = b.not_(b.or_(below, above))
    check_access(b, pointers[operand], b.select(in_range, offset, index(-1)), "load")
    return offset


def lower_gather(op: Op, materialized: set[Value]) -> KernelPlan:
    operand, indices = op.operands
    out = op.result
    axis = op.attrs["axis"]

    def body(b: lir.IRBuilder, pointers: dict) -> None:
        def point(counters, _):
            at = _position(b, pointers, indices, counters, axis, operand)
            value = load_element(b, pointers[operand], at, out.dtype)
            store_element(b, pointers[out], flat(b, counters, out.shape), out.dtype, value)
            return []
        if out.type.size:
            loop_nest(b, out.shape, point)
    return plan(op, materialized, [body])


def lower_scatter_add(op: Op, materialized: set[Value]) -> KernelPlan:
    """Copy the operand, then add each update at its clamped position in order
    (duplicates accumulate)."""
    operand, indices, updates = op.operands
    out = op.result
    axis = op.attrs["axis"]

    def body(b: lir.IRBuilder, pointers: dict) -> None:
        def point(counters, _):
            at = _position(b, pointers, indices, counters, axis, operand)
            update = load_element(b, pointers[updates], flat(b, counters, updates.shape),
                                  out.dtype)
            total = add_values(b, load_element(b, pointers[out], at, out.dtype), update,
                               out.dtype)
            store_element(b, pointers[out], at, out.dtype, total)
            return []
        if updates.type.size:
            loop_nest(b, updates.shape, point)
    return plan(op, materialized, [copy_body(operand, out), body])
