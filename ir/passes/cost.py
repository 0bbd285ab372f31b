"""The cost model: floating-point operations and bytes moved, per op and in total.

`COST_RULES` maps every primitive to `rule(op) -> flops` (an int). Conventions:
- elementwise arithmetic, transcendentals (exp, log, tanh, sqrt, sin, cos, pow
  each count 1), compares, `select` and `convert`: one flop per output element;
- `stop_gradient`, the shape ops (reshape, transpose, broadcast_in_dim, slice, pad,
  concatenate) and the sources (constant, iota): 0;
- reductions: input elements minus output elements (n values take n-1 combines);
- `logsumexp`: 4 per input element (max, subtract, exp, add) and 2 per output
  element (log, add);
- `conv`: 2 * output elements * window taps * input channels per group, counted
  with `dot` in `dot_flops`; `reduce_window_*`: taps - 1 per output element;
  `gather`: 0; `scatter_add`: one add per update;
- `dot`: 2 * batch * M * N * K, the textbook count of a multiply and an add per
  term. Its total is also reported on its own as `dot_flops`.
Bytes are an unfused estimate: each op reads all its operands and writes its result.
A fused backend moves fewer; this is the upper bound it is measured against.

The control-flow ops' rows (a region's ops counted with this same table) live in
ir/passes/cost_control.py, which imports this module and registers them into
`COST_RULES`, `CONTRACTION_FLOPS` and `COST_NOTES` (the package's `__init__` loads
it); nothing here imports it back.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..errors import IRError
from ..graph import Graph, Op, SourceLoc
from ..registry import Registry
from ..table import render
from ..types import TensorType

CostRule = Callable[[Op], int]


def _per_output_element(op: Op) -> int:
    return op.result.type.size


def _free(op: Op) -> int:
    return 0


def _reduction(op: Op) -> int:
    return max(op.operands[0].type.size - op.result.type.size, 0)


def _logsumexp(op: Op) -> int:
    """Per input element: max, subtract, exp, add; per output element: log and add."""
    return 4 * op.operands[0].type.size + 2 * op.result.type.size


def _product(sizes) -> int:
    total = 1
    for size in sizes:
        total *= size
    return total


def _dot(op: Op) -> int:
    """2 * batch * M * N * K: the result has batch*M*N elements, each a K-term sum."""
    lhs = op.operands[0].type
    contract = _product(lhs.shape[a] for a in op.attrs["lhs_contract"])
    return 2 * op.result.type.size * contract


def _conv(op: Op) -> int:
    """2 * (output elements) * (window taps) * (input channels per group)."""
    rhs = op.operands[1].type
    return 2 * op.result.type.size * _product(rhs.shape[:-1])


def _reduce_window(op: Op) -> int:
    """window taps - 1 combines per output element."""
    return op.result.type.size * max(_product(op.attrs["window"]) - 1, 0)


def _scatter_add(op: Op) -> int:
    """One add per update element."""
    return op.operands[2].type.size


_ELEMENTWISE = ("exp", "log", "tanh", "sqrt", "sin", "cos", "neg", "abs", "add", "sub",
                "mul", "div", "max", "min", "pow", "lt", "le", "gt", "ge", "eq", "ne",
                "select", "convert")
_FREE = ("stop_gradient", "broadcast_in_dim", "reshape", "transpose", "slice", "rev", "pad",
         "concatenate", "constant", "iota")
_REDUCTIONS = ("reduce_sum", "reduce_max", "reduce_min")

COST_RULES: Registry = Registry("cost")                  # name -> CostRule
COST_RULES.update({
    **{name: _per_output_element for name in _ELEMENTWISE},
    **{name: _free for name in _FREE},
    **{name: _reduction for name in _REDUCTIONS},
    "logsumexp": _logsumexp,
    "dot": _dot,
    "conv": _conv,
    "reduce_window_sum": _reduce_window,
    "reduce_window_max": _reduce_window,
    "gather": _free,
    "scatter_add": _scatter_add,
})

CONTRACTION_FLOPS: Registry = Registry("contraction flops")
"""`rule(op) -> flops` of the ops whose flops (some of them, for an op with regions)
count towards `CostReport.dot_flops`: the products."""
CONTRACTION_FLOPS.update({"dot": _dot, "conv": _conv})

COST_NOTES: Registry = Registry("cost note")
"""`note(op) -> text` added after the op's name in its row of the cost table."""


@dataclass(frozen=True)
class CostRow:
    """The cost of one op. `text` is like "%7 = dot"; intensity is flops per byte."""

    index: int
    prim: str
    text: str
    type: TensorType
    flops: int
    bytes_read: int
    bytes_written: int
    loc: SourceLoc | None

    @property
    def bytes(self) -> int:
        return self.bytes_read + self.bytes_written

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes if self.bytes else 0.0


@dataclass(frozen=True)
class PrimCost:
    """Totals over all ops of one primitive."""

    prim: str
    count: int
    flops: int
    bytes: int


@dataclass
class CostReport:
    """Totals and per-op rows of a graph's cost; `str()` is an aligned table."""

    graph_name: str
    flops: int = 0
    bytes: int = 0
    dot_flops: int = 0
    per_op: list[CostRow] = field(default_factory=list)

    @property
    def by_prim(self) -> list[PrimCost]:
        """Per-primitive totals, most flops first (ties by name)."""
        totals: dict[str, list[int]] = {}
        for row in self.per_op:
            entry = totals.setdefault(row.prim, [0, 0, 0])
            entry[0] += 1
            entry[1] += row.flops
            entry[2] += row.bytes
        prims = [PrimCost(p, c, f, b) for p, (c, f, b) in totals.items()]
        return sorted(prims, key=lambda p: (-p.flops, p.prim))

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes if self.bytes else 0.0

    def __str__(self) -> str:
        return format_report(self)


def op_cost(op: Op, index: int, name: str) -> CostRow:
    """The row of one op, whose result is printed as `name` (like "%7")."""
    rule = COST_RULES.get(op.prim)
    if rule is None:
        raise IRError(f"cost: no cost rule for primitive {op.prim!r}")
    read = sum(v.type.nbytes for v in op.operands)
    written = sum(v.type.nbytes for v in op.results)
    note = COST_NOTES[op.prim](op) if op.prim in COST_NOTES else ""
    return CostRow(index, op.prim, f"{name} = {op.prim}{note}", op.result.type, rule(op), read,
                   written, op.loc)


def cost(graph: Graph) -> CostReport:
    """Flops and bytes of every op of `graph`, in op order, and their totals."""
    numbers = graph.value_numbers()
    report = CostReport(graph.name)
    for index, op in enumerate(graph.ops):
        row = op_cost(op, index, f"%{numbers[op.result]}")
        report.per_op.append(row)
        report.flops += row.flops
        report.bytes += row.bytes
        if op.prim in CONTRACTION_FLOPS:
            report.dot_flops += CONTRACTION_FLOPS[op.prim](op)
    return report


_HEADERS = ("#", "op", "type", "flops", "read", "written", "flops/byte", "source")


def _cells(row: CostRow) -> tuple[str, ...]:
    return (str(row.index), row.text, str(row.type), f"{row.flops:,}", f"{row.bytes_read:,}",
            f"{row.bytes_written:,}", f"{row.intensity:.2f}", str(row.loc or ""))


def format_report(report: CostReport) -> str:
    """An aligned table: one line per op, then a total line."""
    total_read = sum(r.bytes_read for r in report.per_op)
    total_written = sum(r.bytes_written for r in report.per_op)
    total = ("", "total", f"{len(report.per_op)} ops", f"{report.flops:,}", f"{total_read:,}",
             f"{total_written:,}", f"{report.intensity:.2f}", "")
    lines = render(_HEADERS, [_cells(r) for r in report.per_op], left={1, 2, 7}, rule=True,
                   footer=total)
    title = f"cost of @{report.graph_name}: {report.flops:,} flops " \
            f"({report.dot_flops:,} in contractions), {report.bytes:,} bytes"
    return "\n".join([title, *lines])

