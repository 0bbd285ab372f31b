"""Gradient fuzzing: random graphs, their reverse-mode graphs, finite differences.

    from fuzz_grads import gradient_cases, check_gradients
    @given(gradient_cases())
    def test(case):
        check_gradients(*case)

A case is a random graph from tests/ir/graph_strategies.py (every primitive but
`stop_gradient`, whose zero cotangent finite differences cannot see), widened to
float64 so that central differences are accurate, with seeded inputs and output
cotangents. `check_gradients` then checks, raising FuzzFailure on the first
problem:
1. `vjp_graph` gives a verifiable joint graph whose primal outputs are exactly
   the graph's, and one cotangent per float input of exactly its type;
2. those cotangents match float64 central differences of sum(out * cotangent)
   (tests/ir/fd.py). Where they differ, differences at a second step size decide:
   if the two disagree with each other the point is a kink (abs at 0, a tie, a
   select flipping) or ill-conditioned, and when the mismatch is within the
   rounding noise of the differences (a huge output swamping the varying ones)
   nothing can be concluded, nor when only non-finite gradients differ at a point
   where some op's derivative is infinite (0 * inf in the branch a select does not
   take, inf - inf through x - x);
   such cases are skipped, others fail;
3. `partition` splits the joint graph into forward and backward graphs that give
   exactly the joint graph's values under the interpreter (both policies);
4. forward and backward, simplified and compiled together into one module, agree
   with the interpreter.
Cases whose outputs are not finite, or that have no float input or output to
differentiate, stop after step 1 (`check_gradients` returns False for them).
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import codegen
import ir
from fd import float_outputs, vjp_by_differences
from fuzz_graphs import (FuzzFailure, describe_inputs, output_precisions, outputs_mismatch,
                         unreliable_elements)
from graph_strategies import graphs
from ir import Builder, DType, Graph
from ir.graph import bind_results
from ir.interpret import interpret_values
from ir.passes.autodiff import vjp_graph
from ir.passes.partition import POLICIES, partition
from ir.passes.simplify import simplify

# stop_gradient's rule is not its derivative; while_loop has no reverse mode (a
# named test checks its TypeError). scan and cond are drawn with random bodies.
GRADIENT_PRIMS = tuple(sorted(name for name in ir.PRIMITIVES
                              if name not in ("stop_gradient", "while_loop")))
EPS = (1e-6, 1e-5)                # the step, and the second step used to confirm a mismatch
RTOL, ATOL = 1e-4, 1e-6           # autodiff vs differences, relative to the largest gradient


def _wider(dtype: DType) -> DType:
    return DType.f64 if dtype is DType.f32 else dtype


def widen_to_f64(graph: Graph) -> Graph:
    """The same computation with every float32 value made float64 (inputs, constants,
    converts and iotas retyped; other ops follow from their rules)."""
    builder = Builder(graph.name)
    mapping = {v: builder.input(v.type.with_dtype(_wider(v.dtype))) for v in graph.inputs}
    for op in graph.ops:
        attrs = dict(op.attrs)
        if op.prim == "constant" and attrs["value"].dtype == np.float32:
            attrs["value"] = attrs["value"].astype(np.float64)
        if "dtype" in attrs:
            attrs["dtype"] = _wider(attrs["dtype"])
        for name, region in op.regions():            # loop bodies and branches too
            attrs[name] = widen_to_f64(region)
        operands = [mapping[v] for v in op.operands]
        bind_results(mapping, op, builder.emit(op.prim, *operands, loc=op.loc, **attrs))
    builder.output(*[mapping[v] for v in graph.outputs])
    return builder.build()


def gradient_inputs(graph: Graph, seed: int, positive: bool) -> tuple[list, list]:
    """Seeded inputs (floats normal, or in [0.5, 2) when `positive`, so log, sqrt and
    pow stay in their domains more often) and cotangents for the float outputs."""
    rng = np.random.default_rng(seed)
    inputs = []
    for value in graph.inputs:
        if value.dtype.is_float:
            array = rng.uniform(0.5, 2.0, value.shape) if positive \
                else rng.standard_normal(value.shape)
        elif value.dtype.is_int:
            array = rng.integers(-3, 4, size=value.shape)
        else:
            array = rng.random(value.shape) < 0.5
        inputs.append(np.asarray(array, dtype=value.dtype.numpy))
    cotangents = [rng.standard_normal(graph.outputs[i].shape).astype(graph.outputs[i].dtype.numpy)
                  for i in float_outputs(graph)]
    return inputs, cotangents


@st.composite
def gradient_cases(draw, max_ops: int = 6) -> tuple[Graph, list, list]:
    """(graph, inputs, cotangents) for `check_gradients`."""
    graph = widen_to_f64(draw(graphs(max_ops=max_ops, prims=GRADIENT_PRIMS, residuals=False)))
    inputs, cotangents = gradient_inputs(graph, draw(st.integers(0, 2**32 - 1)),
                                         draw(st.booleans()))
    return graph, inputs, cotangents


# --------------------------------------------------------------------------------------
# the check


def _fail(stage: str, detail: str, graph: Graph, inputs: list) -> FuzzFailure:
    return FuzzFailure(f"{stage}: {detail}\n--- graph ---\n{graph}\n--- inputs ---\n"
                       f"{describe_inputs(inputs)}")


def check_gradients(graph: Graph, inputs: list, cotangents: list) -> bool:
    """Steps 1-4 of the module docstring; False when the case had nothing to check."""
    wrt = [i for i, v in enumerate(graph.inputs) if v.dtype.is_float]
    primal = ir.interpret(graph, *inputs)
    joint = vjp_graph(graph)
    try:
        ir.verify(joint.graph)
    except ir.VerifyError as err:
        raise _fail("vjp_graph made an invalid graph", str(err), graph, inputs) from None
    results = ir.interpret(joint.graph, *inputs, *cotangents)
    grads = results[joint.num_primal_outputs:]
    _check_joint(graph, inputs, primal, results[:joint.num_primal_outputs], grads, wrt)
    if not wrt or not cotangents or not all(np.isfinite(out).all() for out in primal
                                            if out.dtype.kind == "f"):
        return False
    if not _matches_differences(graph, inputs, cotangents, grads, wrt):
        return False
    _check_partition(graph, inputs, cotangents, joint, results)
    return True


def _check_joint(graph, inputs, primal, joint_primal, grads, wrt) -> None:
    for i, (got, want) in enumerate(zip(joint_primal, primal)):
        if not np.array_equal(got, want, equal_nan=want.dtype.kind == "f"):
            raise _fail("joint graph's primal outputs differ", f"output {i}", graph, inputs)
    if len(grads) != len(wrt):
        raise _fail("vjp_graph", f"{len(grads)} cotangents for {len(wrt)} float inputs",
                    graph, inputs)
    for index, grad in zip(wrt, grads):
        expected = graph.inputs[index].type
        if grad.shape != expected.shape or grad.dtype != expected.dtype.numpy:
            raise _fail("cotangent type", f"input {index} is {expected}, its cotangent "
                        f"{grad.dtype}{list(grad.shape)}", graph, inputs)


def _far(grads: list, differences: list, noise: float = 0.0) -> list[np.ndarray]:
    """Per input, where autodiff and differences disagree beyond RTOL/ATOL and the
    differences' own rounding noise."""
    scale = max([1.0] + [float(np.abs(d).max()) for d in differences if d.size])
    return [~(np.abs(g - d) <= RTOL * np.abs(d) + ATOL * scale + noise)
            for g, d in zip(grads, differences)]


def _rounding_noise(graph, inputs, cotangents) -> float:
    """How far rounding alone moves a central difference: the objective's terms are
    rounded to float64 (eps 2^-52), and their error divided by the step. Large when
    a big output (a constant 1e181, say) swamps the small terms that vary."""
    outputs = ir.interpret(graph, *inputs)
    magnitude = sum(float(np.abs(outputs[i] * ct).sum())
                    for i, ct in zip(float_outputs(graph), cotangents))
    return 16 * np.finfo(np.float64).eps * magnitude / min(EPS)


def _at_a_singular_point(graph, inputs, grads, far) -> bool:
    """Whether every mismatch is a non-finite gradient and the forward pass goes
    through a point where some op's derivative is infinite or the value itself is:
    pow, sqrt or log of 0, a division by 0, or an infinite/NaN intermediate. The
    chain rule then multiplies an infinity by a zero cotangent (the branch a select
    or min does not take, as the README documents for a single `where`) or adds
    opposite infinities (pow(x - x, 0.9): inf * 1 + inf * -1), giving NaN, while the
    differences see a smooth function."""
    if not all(np.all(~np.isfinite(g[mask])) for g, mask in zip(grads, far)):
        return False
    values = interpret_values(graph, *inputs)
    for op in graph.ops:
        operands = [values[v] for v in op.operands]
        if _singular(op.prim, operands) or (
                op.result.dtype.is_float and not np.isfinite(values[op.result]).all()):
            return True
    return False


def _singular(prim: str, operands: list) -> bool:
    """Whether an op with infinite derivatives somewhere is evaluated there."""
    if prim in ("pow", "sqrt", "log"):
        return bool(np.any(operands[0] == 0))
    if prim == "div" and operands[1].dtype.kind == "f":
        return bool(np.any(operands[1] == 0))
    return False


def _matches_differences(graph, inputs, cotangents, grads, wrt) -> bool:
    """True when autodiff matches; False for a kink; FuzzFailure for a real mismatch."""
    first = vjp_by_differences(graph, inputs, cotangents, wrt, eps=EPS[0])
    if not any(mask.any() for mask in _far(grads, first)):
        return True
    noise = _rounding_noise(graph, inputs, cotangents)
    far = _far(grads, first, noise)
    if not any(mask.any() for mask in far):
        return False  # within what rounding does to the differences: inconclusive
    second = vjp_by_differences(graph, inputs, cotangents, wrt, eps=EPS[1])
    if any(mask.any() for mask in _far(first, second, noise)):
        return False  # the differences themselves are unstable here: not smooth
    if _at_a_singular_point(graph, inputs, grads, far):
        return False  # 0 * inf or inf - inf in the chain rule: undefined there
    details = []
    for index, grad, difference, mask in zip(wrt, grads, first, far):
        if mask.any():
            where = [tuple(int(i) for i in p) for p in np.argwhere(mask)[:4]]
            details.append(f"input {index} at {where}: autodiff {[grad[w] for w in where]}, "
                           f"differences {[difference[w] for w in where]}")
    cts = describe_inputs(cotangents).replace("input", "cotangent")
    raise _fail("gradient differs from central differences",
                "\n".join(details) + f"\n--- output cotangents ---\n{cts}", graph, inputs)


def _check_partition(graph, inputs, cotangents, joint, results) -> None:
    """Interpreted forward+backward equal the joint graph; compiled ones agree."""
    count = joint.num_primal_outputs
    for policy in POLICIES:
        forward, backward = partition(joint, policy=policy)
        ir.verify(forward)
        ir.verify(backward)
        outputs = ir.interpret(forward, *inputs)
        residuals = outputs[count:]
        grads = ir.interpret(backward, *residuals, *cotangents)
        for got, want in zip(outputs[:count] + grads, results):
            if not np.array_equal(got, want, equal_nan=want.dtype.kind == "f"):
                raise _fail(f"partition (policy {policy}) changed values",
                            f"--- forward ---\n{forward}\n--- backward ---\n{backward}",
                            graph, inputs)
    forward, backward = (simplify(g) for g in partition(joint))
    native_forward, native_backward = codegen.compile_graphs([forward, backward])
    outputs = native_forward(*inputs)
    native_grads = native_backward(*outputs[count:], *cotangents)
    reason = outputs_mismatch(outputs[:count] + native_grads, results,
                              output_precisions(joint.graph),
                              unreliable_elements(joint.graph, [*inputs, *cotangents]))
    if reason is not None:
        raise _fail("compiled forward/backward differ from the interpreter",
                    f"{reason}\n--- forward ---\n{forward}\n--- backward ---\n{backward}",
                    graph, inputs)
