"""The graph fuzzer, CI-sized: random graphs through verify, print/parse,
interpret, simplify, compile and compare; differentiable ones through vjp_graph,
finite differences, partition and the compiled passes. `python tools/fuzz.py
--examples 10000` runs the same checks at length.

The last tests make sure the checks can fail: a deliberately wrong backend or VJP
rule is caught, with the graph printed as IR text.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings

import codegen
import fuzz_graphs
import ir
from fuzz_graphs import FuzzFailure, check_graph, fuzz_cases, leaf_mismatch
from fuzz_grads import check_gradients, gradient_cases, widen_to_f64
from ir.passes.vjp_rules import VJP_RULES

CI_SETTINGS = settings(max_examples=100, deadline=None,
                       suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@CI_SETTINGS
@given(fuzz_cases())
def test_random_graphs_compile_to_what_the_interpreter_computes(case):
    check_graph(*case)


@CI_SETTINGS
@given(gradient_cases())
def test_random_graphs_have_gradients_matching_finite_differences(case):
    checked = check_gradients(*case)
    event("gradient checked" if checked else "nothing differentiable or not finite")


# --------------------------------------------------------------------------------------
# the checks themselves


def _exp_graph() -> ir.Graph:
    builder = ir.Builder("f")
    x = builder.input(ir.TensorType((3, 4), ir.DType.f64))
    builder.output(builder.emit("reduce_sum", builder.exp(x), axes=(1,)))
    return builder.build()


def test_a_wrong_backend_result_is_reported_with_the_graph(monkeypatch):
    real_compile = fuzz_graphs.codegen.compile_graph

    def off_by_one(graph):
        executable = real_compile(graph)
        return lambda *arrays: [out + 1 for out in executable(*arrays)]

    monkeypatch.setattr(fuzz_graphs.codegen, "compile_graph", off_by_one)
    graph = _exp_graph()
    with pytest.raises(FuzzFailure, match="compiled differs") as caught:
        check_graph(graph, [np.ones((3, 4))])
    assert str(graph) in str(caught.value)


def test_a_wrong_vjp_rule_is_caught_by_finite_differences(monkeypatch):
    """exp's rule returning the bare cotangent (forgetting the factor exp(x))."""
    monkeypatch.setitem(VJP_RULES, "exp", lambda b, g, op, operands: [g])
    graph = _exp_graph()
    rng = np.random.default_rng(0)
    with pytest.raises(FuzzFailure, match="central differences") as caught:
        check_gradients(graph, [rng.standard_normal((3, 4))], [rng.standard_normal(3)])
    assert str(graph) in str(caught.value)


def test_correct_gradients_pass_and_kinks_are_skipped():
    graph = _exp_graph()
    rng = np.random.default_rng(1)
    assert check_gradients(graph, [rng.standard_normal((3, 4))], [rng.standard_normal(3)])
    builder = ir.Builder("kink")
    x = builder.input(ir.TensorType((2,), ir.DType.f64))
    builder.output(builder.abs(x))
    # |x| at 5e-7: the first step (1e-6) straddles the kink and gives 0.5, the second
    # (1e-5) 0.05; differences that disagree with each other mean "not smooth here".
    assert check_gradients(builder.build(), [np.array([0.5, 5e-7])],
                           [np.array([1.0, 1.0])]) is False


def test_a_huge_output_swamping_the_differences_is_inconclusive_not_a_failure():
    """Found by the fuzzer itself: with a constant output of -1.9e181, sum(out * ct)
    rounds away every change of the other outputs, so the differences read 0."""
    builder = ir.Builder("swamped")
    x = builder.input(ir.TensorType((3,), ir.DType.f64))
    builder.output(builder.emit("constant", value=np.array(-1.9e181)), builder.exp(x))
    graph = builder.build()
    rng = np.random.default_rng(2)
    assert check_gradients(graph, [rng.standard_normal(3)],
                           [np.array(1.2), rng.standard_normal(3)]) is False


def test_leaf_mismatch_requires_nan_and_inf_in_the_same_places():
    f = np.float32
    assert leaf_mismatch(np.array([1, np.nan], f), np.array([1, 2], f))
    assert leaf_mismatch(np.array([1, 2], f), np.array([1, np.nan], f))
    assert leaf_mismatch(np.array([np.inf], f), np.array([-np.inf], f))
    assert leaf_mismatch(np.array([1.001], f), np.array([1], f))
    assert leaf_mismatch(np.array([1], np.int32), np.array([1], np.int64))
    assert leaf_mismatch(np.array([2**31 - 1], np.int32), np.array([-2**31], np.int32))
    assert leaf_mismatch(np.array([1.00001, -0.0, np.nan], f), np.array([1, 0.0, -np.nan], f)) \
        is None


def test_widen_to_f64_keeps_the_computation():
    builder = ir.Builder("g")
    x = builder.input(ir.TensorType((4,), ir.DType.f32))
    i = builder.emit("iota", shape=(4,), dtype=ir.DType.f32, dimension=0)
    half = builder.emit("constant", value=np.full(4, 0.5, np.float32))
    y = builder.emit("convert", builder.mul(builder.add(x, i), half), dtype=ir.DType.f32)
    builder.output(y, builder.emit("convert", y, dtype=ir.DType.i32))
    graph = builder.build()
    wide = widen_to_f64(graph)
    ir.verify(wide)
    assert "f32" not in str(wide)
    x_value = np.array([0.25, -1.5, 2.0, 3.75], np.float32)
    wide_value = x_value.astype(np.float64)
    for narrow, widened in zip(ir.interpret(graph, x_value), ir.interpret(wide, wide_value)):
        np.testing.assert_allclose(widened, narrow, rtol=1e-6)


def _cos_then_widen_graph() -> ir.Graph:
    builder = ir.Builder("A")
    x = builder.input(ir.TensorType((7,), ir.DType.f32))
    builder.output(builder.emit("convert", builder.cos(x), dtype=ir.DType.f64),
                   builder.emit("convert", x, dtype=ir.DType.f64))
    return builder.build()


def test_output_precisions_are_float32_below_a_float32_computation():
    graph = _cos_then_widen_graph()
    assert fuzz_graphs.output_precisions(graph) == [np.dtype(np.float32), np.dtype(np.float64)]


def test_regression_f32_cos_widened_to_f64_compared_at_f64_tolerance():
    """Found at example 6499 of the long run: cos of f32 converted to f64. The compiled
    cos(-1.1211227) is the correctly rounded float32, NumPy's is one ulp away; the
    fuzzer compared the widened values with float64's tolerance (1e-9)."""
    x = np.array([0.5835341, -1.4385227, 2.118803, -1.3420445, 0.91980726, -1.1211227,
                  1.1508831], np.float32)
    exact = np.cos(x.astype(np.float64))
    compiled = codegen.compile_graph(_cos_then_widen_graph())(x)[0]
    np.testing.assert_allclose(compiled, exact, rtol=float(np.finfo(np.float32).eps))
    check_graph(_cos_then_widen_graph(), [x])
    wrong = compiled.copy()
    wrong[5] += 1e-3                        # beyond float32 tolerance: still caught
    assert fuzz_graphs.outputs_mismatch([wrong, x.astype(np.float64)],
                                        ir.interpret(_cos_then_widen_graph(), x),
                                        fuzz_graphs.output_precisions(_cos_then_widen_graph()))


def _cos_of_pow_graph() -> ir.Graph:
    builder = ir.Builder("A")
    x = builder.input(ir.TensorType((3,), ir.DType.f64))
    y = builder.input(ir.TensorType((3,), ir.DType.f64))
    power = builder.pow(x, y)
    builder.output(builder.cos(power), builder.cos(x), builder.reduce_sum(builder.cos(power),
                                                                          axes=(0,)))
    return builder.build()


def test_regression_cos_of_a_huge_pow_one_ulp_apart_is_not_compared():
    """Found at example 8508 of a long run (seed 316312482): cos(pow(1e-40, -0.96)).
    The compiled pow is 2.5160411551579472e+38, NumPy's 2.516041155157947e+38 (one
    ulp, within pow's bound); one ulp of 2.5e38 is ~1e22 periods of cos, so the two
    cosines share nothing. Such elements (and what is computed from them) are left
    out; well-conditioned ones are still compared."""
    x = np.array([1e-40, 2.0, 1e-40])
    y = np.array([-0.9600179435158314, 3.0, -0.2])
    graph = _cos_of_pow_graph()
    masks = fuzz_graphs.unreliable_elements(graph, [x, y])
    np.testing.assert_array_equal(masks[0], [True, False, True])   # pow = 2.5e38, 8, 1e8
    assert masks[1] is None                                       # cos of an input: exact
    np.testing.assert_array_equal(masks[2], True)                 # a sum over a masked row
    check_graph(graph, [x, y])
    wrong = ir.interpret(graph, x, y)
    wrong[0][1] += 1e-6                     # a well-conditioned element: still caught
    assert fuzz_graphs.outputs_mismatch(wrong, ir.interpret(graph, x, y), None, masks)


def _min_of_pole_graph() -> ir.Graph:
    builder = ir.Builder("A")
    x, y = (builder.input(ir.TensorType((), ir.DType.f64)) for _ in range(2))
    builder.output(builder.min(x, builder.pow(builder.sub(x, x), y)))
    return builder.build()


def test_regression_zero_cotangent_times_infinite_derivative_is_inconclusive():
    """Found at gradient example 6476 of a long run (seed 316312482):
    min(x, pow(x - x, -0.13)) = min(x, inf) = x. The branch min does not take gets a
    zero cotangent and pow's rule multiplies it by the infinite derivative at 0
    (0 * inf = NaN), as the README documents for a single `where`; the differences
    see only x. Skipped as inconclusive, not a failure; a wrong finite gradient in a
    graph with an infinite intermediate is still caught."""
    graph = _min_of_pole_graph()
    inputs, cotangents = [np.array(0.12573022), np.array(-0.13210486)], [np.array(0.10490012)]
    assert check_gradients(graph, inputs, cotangents) is False


def test_a_wrong_finite_gradient_next_to_an_infinite_value_still_fails(monkeypatch):
    monkeypatch.setitem(VJP_RULES, "min", lambda b, g, op, operands: [b.add(g, g), None])
    with pytest.raises(FuzzFailure, match="central differences"):
        check_gradients(_min_of_pole_graph(), [np.array(0.12573022), np.array(-0.13210486)],
                        [np.array(0.10490012)])


def test_regression_opposite_infinite_derivatives_are_inconclusive():
    """Found at gradient example 6476 of the rerun with the same seed: pow(x - x, 0.9)
    = pow(0, 0.9) is 0 for every x, but pow's slope at 0 is infinite and the chain
    rule adds inf * 1 and inf * -1 (NaN); the differences see the constant 0."""
    builder = ir.Builder("A")
    x, y = (builder.input(ir.TensorType((), ir.DType.f64)) for _ in range(2))
    builder.output(builder.pow(builder.sub(x, x), y))
    assert check_gradients(builder.build(), [np.array(1.45544253), np.array(0.90468007)],
                           [np.array(-0.53566937)]) is False
