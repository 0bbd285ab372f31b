"""Lowering of `dot` (general contraction) to loop nests.

`lower_dot` is the one entry point: it first offers the op to the fast packed sgemm
emitter (helper G's codegen/kernels/matmul.py, `_fast_matmul`) unless the compile's
options turn it off (`CompileOptions.sgemm`), and otherwise builds a
generic loop nest valid for every batch/contract configuration and dtype:
- rhs laid out with a free axis last: loops batch, lhs-free, contract, rhs-free
  ("i-k-j"), the output zero-filled first and accumulated in place; the innermost
  loop walks a row of rhs and of the output contiguously, so it vectorises without
  reassociation;
- rhs with a contracted axis last, or no free axes (transposed rhs, matrix-vector,
  dot products): loops batch, lhs-free, rhs-free, contract; the contraction is
  innermost and reduced in a register with `reassoc` float adds.
Operands are read through views (transposes cost no copy), never recomputed.
"""
from __future__ import annotations

import llvmlite.ir as lir

from ir.graph import Op, Value
from ir.types import DType

from ..plan.affine import Affine, flat_offset
from ..options import CompileOptions
from ..plan.dot_axes import dot_axes
from ..plan.fusion import FusionPlan
from ..plan.sgemm_layout import sgemm_layout, writes_rows
from ..registry import EpilogueRule
from ..emit.expr import ExprBuilder
from ..emit.kernels import fill_step
from ..emit.llvmtypes import scalar_constant
from ..emit.steps import KernelPlan, ReduceStep

def lower_dot(op: Op, materialized: FusionPlan) -> KernelPlan:
    """The kernel computing a dot op (fast sgemm when available and the compile's
    options allow it, else loop nests)."""
    fast = _fast_matmul(op, materialized) if materialized.options.sgemm else None
    if fast is not None:
        return fast
    return _generic_dot(op, materialized)


def dot_takes_epilogue(op: Op, materialized, options: CompileOptions) -> bool:
    """The dot's EpilogueRule query (pure): its kernel is one non-batched sgemm
    writing the [M, N] result row-major, so a tile epilogue can follow it."""
    if not options.sgemm or op.result.dtype is not DType.f32:
        return False
    layout = sgemm_layout(op, materialized)
    return layout is not None and writes_rows(layout.shape, op.result)


def lower_dot_with_epilogue(op: Op, materialized, epilogue) -> KernelPlan:
    """The dot's EpilogueRule kernel: the sgemm running `epilogue` per block."""
    from .sgemm_step import plan_sgemm_with_epilogue
    return plan_sgemm_with_epilogue(op, materialized, epilogue)


DOT_EPILOGUE = EpilogueRule(dot_takes_epilogue, lower_dot_with_epilogue)


def _fast_matmul(op: Op, materialized: set[Value]) -> KernelPlan | None:
    """The packed float32 sgemm of codegen/kernels/matmul.py, when the contraction is one
    (batched) matrix product over strided views; None means not handled."""
    if op.result.dtype is not DType.f32:
        return None
    from .sgemm_step import plan_sgemm
    return plan_sgemm(op, materialized)


def _multiply_add(dtype: DType, flags: tuple[str, ...]):
    """acc + a * b; float ops may be contracted to FMA (dot tolerates rounding)."""
    def combine(b: lir.IRBuilder, acc, values):
        lhs, rhs = values
        if dtype.is_float:
            return b.fadd(acc, b.fmul(lhs, rhs, flags=("contract",)), flags=flags)
        return b.add(acc, b.mul(lhs, rhs))
    return combine


def _generic_dot(op: Op, materialized: set[Value]) -> KernelPlan:
    lhs, rhs = op.operands
    lb, rb, lc, rc, lf, rf = dot_axes(op)
    dtype = op.result.dtype
    # Reduce in a register with the contraction innermost when rhs has no free axes
    # or is laid out with a contracted axis last (rhs transposed: walking its free
    # axis innermost would stride through memory).
    in_register = not rf or (rhs.ndim - 1) in rc
    nb, nlf, nrf, nc = len(lb), len(lf), len(rf), len(lc)
    rank = nb + nlf + nrf + nc
    if in_register:  # loop axes: batch, lhs free, rhs free, contract
        first_contract, first_rf = nb + nlf + nrf, nb + nlf
    else:  # loop axes: batch, lhs free, contract, rhs free ("i-k-j")
        first_contract, first_rf = nb + nlf, nb + nlf + nc
    lhs_access = _counters(lhs.ndim, [(lb, 0), (lf, nb), (lc, first_contract)], rank)
    rhs_access = _counters(rhs.ndim, [(rb, 0), (rc, first_contract), (rf, first_rf)], rank)
    exprs = ExprBuilder(materialized, rank)
    nodes = [exprs.read(lhs, lhs_access), exprs.read(rhs, rhs_access)]
    dest_axes = list(range(nb + nlf)) + list(range(first_rf, first_rf + nrf))
    dest_access = tuple(Affine.counter(k, rank) for k in dest_axes)
    dest_offset = flat_offset(dest_access, op.result.shape, rank)
    batch_free = [lhs.shape[a] for a in lb] + [lhs.shape[a] for a in lf]
    contract = [lhs.shape[a] for a in lc]
    rhs_free = [rhs.shape[a] for a in rf]
    sizes = batch_free + (rhs_free + contract if in_register else contract + rhs_free)
    fill = fill_step(op.result.shape, dtype, 0, op.result)
    if 0 in contract:
        return KernelPlan(op.result, [fill])
    flags = ("reassoc", "contract") if in_register else ("contract",)
    outer = nb + nlf + (nrf if in_register else 0)
    step = ReduceStep(sizes, outer, exprs, nodes, _multiply_add(dtype, flags),
                      scalar_constant(0, dtype), op.result, dest_offset, dtype, in_register)
    return KernelPlan(op.result, [step] if in_register else [fill, step])


def _counters(ndim: int, groups: list[tuple[tuple[int, ...], int]], rank: int):
    """Access of an operand whose axes `axes` follow loop counters first, first+1, ..."""
    access = [Affine.constant(0, rank)] * ndim
    for axes, first in groups:
        for position, axis in enumerate(axes):
            access[axis] = Affine.counter(first + position, rank)
    return tuple(access)
