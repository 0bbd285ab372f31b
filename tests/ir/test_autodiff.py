"""vjp_graph (ir/passes/autodiff.py): whole models against hand-written NumPy
backpropagation, stability at extreme logits, second order, and the pass's own
contract (layout of the joint graph, Zero handling, purity, locations)."""
from __future__ import annotations

import numpy as np
import pytest

import ir
from ir import Builder, DType, Graph, SourceLoc, TensorType
from ir.differences import directional_difference
from ir.passes.autodiff import AutodiffError, VJPGraph, vjp_graph

from fd import check_vjp, f64, graph_of, vjp_by_graph
from mlp_graphs import mlp_backprop, mlp_graph, mlp_inputs, softmax, softmax_cross_entropy
from tolerances import tol



def roundtrips(graph: Graph) -> None:
    ir.verify(graph)
    assert ir.parse(str(graph)) == graph


# --------------------------------------------------------------------------------------
# models against a backpropagation written by hand


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss,sizes", [("cross_entropy", [5, 7, 6, 4]), ("mse", [4, 6, 3])])
def test_mlp_gradients_match_handwritten_backprop(dtype, loss, sizes):
    graph = mlp_graph(sizes, batch=8, dtype=DType.from_numpy(dtype), loss=loss)
    inputs = mlp_inputs(sizes, 8, dtype, np.random.default_rng(1), loss)
    primal, grads = vjp_by_graph(graph, inputs, [np.ones((), dtype)])
    reference = mlp_backprop([a.astype(np.float64) for a in inputs], loss)
    assert len(grads) == len(inputs)
    for index, (got, expected) in enumerate(zip(grads, reference)):
        assert got.dtype == dtype and got.shape == inputs[index].shape
        np.testing.assert_allclose(got, expected, **tol("backprop", dtype),
                                   err_msg=f"{loss} {dtype.__name__}: input {index}")


def test_mlp_gradient_matches_finite_differences():
    graph = mlp_graph([3, 4, 2], batch=3, dtype=DType.f64)
    rng = np.random.default_rng(2)
    check_vjp(graph, mlp_inputs([3, 4, 2], 3, np.float64, rng), rng, what="mlp")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_gradient_is_finite_at_extreme_logits(dtype):
    logits = np.array([[100.0, -100.0, 0.0], [-100.0, -100.0, 100.0],
                       [100.0, 100.0, -100.0], [-100.0, 100.0, 100.0]], dtype=dtype)
    targets = np.eye(3, dtype=dtype)[[1, 2, 0, 0]]
    graph = graph_of(softmax_cross_entropy, TensorType((4, 3), DType.from_numpy(dtype)),
                     TensorType((4, 3), DType.from_numpy(dtype)))
    (loss,), (ct_logits, ct_targets) = vjp_by_graph(graph, [logits, targets],
                                                    [np.ones((), dtype)])
    z = logits.astype(np.float64)
    log_softmax = z - z.max(1, keepdims=True) - np.log(
        np.exp(z - z.max(1, keepdims=True)).sum(1, keepdims=True))
    assert np.isfinite(loss) and np.all(np.isfinite(ct_logits)) and np.all(np.isfinite(ct_targets))
    np.testing.assert_allclose(loss, -(targets * log_softmax).sum() / 4, rtol=1e-6)
    np.testing.assert_allclose(ct_logits, (softmax(z) - targets) / 4, atol=1e-7)
    np.testing.assert_allclose(ct_targets, -log_softmax / 4, rtol=1e-6)


def test_seeded_outputs_alone_take_cotangents():
    """seeded=[0]: output 1 (an aux value) is computed but not differentiated, so the
    joint graph has one cotangent input and gives d(output 0)/dx alone."""
    b = Builder("aux")
    x = b.input(TensorType((3,), DType.f64))
    y = b.tanh(x)
    b.output(b.reduce_sum(b.mul(y, y), axes=(0,)), b.sin(x))
    graph = b.build()
    vjp = vjp_graph(graph, seeded=[0])
    assert vjp.cotangent_outputs == (0,)
    assert len(vjp.graph.inputs) == 2 and "sin" in [op.prim for op in vjp.graph.ops]
    xs = np.array([0.3, -1.2, 2.0])
    loss, aux, grad = ir.interpret(vjp.graph, xs, np.float64(1.0))
    t = np.tanh(xs)
    np.testing.assert_allclose([loss, *aux], [(t * t).sum(), *np.sin(xs)], rtol=1e-12)
    np.testing.assert_allclose(grad, 2 * t * (1 - t * t), rtol=1e-12)


# --------------------------------------------------------------------------------------
# second order


def gradient_graph(graph: Graph) -> Graph:
    """A graph computing d(out)/d(input 0) of a scalar graph, from vjp_graph."""
    vjp = vjp_graph(graph, [0])
    joint = vjp.graph
    return Graph(f"{graph.name}_grad", list(joint.inputs), list(joint.ops),
                 [joint.outputs[vjp.num_primal_outputs]])


def scalar_function(b, x, w):
    """sum(tanh(w @ x)) + sum(x * x * sin(x)): a scalar with a dense Hessian."""
    wx = b.dot(w, x, lhs_batch=(), rhs_batch=(), lhs_contract=(1,), rhs_contract=(0,))
    cubic = b.mul(b.mul(x, x), b.sin(x))
    return b.add(b.reduce_sum(b.tanh(wx), axes=(0,)), b.reduce_sum(cubic, axes=(0,)))


def test_hessian_vector_product_matches_differences_of_the_gradient():
    rng = np.random.default_rng(3)
    graph = graph_of(scalar_function, f64(4), f64(3, 4))
    grad = gradient_graph(graph)
    second = vjp_graph(grad, [0])
    roundtrips(second.graph)
    x, w, v = rng.standard_normal(4), rng.standard_normal((3, 4)), rng.standard_normal(4)
    one = np.ones(())
    hvp = ir.interpret(second.graph, x, w, one, v)[1]
    numeric = directional_difference(lambda y: ir.interpret(grad, y, w, one)[0], x, v, 1e-5)
    np.testing.assert_allclose(hvp, numeric, rtol=1e-6, atol=1e-8)


def test_second_order_graph_checks_against_differences_for_every_input():
    rng = np.random.default_rng(4)
    grad = gradient_graph(graph_of(scalar_function, f64(4), f64(3, 4)))
    inputs = [rng.standard_normal(4), rng.standard_normal((3, 4)), np.array(0.7)]
    check_vjp(grad, inputs, rng, what="gradient graph")


# --------------------------------------------------------------------------------------
# layout of the joint graph


def test_joint_graph_layout_with_integer_output_and_input():
    graph = graph_of(lambda b, x, n: (b.exp(x), b.convert(x, dtype=DType.i32),
                                      b.mul(x, b.convert(n, dtype=DType.f64))),
                     f64(3), TensorType((3,), DType.i32))
    vjp = vjp_graph(graph)
    assert isinstance(vjp, VJPGraph)
    assert (vjp.num_primal_inputs, vjp.num_primal_outputs) == (2, 3)
    assert vjp.cotangent_outputs == (0, 2) and vjp.wrt == (0,)
    assert [v.type for v in vjp.graph.inputs] == [f64(3), TensorType((3,), DType.i32),
                                                  f64(3), f64(3)]
    assert [v.type for v in vjp.graph.outputs] == graph.output_types + [f64(3)]
    roundtrips(vjp.graph)
    x, n = np.array([0.1, -0.5, 2.0]), np.array([2, 0, -1], np.int32)
    g0, g2 = np.array([1.0, 2.0, 3.0]), np.array([-1.0, 0.5, 4.0])
    results = ir.interpret(vjp.graph, x, n, g0, g2)
    np.testing.assert_allclose(results[3], g0 * np.exp(x) + g2 * n, rtol=1e-15)


def test_wrt_order_duplicates_and_non_float_entries():
    graph = graph_of(lambda b, x, n, y: b.mul(x, y), f64(2), TensorType((2,), DType.i64), f64(2))
    vjp = vjp_graph(graph, [2, 1, 0, 2])
    assert vjp.wrt == (2, 0, 2)
    x, y, g = np.array([1.0, 2.0]), np.array([3.0, 5.0]), np.array([1.0, -1.0])
    _, ct_y, ct_x, ct_y_again = ir.interpret(vjp.graph, x, np.zeros(2, np.int64), y, g)
    np.testing.assert_array_equal(ct_y, g * x)
    np.testing.assert_array_equal(ct_x, g * y)
    np.testing.assert_array_equal(ct_y_again, g * x)


@pytest.mark.parametrize("wrt", [[3], [-1], [True], ["0"]])
def test_bad_wrt_raises_a_clear_error(wrt):
    graph = graph_of(lambda b, x, y: b.add(x, y), f64(2), f64(2))
    with pytest.raises(AutodiffError, match="wrt index"):
        vjp_graph(graph, wrt)
    assert issubclass(AutodiffError, ValueError)


def test_fan_out_and_repeated_outputs_accumulate():
    graph = graph_of(lambda b, x: (x, b.exp(x), b.exp(x), x), f64(3))
    g = [np.array([1.0, 2.0, 3.0]) * k for k in (1, 2, 3, 4)]
    x = np.array([0.5, -1.0, 0.0])
    _, (ct,) = vjp_by_graph(graph, [x], g)
    np.testing.assert_allclose(ct, g[0] + g[3] + np.exp(x) * (g[1] + g[2]), rtol=1e-15)


def test_unused_input_gets_explicit_zeros_and_nothing_else_is_zero():
    graph = graph_of(lambda b, x, y: b.reduce_sum(b.tanh(x), axes=(0,)), f64(3), f64(2, 2))
    vjp = vjp_graph(graph)
    ct_y = vjp.graph.outputs[2]
    assert ct_y.producer.prim == "broadcast_in_dim"
    assert float(ct_y.producer.operands[0].producer.attrs["value"]) == 0.0
    _, (ct_x, zeros) = vjp_by_graph(graph, [np.ones(3), np.ones((2, 2))], [np.ones(())])
    np.testing.assert_array_equal(zeros, np.zeros((2, 2)))
    zero_constants = [op for op in vjp.graph.ops if op.prim == "constant"
                      and not np.any(op.attrs["value"])]
    assert len(zero_constants) == 1


def test_no_zero_arrays_or_useless_adds_in_a_model_gradient():
    graph = mlp_graph([4, 5, 3], batch=2, dtype=DType.f32)
    ops = vjp_graph(graph).graph.ops
    assert not [op for op in ops if op.prim == "constant" and not np.any(op.attrs["value"])]
    # adds in the backward come only from real fan-out: in this model the one value
    # with two differentiated readers is the shifted logits (exp and the log-softmax
    # subtraction); the max shift is stopped, so the logits themselves have one
    backward_adds = [op for op in ops[len(graph.ops):] if op.prim == "add"]
    assert len(backward_adds) == 1


def test_pass_is_pure_and_deterministic():
    graph = mlp_graph([4, 5, 3], batch=2, dtype=DType.f64)
    before = str(graph)
    first, second = vjp_graph(graph), vjp_graph(ir.parse(before))
    assert str(graph) == before
    assert str(first.graph) == str(second.graph)
    assert first.graph == second.graph
    roundtrips(first.graph)


def test_backward_ops_carry_the_location_of_the_op_they_differentiate():
    b = Builder("f")
    x = b.input(f64(3))
    with b.at(SourceLoc("model.py", 1)):
        y = b.tanh(x)
    with b.at(SourceLoc("model.py", 2)):
        z = b.reduce_sum(b.mul(y, y), axes=(0,))
    b.output(z)
    graph = b.build()
    joint = vjp_graph(graph).graph
    backward_ops = joint.ops[len(graph.ops):]
    assert backward_ops and all(op.loc is not None for op in backward_ops)
    tanh_rule_ops = [op for op in backward_ops if op.prim == "sub"]   # 1 - y*y
    assert [op.loc for op in tanh_rule_ops] == [SourceLoc("model.py", 1)]
    assert {op.loc for op in backward_ops} == {SourceLoc("model.py", 1), SourceLoc("model.py", 2)}


def test_gradient_through_a_graph_with_unreachable_input():
    graph = graph_of(lambda b, x, y: b.mul(x, b.stop_gradient(y)), f64(2), f64(2))
    x, y, g = np.array([1.0, 2.0]), np.array([3.0, 4.0]), np.array([1.0, 1.0])
    _, (ct_x, ct_y) = vjp_by_graph(graph, [x, y], [g])
    np.testing.assert_array_equal(ct_x, y)
    np.testing.assert_array_equal(ct_y, np.zeros(2))
