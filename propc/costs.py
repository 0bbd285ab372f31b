"""`Lowered.cost`: the cost model of a compiled signature, split into the forward
and backward passes when the function differentiates.

The split is the textbook accounting of backpropagation: per layer with n inputs,
m outputs and batch d, the forward pass costs 2·n·m·d FLOPs (one matmul) and the
backward pass 4·n·m·d (the error signal Eᵀ·W back to the inputs and the weight
gradient Xᵀ·E), except the first layer, whose input gradient nobody needs: 2·n·m·d.
"""
from __future__ import annotations

from dataclasses import dataclass

import ir
from ir.passes.cost import CostReport, CostRow, cost
from ir.table import render


@dataclass
class StepCost:
    """Cost of the compiled graph (`flops`, `bytes`, `per_op` as in SPEC.md) and, when
    there is a reverse pass, of its forward and backward graphs."""

    graph: CostReport
    forward: CostReport | None = None
    backward: CostReport | None = None

    @property
    def flops(self) -> int:
        return self.graph.flops

    @property
    def bytes(self) -> int:
        return self.graph.bytes

    @property
    def dot_flops(self) -> int:
        return self.graph.dot_flops

    @property
    def per_op(self) -> list[CostRow]:
        return self.graph.per_op

    def __str__(self) -> str:
        parts = [str(self.graph)]
        if self.forward is not None and self.backward is not None:
            parts.append(matmul_accounting(self.forward, self.backward))
        return "\n\n".join(parts)


def _dot_rows(report: CostReport) -> list[CostRow]:
    return [row for row in report.per_op if row.prim == "dot"]


def matmul_accounting(forward: CostReport, backward: CostReport) -> str:
    """The forward vs backward matmul FLOPs, per dot and in total."""
    rows = [(title, row.text, str(row.type), f"{row.flops:,}", str(row.loc or ""))
            for title, report in (("forward", forward), ("backward", backward))
            for row in _dot_rows(report)]
    table = render(("pass", "op", "type", "flops", "source"), rows, left={0, 1, 2, 4})
    ratio = backward.dot_flops / forward.dot_flops if forward.dot_flops else 0.0
    total = (f"total: forward {forward.dot_flops:,}, backward {backward.dot_flops:,} "
             f"({ratio:.2f}x forward); all ops: forward {forward.flops:,}, "
             f"backward {backward.flops:,}")
    return "\n".join(["forward vs backward (matmul FLOPs):", *table, total])


def step_cost(graph: ir.Graph, forward: ir.Graph | None, backward: ir.Graph | None) -> StepCost:
    if forward is None or backward is None:
        return StepCost(cost(graph))
    return StepCost(cost(graph), cost(forward), cost(backward))
