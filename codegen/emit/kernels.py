"""Kernel plans for the ops that write a buffer: fused elementwise results, copies,
reductions, pad and concatenate (dot lives in codegen/kernels/dot.py).

Each `lower_*` function takes the op and the fusion plan (anything answering
`value in plan`: whether a value has a buffer; codegen/plan/fusion.py) and returns a
`KernelPlan`; operands that are fused get computed inside the kernel's loops.
"""
from __future__ import annotations

import llvmlite.ir as lir

from ir.graph import Op, Value
from ir.types import DType

from ..plan.affine import Affine, flat_offset, identity_access
from .elementwise import emit_max, emit_min, intrinsic
from .expr import Const, ExprBuilder
from .llvmtypes import highest, lowest, scalar_constant
from .steps import KernelPlan, MapStep, ReduceStep


def fill_step(shape, dtype: DType, value, dest) -> MapStep:
    """A step storing the constant `value` into every element of dest."""
    rank = len(shape)
    exprs = ExprBuilder(set(), rank)
    offset = flat_offset(identity_access(rank), shape, rank)
    return MapStep(shape, exprs, Const(dtype, value), dest, offset, dtype)


def lower_map(op: Op, materialized: set[Value]) -> KernelPlan:
    """The kernel of a fused elementwise/view/source result: one loop over its shape."""
    shape = op.result.shape
    rank = len(shape)
    exprs = ExprBuilder(materialized, rank)
    access = identity_access(rank)
    node = exprs.compute(op.result, access)
    offset = flat_offset(access, shape, rank)
    return KernelPlan(op.result, [MapStep(shape, exprs, node, op.result, offset, op.result.dtype)])


def lower_copy(source: Value, dest, materialized: set[Value]) -> KernelPlan:
    """Copy materialized `source` into another buffer (an extra output slot)."""
    shape = source.shape
    rank = len(shape)
    exprs = ExprBuilder(materialized | {source}, rank)
    access = identity_access(rank)
    node = exprs.read(source, access)
    offset = flat_offset(access, shape, rank)
    return KernelPlan(dest, [MapStep(shape, exprs, node, dest, offset, source.dtype)])


# --------------------------------------------------------------------------------------
# reductions


def _sum(dtype: DType, reassoc: bool):
    """acc + x; float adds in a register reduction may be reassociated (vectorised)."""
    flags = ("reassoc",) if reassoc else ()

    def combine(b: lir.IRBuilder, acc, values):
        if dtype.is_float:
            return b.fadd(acc, values[0], flags=flags)
        return b.add(acc, values[0])
    return combine


def _extremum(kind: str, dtype: DType):
    """max/min combine. Float reductions use llvm.maximum/minimum, which propagate
    NaN like np.max and vectorise, and order -0.0 < +0.0, so which zero a tie gives
    does not depend on the order elements are visited in (NumPy's np.max answer
    does; the interpreter's reduce_max/min follows the same IEEE rule)."""
    if dtype.is_float:
        name = "llvm.maximum" if kind == "max" else "llvm.minimum"
        return lambda b, acc, values: intrinsic(b, name, [acc, values[0]])
    pick = emit_max if kind == "max" else emit_min
    return lambda b, acc, values: pick(b, acc, values[0], dtype)


def lower_reduce(op: Op, materialized: set[Value], kind: str) -> KernelPlan:
    """reduce_sum/max/min over `axes`.

    When the operand's last axis is reduced the inner loops reduce contiguous data
    into a register; otherwise the loops follow the operand's layout and accumulate
    into the (pre-filled) output, so the innermost loop stays contiguous.
    """
    operand = op.operands[0]
    axes = op.attrs["axes"]
    dtype = op.result.dtype
    shape = operand.shape
    kept = [a for a in range(len(shape)) if a not in axes]
    identity = {"sum": 0, "max": lowest(dtype), "min": highest(dtype)}[kind]
    reduced_size = 1
    for a in axes:
        reduced_size *= shape[a]
    if reduced_size == 0:
        return KernelPlan(op.result, [fill_step(op.result.shape, dtype, identity, op.result)])
    in_register = _last_real_axis(shape) in axes
    order = kept + sorted(axes) if in_register else _size_one_first(shape)
    rank = len(order)
    exprs = ExprBuilder(materialized, rank)
    access = tuple(Affine.counter(order.index(a), rank) for a in range(len(shape)))
    node = exprs.read(operand, access)
    dest_access = tuple(access[a] for a in kept)
    dest_offset = flat_offset(dest_access, op.result.shape, rank)
    combine = (_sum(dtype, in_register) if kind == "sum" else
               _extremum(kind, dtype))
    sizes = [shape[a] for a in order]
    step = ReduceStep(sizes, len(kept), exprs, [node], combine,
                      scalar_constant(identity, dtype), op.result, dest_offset, dtype,
                      in_register)
    steps = [] if in_register else [fill_step(op.result.shape, dtype, identity, op.result)]
    return KernelPlan(op.result, steps + [step])


def _last_real_axis(shape) -> int:
    """The last axis longer than 1 (the last axis when none is). Size-1 axes move no
    data, so whether a reduction runs in a register is decided by this axis: a
    max-pool VJP sums (n, 1, h, 2, w, 2, c, 1) over (1, 3, 5, 7), and treating the
    trailing 1 as the contiguous axis made that an unvectorised scalar loop."""
    longer = [axis for axis, size in enumerate(shape) if size > 1]
    return longer[-1] if longer else len(shape) - 1


def _size_one_first(shape) -> list[int]:
    """Operand order with size-1 axes outermost, so the innermost loop is the last
    axis that moves through memory."""
    ones = [axis for axis, size in enumerate(shape) if size == 1]
    return ones + [axis for axis, size in enumerate(shape) if size != 1]


def lower_reduce_sum(op: Op, materialized: set[Value]) -> KernelPlan:
    return lower_reduce(op, materialized, "sum")


def lower_reduce_max(op: Op, materialized: set[Value]) -> KernelPlan:
    return lower_reduce(op, materialized, "max")


def lower_reduce_min(op: Op, materialized: set[Value]) -> KernelPlan:
    return lower_reduce(op, materialized, "min")


# --------------------------------------------------------------------------------------
# pad and concatenate


def lower_pad(op: Op, materialized: set[Value]) -> KernelPlan:
    """Zero the output (when it has padding), then scatter the operand into it."""
    operand = op.operands[0]
    out_shape = op.result.shape
    dtype = op.result.dtype
    steps = []
    if op.result.type.size > operand.type.size:
        steps.append(fill_step(out_shape, dtype, 0, op.result))
    rank = operand.ndim
    exprs = ExprBuilder(materialized, rank)
    access = identity_access(rank)
    node = exprs.read(operand, access)
    dest_access = tuple(index.scale(interior + 1).shift(low) for index, low, interior
                        in zip(access, op.attrs["low"], op.attrs["interior"]))
    dest_offset = flat_offset(dest_access, out_shape, rank)
    steps.append(MapStep(operand.shape, exprs, node, op.result, dest_offset, dtype))
    return KernelPlan(op.result, steps)


def lower_concatenate(op: Op, materialized: set[Value]) -> KernelPlan:
    """One step per operand, each writing its block of the output."""
    axis = op.attrs["axis"]
    out_shape = op.result.shape
    steps = []
    start = 0
    for operand in op.operands:
        rank = operand.ndim
        exprs = ExprBuilder(materialized, rank)
        access = identity_access(rank)
        node = exprs.read(operand, access)
        dest_access = tuple(index.shift(start) if k == axis else index
                            for k, index in enumerate(access))
        dest_offset = flat_offset(dest_access, out_shape, rank)
        steps.append(MapStep(operand.shape, exprs, node, op.result, dest_offset,
                             op.result.dtype))
        start += operand.shape[axis]
    return KernelPlan(op.result, steps)
