"""Lowering of `dot` (general contraction) to loop nests.

`lower_dot` is the one entry point: it first offers the op to the fast packed sgemm
emitter (helper G's codegen/matmul.py, `_fast_matmul`), and otherwise builds a
generic loop nest valid for every batch/contract configuration and dtype:
- with rhs free axes: loops batch, lhs-free, contract, rhs-free ("i-k-j"), the
  output zero-filled first and accumulated in place; the innermost loop walks a
  row of the output contiguously, so it vectorises without reassociation;
- without rhs free axes (matrix-vector, dot products): the contraction is the
  innermost loop, reduced in a register with `reassoc` float adds.
Operands are read through views (transposes cost no copy), never recomputed.
"""
from __future__ import annotations

import llvmlite.ir as lir

from ir.graph import Op, Value
from ir.types import DType

from .affine import Affine, flat_offset
from .expr import ExprBuilder
from .kernels import fill_step
from .llvmtypes import scalar_constant
from .steps import KernelPlan, ReduceStep


def lower_dot(op: Op, materialized: set[Value]) -> KernelPlan:
    """The kernel computing a dot op (fast sgemm when available, else loop nests)."""
    fast = _fast_matmul(op, materialized)
    if fast is not None:
        return fast
    return _generic_dot(op, materialized)


def _fast_matmul(op: Op, materialized: set[Value]) -> KernelPlan | None:
    """Hook for codegen/matmul.py's packed float32 kernel; None means not handled."""
    return None


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
    lb, rb = op.attrs["lhs_batch"], op.attrs["rhs_batch"]
    lc, rc = op.attrs["lhs_contract"], op.attrs["rhs_contract"]
    lf = [a for a in range(lhs.ndim) if a not in lb + lc]
    rf = [a for a in range(rhs.ndim) if a not in rb + rc]
    dtype = op.result.dtype
    in_register = not rf
    # loop axes: batch, lhs free, contract, rhs free
    nb, nlf, nc = len(lb), len(lf), len(lc)
    rank = nb + nlf + nc + len(rf)
    lhs_counter = _counters(lhs.ndim, [(lb, 0), (lf, nb), (lc, nb + nlf)], rank)
    rhs_counter = _counters(rhs.ndim, [(rb, 0), (rc, nb + nlf), (rf, nb + nlf + nc)], rank)
    exprs = ExprBuilder(materialized, rank)
    nodes = [exprs.read(lhs, lhs_counter), exprs.read(rhs, rhs_counter)]
    dest_axes = list(range(nb + nlf)) + list(range(nb + nlf + nc, rank))
    dest_access = tuple(Affine.counter(k, rank) for k in dest_axes)
    dest_offset = flat_offset(dest_access, op.result.shape, rank)
    sizes = ([lhs.shape[a] for a in lb] + [lhs.shape[a] for a in lf]
             + [lhs.shape[a] for a in lc] + [rhs.shape[a] for a in rf])
    contract_size = 1
    for a in lc:
        contract_size *= lhs.shape[a]
    fill = fill_step(op.result.shape, dtype, 0, op.result)
    if contract_size == 0:
        return KernelPlan(op.result, [fill])
    flags = ("reassoc", "contract") if in_register else ("contract",)
    step = ReduceStep(sizes, nb + nlf, exprs, nodes, _multiply_add(dtype, flags),
                      scalar_constant(0, dtype), op.result, dest_offset, dtype, in_register)
    return KernelPlan(op.result, [step] if in_register else [fill, step])


def _counters(ndim: int, groups: list[tuple[tuple[int, ...], int]], rank: int):
    """Access of an operand whose axes `axes` follow loop counters first, first+1, ..."""
    access = [Affine.constant(0, rank)] * ndim
    for axes, first in groups:
        for position, axis in enumerate(axes):
            access[axis] = Affine.counter(first + position, rank)
    return tuple(access)
