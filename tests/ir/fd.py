"""Finite-difference oracle for reverse-mode tests on IR graphs.

    from fd import check_vjp, graph_of
    graph = graph_of(lambda b, x: b.exp(x), f64_type((3,)))
    check_vjp(graph, [x], rng)

The quantity differentiated is L(inputs) = sum_i sum(out_i * ct_i) over the float
outputs, with random cotangents ct_i. Its gradient is what the joint graph of
`vjp_graph` returns for those cotangents; central differences of L computed with
`ir.interpret` on the primal graph in float64 (by ir/differences.py, the code behind
`pc.check_grad` too) are the independent check.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

import ir
from ir import Builder, DType, Graph, TensorType
from ir.differences import central_differences
from ir.passes.autodiff import vjp_graph
from tolerances import tolerance as default_tolerance


def f64(*shape: int) -> TensorType:
    return TensorType(tuple(shape), DType.f64)


def graph_of(fn: Callable, *types: TensorType, name: str = "f") -> Graph:
    """A graph whose inputs have `types` and whose outputs are what `fn(b, *inputs)`
    returns (one value or a tuple of values)."""
    b = Builder(name)
    inputs = [b.input(t) for t in types]
    result = fn(b, *inputs)
    b.output(*(result if isinstance(result, (tuple, list)) else (result,)))
    return b.build()


def random_array(type: TensorType, rng: np.random.Generator) -> np.ndarray:
    """Normal floats, small integers, random bools of `type`."""
    if type.dtype.is_float:
        return rng.standard_normal(type.shape).astype(type.dtype.numpy)
    if type.dtype.is_bool:
        return rng.random(type.shape) < 0.5
    return rng.integers(-3, 4, size=type.shape).astype(type.dtype.numpy)


def float_outputs(graph: Graph) -> list[int]:
    return [i for i, v in enumerate(graph.outputs) if v.dtype.is_float]


def objective(graph: Graph, inputs: Sequence[np.ndarray],
              cotangents: Sequence[np.ndarray]) -> float:
    """sum_i sum(out_i * ct_i) over the float outputs, in float64."""
    outputs = ir.interpret(graph, *inputs)
    return float(sum(np.sum(outputs[i].astype(np.float64) * ct.astype(np.float64))
                     for i, ct in zip(float_outputs(graph), cotangents)))


def vjp_by_differences(graph: Graph, inputs: Sequence[np.ndarray],
                       cotangents: Sequence[np.ndarray], wrt: Sequence[int],
                       eps: float = 1e-6) -> list[np.ndarray]:
    """Central differences (ir/differences.py, the same code as `pc.check_grad`) of
    `objective` with respect to each input in `wrt`, with the absolute step `eps`."""
    grads = []
    for index in wrt:
        def at(moved: np.ndarray, index: int = index) -> float:
            args = list(inputs)
            args[index] = moved.astype(inputs[index].dtype)
            return objective(graph, args, cotangents)
        grads.append(central_differences(at, inputs[index], step=eps))
    return grads


def vjp_by_graph(graph: Graph, inputs: Sequence[np.ndarray], cotangents: Sequence[np.ndarray],
                 wrt: Sequence[int] | None = None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(primal outputs, input cotangents) from interpreting the joint graph."""
    vjp = vjp_graph(graph, wrt)
    ir.verify(vjp.graph)
    results = ir.interpret(vjp.graph, *inputs, *cotangents)
    return results[:vjp.num_primal_outputs], results[vjp.num_primal_outputs:]


def random_cotangents(graph: Graph, rng: np.random.Generator) -> list[np.ndarray]:
    return [random_array(graph.outputs[i].type, rng) for i in float_outputs(graph)]


def check_vjp(graph: Graph, inputs: Sequence[np.ndarray], rng: np.random.Generator,
              wrt: Sequence[int] | None = None, eps: float = 1e-6,
              tolerance: tuple[float, float] | None = None, what: str = "") -> list[np.ndarray]:
    """Assert the joint graph's input cotangents match central differences.

    Also checks the primal outputs against interpreting `graph`, and each cotangent's
    exact shape and dtype. Returns the cotangents from the joint graph.
    """
    if wrt is None:
        wrt = [i for i, v in enumerate(graph.inputs) if v.dtype.is_float]
    cotangents = random_cotangents(graph, rng)
    primal, grads = vjp_by_graph(graph, inputs, cotangents, wrt)
    for got, expected in zip(primal, ir.interpret(graph, *inputs)):
        np.testing.assert_array_equal(got, expected, err_msg=f"{what}: forward values")
    expected_grads = vjp_by_differences(graph, inputs, cotangents, wrt, eps)
    assert len(grads) == len(wrt), f"{what}: {len(grads)} cotangent outputs for wrt {wrt}"
    for index, got, expected in zip(wrt, grads, expected_grads):
        input_type = graph.inputs[index].type
        label = f"{what}: backward, input {index} ({input_type})"
        assert got.shape == input_type.shape and got.dtype == input_type.dtype.numpy, (
            f"{label}: cotangent is {got.dtype}{list(got.shape)}")
        rtol, atol = tolerance or default_tolerance("differences", input_type.dtype)
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, err_msg=label)
    return grads
