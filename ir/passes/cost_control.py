"""Cost rules of the control-flow ops (ir/control_flow.py): a region's ops are counted
with the same table as any graph's, times how often the region runs.

- scan: the body's flops times `length` (the per-iteration count is `scan_body_flops`);
- cond: the dearer branch (an upper bound: only one runs);
- while_loop: the trip count is unknown before running, so one cond and one body are
  counted (the cost of a single iteration; the report's total is a lower bound).
"""
from __future__ import annotations

from ..graph import Op


def _region_flops(graph) -> int:
    from .cost import cost        # cost.py imports this table at its end
    return cost(graph).flops


def scan_body_flops(op: Op) -> int:
    """Flops of one iteration of a scan's body."""
    return _region_flops(op.attrs["body"])


def _scan(op: Op) -> int:
    return scan_body_flops(op) * op.attrs["length"]


def _cond(op: Op) -> int:
    return max(_region_flops(op.attrs["true_branch"]), _region_flops(op.attrs["false_branch"]))


def _while_loop(op: Op) -> int:
    return _region_flops(op.attrs["cond"]) + _region_flops(op.attrs["body"])


CONTROL_COST_RULES = {"scan": _scan, "cond": _cond, "while_loop": _while_loop}

def _region_dot_flops(graph) -> int:
    from .cost import cost
    return cost(graph).dot_flops


CONTROL_DOT_FLOPS = {
    "scan": lambda op: _region_dot_flops(op.attrs["body"]) * op.attrs["length"],
    "cond": lambda op: max(_region_dot_flops(op.attrs["true_branch"]),
                           _region_dot_flops(op.attrs["false_branch"])),
    "while_loop": lambda op: _region_dot_flops(op.attrs["body"]),
}
"""Contraction flops inside regions, counted like the totals (CostReport.dot_flops)."""

COST_NOTES = {"scan": lambda op: f" ({op.attrs['length']} x {scan_body_flops(op):,} flops)"}
"""Text added to an op's row in the cost table: a scan shows its trips and the flops
of one iteration next to its total."""
