"""Loop steps: the building blocks every kernel is made of.

A kernel writes one buffer in one or more steps, each a loop nest:
- `MapStep`: store an expression at every point of a loop space;
- `ReduceStep`: combine an expression into an accumulator, either
  * in registers (outer loops choose the output element, inner loops reduce into
    a phi; float adds carry `reassoc` so the inner loop vectorises), or
  * in memory (`dest[offset] = combine(dest[offset], value)` over a loop order
    that follows the operand, for reductions over outer axes; the destination
    must have been filled with the identity by an earlier step).

Steps are planned first (expression trees built, loops collapsed) and emitted later
inside the kernel's function, when buffer pointers exist.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import llvmlite.ir as lir

from ir.graph import Value
from ir.types import DType

from .affine import Affine, plan_loops
from .expr import Emitter, ExprBuilder, Node
from .llvmtypes import index, load_element, store_element
from .loops import loop_nest

# Key of a kernel's temporary workspace in KernelEnv.pointers (KernelPlan.workspace).
WORKSPACE = "workspace"

# combine(builder, accumulator, operand values) -> new accumulator
Combine = Callable[[lir.IRBuilder, lir.Value, list], lir.Value]


@dataclass
class KernelEnv:
    """Where a kernel is being emitted: its builder and buffer pointers by key."""

    builder: lir.IRBuilder
    pointers: dict


class Step:
    """One loop nest of a kernel."""

    exprs: ExprBuilder

    def reads(self) -> set[Value]:
        """Materialized values this step loads."""
        return {load.value for load in self.exprs.loads}

    def emit(self, env: KernelEnv) -> None:
        raise NotImplementedError


class MapStep(Step):
    """dest[dest_offset] = node, at every point of the loop space `sizes`."""

    def __init__(self, sizes: Sequence[int], exprs: ExprBuilder, node: Node, dest,
                 dest_offset: Affine, dtype: DType):
        self.exprs = exprs
        self.node = node
        self.dest = dest
        self.dest_offset = dest_offset
        self.dtype = dtype
        self.plan = plan_loops(sizes, exprs.affines() + [dest_offset])
        self.empty = 0 in sizes

    def emit(self, env: KernelEnv) -> None:
        if self.empty:
            return
        b = env.builder

        def body(counters, carried):
            point = Emitter(b, env.pointers, self.plan, counters)
            value = point.emit(self.node)
            store_element(b, env.pointers[self.dest], point.offset(self.dest_offset),
                          self.dtype, value)
            return []

        loop_nest(b, self.plan.sizes, body)


class ReduceStep(Step):
    """Accumulate `combine(acc, nodes...)` over the inner loops into dest.

    in_register: loops `sizes[:outer]` pick the output element, the rest reduce
    into a register started at `init`. Otherwise every loop runs in the given
    order and the accumulator lives at dest[dest_offset].
    """

    def __init__(self, sizes: Sequence[int], outer: int, exprs: ExprBuilder,
                 nodes: Sequence[Node], combine: Combine, init: lir.Constant, dest,
                 dest_offset: Affine, dtype: DType, in_register: bool):
        self.exprs = exprs
        self.nodes = list(nodes)
        self.combine = combine
        self.init = init
        self.dest = dest
        self.dest_offset = dest_offset
        self.dtype = dtype
        self.in_register = in_register
        barriers = [outer] if in_register else []
        self.plan = plan_loops(sizes, exprs.affines() + [dest_offset], barriers)
        self.outer = sum(1 for group in self.plan.groups if group[0] < outer)
        self.empty = 0 in sizes

    def emit(self, env: KernelEnv) -> None:
        if self.empty:
            return
        if self.in_register:
            self._emit_in_register(env)
        else:
            self._emit_in_memory(env)

    def _emit_in_register(self, env: KernelEnv) -> None:
        b = env.builder
        outer_sizes = self.plan.sizes[:self.outer]
        inner_sizes = self.plan.sizes[self.outer:]
        zeros = [index(0)] * len(inner_sizes)

        def outer_body(outer_counters, carried):
            def inner_body(inner_counters, accumulators):
                point = Emitter(b, env.pointers, self.plan, outer_counters + inner_counters)
                values = [point.emit(node) for node in self.nodes]
                return [self.combine(b, accumulators[0], values)]

            (total,) = loop_nest(b, inner_sizes, inner_body, [self.init])
            point = Emitter(b, env.pointers, self.plan, outer_counters + zeros)
            store_element(b, env.pointers[self.dest], point.offset(self.dest_offset),
                          self.dtype, total)
            return []

        loop_nest(b, outer_sizes, outer_body)

    def _emit_in_memory(self, env: KernelEnv) -> None:
        b = env.builder
        dest = env.pointers[self.dest]

        def body(counters, carried):
            point = Emitter(b, env.pointers, self.plan, counters)
            values = [point.emit(node) for node in self.nodes]
            offset = point.offset(self.dest_offset)
            current = load_element(b, dest, offset, self.dtype)
            store_element(b, dest, offset, self.dtype, self.combine(b, current, values))
            return []

        loop_nest(b, self.plan.sizes, body)


@dataclass
class KernelPlan:
    """The steps that write buffer `dest` (a Value, or an output-slot key).

    `workspace`: bytes of 64-byte aligned scratch the steps need while the kernel
    runs (found at `env.pointers[WORKSPACE]`); the buffer plan reuses it afterwards.
    """

    dest: object
    steps: list
    workspace: int = 0

    def reads(self) -> set[Value]:
        found: set[Value] = set()
        for step in self.steps:
            found |= step.reads()
        found.discard(self.dest)
        return found
