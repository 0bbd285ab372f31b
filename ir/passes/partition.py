"""Split a joint reverse-mode graph into a forward and a backward pass.

    forward, backward = partition(vjp_graph(graph), policy="save")

- forward  @{name}_fwd: inputs = the primal inputs; outputs = the primal outputs,
  then the residuals (`residual_outputs` of them).
- backward @{name}_bwd: inputs = the residuals (`residual_inputs` of them), then the
  output cotangents; outputs = the input cotangents.
Running the forward and feeding its residuals and the cotangents to the backward
gives exactly what the joint graph gives.

Which side an op lands on. A value is *tangent* if it depends on a cotangent input;
tangent ops are always backward ops. The other (*primal-side*) values the backward
reads are either saved as residuals or recomputed in the backward from other
residuals, walking up from each read value:
1. graph inputs are saved (inputs are free to save);
2. constants and iota (no operands) are recomputed: nothing to save;
3. free views (primitives flagged `free_view` in ir/ops.py: reshape,
   broadcast_in_dim, transpose, rev, convert, stop_gradient) are recomputed from their
   operands, and so are the copies (flagged `copy`: slice, pad, concatenate) of values
   made from inputs and constants by views and copies alone. So a residual is never a
   derived copy of an input;
4. elementwise values that the primal outputs do not need (work the VJP rules added,
   like tanh's 1 - y*y) are recomputed in the backward;
5. everything else is saved: values the forward computes anyway, and backward-only
   values that are not elementwise (reductions, dots), which the forward computes.
Policies:
- "save" (the default): exactly the rules above.
- "recompute_elementwise": after "save", an elementwise residual whose operands are
  all available in the backward anyway (residuals, or values recomputed there) is
  recomputed from them instead of saved. Each such step removes one residual and
  adds none, so saved bytes only go down, at the price of redoing cheap work.
- "save_inputs" (JAX's `nothing_saveable`, full rematerialisation): only graph
  inputs are saved; the backward recomputes every primal value it reads from them.
  The least memory, at the price of running the forward ops twice.
Residuals are ordered by definition (inputs by index, then op order); both graphs are
dead-code free. (Forward/backward split: the same idea as `partial_eval_jaxpr_nounits`
in JAX and the save/recompute choice of `min_cut_rematerialization_partition` in
PyTorch's functorch, written here from scratch as a simple rule-based policy.)
"""
from __future__ import annotations

from typing import Iterable

from ..builder import Builder
from ..errors import IRError
from ..graph import Graph, Op, Value, bind_results
from ..ops import get_primitive
from .autodiff import VJPGraph
from .dce import live_ops
from .rebuild import copy_op

POLICIES = ("save", "recompute_elementwise", "save_inputs")


def _is_free_view(op: Op) -> bool:
    """Recomputed in the backward rather than saved: it moves or relabels data only."""
    return get_primitive(op.prim).free_view


def _moves_data(op: Op) -> bool:
    """A free view or a copy: recomputed when it only copies inputs and constants."""
    prim = get_primitive(op.prim)
    return prim.free_view or prim.copy


def _tangent_values(graph: Graph, cotangent_inputs: list[Value],
                    given_backward: frozenset[Op] = frozenset()) -> set[Value]:
    """The values that depend on a cotangent input, or on an op a custom rule's
    backward contributed (those belong to the backward pass too)."""
    tangent = set(cotangent_inputs)
    for op in graph.ops:
        if op in given_backward or any(v in tangent for v in op.operands):
            tangent.update(op.results)
    return tangent


class _Placement:
    """Decides, value by value, what the backward saves and what it recomputes."""

    def __init__(self, tangent: set[Value], forward_live: set[Op], recompute_all: bool = False):
        self.tangent = tangent
        self.recompute_all = recompute_all
        self.forward_live = forward_live
        self.copies_of_inputs: dict[Value, bool] = {}
        self.backward_ops: set[Op] = set()
        self.residuals: set[Value] = set()

    def copies_input(self, value: Value) -> bool:
        """Is `value` made from inputs and constants by views and copies alone?

        Answered with an explicit stack (operands first), not recursion, so a chain
        of thousands of views and copies needs no Python stack depth."""
        pending = [value]
        while pending:
            current = pending[-1]
            if current in self.copies_of_inputs:
                pending.pop()
                continue
            op = current.producer
            if op is None or not op.operands or not _moves_data(op):
                self.copies_of_inputs[current] = op is None or not op.operands
                pending.pop()
                continue
            unknown = [v for v in op.operands if v not in self.copies_of_inputs]
            if unknown:
                pending.extend(unknown)
                continue
            self.copies_of_inputs[current] = all(self.copies_of_inputs[v] for v in op.operands)
            pending.pop()
        return self.copies_of_inputs[value]

    def recompute(self, value: Value) -> bool:
        """Is the primal-side `value` recomputed in the backward (rules 2-4)?"""
        op = value.producer
        if op is None:
            return False
        if self.recompute_all or not op.operands or _is_free_view(op):
            return True
        if get_primitive(op.prim).copy and self.copies_input(value):
            return True
        return op not in self.forward_live and get_primitive(op.prim).elementwise

    def place(self, needed: Iterable[Value]) -> None:
        """Walk up from the backward's outputs, sorting values into ops and residuals."""
        pending, seen = list(needed), set()
        while pending:
            value = pending.pop()
            if value in seen:
                continue
            seen.add(value)
            if value.producer is None and value in self.tangent:
                continue                              # a cotangent input
            if value in self.tangent or self.recompute(value):
                self.backward_ops.add(value.producer)
                pending.extend(value.producer.operands)
            else:
                self.residuals.add(value)

    def recompute_elementwise(self, order: list[Value]) -> None:
        """Policy step: drop elementwise residuals computable from what is available."""
        available = set(self.residuals) | {v for op in self.backward_ops for v in op.results}
        for value in order:
            op = value.producer
            if (value in self.residuals and op is not None and op.operands
                    and get_primitive(op.prim).elementwise
                    and all(v in available for v in op.operands)):
                self.residuals.discard(value)
                self.backward_ops.add(op)


def _subgraph(name: str, graph: Graph, inputs: list[Value], ops: Iterable[Op],
              outputs: list[Value]) -> Graph:
    """A new graph made of `ops` (in `graph` order) reading `inputs`, giving `outputs`."""
    b = Builder(name)
    mapping = {v: b.input(v.type) for v in inputs}
    wanted = set(ops)
    for op in graph.ops:
        if op in wanted:
            operands = []
            for v in op.operands:
                if v not in mapping:
                    raise IRError(f"internal: partition of @{graph.name} left {op.prim} at "
                                  f"{op.loc} without its operand {v.type}")
                operands.append(mapping[v])
            bind_results(mapping, op, copy_op(b, op, operands))
    b.output(*[mapping[v] for v in outputs])
    return b.build()


def _definition_order(graph: Graph) -> list[Value]:
    return list(graph.inputs) + [v for op in graph.ops for v in op.results]


def partition(vjp: VJPGraph, policy: str = "save") -> tuple[Graph, Graph]:
    """Split `vjp`'s joint graph into (forward, backward); see the module docstring."""
    if policy not in POLICIES:
        raise ValueError(f"partition: unknown policy {policy!r}; choose one of "
                         f"{', '.join(POLICIES)}")
    graph = vjp.graph
    primal_inputs = graph.inputs[:vjp.num_primal_inputs]
    cotangent_inputs = graph.inputs[vjp.num_primal_inputs:]
    primal_outputs = graph.outputs[:vjp.num_primal_outputs]
    cotangent_outputs = graph.outputs[vjp.num_primal_outputs:]
    tangent = _tangent_values(graph, cotangent_inputs, vjp.given_backward)
    if any(v in tangent for v in primal_outputs):
        raise IRError(f"partition: a primal output of @{graph.name} depends on a "
                      "cotangent input; this is not a joint graph from vjp_graph")
    forward_view = Graph(graph.name, list(graph.inputs), list(graph.ops), list(primal_outputs))
    placement = _Placement(tangent, live_ops(forward_view), policy == "save_inputs")
    placement.place(cotangent_outputs)
    order = _definition_order(graph)
    if policy == "recompute_elementwise":
        placement.recompute_elementwise(order)
    residuals = [v for v in order if v in placement.residuals]
    residual_view = Graph(graph.name, list(graph.inputs), list(graph.ops),
                          list(primal_outputs) + residuals)
    forward = _subgraph(f"{graph.name}_fwd", graph, list(primal_inputs),
                        live_ops(residual_view), list(primal_outputs) + residuals)
    forward.residual_outputs = len(residuals)
    backward = _subgraph(f"{graph.name}_bwd", graph, residuals + list(cotangent_inputs),
                         placement.backward_ops, list(cotangent_outputs))
    backward.residual_inputs = len(residuals)
    return forward, backward
