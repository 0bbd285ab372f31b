"""The shared per-primitive table (tests/op_cases.py, OP_CASES) run compiled: every row
compiled vs ir.interpret on the same seeded inputs, and vs the row's independent NumPy
reference. All rows are compiled into one LLVM module (one JIT)."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import codegen
from ir import interpret

# tests/ holds op_cases.py; appended after importing ir/codegen so that tests/ir and
# tests/codegen can never shadow the real packages.
sys.path.append(str(Path(__file__).resolve().parents[1]))
from op_cases import OP_CASES, OpCase, assert_close  # noqa: E402

SEED = 0


def _inputs(case: OpCase):
    return case.make_inputs(np.random.default_rng(SEED))


@pytest.fixture(scope="module")
def compiled():
    graphs = [case.graph(_inputs(case)) for case in OP_CASES]
    executables = codegen.compile_graphs(graphs)
    return {case.id: (graph, exe) for case, graph, exe in zip(OP_CASES, graphs, executables)}


@pytest.mark.parametrize("case", OP_CASES, ids=lambda case: case.id)
def test_compiled_matches_interpreter_and_reference(compiled, case: OpCase):
    graph, exe = compiled[case.id]
    arrays = _inputs(case)
    (got,) = exe(*arrays)
    (want,) = interpret(graph, *arrays)
    shapes = ", ".join(str(a.shape) for a in arrays)
    assert_close(got, want, case.exact, f"compiled vs interpreted: {case.id} on {shapes}")
    assert_close(got, case.reference(*arrays), case.exact,
                 f"compiled vs reference: {case.id} on {shapes}")
