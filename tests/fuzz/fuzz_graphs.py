"""The graph fuzzer's pieces: random graphs and inputs, and the end-to-end check.

    from fuzz_graphs import fuzz_cases, check_graph
    @given(fuzz_cases())
    def test(case):
        check_graph(*case)

Graphs come from tests/ir/graph_strategies.py (every primitive, every dtype it
accepts, broadcasting, reductions, dots, slices, pads), drawn with wider dimension
sizes than its defaults so vector loop bodies and their odd remainders are
exercised (7, 16, 17, 33 next to 0..5). Inputs are seeded normals / small ints /
random bools, optionally laced with special values: NaN of both signs, ±inf, ±0,
subnormals and integer extremes (INT_MIN // -1, INT_MAX + 1).

`check_graph` runs the whole pipeline on one graph and raises `FuzzFailure` (an
AssertionError whose message holds the graph as IR text) at the first stage that
misbehaves: verify, print/parse round trip, interpret, simplify (must compute
the same values), compile, compiled vs interpreted values (the graph as drawn, and
simplified, which is what pc.compile compiles).
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import numpy as np
from hypothesis import strategies as st

import codegen
import graph_strategies
import ir
from graph_strategies import graphs
from ir.interpret import interpret_values
from ir.passes.simplify import simplify

FUZZ_DIM_SIZES = (1, 2, 3, 0, 5, 7, 16, 17, 33)
FLOAT_SPECIALS = (np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, -1e-310, 1.0, -1.0)
INT_SPECIALS = {np.dtype(np.int32): (-2**31, 2**31 - 1, -1, 0, 1),
                np.dtype(np.int64): (-2**63, 2**63 - 1, -1, 0, 1)}

# Per-dtype comparison of float results: |compiled - interpreted| <= atol + rtol*|ref|.
# Loose enough for reordered sums and few-ulp transcendentals through short chains.
TOLERANCES = {np.dtype(np.float32): (2e-4, 1e-5), np.dtype(np.float64): (1e-9, 1e-12)}


class FuzzFailure(AssertionError):
    """A fuzzed graph misbehaved; the message names the stage and shows the graph."""


@contextlib.contextmanager
def wider_dimensions(sizes: tuple[int, ...] = FUZZ_DIM_SIZES) -> Iterator[None]:
    """Let graph_strategies draw dimensions from `sizes` while the block runs.

    graph_strategies reads its module-level DIM_SIZES at draw time; swapping it
    here (and always restoring it) keeps its other users on the small defaults.
    """
    saved = graph_strategies.DIM_SIZES
    graph_strategies.DIM_SIZES = sizes
    try:
        yield
    finally:
        graph_strategies.DIM_SIZES = saved


@st.composite
def fuzz_graphs(draw, max_ops: int = 8) -> ir.Graph:
    """A random well-typed graph with up to `max_ops` ops and fuzz-sized dims."""
    with wider_dimensions():
        return draw(graphs(max_ops=max_ops))


def make_inputs(graph: ir.Graph, seed: int, special_rate: float) -> list[np.ndarray]:
    """Seeded arrays for `graph`'s inputs, a `special_rate` fraction of elements special."""
    rng = np.random.default_rng(seed)
    arrays = []
    for value in graph.inputs:
        dtype = value.dtype.numpy
        if value.dtype.is_float:
            array = rng.standard_normal(value.shape).astype(dtype)
            specials = FLOAT_SPECIALS
        elif value.dtype.is_int:
            array = rng.integers(-5, 6, size=value.shape).astype(dtype)
            specials = INT_SPECIALS[dtype]
        else:
            array = np.asarray(rng.random(value.shape) < 0.5)
            specials = ()
        if specials and array.size and special_rate > 0:
            picks = rng.random(array.shape) < special_rate
            choices = np.array(specials, dtype=dtype)
            array[picks] = choices[rng.integers(0, len(choices), size=int(picks.sum()))]
        arrays.append(array)
    return arrays


@st.composite
def fuzz_cases(draw, max_ops: int = 8) -> tuple[ir.Graph, list[np.ndarray]]:
    """(graph, inputs): inputs are plain half the time, laced with specials otherwise."""
    graph = draw(fuzz_graphs(max_ops))
    seed = draw(st.integers(0, 2**32 - 1))
    rate = draw(st.sampled_from([0.0, 0.0, 0.1, 0.5]))
    return graph, make_inputs(graph, seed, rate)


# --------------------------------------------------------------------------------------
# comparing results


def describe_inputs(arrays: list[np.ndarray]) -> str:
    lines = []
    for i, array in enumerate(arrays):
        with np.printoptions(threshold=20, edgeitems=3):
            lines.append(f"  input {i}: {array.dtype}{list(array.shape)} = "
                         f"{np.array2string(array, separator=', ')}")
    return "\n".join(lines)


def output_precisions(graph: ir.Graph) -> list[np.dtype]:
    """The dtype whose TOLERANCES each output of `graph` is compared with: float32
    when an op upstream of it (or making it) computes a float32 value, since that
    value's few-ulp error survives a later convert to float64; else its own dtype."""
    computes_f32: dict[ir.Value, bool] = {}
    for op in graph.ops:
        for result in op.results:             # (control-flow ops have several)
            own = bool(op.operands) and result.dtype is ir.DType.f32
            computes_f32[result] = own or any(computes_f32.get(v, False) for v in op.operands)
    return [np.dtype(np.float32) if computes_f32.get(v, False) else v.dtype.numpy
            for v in graph.outputs]


# Ops whose compiled results may differ from the interpreter's by a few ulps.
INEXACT = frozenset({"exp", "log", "tanh", "sin", "cos", "pow", "reduce_sum", "dot",
                     "logsumexp"})
# Beyond these magnitudes, a few ulps of difference in an argument is more than the
# TOLERANCES allow in the result of sin/cos (whose absolute error is the argument's)
# or of pow (relative error: the exponent's magnitude times the base's relative one,
# and |y log x| times the exponent's).
ILL_CONDITIONED_FROM = {np.dtype(np.float32): 16.0, np.dtype(np.float64): 512.0}


def unreliable_elements(graph: ir.Graph, arrays: list[np.ndarray]) -> list[np.ndarray | None]:
    """Per output, a mask of the elements no oracle pins down (None: none of them).

    Compiled and interpreted code may round an INEXACT op a few ulps apart; that is
    within tolerance unless the value then feeds a function that magnifies it
    without bound: sin/cos of a huge argument (a few ulps of 1e20 are many periods),
    pow with a huge exponent. Such elements, and every element later computed from
    them (all of a non-elementwise result), are left out of the comparison."""
    values = interpret_values(graph, *arrays)
    inexact: dict[ir.Value, bool] = {}
    masks: dict[ir.Value, np.ndarray | None] = {}
    for op in graph.ops:
        operands = [values[v] for v in op.operands]
        if op.regions():      # a loop or branch: its regions may round like INEXACT ops
            for result in op.results:
                inexact[result] = True
                masks[result] = _unreliable_result(op, operands, [masks.get(v) for v in
                                                                  op.operands], [])
            continue
        inexact[op.result] = op.prim in INEXACT or any(inexact.get(v, False)
                                                       for v in op.operands)
        masks[op.result] = _unreliable_result(op, operands, [masks.get(v) for v in op.operands],
                                              [inexact.get(v, False) for v in op.operands])
    return [masks.get(v) for v in graph.outputs]


def _unreliable_result(op, operands: list, masks: list, inexact: list) -> np.ndarray | None:
    shape = op.result.shape
    if not ir.PRIMITIVES[op.prim].elementwise:
        if any(m is not None and m.any() for m in masks):
            return np.ones(shape, bool)
        return None
    found = np.zeros(shape, bool)
    for mask in masks:
        if mask is not None:
            found |= mask
    limit = ILL_CONDITIONED_FROM.get(np.dtype(op.result.dtype.numpy))
    with np.errstate(all="ignore"):
        if op.prim in ("sin", "cos") and inexact[0]:
            found |= np.abs(operands[0]) > limit
        if op.prim == "pow" and limit is not None:
            base, exponent = (np.asarray(a, np.float64) for a in operands)
            if inexact[0]:
                found |= np.abs(exponent) > limit
            if inexact[1]:
                found |= np.abs(exponent * np.log(np.abs(base))) > limit
    return found if found.any() else None


def leaf_mismatch(actual: np.ndarray, expected: np.ndarray,
                  precision: np.dtype | None = None,
                  unreliable: np.ndarray | None = None) -> str | None:
    """Why `actual` does not match `expected` (None when it does).

    Types must be identical; ints and bools equal; floats: NaN and ±inf in exactly
    the same places, finite values within the TOLERANCES of `precision` (default:
    the expected dtype; see output_precisions), ±0 counting as equal. Elements in
    `unreliable` (see unreliable_elements) are not compared.
    """
    if not isinstance(actual, np.ndarray):
        return f"result is a {type(actual).__name__}, not an ndarray"
    if actual.shape != expected.shape or actual.dtype != expected.dtype:
        return (f"type {actual.dtype}{list(actual.shape)} != expected "
                f"{expected.dtype}{list(expected.shape)}")
    if expected.dtype.kind != "f":
        bad = actual != expected
    else:
        rtol, atol = TOLERANCES[expected.dtype if precision is None else precision]
        nan_a, nan_e = np.isnan(actual), np.isnan(expected)
        inf_differs = np.isinf(expected) & (actual != expected)
        with np.errstate(invalid="ignore", over="ignore"):
            error = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
            far = np.isfinite(expected) & ~(error <= atol + rtol * np.abs(expected))
        bad = (nan_a != nan_e) | inf_differs | far
    if unreliable is not None:
        bad = bad & ~unreliable
    if not bad.any():
        return None
    where = [tuple(int(i) for i in index) for index in np.argwhere(bad)[:4]]
    return (f"{int(bad.sum())} element(s) differ, first at {where}: "
            f"got {[actual[w].item() for w in where]}, want {[expected[w].item() for w in where]}")


def outputs_mismatch(actual: list, expected: list[np.ndarray],
                     precisions: list[np.dtype] | None = None,
                     unreliable: list | None = None) -> str | None:
    """The first differing output leaf, described, or None; `precisions` (one per
    output, from output_precisions) choose the tolerances, `unreliable` (from
    unreliable_elements) masks elements out."""
    if len(actual) != len(expected):
        return f"{len(actual)} outputs, expected {len(expected)}"
    precisions = precisions or [None] * len(expected)
    unreliable = unreliable or [None] * len(expected)
    for i, (a, e, precision, mask) in enumerate(zip(actual, expected, precisions, unreliable)):
        reason = leaf_mismatch(a, e, precision, mask)
        if reason is not None:
            return f"output {i}: {reason}"
    return None


# --------------------------------------------------------------------------------------
# the end-to-end check


def fail(stage: str, detail: str, graph: ir.Graph, arrays: list[np.ndarray]) -> FuzzFailure:
    return FuzzFailure(f"{stage}: {detail}\n--- graph ---\n{graph}\n--- inputs ---\n"
                       f"{describe_inputs(arrays)}")


def check_graph(graph: ir.Graph, arrays: list[np.ndarray]) -> None:
    """Verify, round-trip, interpret, simplify, compile and compare one graph."""
    try:
        ir.verify(graph)
    except ir.VerifyError as err:
        raise fail("verify rejected a builder-made graph", str(err), graph, arrays) from None
    check_round_trip(graph, arrays)
    expected = ir.interpret(graph, *arrays)
    simplified = simplify(graph)
    ir.verify(simplified)
    reason = outputs_mismatch(ir.interpret(simplified, *arrays), expected)
    if reason is not None:
        raise fail("simplify changed the values", f"{reason}\n--- simplified ---\n{simplified}",
                   graph, arrays)
    precisions = output_precisions(graph)
    unreliable = unreliable_elements(graph, arrays)
    executable = codegen.compile_graph(graph)
    reason = outputs_mismatch(executable(*[a.copy() for a in arrays]), expected, precisions,
                              unreliable)
    if reason is not None:
        raise fail("compiled differs from interpreted", reason, graph, arrays)
    if simplified != graph:  # what pc.compile compiles: also check the simplified graph
        reason = outputs_mismatch(codegen.compile_graph(simplified)(*arrays), expected,
                                  precisions, unreliable)
        if reason is not None:
            raise fail("compiled simplified graph differs from interpreted",
                        f"{reason}\n--- simplified ---\n{simplified}", graph, arrays)


def check_round_trip(graph: ir.Graph, arrays: list[np.ndarray]) -> None:
    text = str(graph)
    try:
        parsed = ir.parse(text)
    except ir.ParseError as err:
        raise fail("printed text does not parse", str(err), graph, arrays) from None
    if parsed != graph or str(parsed) != text:
        raise fail("parse(str(g)) != g", f"re-printed:\n{parsed}", graph, arrays)
