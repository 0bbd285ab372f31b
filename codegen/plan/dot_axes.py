"""The axis groups of a `dot`, worked out once for every kernel that plans one."""
from __future__ import annotations

from typing import NamedTuple

from ir.graph import Op


class DotAxes(NamedTuple):
    """Operand axes of a dot by group: batch and contracted axes as the op's
    attributes give them (paired by position), free axes in increasing order."""

    lhs_batch: list[int]
    rhs_batch: list[int]
    lhs_contract: list[int]
    rhs_contract: list[int]
    lhs_free: list[int]
    rhs_free: list[int]


def dot_axes(op: Op) -> DotAxes:
    """The DotAxes of dot `op`."""
    lhs, rhs = op.operands
    lb, rb = list(op.attrs["lhs_batch"]), list(op.attrs["rhs_batch"])
    lc, rc = list(op.attrs["lhs_contract"]), list(op.attrs["rhs_contract"])
    lf = [a for a in range(lhs.ndim) if a not in lb + lc]
    rf = [a for a in range(rhs.ndim) if a not in rb + rc]
    return DotAxes(lb, rb, lc, rc, lf, rf)


__all__ = ["DotAxes", "dot_axes"]
