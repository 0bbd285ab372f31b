"""The batching pass (ir/passes/batching.py) on every row of the per-primitive table
(tests/op_cases.py): the batched one-op graph, interpreted and compiled, equals the
row's independent NumPy reference applied to each example in a Python loop."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import codegen
import ir
from ir.passes.batching import BatchingError, batch_graph

sys.path.append(str(Path(__file__).resolve().parents[1]))
from graph_strategies import graphs, sample_inputs  # noqa: E402
from op_cases import OP_CASES, OpCase, assert_close  # noqa: E402

BATCH = 3


def _variants(case: OpCase) -> list[tuple[bool, ...]]:
    """Which operands carry the batch axis: all, and for several operands also only
    the first and only the last (the others are shared by every example)."""
    arity = len(case.shapes)
    variants = [(True,) * arity]
    if arity > 1:
        variants += [(True,) + (False,) * (arity - 1), (False,) * (arity - 1) + (True,)]
    return variants


def _batched_inputs(case: OpCase, flags: tuple[bool, ...], seed: int):
    """Per-example operand lists (shared operands identical) and the batched operands."""
    rng = np.random.default_rng(seed)
    shared = case.make_inputs(rng)
    examples = []
    for _ in range(BATCH):
        fresh = case.make_inputs(rng)
        examples.append([f if flag else s for f, s, flag in zip(fresh, shared, flags)])
    batched = [np.stack([ex[i] for ex in examples]) if flag else shared[i]
               for i, flag in enumerate(flags)]
    return examples, batched


def _expected(case: OpCase, examples: list) -> np.ndarray:
    return np.stack([case.reference(*operands) for operands in examples])


ROWS = [(case, flags) for case in OP_CASES if case.shapes for flags in _variants(case)]


def _row_id(row) -> str:
    case, flags = row
    return case.id + "-" + "".join("b" if f else "s" for f in flags)


@pytest.mark.parametrize("row", ROWS, ids=_row_id)
def test_batched_op_matches_a_loop_over_examples(row):
    case, flags = row
    examples, batched = _batched_inputs(case, flags, seed=1)
    result = batch_graph(case.graph(examples[0]), flags, BATCH)
    ir.verify(result.graph)
    assert result.out_batched == (True,)
    (got,) = ir.interpret(result.graph, *batched)
    assert_close(got, _expected(case, examples), case.exact, _row_id(row))


@pytest.mark.parametrize("case", [c for c in OP_CASES if not c.shapes], ids=lambda c: c.id)
def test_sources_are_not_batched(case):
    result = batch_graph(case.graph([]), [], BATCH)
    assert result.out_batched == (False,)
    assert_close(ir.interpret(result.graph)[0], case.reference(), True, case.id)


def test_batched_ops_compile_and_match_the_loop():
    """The float32 rows' batched graphs (every primitive, the interpreted test has
    the other shape classes), compiled in one module."""
    rows = [row for row in ROWS if row[0].dtype is ir.DType.f32
            and row[0].shape_class not in ("size1", "odd", "empty")]
    graphs, inputs, expected = [], [], []
    for case, flags in rows:
        examples, batched = _batched_inputs(case, flags, seed=2)
        graphs.append(batch_graph(case.graph(examples[0]), flags, BATCH).graph)
        inputs.append(batched)
        expected.append(_expected(case, examples))
    executables = codegen.compile_graphs(graphs)
    for row, exe, arrays, want in zip(rows, executables, inputs, expected):
        (got,) = exe(*arrays)
        assert_close(got, want, row[0].exact, "compiled " + _row_id(row))


def test_graph_size_does_not_depend_on_the_batch_size():
    case = next(c for c in OP_CASES if c.prim == "dot" and c.shape_class == "batch")
    graph = case.graph(case.make_inputs(np.random.default_rng(0)))
    sizes = {len(batch_graph(graph, (True, False), n).graph.ops) for n in (1, 4, 64)}
    assert len(sizes) == 1


def test_bad_flags_are_an_error():
    case = next(c for c in OP_CASES if c.prim == "add")
    graph = case.graph(case.make_inputs(np.random.default_rng(0)))
    with pytest.raises(BatchingError, match="2 inputs"):
        batch_graph(graph, (True,), BATCH)
    with pytest.raises(BatchingError, match="batch size"):
        batch_graph(graph, (True, True), -1)


# --------------------------------------------------------------------------------------
# random graphs (tests/ir/graph_strategies.py): the batched graph against a loop


def _close(actual: np.ndarray, expected: np.ndarray) -> bool:
    """Ints and bools exactly; floats to a per-dtype tolerance (a batched product or
    sum may round differently), NaN where NaN, infinities where infinities."""
    if actual.dtype.kind != "f":
        return np.array_equal(actual, expected)
    tolerance = 1e-4 if actual.dtype == np.float32 else 1e-10
    return np.allclose(actual, expected, rtol=tolerance, atol=tolerance, equal_nan=True)


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(graph=graphs(max_ops=6, locs=False, residuals=False), data=st.data())
def test_random_graphs_batch_like_a_loop(graph, data):
    flags = data.draw(st.lists(st.booleans(), min_size=len(graph.inputs),
                               max_size=len(graph.inputs)))
    rng = np.random.default_rng(0)
    shared = sample_inputs(graph, rng)
    examples = [[fresh if flag else same for fresh, same, flag in
                 zip(sample_inputs(graph, rng), shared, flags)] for _ in range(BATCH)]
    batched_inputs = [np.stack([ex[i] for ex in examples]) if flag else shared[i]
                      for i, flag in enumerate(flags)]
    result = batch_graph(graph, flags, BATCH)
    with np.errstate(all="ignore"):
        got = ir.interpret(result.graph, *batched_inputs)
        loop = [ir.interpret(graph, *ex) for ex in examples]
    for index, (value, is_batched) in enumerate(zip(got, result.out_batched)):
        for example in range(BATCH):
            actual = value[example] if is_batched else value
            assert _close(actual, loop[example][index]), (
                f"output {index}, example {example}, flags {flags}\n{graph}")


@pytest.mark.parametrize("prim", ["dot", "concatenate", "pad", "select", "reduce_max"])
def test_the_unrolled_fallback_rule_matches_the_loop(prim, monkeypatch):
    """`defunrolled` (for a primitive without a real rule yet) on a few primitives."""
    from ir.passes import batch_rules
    monkeypatch.setitem(batch_rules.BATCH_RULES, prim, batch_rules._unrolled)
    for case in [c for c in OP_CASES if c.prim == prim and c.dtype is ir.DType.f64]:
        for flags in _variants(case):
            examples, batched = _batched_inputs(case, flags, seed=4)
            result = batch_graph(case.graph(examples[0]), flags, BATCH)
            (got,) = ir.interpret(result.graph, *batched)
            assert_close(got, _expected(case, examples), case.exact, _row_id((case, flags)))
