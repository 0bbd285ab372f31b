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

import functools
from dataclasses import dataclass
from typing import Callable, Sequence

import llvmlite.ir as lir

from ir.graph import Value
from ir.types import DType

from ..plan.affine import Affine, plan_loops
from ..plan.threads import ThreadPlan
from .elementwise import element_cost
from .expr import Apply, Emitter, ExprBuilder, Load, Node
from .llvmtypes import index, load_element, store_element
from .loops import loop_nest
from .parallel_nest import emit_parallel_nest

# Key of a kernel's temporary workspace in KernelEnv.pointers (KernelPlan.workspace).
WORKSPACE = "workspace"

# combine(builder, accumulator, operand values) -> new accumulator
Combine = Callable[[lir.IRBuilder, lir.Value, list], lir.Value]


@dataclass
class KernelEnv:
    """Where a kernel is being emitted: its builder and buffer pointers by key."""

    builder: lir.IRBuilder
    pointers: dict
    # transcendentals as inline polynomials (CompileOptions.mathlib), else intrinsics
    mathlib: bool
    # buffers whose pointer the caller already moved by the step's
    # `pointer_offsets()` (so kernels differing only in those offsets share code)
    hoisted: frozenset = frozenset()


# Less work than this (~0.4 ms on one core) stays on one thread when a region has
# to wake sleeping threads (10-80 µs here: libgomp teams, codegen/threads/host.py) ...
PARALLEL_MIN_WORK = 4_000_000
# ... and less than this (~0.1 ms) when the threads spin for it (~1 µs: the pool of
# a compiled call, codegen/threads/pool.py, or OMP_WAIT_POLICY=ACTIVE)
SPINNING_MIN_WORK = 1_000_000


class Step:
    """One loop nest of a kernel. `threads` > 1 splits its outer loop over threads
    (set by `plan_threads`)."""

    exprs: ExprBuilder
    threads: int = 1
    # a MapStep (one elementwise store per point): the buffer plan
    # (codegen/plan/memplan.py) may then write it in place of an operand
    is_map = False

    def reads(self) -> set[Value]:
        """Materialized values this step loads."""
        return {load.value for load in self.exprs.loads}

    def emit(self, env: KernelEnv) -> None:
        raise NotImplementedError

    def parallel_sizes(self) -> tuple[int, ...] | None:
        """The loops a thread split may divide (outermost first), None if none."""
        return None

    def pointer_offsets(self) -> dict[Value, int]:
        """Buffers this step reads only from one constant element offset on, with
        that offset, for the caller to apply to the kernel's argument instead
        (`KernelEnv.hoisted`); {} when it does not take offsets that way."""
        return {}

    def work(self) -> int:
        """Rough cost of the whole nest in ~0.1 ns units (elements x operations)."""
        return 0


def node_cost(nodes: Sequence[Node]) -> int:
    """Operations per loop point of the expression trees (shared subtrees once): each
    elementwise primitive's cost from its EMITTERS entry, 1 per load."""
    seen: set[int] = set()
    total = 0
    stack = list(nodes)
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, Apply):
            total += element_cost(node.prim)
            stack.extend(node.args)
        elif isinstance(node, Load):
            total += 1
    return total


def element_count(sizes: Sequence[int]) -> int:
    """Iterations of a loop nest of these sizes."""
    count = 1
    for size in sizes:
        count *= size
    return count


class MapStep(Step):
    """dest[dest_offset] = node, at every point of the loop space `sizes`."""

    is_map = True

    def __init__(self, sizes: Sequence[int], exprs: ExprBuilder, node: Node, dest,
                 dest_offset: Affine, dtype: DType):
        self.exprs = exprs
        self.node = node
        self.dest = dest
        self.dest_offset = dest_offset
        self.dtype = dtype
        self.plan = plan_loops(sizes, exprs.affines() + [dest_offset])
        self.empty = 0 in sizes

    def parallel_sizes(self) -> tuple[int, ...] | None:
        return None if self.empty or not self.plan.sizes else self.plan.sizes

    def work(self) -> int:
        return element_count(self.plan.sizes) * (node_cost([self.node]) + 1)

    def emit(self, env: KernelEnv) -> None:
        if self.empty:
            return
        if self.threads > 1:
            grain = 16 if len(self.plan.sizes) == 1 else 1  # whole cache lines per thread
            emit_parallel_nest(env.builder, env.pointers, self.plan.sizes, self.threads,
                               functools.partial(self._point, mathlib=env.mathlib), grain)
            return
        b = env.builder
        loop_nest(b, self.plan.sizes, lambda counters, _: self._point(
            b, env.pointers, counters, env.mathlib) or [])

    def _point(self, b: lir.IRBuilder, pointers: dict, counters: list, mathlib: bool) -> None:
        point = Emitter(b, pointers, self.plan, counters, mathlib)
        value = point.emit(self.node)
        store_element(b, pointers[self.dest], point.offset(self.dest_offset), self.dtype, value)


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

    def parallel_sizes(self) -> tuple[int, ...] | None:
        """Register reductions split their output elements; in-memory ones (outer
        loops reduced into memory) stay whole."""
        if self.empty or not self.in_register or self.outer == 0:
            return None
        return self.plan.sizes[:self.outer]

    def work(self) -> int:
        return element_count(self.plan.sizes) * (node_cost(self.nodes) + 1)

    def emit(self, env: KernelEnv) -> None:
        if self.empty:
            return
        if self.in_register:
            self._emit_in_register(env)
        else:
            self._emit_in_memory(env)

    def _emit_in_register(self, env: KernelEnv) -> None:
        outer_sizes = self.plan.sizes[:self.outer]
        if self.threads > 1:
            emit_parallel_nest(env.builder, env.pointers, outer_sizes, self.threads,
                               functools.partial(self._reduce_at, mathlib=env.mathlib))
            return
        b = env.builder
        loop_nest(b, outer_sizes, lambda counters, _: self._reduce_at(
            b, env.pointers, counters, env.mathlib) or [])

    def _reduce_at(self, b: lir.IRBuilder, pointers: dict, outer_counters: list,
                   mathlib: bool) -> None:
        """Reduce the inner loops for one output element and store it."""
        inner_sizes = self.plan.sizes[self.outer:]
        zeros = [index(0)] * len(inner_sizes)

        def inner_body(inner_counters, accumulators):
            point = Emitter(b, pointers, self.plan, outer_counters + inner_counters, mathlib)
            values = [point.emit(node) for node in self.nodes]
            return [self.combine(b, accumulators[0], values)]

        (total,) = loop_nest(b, inner_sizes, inner_body, [self.init])
        point = Emitter(b, pointers, self.plan, outer_counters + zeros, mathlib)
        store_element(b, pointers[self.dest], point.offset(self.dest_offset), self.dtype, total)

    def _emit_in_memory(self, env: KernelEnv) -> None:
        b = env.builder
        dest = env.pointers[self.dest]

        def body(counters, carried):
            point = Emitter(b, env.pointers, self.plan, counters, env.mathlib)
            values = [point.emit(node) for node in self.nodes]
            offset = point.offset(self.dest_offset)
            current = load_element(b, dest, offset, self.dtype)
            store_element(b, dest, offset, self.dtype, self.combine(b, current, values))
            return []

        loop_nest(b, self.plan.sizes, body)


def plan_threads(kernels: list, threads: ThreadPlan) -> None:
    """Give steps with enough work a thread split (their `threads` attribute)."""
    if threads.count <= 1:
        return
    least = SPINNING_MIN_WORK if threads.cheap_regions else PARALLEL_MIN_WORK
    for kernel in kernels:
        for step in kernel.steps:
            sizes = step.parallel_sizes()
            if sizes and sizes[0] > 1 and step.work() >= least:
                step.threads = min(threads.count, sizes[0])


@dataclass
class KernelPlan:
    """The steps that write buffer `dest` (a Value, or an output-slot key).

    `workspace`: bytes of 64-byte aligned scratch the steps need while the kernel
    runs (found at `env.pointers[WORKSPACE]`); the buffer plan reuses it afterwards.
    """

    dest: object
    steps: list
    workspace: int = 0
    also_writes: tuple = ()     # a control-flow op's other results (codegen/emit/loops_scan.py)

    def reads(self) -> set[Value]:
        found: set[Value] = set()
        for step in self.steps:
            found |= step.reads()
        found.discard(self.dest)
        found.difference_update(self.also_writes)
        return found

    def pointer_offsets(self) -> dict[Value, int]:
        """The single step's `pointer_offsets` (a kernel of several steps may read a
        buffer at several offsets: it keeps them inside)."""
        if len(self.steps) != 1:
            return {}
        return {value: elements for value, elements in self.steps[0].pointer_offsets().items()
                if value is not self.dest}
