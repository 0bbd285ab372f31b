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


# --------------------------------------------------------------------------------------
# The same table's elementwise rows (one per primitive x dtype x convert target) run
# compiled at the shapes that exercise the vector loops (remainders after 8- and
# 16-wide steps, one element, 0-d, empty) on inputs with NaN/inf/±0/extreme integers
# mixed in (codegen_oracle.random_array), against the interpreter: transcendentals
# within ULPS units in the last place (sin/cos also one eps absolutely: their error
# is the argument's), everything else bit for bit.

from ir import PRIMITIVES, Builder, DType, TensorType  # noqa: E402
from codegen_oracle import assert_matches, random_array  # noqa: E402
from tolerances import ULPS  # noqa: E402

LOOP_SHAPES = [(), (1,), (17,), (33,), (0,), (2, 0), (3, 17)]
CONVERT_SHAPES = [(), (33,), (0,)]


def _loop_rows() -> list[tuple[str, OpCase, tuple[int, ...]]]:
    rows, seen = [], set()
    for case in OP_CASES:
        key = (case.prim, case.dtype, case.variant)
        if not PRIMITIVES[case.prim].elementwise or key in seen:
            continue
        seen.add(key)
        for shape in CONVERT_SHAPES if case.prim == "convert" else LOOP_SHAPES:
            text = "x".join(map(str, shape)) if shape else "scalar"
            name = "-".join(p for p in (case.prim, case.dtype.value, case.variant, text) if p)
            rows.append((name, case, shape))
    return rows


LOOP_ROWS = _loop_rows()


def _loop_graph(index: int, case: OpCase, shape: tuple[int, ...]):
    """The row's op at `shape` (operand dtypes as in the row), with seeded edge inputs."""
    dtypes = [DType.from_numpy(a.dtype) for a in _inputs(case)]
    types = [TensorType(shape, dtype) for dtype in dtypes]
    b = Builder(f"loop{index}")
    b.output(b.emit(case.prim, *[b.input(t) for t in types], **case.attrs))
    rng = np.random.default_rng(index)
    return b.build(), [random_array(rng, t) for t in types]


@pytest.fixture(scope="module")
def compiled_loops():
    built = [_loop_graph(i, case, shape) for i, (_, case, shape) in enumerate(LOOP_ROWS)]
    executables = codegen.compile_graphs([graph for graph, _ in built])
    return {name: (graph, inputs, exe) for (name, _, _), (graph, inputs), exe
            in zip(LOOP_ROWS, built, executables)}


@pytest.mark.parametrize("name, case, shape", LOOP_ROWS, ids=[row[0] for row in LOOP_ROWS])
def test_compiled_loops_match_interpreter_on_edge_values(compiled_loops, name, case, shape):
    graph, inputs, exe = compiled_loops[name]
    (got,) = exe(*inputs)
    (want,) = interpret(graph, *inputs)
    if case.prim in ULPS:
        eps = np.finfo(want.dtype).eps if case.prim in ("sin", "cos") else 0.0
        assert_matches(got, want, name, "ulp", ulps=ULPS[case.prim], atol=eps)
    else:
        assert_matches(got, want, name, "exact")
