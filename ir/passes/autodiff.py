"""Reverse-mode autodiff as an IR -> IR pass: `vjp_graph(graph, wrt)`.

The result is one *joint* graph that computes the primal outputs and, from one
cotangent input per float output, the cotangents of the chosen inputs:

    inputs : graph.inputs..., cotangent of each float output (in output order)
    outputs: graph.outputs..., cotangent of each float input listed in `wrt`

The primal ops are copied first, unchanged. Then the ops are walked in reverse and
each one's rule from `VJP_RULES` (ir/passes/vjp_rules.py) turns the cotangent of its
result into cotangents of its operands. Design points (same ideas as JAX's
`backward_pass`, written from scratch):
- Only *active* values get cotangents: float values that depend on a `wrt` input.
  Integer and bool values never do, nor anything a rule returns None for.
- A missing cotangent is the marker `Zero`, never an array of zeros. Fan-out is
  summed by the one helper `add_cotangents`. Only at the very end does a `wrt` input
  whose cotangent is still `Zero` get an explicit zeros output.
- Ops emitted for an op's rule carry that op's source location.
- The pass is pure (the input graph is never changed) and deterministic; dead ops
  (e.g. cotangents of inactive operands that a rule computed) are removed by DCE.
The joint graph keeps the input graph's name; `ir.passes.partition` splits it into
the forward and backward passes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..builder import Builder
from ..errors import IRError
from ..graph import Graph, Op, Value, as_results, bind_results
from ..types import TensorType
from ..verify import verify
from .dce import dce
from .rebuild import copy_op, start
from .vjp_rules import FORWARD_RULES, VJP_RULES


class AutodiffError(IRError, ValueError):
    """A graph cannot be differentiated as asked (bad `wrt`, missing VJP rule)."""


class Zero:
    """The cotangent of a value that receives none. Never becomes an op."""

    __slots__ = ("type",)

    def __init__(self, type: TensorType):
        self.type = type

    def __repr__(self) -> str:
        return f"Zero({self.type})"



@dataclass(frozen=True)
class VJPGraph:
    """A joint graph and how its inputs and outputs split into primal and cotangent.

    graph: inputs = primal inputs + one cotangent per float primal output;
      outputs = primal outputs + one cotangent per entry of `wrt`.
    cotangent_outputs: indices of the primal outputs that take a cotangent input.
    wrt: indices of the primal inputs that get a cotangent output, in order.
    """

    graph: Graph
    num_primal_inputs: int
    num_primal_outputs: int
    cotangent_outputs: tuple[int, ...]
    wrt: tuple[int, ...]


def add_cotangents(b: Builder, first: Value | Zero, second: Value | Zero) -> Value | Zero:
    """The sum of two cotangents of one value; Zero is the identity."""
    if isinstance(first, Zero):
        return second
    if isinstance(second, Zero):
        return first
    return b.add(first, second)


def instantiate(b: Builder, cotangent: Value | Zero) -> Value:
    """A value for `cotangent`: Zero becomes an explicit zeros constant."""
    if isinstance(cotangent, Zero):
        return b.zeros(cotangent.type)
    return cotangent


def _check_wrt(graph: Graph, wrt: Sequence[int] | None) -> tuple[int, ...]:
    """The float input indices to differentiate, in the order given (default: all)."""
    count = len(graph.inputs)
    if wrt is None:
        return tuple(i for i, v in enumerate(graph.inputs) if v.dtype.is_float)
    chosen = []
    for index in wrt:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
            raise AutodiffError(f"vjp_graph @{graph.name}: wrt index {index!r} is not an "
                                f"input index (the graph has {count} inputs)")
        if graph.inputs[index].dtype.is_float:
            chosen.append(index)
    return tuple(chosen)


def _active_values(inputs: list[Value], ops: list[Op]) -> set[Value]:
    """Float values that depend on `inputs`: those that can carry a cotangent."""
    active = set(inputs)
    for op in ops:
        if any(v in active for v in op.operands):
            active.update(r for r in op.results if r.dtype.is_float)
    return active


def _result_cotangents(op: Op, cotangents: dict[Value, Value | Zero],
                       active: set[Value]) -> "Value | list[Value | Zero] | None":
    """What `op`'s rule gets as `g`: its result's cotangent, or for a control-flow op
    the list of its results' cotangents (Zero where none); None when all are zero."""
    found = [cotangents.get(r) if r in active else None for r in op.results]
    if all(g is None or isinstance(g, Zero) for g in found):
        return None
    if not op.regions():
        return found[0]
    return [Zero(r.type) if g is None else g for r, g in zip(op.results, found)]


def _backprop_op(b: Builder, op: Op, cotangents: dict[Value, Value | Zero],
                 active: set[Value], saved: dict[Op, object]) -> None:
    """Apply `op`'s rule to its result's cotangent; add the results to its operands."""
    g = _result_cotangents(op, cotangents, active)
    if g is None:
        return
    rule = VJP_RULES.get(op.prim)
    if rule is None:
        raise AutodiffError(f"no VJP rule for primitive {op.prim!r} (at {op.loc})")
    with b.at(op.loc):
        if op in saved:
            results = rule(b, g, op, list(op.operands), saved=saved[op])
        else:
            results = rule(b, g, op, list(op.operands))
        if len(results) != len(op.operands):
            raise IRError(f"internal: VJP rule of {op.prim} returned {len(results)} "
                          f"cotangents for {len(op.operands)} operands")
        for operand, ct in zip(op.operands, results):
            if ct is None or isinstance(ct, Zero) or operand not in active:
                continue
            if ct.type != operand.type:
                raise IRError(f"internal: VJP rule of {op.prim} gave a {ct.type} cotangent "
                              f"for a {operand.type} operand")
            previous = cotangents.get(operand, Zero(operand.type))
            cotangents[operand] = add_cotangents(b, previous, ct)


def _copy_primal(b: Builder, graph: Graph, mapping: dict[Value, Value],
                 chosen: tuple[int, ...]) -> tuple[list[Op], dict[Op, object]]:
    """Copy the primal ops into the joint graph. An active op with a FORWARD_RULES
    entry (a scan) is emitted by that rule, which also returns what its VJP rule
    needs later (its stacked residuals); returns the new ops and that map."""
    active = _active_values([graph.inputs[i] for i in chosen], graph.ops)
    primal_ops: list[Op] = []
    saved: dict[Op, object] = {}
    for op in graph.ops:
        operands = [mapping[v] for v in op.operands]
        forward = FORWARD_RULES.get(op.prim)
        if forward is not None and any(v in active for v in op.operands):
            with b.at(op.loc):
                emitted, kept = forward(b, op, operands)
            saved[as_results(emitted)[0].producer] = kept
        else:
            emitted = copy_op(b, op, operands)
        bind_results(mapping, op, emitted)
        primal_ops.append(as_results(emitted)[0].producer)
    return primal_ops, saved


def vjp_graph(graph: Graph, wrt: Sequence[int] | None = None) -> VJPGraph:
    """The joint reverse-mode graph of `graph` (see the module docstring).

    wrt: input indices to differentiate (default: every float input); integer and
    bool inputs listed there are skipped. Raises AutodiffError for an index out of
    range and VerifyError for a malformed graph.
    """
    verify(graph)
    chosen = _check_wrt(graph, wrt)
    b, mapping = start(graph)
    primal_ops, saved = _copy_primal(b, graph, mapping, chosen)
    inputs = [mapping[v] for v in graph.inputs]
    outputs = [mapping[v] for v in graph.outputs]
    seeded = tuple(i for i, v in enumerate(outputs) if v.dtype.is_float)
    cotangents: dict[Value, Value | Zero] = {}
    for i in seeded:
        seed = b.input(outputs[i].type)
        cotangents[outputs[i]] = add_cotangents(b, cotangents.get(outputs[i], Zero(seed.type)),
                                                seed)
    active = _active_values([inputs[i] for i in chosen], primal_ops)
    for op in reversed(primal_ops):
        _backprop_op(b, op, cotangents, active, saved)
    results = [cotangents.get(inputs[i], Zero(inputs[i].type)) for i in chosen]
    b.output(*outputs, *[instantiate(b, ct) for ct in results])
    joint = dce(b.build())
    return VJPGraph(joint, len(graph.inputs), len(graph.outputs), seeded, chosen)
