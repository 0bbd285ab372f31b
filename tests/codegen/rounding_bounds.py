"""How far two float32 evaluations of one graph may drift apart by rounding alone.

Compiled code and `ir.interpret` round differently (inline polynomial
transcendentals, reassociated sums), and a chain of ops amplifies an early
difference by its condition: exp(x) turns a 1-ulp difference of x ~ 10 into about
10 ulps of the result. A fixed ulp bound on the final outputs is therefore either
loose for short chains or flaky for ill-conditioned ones. `discrepancy_bounds`
propagates, to first order, a per-element bound on the difference of two
evaluations through the graph (running error analysis, with the derivative taken at
the interpreter's values):

- each op adds its own local difference: 1 ulp of its result for the correctly
  rounded arithmetic (either side rounds by at most half an ulp), `ULPS[prim]` ulps
  for a transcendental (tests/tolerances.py), 0 for exact data movement and
  max/min; a reduce_sum adds 2 * (n - 1) * u * sum|x| (each summation order is
  within (n - 1) * u * sum|x| of the exact sum, u the unit roundoff);
- and carries its operands' differences times |d result / d operand|.

A wrong buffer reuse reads unrelated numbers and lands far outside the bound.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

import ir
from ir import DType, Graph
from ir.interpret import run_op
from tolerances import ULPS

F64 = DType.f64
UNIT_ROUNDOFF = float(np.finfo(np.float32).eps) / 2


def _ulp(values: np.ndarray) -> np.ndarray:
    """The float32 spacing at each value, in float64."""
    return np.spacing(np.abs(values).astype(np.float32)).astype(np.float64)


def _moved(op, differences: list[np.ndarray]) -> np.ndarray:
    """Data movement (and max/min over axes): the same op applied to the bounds."""
    return np.abs(run_op(op.prim, op.attrs, differences, F64))


def _sum(op, values, differences, result) -> np.ndarray:
    terms = op.operands[0].type.size // max(op.result.type.size, 1)
    magnitude = run_op("reduce_sum", op.attrs, [np.abs(values[0])], F64)
    return (run_op("reduce_sum", op.attrs, differences, F64)
            + 2 * max(terms - 1, 0) * UNIT_ROUNDOFF * magnitude)


def _transcendental(derivative: Callable) -> Callable:
    def rule(op, values, differences, result):
        return (np.abs(derivative(values[0], result)) * differences[0]
                + ULPS[op.prim] * _ulp(result))
    return rule


def _arithmetic(carried: Callable) -> Callable:
    def rule(op, values, differences, result):
        return carried(values, differences) + _ulp(result)
    return rule


RULES: dict[str, Callable] = {
    "add": _arithmetic(lambda v, d: d[0] + d[1]),
    "sub": _arithmetic(lambda v, d: d[0] + d[1]),
    "mul": _arithmetic(lambda v, d: np.abs(v[1]) * d[0] + np.abs(v[0]) * d[1]),
    "exp": _transcendental(lambda x, out: out),
    "tanh": _transcendental(lambda x, out: 1 - out * out),
    "reduce_sum": _sum,
}
EXACT = {"neg", "transpose", "broadcast_in_dim", "reshape", "slice", "reduce_max",
         "reduce_min", "max", "min"}


def discrepancy_bounds(graph: Graph, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Per output, per element: a first-order bound on |evaluation A - evaluation B|
    for two float32 evaluations of `graph` on `arrays` that each meet the per-op
    accuracy above (inputs exact). Raises KeyError for an op it has no rule for."""
    values = dict(zip(graph.inputs, (np.asarray(a, np.float64) for a in arrays)))
    bounds = {v: np.zeros(v.shape) for v in graph.inputs}
    for op, result in zip(graph.ops, _interpreted_results(graph, arrays)):
        operands = [values[v] for v in op.operands]
        differences = [bounds[v] for v in op.operands]
        if op.prim in EXACT:
            bound = _moved(op, differences)
        else:
            bound = RULES[op.prim](op, operands, differences, result)
        values[op.result] = result
        bounds[op.result] = np.nan_to_num(bound, nan=np.inf)
    return [bounds[v] for v in graph.outputs]


def _interpreted_results(graph: Graph, arrays: list[np.ndarray]) -> list[np.ndarray]:
    """Every op's result as `ir.interpret` computes it (float32), in float64."""
    probe = Graph(graph.name, list(graph.inputs), list(graph.ops),
                  [op.result for op in graph.ops])
    return [np.asarray(r, np.float64) for r in ir.interpret(probe, *arrays)]
