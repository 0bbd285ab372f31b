"""partition (ir/passes/partition.py): the forward/backward split of joint graphs —
exact residuals, recomposition to the joint result, no saved copies of inputs."""
from __future__ import annotations

import numpy as np
import pytest

import ir
from ir import DType, Graph, TensorType, Value
from ir.passes.autodiff import vjp_graph
from ir.passes.partition import partition

from fd import f64, graph_of, random_array, random_cotangents
from mlp_graphs import mlp_graph, mlp_inputs

COPY_PRIMS = {"reshape", "broadcast_in_dim", "transpose", "convert", "stop_gradient",
              "slice", "pad", "concatenate"}


def check_graphs(*graphs: Graph) -> None:
    for graph in graphs:
        ir.verify(graph)
        assert ir.parse(str(graph)) == graph
        assert str(graph).count("\n") > 1


def run_split(vjp, forward, backward, inputs, cotangents):
    """(forward outputs, residuals, backward outputs) from running the two passes."""
    results = ir.interpret(forward, *inputs)
    split = len(results) - forward.residual_outputs
    return results[:split], results[split:], ir.interpret(backward, *results[split:], *cotangents)


def assert_recomposes(vjp, forward, backward, inputs, cotangents):
    """Forward then backward gives exactly what the joint graph gives."""
    joint = ir.interpret(vjp.graph, *inputs, *cotangents)
    outputs, _, grads = run_split(vjp, forward, backward, inputs, cotangents)
    assert len(outputs) + len(grads) == len(joint)
    for got, expected in zip(outputs + grads, joint):
        np.testing.assert_array_equal(got, expected)


def is_copy_of_inputs(value: Value) -> bool:
    """Made from graph inputs and constants by data movement alone?"""
    op = value.producer
    if op is None or not op.operands:
        return True
    return op.prim in COPY_PRIMS and all(is_copy_of_inputs(v) for v in op.operands)


def residuals(forward: Graph) -> list[Value]:
    return forward.outputs[len(forward.outputs) - forward.residual_outputs:]


def describe(forward: Graph, value: Value) -> str:
    """'input N' for a forward input, else the producing primitive."""
    if value.producer is None:
        return f"input {forward.inputs.index(value)}"
    return value.producer.prim


def mse_mlp():
    """inputs x, W1, b1, W2, b2, t; loss mean((tanh(x W1 + b1) W2 + b2 - t)^2)."""
    return mlp_graph([3, 5, 2], batch=4, dtype=DType.f64, loss="mse")


# --------------------------------------------------------------------------------------
# the MLP: exact residuals


def test_mlp_residuals_for_parameter_gradients():
    vjp = vjp_graph(mse_mlp(), wrt=[1, 2, 3, 4])
    forward, backward = partition(vjp)
    check_graphs(forward, backward)
    # x for dW1, W2 for the error signal into layer 1, tanh's output for dW2 and
    # tanh', the difference for the squared error; nothing for the adds and biases
    assert [describe(forward, v) for v in residuals(forward)] == [
        "input 0", "input 3", "tanh", "sub"]
    assert backward.residual_inputs == 4
    assert [v.type for v in backward.inputs[:4]] == [v.type for v in residuals(forward)]


def test_mlp_residuals_when_the_input_is_differentiated_too():
    forward, _ = partition(vjp_graph(mse_mlp()))
    assert [describe(forward, v) for v in residuals(forward)] == [
        "input 0", "input 1", "input 3", "tanh", "sub"]


def test_forward_graph_is_the_primal_computation_only():
    graph = mse_mlp()
    forward, _ = partition(vjp_graph(graph))
    assert [op.prim for op in forward.ops] == [op.prim for op in graph.ops]
    assert forward.inputs and len(forward.inputs) == len(graph.inputs)


@pytest.mark.parametrize("loss,wrt", [("mse", None), ("mse", [1, 3]),
                                      ("cross_entropy", None), ("cross_entropy", [2, 4, 6])])
def test_mlp_forward_and_backward_recompose_the_joint_graph(loss, wrt):
    sizes = [4, 6, 5, 3]
    graph = mlp_graph(sizes, batch=4, dtype=DType.f32, loss=loss)
    vjp = vjp_graph(graph, wrt)
    forward, backward = partition(vjp)
    check_graphs(forward, backward)
    rng = np.random.default_rng(5)
    assert_recomposes(vjp, forward, backward, mlp_inputs(sizes, 4, np.float32, rng, loss),
                      random_cotangents(graph, rng))
    assert not [v for v in residuals(forward) if v.producer and is_copy_of_inputs(v)]


def test_names_and_residual_counts():
    graph = mse_mlp()
    forward, backward = partition(vjp_graph(graph))
    assert (forward.name, backward.name) == ("mlp_fwd", "mlp_bwd")
    assert forward.residual_inputs == 0 and backward.residual_outputs == 0
    assert len(forward.outputs) == 1 + forward.residual_outputs
    assert len(backward.inputs) == backward.residual_inputs + 1
    assert len(backward.outputs) == len(graph.inputs)
    assert "residual" in str(forward) and "residual" in str(backward)


# --------------------------------------------------------------------------------------
# copies of inputs are recomputed, never saved


def views_of_inputs(b, x, w, v):
    """Elementwise products of reshaped / transposed / converted / sliced / padded /
    concatenated inputs: each rule reads a copy of an input."""
    reshaped = b.reshape(x, shape=(3, 2))
    flipped = b.transpose(w, perm=(1, 0))
    widened = b.convert(v, dtype=DType.f64)
    row = b.broadcast_in_dim(b.slice(widened, start=(0,), stop=(2,), stride=(1,)),
                             shape=(3, 2), dims=(1,))
    padded = b.pad(b.slice(x, start=(0, 0), stop=(1, 3), stride=(1, 2)),
                   low=(1, 0), high=(0, 0), interior=(0, 0))
    joined = b.concatenate(padded, b.slice(x, start=(1, 1), stop=(2, 3), stride=(1, 1)), axis=0)
    product = b.mul(b.mul(reshaped, flipped), b.mul(row, joined))
    return b.reduce_sum(b.tanh(product), axes=(0, 1))


def test_no_residual_is_a_derived_copy_of_an_input():
    graph = graph_of(views_of_inputs, f64(2, 3), f64(2, 3), TensorType((2,), DType.f32))
    vjp = vjp_graph(graph)
    forward, backward = partition(vjp)
    check_graphs(forward, backward)
    saved = residuals(forward)
    assert [describe(forward, v) for v in saved if v.producer is None] == [
        "input 0", "input 1", "input 2"]
    assert not [v for v in saved if v.producer is not None and is_copy_of_inputs(v)]
    rng = np.random.default_rng(6)
    inputs = [random_array(t, rng) for t in graph.input_types]
    assert_recomposes(vjp, forward, backward, inputs, random_cotangents(graph, rng))


def test_zero_cotangent_output_needs_no_residual():
    graph = graph_of(lambda b, x, y: b.reduce_sum(b.mul(x, x), axes=(0,)), f64(3), f64(2))
    vjp = vjp_graph(graph)
    forward, backward = partition(vjp)
    assert [describe(forward, v) for v in residuals(forward)] == ["input 0"]
    x = np.array([1.0, -2.0, 0.5])
    _, _, (ct_x, ct_y) = run_split(vjp, forward, backward, [x, np.ones(2)], [np.array(2.0)])
    np.testing.assert_array_equal(ct_x, 4.0 * x)
    np.testing.assert_array_equal(ct_y, np.zeros(2))


def test_backward_only_reduction_is_computed_by_the_forward():
    """reduce_max's rule counts the tied elements: a reduction only the backward needs
    is computed once in the forward and saved (small), the rest of the rule's
    elementwise work is redone in the backward."""
    graph = graph_of(lambda b, x: b.reduce_sum(b.exp(b.reduce_max(x, axes=(1,))), axes=(0,)),
                     f64(3, 4))
    vjp = vjp_graph(graph)
    forward, backward = partition(vjp)
    check_graphs(forward, backward)
    assert [describe(forward, v) for v in residuals(forward)] == [
        "input 0", "reduce_max", "exp", "reduce_sum"]
    assert residuals(forward)[3].type == f64(3)
    x = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0], [-1.0, 4.0, 0.0, -1.0]])
    assert_recomposes(vjp, forward, backward, [x], [np.array(1.0)])


# --------------------------------------------------------------------------------------
# policies, second order, determinism


def sin_times_c(b, x, c):
    return b.reduce_sum(b.mul(b.sin(x), c), axes=(0,))


def test_recompute_elementwise_policy_saves_less():
    graph = graph_of(sin_times_c, f64(5), f64(5))
    vjp = vjp_graph(graph)
    saved, _ = partition(vjp, policy="save")
    lean, lean_backward = partition(vjp, policy="recompute_elementwise")
    check_graphs(lean, lean_backward)
    assert [describe(saved, v) for v in residuals(saved)] == ["input 0", "input 1", "sin"]
    assert [describe(lean, v) for v in residuals(lean)] == ["input 0", "input 1"]
    assert "sin" in [op.prim for op in lean_backward.ops]
    rng = np.random.default_rng(7)
    assert_recomposes(vjp, lean, lean_backward, [rng.standard_normal(5), rng.standard_normal(5)],
                      [np.array(1.5)])


def test_unknown_policy_is_a_value_error():
    with pytest.raises(ValueError, match="unknown policy 'greedy'"):
        partition(vjp_graph(graph_of(sin_times_c, f64(2), f64(2))), policy="greedy")


def test_second_order_joint_graph_partitions_and_recomposes():
    first = vjp_graph(graph_of(sin_times_c, f64(4), f64(4)), [0])
    joint = first.graph
    grad = Graph("g", list(joint.inputs), list(joint.ops), [joint.outputs[1]])
    vjp = vjp_graph(grad)
    forward, backward = partition(vjp)
    check_graphs(forward, backward)
    rng = np.random.default_rng(8)
    inputs = [rng.standard_normal(4), rng.standard_normal(4), np.array(1.0)]
    assert_recomposes(vjp, forward, backward, inputs, [rng.standard_normal(4)])


def test_partition_is_pure_and_deterministic():
    vjp = vjp_graph(mse_mlp())
    before = str(vjp.graph)
    first, second = partition(vjp), partition(vjp)
    assert str(vjp.graph) == before
    assert [str(g) for g in first] == [str(g) for g in second]
