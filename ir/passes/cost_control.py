"""Cost rules of the control-flow ops (ir/control_flow.py): a region's ops are counted
with the same table as any graph's, times how often the region runs.

- scan: the body's flops times `length` (the per-iteration count is `scan_body_flops`);
- cond: the dearer branch (an upper bound: only one runs);
- while_loop: the trip count is unknown before running, so one cond and one body are
  counted (the cost of a single iteration; the report's total is a lower bound).

This module registers its rows into the tables of ir/passes/cost.py (imported by
ir/passes/__init__.py, so the tables are whole once `ir.passes` is loaded); cost.py
never imports it, so the dependency points one way.
"""
from __future__ import annotations

from ..graph import Graph, Op
from .cost import CONTRACTION_FLOPS, COST_NOTES, COST_RULES, cost


def _region_flops(graph: Graph) -> int:
    return cost(graph).flops


def _region_dot_flops(graph: Graph) -> int:
    return cost(graph).dot_flops


def scan_body_flops(op: Op) -> int:
    """Flops of one iteration of a scan's body."""
    return _region_flops(op.attrs["body"])


@COST_RULES.register("scan")
def _scan(op: Op) -> int:
    return scan_body_flops(op) * op.attrs["length"]


@COST_RULES.register("cond")
def _cond(op: Op) -> int:
    return max(_region_flops(op.attrs["true_branch"]), _region_flops(op.attrs["false_branch"]))


@COST_RULES.register("while_loop")
def _while_loop(op: Op) -> int:
    return _region_flops(op.attrs["cond"]) + _region_flops(op.attrs["body"])


# Contraction flops inside regions, counted like the totals (CostReport.dot_flops).
CONTRACTION_FLOPS.update({
    "scan": lambda op: _region_dot_flops(op.attrs["body"]) * op.attrs["length"],
    "cond": lambda op: max(_region_dot_flops(op.attrs["true_branch"]),
                           _region_dot_flops(op.attrs["false_branch"])),
    "while_loop": lambda op: _region_dot_flops(op.attrs["body"]),
})

# A scan's row shows its trips and the flops of one iteration next to its total.
COST_NOTES.add("scan", lambda op: f" ({op.attrs['length']} x {scan_body_flops(op):,} flops)")
