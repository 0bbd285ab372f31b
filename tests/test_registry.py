"""Every primitive of ir.ops.PRIMITIVES has an entry in every per-primitive table, and
no table names a primitive that does not exist (docs/ARCHITECTURE.md: adding a
primitive is a checklist; this test is the checklist's enforcement).

Adding a per-primitive table? Add a row to TABLES below.
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import Iterable

import pytest

from ir import PRIMITIVES
from op_cases import OP_CASES

# Every per-primitive table (docs/ARCHITECTURE.md): a module that fails to import is a
# failure, never a skip.
TABLES = [
    ("ir.interpret", "IMPLS"),
    ("ir.passes.cost", "COST_RULES"),
    ("codegen.lowering", "LOWERINGS"),     # filled when codegen/lowering.py loads
    ("ir.passes.vjp_rules", "VJP_RULES"),
]


def assert_table_covers(table: Iterable[str], name: str) -> None:
    """`table` (keys) names exactly the primitives of PRIMITIVES; the message lists both
    the missing and the unknown names."""
    keys = set(table)
    missing = sorted(set(PRIMITIVES) - keys)
    extra = sorted(keys - set(PRIMITIVES))
    assert not missing and not extra, (
        f"{name}: missing primitives {missing}; names that are not primitives {extra}")


@pytest.mark.parametrize("module,attribute", TABLES, ids=[f"{m}.{a}" for m, a in TABLES])
def test_table_covers_every_primitive(module, attribute):
    table = getattr(importlib.import_module(module), attribute)
    assert isinstance(table, dict), f"{module}.{attribute} is a {type(table).__name__}"
    assert_table_covers(table, f"{module}.{attribute}")


def test_op_cases_cover_every_primitive():
    assert_table_covers({case.prim for case in OP_CASES}, "tests/op_cases.py OP_CASES")


def test_primitive_table_keys_match_their_names():
    for name, primitive in PRIMITIVES.items():
        assert primitive.name == name


def test_assert_table_covers_reports_missing_and_unknown_names():
    table = dict.fromkeys(PRIMITIVES)
    del table["exp"]
    table["expp"] = None
    with pytest.raises(AssertionError, match=r"missing primitives \['exp'\].*\['expp'\]"):
        assert_table_covers(table, "demo")
