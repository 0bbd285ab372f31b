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

# (module, attribute, pending). A module that fails to import is a failure, never a
# skip, except a pending row while its module does not exist yet: that row is an
# expected failure (strict), visible in every test summary as "xfailed".
TABLES = [
    ("ir.interpret", "IMPLS", False),
    ("ir.passes.cost", "COST_RULES", False),
    ("codegen.lowering", "LOWERINGS", False),     # filled when codegen/lowering.py loads
    # TODO(vjp): ir/passes/vjp_rules.py is being written; set pending=False once it lands.
    ("ir.passes.vjp_rules", "VJP_RULES", True),
]


def assert_table_covers(table: Iterable[str], name: str) -> None:
    """`table` (keys) names exactly the primitives of PRIMITIVES; the message lists both
    the missing and the unknown names."""
    keys = set(table)
    missing = sorted(set(PRIMITIVES) - keys)
    extra = sorted(keys - set(PRIMITIVES))
    assert not missing and not extra, (
        f"{name}: missing primitives {missing}; names that are not primitives {extra}")


def _module_exists(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _table_param(module: str, attribute: str, pending: bool):
    marks = []
    if pending and not _module_exists(module):
        marks.append(pytest.mark.xfail(strict=True, raises=ModuleNotFoundError,
                                       reason=f"{module} not written yet"))
    return pytest.param(module, attribute, marks=marks, id=f"{module}.{attribute}")


@pytest.mark.parametrize("module,attribute", [_table_param(*row) for row in TABLES])
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
