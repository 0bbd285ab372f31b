"""The fusion plan: which values get a buffer ("materialized"), which are computed
inside the loops that read them ("fused"), and which elementwise kernels run as
the epilogue of a product. Decided in one pass, before any kernel is built; the
kernels follow it (a kernel finding a value without the buffer it needs is a
CodegenError, a planner bug, never a request to plan again).

Rules, in one forward pass over the ops:
- graph inputs and outputs, kernel results (reductions, dot, pad, concatenate)
  and non-uniform constants (module globals) have buffers;
- the operands of a kernel that reads buffers (`Lowering.buffered_operands`:
  conv, gather, windows with padding; or the values `Lowering.buffers_read` names
  instead: a conv reading an operand through its transpose), and the operand of a view that is not an
  affine index map (a reshape merging axes is read as a flat buffer), have buffers;
- an elementwise/view/iota value is fused into its readers, except when
  * readers that end up in different kernels read it and its fused computation
    does arithmetic (recomputing it per kernel would repeat work), unless it is a
    relu-like op over one buffer (`cheap_to_repeat`: recomputing adds no loads), or
  * a broadcast that enlarges it reads it and it does arithmetic (the work would
    be repeated per broadcast copy), or
  * a kernel with `view_operands` (dot) reads it through views: dot indexes its
    operands K or N times per element, so the operand's base gets a buffer.
Then epilogues (codegen/plan/epilogues.py): a product read only by one elementwise
kernel, at the element that kernel writes, runs that kernel per finished block.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from ir.graph import Graph, Op, Value

from ..registry import lowering_of
from .affine import identity_access
from .epilogues import plan_epilogues
from ..options import DEFAULT_OPTIONS, CompileOptions
from .threads import SERIAL, ThreadPlan


@dataclass(frozen=True)
class FusionPlan:
    """What the kernels of one graph follow; the second argument of every kernel
    lowering (`value in plan`: whether the plan gives `value` a buffer).

    `materialized`: the values with a buffer; `epilogues`: consumer value -> the
    product whose kernel computes the consumer per block (the product then has no
    kernel of its own; its buffer is the consumer's); `threads`: the compile's
    ThreadPlan (codegen/plan/threads.py); `options`: its CompileOptions (the kernel
    lowerings read their switches there, e.g. `sgemm`).
    """

    materialized: frozenset
    epilogues: Mapping[Value, Value] = field(default_factory=dict)
    threads: ThreadPlan = SERIAL
    options: CompileOptions = DEFAULT_OPTIONS

    def __contains__(self, value) -> bool:
        return value in self.materialized

    @property
    def products(self) -> frozenset:
        """Products whose kernel is their consumer's (no kernel of their own)."""
        return frozenset(self.epilogues.values())


def plan_fusion(graph: Graph, *, epilogues: bool = True, threads: ThreadPlan = SERIAL,
                options: CompileOptions = DEFAULT_OPTIONS) -> FusionPlan:
    """The fusion plan of `graph`; `epilogues=False` gives every product its own kernel;
    `threads` and `options` are passed through to the kernels (and `options` to the
    epilogue rules)."""
    live = live_ops(graph)
    materialized: set[Value] = set(graph.inputs) | set(graph.outputs)
    for op in graph.ops:
        _own_buffers(op, materialized)
    for op in live:
        _operand_buffers(op, materialized, threads, options)
    _materialize_repeated_work(graph, materialized)
    frozen = frozenset(materialized)
    chosen = plan_epilogues(graph, live, frozen, options) if epilogues else {}
    return FusionPlan(frozen, chosen, threads, options)


def live_ops(graph: Graph) -> list[Op]:
    """Ops whose results the outputs depend on (dead ops are not compiled)."""
    needed: set[Value] = set(graph.outputs)
    live = []
    for op in reversed(graph.ops):
        if any(result in needed for result in op.results):
            needed.update(op.operands)
            live.append(op)
    return live[::-1]


def global_constant(op: Op) -> bool:
    """A constant kept as a module global (a non-uniform one): a buffer, no kernel."""
    lowering = lowering_of(op.prim)
    return lowering.needs_buffer is not None and lowering.needs_buffer(op)


def _own_buffers(op: Op, materialized: set[Value]) -> None:
    """Buffers an op's kind asks for: kernel results (a loop's or branch's operands
    and results too: it reads and writes whole buffers), dot's view bases, global
    constants."""
    lowering = lowering_of(op.prim)
    if lowering.kind == "kernel":
        materialized.add(op.result)
        if op.regions():
            materialized.update(op.results)
            materialized.update(op.operands)
        if lowering.view_operands:
            for operand in op.operands:
                materialized.add(view_base(operand))
    elif global_constant(op):
        materialized.add(op.result)


def _operand_buffers(op: Op, materialized: set[Value], threads: ThreadPlan,
                     options: CompileOptions) -> None:
    """Operands a live op can only read from a buffer: those of a buffer-reading
    kernel, and the operand of a view whose index map is not affine."""
    lowering = lowering_of(op.prim)
    if lowering.kind == "kernel" and lowering.buffered_operands is not None:
        if lowering.buffered_operands(op):
            read = (op.operands if lowering.buffers_read is None
                    else lowering.buffers_read(op, threads, options))
            materialized.update(v for v in read if v.producer is not None)
    elif lowering.kind == "view" and not affine_view(op):
        operand = op.operands[0]
        if operand.producer is not None:
            materialized.add(operand)


def affine_view(op: Op) -> bool:
    """Whether view `op` maps result indices to operand indices affinely (the map
    depends on the shapes only, so asking it at the identity answers for all)."""
    rank = op.result.ndim
    return lowering_of(op.prim).fn(op, identity_access(rank), rank) is not None


def view_base(value: Value) -> Value:
    """Follow view ops down to the value they look at (maybe `value` itself)."""
    while value.producer is not None and lowering_of(value.producer.prim).kind == "view":
        value = value.producer.operands[0]
    return value


def _materialize_repeated_work(graph: Graph, materialized: set[Value]) -> None:
    """Give buffers to fused arithmetic that would otherwise be recomputed."""
    work = _broadcast_rule(graph, materialized)
    _shared_value_rule(graph, materialized, work)


def _broadcast_rule(graph: Graph, materialized: set[Value]) -> dict[Value, int]:
    """Forward pass: arithmetic ops fused into each value; an enlarging view of a
    value with arithmetic gets that value a buffer. Returns the work per value."""
    work: dict[Value, int] = {}
    for op in graph.ops:
        if op.result in materialized:
            work[op.result] = 0
            continue
        lowering = lowering_of(op.prim)
        own = 1 if lowering.kind == "elementwise" else 0
        total = own + sum(work.get(v, 0) for v in op.operands)
        if _enlarging_view(op, lowering.kind) and work.get(op.operands[0], 0) > 0:
            materialized.add(op.operands[0])
            total = 0
        work[op.result] = total
    return work


def _shared_value_rule(graph: Graph, materialized: set[Value], work: dict[Value, int]) -> None:
    """Backward pass: find the kernel each fused value ends up in; a value with
    arithmetic whose readers end up in different kernels gets a buffer (readers in
    one kernel share it: expression trees are memoised), unless it is cheap to
    repeat over a buffer (cheap_to_repeat, asked once the pass has found them all)."""
    readers: dict[Value, list] = {}
    for op in graph.ops:
        for operand in op.operands:
            readers.setdefault(operand, []).append(op)
    kernel_of: dict[Value, Value] = {}
    shared: list[Op] = []
    for op in reversed(graph.ops):
        value = op.result
        if value in materialized:
            kernel_of[value] = value
            continue
        kernels = {kernel_of.get(reader.result, reader.result) for reader in readers.get(value, [])}
        if len(kernels) > 1 and work.get(value, 0) > 0:
            materialized.add(value)
            kernel_of[value] = value
            shared.append(op)
        elif kernels:
            kernel_of[value] = kernels.pop()
    for op in shared:     # once every buffer is known: its one operand has one
        if cheap_to_repeat(op, work, materialized):
            materialized.discard(op.result)


# elementwise primitives of about one vector instruction: recomputed in each kernel
# that reads them rather than given a buffer (see cheap_to_repeat)
CHEAP_PRIMITIVES = frozenset({"max", "min", "neg", "abs"})


def cheap_to_repeat(op: Op, work: dict[Value, int], materialized: set[Value]) -> bool:
    """A relu-like op, `max(h, 0)`: one cheap elementwise primitive over one
    buffer (the rest scalars broadcast) costs each reader the load of that buffer
    instead of its own, so recomputing it where it is read adds no traffic and
    spares a kernel and a buffer (the small CNN train step: a relu stored next
    to its input, which the relu's VJP reads too, was 2.9 µs of its ~185)."""
    if op.prim not in CHEAP_PRIMITIVES:
        return False
    arrays = [v for v in op.operands if view_base(v).type.size > 1]
    scalars_free = all(work.get(v, 0) == 0 for v in op.operands if v not in arrays)
    return len(arrays) == 1 and arrays[0] in materialized and scalars_free


def _enlarging_view(op, kind: str) -> bool:
    """A broadcast: a view with more elements than what it looks at."""
    return kind == "view" and op.result.type.size > op.operands[0].type.size


__all__ = ["FusionPlan", "affine_view", "global_constant", "live_ops", "plan_fusion",
           "view_base"]
