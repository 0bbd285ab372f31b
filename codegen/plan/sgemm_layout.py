"""Whether a float32 dot is one (batched) strided matrix product, and its shape.

A dot qualifies when, in the loop space (batch, lhs free, rhs free, contract), each
of the four groups collapses to at most one loop for both operands and the result,
and both operands are loads of buffers (views of them included: transposed
operands cost no copy, the packing reads them through strides). It is then `batch`
products C[M,N] = A[M,K] . B[K,N]. Pure planning: the sgemm kernel
(codegen/kernels/sgemm_step.py) and the epilogue planner (codegen/plan/epilogues.py,
through the dot's rule) ask the same question here, so they never disagree.
"""
from __future__ import annotations

from dataclasses import dataclass

from ir.graph import Op, Value

from .affine import Access, Affine, LoopPlan, flat_offset, plan_loops
from .dot_axes import dot_axes
from .expr_tree import ExprBuilder, Load

GROUPS = ("batch", "m", "n", "k")


@dataclass(frozen=True)
class SgemmShape:
    """Sizes and element strides of one (batched) product."""

    batch: int
    m: int
    n: int
    k: int
    a: dict  # group -> stride of lhs, plus "const"
    b: dict
    c: dict


@dataclass(frozen=True)
class SgemmLayout:
    """A qualifying dot: the operand loads (their `ExprBuilder`) and the shape."""

    exprs: ExprBuilder
    lhs: Value
    rhs: Value
    shape: SgemmShape


def sgemm_layout(op: Op, materialized) -> SgemmLayout | None:
    """The layout of dot `op` as one strided (batched) product, or None."""
    lhs, rhs = op.operands
    lb, rb, lc, rc, lf, rf = dot_axes(op)
    counts = [len(lb), len(lf), len(rf), len(lc)]
    rank = sum(counts)
    starts = [sum(counts[:g]) for g in range(4)]
    lhs_access = _access(lhs.ndim, [(lb, starts[0]), (lf, starts[1]), (lc, starts[3])], rank)
    rhs_access = _access(rhs.ndim, [(rb, starts[0]), (rc, starts[3]), (rf, starts[2])], rank)
    exprs = ExprBuilder(materialized, rank)
    a_node, b_node = exprs.read(lhs, lhs_access), exprs.read(rhs, rhs_access)
    if not (isinstance(a_node, Load) and isinstance(b_node, Load)):
        return None
    dest_axes = list(range(starts[0], starts[2] + counts[2]))
    dest = flat_offset(tuple(Affine.counter(k, rank) for k in dest_axes), op.result.shape, rank)
    sizes = ([lhs.shape[a] for a in lb] + [lhs.shape[a] for a in lf]
             + [rhs.shape[a] for a in rf] + [lhs.shape[a] for a in lc])
    plan = plan_loops(sizes, [a_node.offset, b_node.offset, dest], barriers=starts[1:])
    shape = _shape(plan, starts, a_node.offset, b_node.offset, dest)
    if shape is None:
        return None
    return SgemmLayout(exprs, a_node.value, b_node.value, shape)


def writes_rows(shape: SgemmShape, product: Value) -> bool:
    """One product C[M, N] (no batch) stored row-major from offset 0 as the 2-D
    `product`: what a tile epilogue (codegen/kernels/matmul_epilogue.py) indexes."""
    if shape.batch != 1 or product.ndim != 2:
        return False
    rows, columns = product.shape
    return (shape.m == rows and shape.n == columns and shape.c.get("const", 0) == 0
            and shape.c.get("m", columns) == columns and rows > 0 and columns > 0)


def _access(ndim: int, groups, rank: int) -> Access:
    access = [Affine.constant(0, rank)] * ndim
    for axes, first in groups:
        for position, axis in enumerate(axes):
            access[axis] = Affine.counter(first + position, rank)
    return tuple(access)


def _shape(plan: LoopPlan, starts: list[int], a: Affine, b: Affine, c: Affine
           ) -> SgemmShape | None:
    """Sizes and strides per group, or None if a group needs more than one loop."""
    found: dict[str, tuple[int, int]] = {}
    for position, group in enumerate(plan.groups):
        name = GROUPS[max(g for g in range(4) if starts[g] <= group[0])]
        if name in found:
            return None
        found[name] = (position, plan.sizes[position])
    a_coeffs, a_const = plan.project(a)
    b_coeffs, b_const = plan.project(b)
    c_coeffs, c_const = plan.project(c)

    def strides(coeffs, const):
        table = {name: coeffs[position] for name, (position, _) in found.items()}
        table["const"] = const
        return table

    size = {name: found.get(name, (0, 1))[1] for name in GROUPS}
    c_strides = strides(c_coeffs, c_const)
    if c_strides.get("n", 1) != 1:
        return None
    return SgemmShape(size["batch"], size["m"], size["n"], size["k"],
                      strides(a_coeffs, a_const), strides(b_coeffs, b_const), c_strides)


__all__ = ["GROUPS", "SgemmLayout", "SgemmShape", "sgemm_layout", "writes_rows"]
