"""Every primitive of ir.ops.PRIMITIVES has an entry in every per-primitive table, and
no table names a primitive that does not exist (docs/ARCHITECTURE.md: adding a
primitive is a checklist; this test is the checklist's enforcement).

Adding a per-primitive table? Add a row to TABLES below.
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import Iterable

import numpy as np
import pytest

from ir import PRIMITIVES, DType
from ir.interpret import run_op
from op_cases import OP_CASES

# Every per-primitive table (docs/ARCHITECTURE.md): a module that fails to import is a
# failure, never a skip.
TABLES = [
    ("ir.interpret", "IMPLS"),
    ("ir.passes.cost", "COST_RULES"),
    ("codegen", "LOWERING_PATHS"),      # LOWERINGS + EMITTERS, filled when codegen loads
    ("ir.passes.vjp_rules", "VJP_RULES"),
    ("ir.passes.batch_rules", "BATCH_RULES"),
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


def test_every_primitive_has_exactly_one_lowering_path():
    """Elementwise primitives are emitted by EMITTERS alone, the rest by LOWERINGS
    alone: no entry is a dead second path, and `lowering_of` finds each."""
    import codegen
    from codegen.emit.elementwise import EMITTERS
    from codegen.registry import ELEMENTWISE, lowering_of
    assert not set(codegen.LOWERINGS) & set(EMITTERS)
    assert_table_covers(set(codegen.LOWERINGS) | set(EMITTERS), "LOWERINGS + EMITTERS")
    for name in EMITTERS:
        assert PRIMITIVES[name].elementwise and lowering_of(name) is ELEMENTWISE, name
        assert EMITTERS[name].cost >= 1, name
    for name, lowering in codegen.LOWERINGS.items():
        assert lowering.kind != "elementwise" and lowering_of(name) is lowering, name
    assert dict(codegen.LOWERING_PATHS) == {
        **dict.fromkeys(EMITTERS, "elementwise"),
        **{name: lowering.kind for name, lowering in codegen.LOWERINGS.items()}}


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


# --------------------------------------------------------------------------------------
# the data-movement flags of ir/ops.py (free_view, copy, splat_transparent), checked
# against what the interpreter does with each primitive's OP_CASES rows


def _gather_map(case, rng: np.random.Generator) -> np.ndarray | None:
    """For a case whose op moves data, the flat source index of each result element
    (into the operands' elements, joined in order), -1 for a zero fill; None when the
    op computes something else. Runs the op once on operands numbered 1, 2, 3, ...
    (which reveals the candidate map) and checks the map on two random draws."""
    arrays = case.make_inputs(rng)
    result_dtype = case.graph(arrays).outputs[0].dtype
    count = sum(a.size for a in arrays)
    numbered, offset = [], 1
    for a in arrays:
        numbered.append(np.arange(offset, offset + a.size).reshape(a.shape).astype(a.dtype))
        offset += a.size
    out = np.asarray(run_op(case.prim, case.attrs, numbered, result_dtype), dtype=np.float64)
    if not np.all((out == np.round(out)) & (out >= 0) & (out <= count)):
        return None
    index = out.reshape(-1).astype(np.int64) - 1
    for _ in range(2):
        draw = case.make_inputs(rng)
        joined = np.concatenate([a.reshape(-1) for a in draw])
        picked = np.where(index >= 0, joined[np.maximum(index, 0)], 0).astype(result_dtype.numpy)
        actual = run_op(case.prim, case.attrs, draw, result_dtype).reshape(-1)
        if not np.array_equal(actual, picked, equal_nan=result_dtype.is_float):
            return None
    return index


def _testable(case) -> bool:
    """Cases whose numbered operands and results can show a gather map: operands
    exist, nothing is empty, nothing (operand or result) is bool."""
    arrays = case.make_inputs(np.random.default_rng(0))
    result = case.graph(arrays).outputs[0]
    return bool(arrays) and result.type.size > 0 and result.dtype is not DType.bool and all(
        a.size > 0 and a.dtype != np.bool_ for a in arrays)


def _data_movement_facts() -> dict[str, dict[str, bool]]:
    """Per primitive: moves (every testable case is a gather), covers (one operand,
    every operand element used, no fill, in every case), no_fill, same_dtype."""
    rng = np.random.default_rng(7)
    facts = {}
    for name, primitive in PRIMITIVES.items():
        rows = [case for case in OP_CASES if case.prim == name and _testable(case)]
        maps = [(case, _gather_map(case, rng)) for case in rows]
        moves = bool(maps) and all(index is not None for _, index in maps)
        facts[name] = dict(
            moves=moves,
            covers=moves and primitive.arity == 1 and all(
                np.array_equal(np.unique(index), np.arange(int(np.prod(case.shapes[0]))))
                for case, index in maps),
            no_fill=moves and all((index >= 0).all() for _, index in maps),
            same_dtype=moves and all(
                case.graph(case.make_inputs(rng)).outputs[0].dtype is case.dtype
                for case, _ in maps))
    return facts


def test_data_movement_flags_match_the_interpreter():
    facts = _data_movement_facts()
    flagged = {flag: {n for n, p in PRIMITIVES.items() if getattr(p, flag)}
               for flag in ("free_view", "copy", "splat_transparent")}
    expected_views = {n for n, f in facts.items() if f["covers"]}
    expected_copies = {n for n, f in facts.items() if f["moves"] and not f["covers"]}
    expected_splat = {n for n, f in facts.items()
                      if f["moves"] and f["no_fill"] and f["same_dtype"]
                      and PRIMITIVES[n].arity == 1 and not PRIMITIVES[n].elementwise}
    assert flagged["free_view"] == expected_views
    assert flagged["copy"] == expected_copies
    assert flagged["splat_transparent"] == expected_splat


def test_data_movement_flags_keep_the_sets_partition_and_fold_used():
    """The name sets partition.py (FREE_VIEWS, COPIES) and fold.py (SPLAT_TRANSPARENT)
    switched on before the facts moved onto the primitives."""
    def flagged(flag):
        return {n for n, p in PRIMITIVES.items() if getattr(p, flag)}
    assert flagged("free_view") == {"reshape", "broadcast_in_dim", "transpose", "rev",
                                    "convert", "stop_gradient"}
    assert flagged("copy") == {"slice", "pad", "concatenate"}
    assert flagged("splat_transparent") == {"broadcast_in_dim", "reshape", "transpose",
                                            "slice", "rev"}


@pytest.mark.parametrize("case", [c for c in OP_CASES if PRIMITIVES[c.prim].splat_transparent],
                         ids=lambda c: c.id)
def test_splat_transparent_ops_keep_a_splat(case):
    """Applied to an array whose elements all equal 3, the op gives only 3s, same dtype."""
    shapes = [a.shape for a in case.make_inputs(np.random.default_rng(0))]
    splat = [np.full(shape, 3, dtype=case.dtype.numpy) for shape in shapes]
    out = run_op(case.prim, case.attrs, splat, case.graph(splat).outputs[0].dtype)
    assert out.dtype == case.dtype.numpy
    assert np.array_equal(out, np.full(out.shape, 3, dtype=case.dtype.numpy))


# --------------------------------------------------------------------------------------
# one table type: every per-primitive table of ir is an ir.registry.Registry, which
# refuses a second entry for a name (issue 15)

IR_REGISTRIES = [
    ("ir.primitive", "PRIMITIVES"), ("ir.interpret", "IMPLS"),
    ("ir.passes.vjp_rules", "VJP_RULES"), ("ir.passes.vjp_rules", "FORWARD_RULES"),
    ("ir.passes.batch_rules", "BATCH_RULES"), ("ir.passes.cost", "COST_RULES"),
    ("ir.passes.cost", "CONTRACTION_FLOPS"), ("ir.passes.cost", "COST_NOTES"),
    ("ir.passes.algebra", "ALGEBRA_RULES"),
]


def _ir_modules() -> list[str]:
    import pkgutil
    import ir.passes
    return (["ir." + m.name for m in pkgutil.iter_modules(importlib.import_module("ir").__path__)]
            + ["ir.passes." + m.name for m in pkgutil.iter_modules(ir.passes.__path__)])


@pytest.mark.parametrize("module,attribute", IR_REGISTRIES,
                         ids=[f"{m}.{a}" for m, a in IR_REGISTRIES])
def test_ir_tables_are_registries_that_refuse_a_second_entry(module, attribute):
    from ir.registry import Registry
    table = getattr(importlib.import_module(module), attribute)
    assert isinstance(table, Registry)
    before = dict(table)
    name = next(iter(table))
    with pytest.raises(ValueError, match=f"{name!r} is registered twice"):
        table.add(name, object())
    with pytest.raises(ValueError, match="registered twice"):
        table.register(name)(len)
    with pytest.raises(ValueError, match="registered twice"):
        table.update({name: object()})
    assert dict(table) == before


def test_every_table_keyed_by_primitive_names_in_ir_is_a_registry():
    """No hand-rolled dict of primitive names is left anywhere in ir (module level)."""
    from ir.registry import Registry
    plain = [f"{name}.{attribute}" for name in _ir_modules()
             for attribute, value in vars(importlib.import_module(name)).items()
             if isinstance(value, dict) and not attribute.startswith("__") and value
             and all(key in PRIMITIVES for key in value) and not isinstance(value, Registry)]
    assert not plain, f"per-primitive tables that are plain dicts: {plain}"


def test_registry_enters_a_decorated_function_under_every_name():
    from ir.registry import Registry
    fresh = Registry("probe")
    assert fresh.register("a", "b")(len) is len
    fresh.update({"c": abs}, d=min)
    assert dict(fresh) == {"a": len, "b": len, "c": abs, "d": min}
    with pytest.raises(ValueError, match=r"probe table: 'a' is registered twice"):
        fresh.add("a", max)
    assert fresh["a"] is len


def test_codegen_tables_use_the_same_registry_type():
    import codegen.registry
    from ir.registry import Registry
    assert codegen.registry.Registry is Registry
    assert isinstance(codegen.registry.LOWERINGS, Registry)
