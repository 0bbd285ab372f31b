"""The one text-table formatter: every aligned table propc prints is drawn here.

`Graph` cost reports (ir.passes.cost), the compare/check_grad reports
(propc.reports), the memory summary of a compile (propc.compile.MemorySummary) and
every `propc bench` table use `render`, so the tables line up
the same way everywhere. It lives in `ir` because `ir` is the bottom layer: the
cost report needs it and `ir` imports nothing above it.
"""
from __future__ import annotations

from typing import Collection, Sequence


def render(header: Sequence[str], rows: Sequence[Sequence[str]],
           left: Collection[int] = (), rule: bool = False,
           footer: Sequence[str] | None = None) -> list[str]:
    """Aligned columns as lines, two spaces apart, trailing blanks stripped.

    `left` holds the indices of the left-aligned columns (text); the others are
    right-aligned (numbers). `rule` draws a dashed line under the header and, when a
    `footer` row (e.g. totals) is given, another above it.
    """
    everything = [tuple(header), *map(tuple, rows)]
    if footer is not None:
        everything.append(tuple(footer))
    widths = [max(len(cells[i]) for cells in everything) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(widths[i]) if i in left else cell.rjust(widths[i])
                         for i, cell in enumerate(cells)).rstrip()

    dashes = ["-" * (sum(widths) + 2 * (len(widths) - 1))] if rule else []
    body = [line(cells) for cells in everything[1:len(rows) + 1]]
    tail = dashes + [line(everything[-1])] if footer is not None else []
    return [line(everything[0]), *dashes, *body, *tail]
