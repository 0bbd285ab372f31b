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
- A region annotated with a `CustomVJP` (ir/graph.py, from `pc.custom_vjp`) is not
  differentiated op by op: when the walk reaches its last op, its `backward` graph
  is inlined on the residuals and the outputs' cotangents, and its results are the
  cotangents of the region's inputs. A closed-over value of the region that needs a
  cotangent is an AutodiffError. The joint graph carries no annotation: a second
  differentiation differentiates the region's forward and backward ops as they are.
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
from ..graph import CustomVJP, Graph, Op, Value, as_results, bind_results
from ..types import TensorType
from ..verify import verify
from .dce import live_ops
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
    given_backward: the ops of `graph` that custom-VJP regions' backward graphs
      contributed; the partition places them in the backward pass even where they
      read no cotangent (a checkpoint's recomputation is one).
    """

    graph: Graph
    num_primal_inputs: int
    num_primal_outputs: int
    cotangent_outputs: tuple[int, ...]
    wrt: tuple[int, ...]
    given_backward: frozenset[Op] = frozenset()


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


def _active_values(inputs: list[Value], ops: list[Op],
                   regions: Sequence[CustomVJP] = ()) -> set[Value]:
    """Float values that depend on `inputs`: those that can carry a cotangent. A
    custom-VJP region's outputs depend on all its inputs and closed values (its
    rule decides, not its ops)."""
    region_of = {v: region for region in regions for v in region.outputs}
    active = set(inputs)
    for op in ops:
        region = region_of.get(op.result)
        sources = op.operands if region is None else region.inputs + region.closed
        if any(v in active for v in sources):
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


def _region_ops(region: CustomVJP) -> list[Op]:
    """The ops of a custom-VJP region that its outputs depend on, back to its inputs
    and closed values: the ops whose own rules the region's rule replaces. (Not the
    residuals' ancestors: a residual may be a value from outside the region that
    `bwd` reads, and ops only residuals need get no cotangent anyway.)"""
    boundary = set(region.inputs) | set(region.closed)
    found: dict[Op, None] = {}
    pending = [v for v in region.outputs if v not in boundary]
    while pending:
        op = pending.pop().producer
        if op is None or op in found:
            continue
        found[op] = None
        pending.extend(v for v in op.operands if v not in boundary)
    return list(found)


def _plan_regions(regions: list[CustomVJP], ops: list[Op]) -> tuple[dict[Op, CustomVJP], set[Op]]:
    """Where each outermost region's rule runs (its last op) and every region op."""
    position = {op: i for i, op in enumerate(ops)}
    members = [(region, found) for region in regions if (found := _region_ops(region))]
    inside = {op for _, found in members for op in found}
    triggers: dict[Op, CustomVJP] = {}
    for region, found in members:
        last = max(found, key=position.__getitem__)
        nested = any(last in other for other_region, other in members if other_region is not region)
        if not nested:
            triggers[last] = region
    return triggers, inside


def _backprop_region(b: Builder, region: CustomVJP, cotangents: dict[Value, Value | Zero],
                     active: set[Value]) -> list[Op]:
    """Run a region's given backward on its outputs' cotangents; returns its ops."""
    cts = [cotangents.get(v, Zero(v.type)) for v in region.outputs]
    if all(isinstance(ct, Zero) for ct in cts):
        return []
    for value in region.closed:
        if value in active:
            raise AutodiffError(
                f"{region.loc}: custom_vjp function {region.name!r} closes over a "
                f"{value.type} value that is being differentiated; its bwd can only return "
                "cotangents of its arguments, so pass that value as an argument")
    first = len(b.graph.ops)
    with b.at(region.loc):
        results = b.inline(region.backward, list(region.residuals) +
                           [instantiate(b, ct) for ct in cts])
    emitted = b.graph.ops[first:]
    for value, ct in zip(region.inputs, results):
        if value in active:
            previous = cotangents.get(value, Zero(value.type))
            cotangents[value] = add_cotangents(b, previous, ct)
    return emitted


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
    regions = [r.remap(mapping) for r in graph.custom_vjps]
    active = _active_values([inputs[i] for i in chosen], primal_ops, regions)
    triggers, inside = _plan_regions(regions, primal_ops)
    given: set[Op] = set()
    for op in reversed(primal_ops):
        if op in triggers:
            given.update(_backprop_region(b, triggers[op], cotangents, active))
        if op not in inside:
            _backprop_op(b, op, cotangents, active, saved)
    results = [cotangents.get(inputs[i], Zero(inputs[i].type)) for i in chosen]
    b.output(*outputs, *[instantiate(b, ct) for ct in results])
    built = b.build()
    live = live_ops(built)     # dead-code removal in place: the ops keep their identity
    joint = Graph(built.name, built.inputs, [op for op in built.ops if op in live],
                  built.outputs)
    return VJPGraph(joint, len(graph.inputs), len(graph.outputs), seeded, chosen,
                    frozenset(op for op in given if op in live))
