"""ir.table.render, the one text-table formatter: widths, alignment, rules, footer."""
from __future__ import annotations

from ir.table import render


def test_columns_align_left_or_right_and_trailing_blanks_go():
    lines = render(("name", "ms"), [("a", "1.5"), ("longer", "12")], left={0})
    assert lines == ["name     ms",
                     "a       1.5",
                     "longer   12"]


def test_rule_under_the_header_and_above_the_footer():
    lines = render(("op", "flops"), [("dot", "10")], left={0}, rule=True,
                   footer=("total", "10"))
    assert lines == ["op     flops",
                     "------------",
                     "dot       10",
                     "------------",
                     "total     10"]


def test_an_empty_table_is_its_header():
    assert render(("a", "bb"), [], left=range(2), rule=True) == ["a  bb", "-----"]
