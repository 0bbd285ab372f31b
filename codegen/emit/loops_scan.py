"""Native lowering of the control-flow ops (scan, cond, while_loop): real loops and
branches in the generated code, not unrolled and not interpreted.

A region is planned like any graph (`plan_graph`: fusion, kernels, sgemm, threads,
its own scratch arena) and emitted once, as the kernel function of its own entry
point; the op becomes one kernel of the enclosing graph that calls it:

- scan: a counted loop of `length` trips. Each trip fills the region's buffer table
  (the `.run` calling convention of codegen/emit/entry.py: inputs, outputs, arena) with
  the consts, the carries it starts from, the slice `i` of every x (a pointer into
  the xs buffer, no copy) and, as outputs, the next carry buffers and the slice `i`
  of every stacked y (the body writes straight into the result: stacked outputs
  and stacked residuals are written in place). Carries alternate between the
  result buffer and one scratch buffer, by trip parity chosen so the last trip
  writes the result. The region's arena is part of the kernel's workspace, reused
  by every trip.
- cond: a branch on the predicate to one of the two regions, which write the
  results directly.
- while_loop: carries alternate between two scratch buffers; each trip calls the
  cond region, then the body; the final carries are copied to the results.

A region whose kernels run on threads makes the enclosing graph hold the thread
pool (the loop kernel reports the region's team), and the loop calls the region's
kernel function, which expects the pool to be held, directly.
"""
from __future__ import annotations

from typing import Callable

import llvmlite.ir as lir

from ir.control_flow import scan_parts
from ir.graph import Graph, Op, Value

from .llvmtypes import I1, I8, I64, PTR, index, load_element
from .loops import counted_loop
from ..plan.memplan import align_up
from ..registry import Lowering
from .steps import WORKSPACE, KernelEnv, KernelPlan, Step


class _Region:
    """A region's plan, and (once emitted) the function running its kernels."""

    def __init__(self, graph: Graph, plan_graph: Callable, emit_plan: Callable):
        self.graph = graph
        self.plan = plan_graph(graph)
        self._emit_plan = emit_plan
        self.arena = align_up(max(self.plan.memory.peak_scratch, 1))

    def function(self, module: lir.Module) -> lir.Function:
        if self.plan.kernels_function is None:
            number = 0
            while module.scope.is_used(f"propc.region{number}.run"):   # (names of
                # functions the kernel table folded away stay taken)
                number += 1
            self._emit_plan(module, f"region{number}", self.plan)
        return self.plan.kernels_function

    def call(self, b: lir.IRBuilder, table: lir.Value, pointers: list, arena) -> None:
        """Fill the region's buffer table and run its kernels once."""
        for slot, pointer in enumerate(list(pointers) + [arena]):
            address = b.gep(table, [index(slot)], inbounds=True, source_etype=PTR)
            b.store(pointer, address)
        b.call(self.function(b.module), [table])

    def table(self, b: lir.IRBuilder) -> lir.Value:
        """Stack space for the region's buffer table (allocated in the entry block)."""
        slots = len(self.graph.inputs) + len(self.graph.outputs) + 1
        return _stack_slot(b, lir.ArrayType(PTR, slots))


def _stack_slot(b: lir.IRBuilder, kind: lir.Type) -> lir.Value:
    """An alloca in the function's entry block, as an opaque pointer."""
    with b.goto_entry_block():
        slot = b.alloca(kind)
    slot.type = PTR    # alloca hands back a typed pointer; llvmlite 0.50 uses opaque ones
    return slot


def _offset(b: lir.IRBuilder, base: lir.Value, nbytes: lir.Value) -> lir.Value:
    return b.gep(base, [nbytes], inbounds=True, source_etype=I8)


def _copy(b: lir.IRBuilder, dest: lir.Value, source: lir.Value, nbytes: int) -> None:
    if nbytes == 0:
        return
    memcpy = b.module.declare_intrinsic("llvm.memcpy", [PTR, PTR, I64])
    b.call(memcpy, [dest, source, index(nbytes), lir.Constant(I1, 0)])


class _ControlStep(Step):
    """Common part of the loop and branch steps: reads, threads, workspace layout."""

    def __init__(self, op: Op, regions: list[_Region], scratch: list[Value]):
        self.op = op
        self.regions = regions
        self.scratch = scratch          # values that need one extra scratch buffer
        self.threads = max(region.plan.team for region in regions)
        offsets, total = [], 0
        for value in scratch:
            offsets.append(total)
            total += align_up(value.type.nbytes)
        self.scratch_offsets = offsets
        self.arena_offset = total
        self.workspace = total + max(region.arena for region in regions)

    def reads(self) -> set[Value]:
        return set(self.op.operands)

    def parallel_sizes(self):
        return None                      # the region's own kernels split their loops

    def scratch_pointer(self, b, env: KernelEnv, position: int) -> lir.Value:
        return _offset(b, env.pointers[WORKSPACE], index(self.scratch_offsets[position]))

    def arena(self, b, env: KernelEnv) -> lir.Value:
        return _offset(b, env.pointers[WORKSPACE], index(self.arena_offset))


class ScanStep(_ControlStep):
    """The native scan loop (see the module docstring)."""

    def __init__(self, op: Op, region: _Region):
        nk = op.attrs["num_carry"]
        super().__init__(op, [region], list(op.results[:nk]))

    def emit(self, env: KernelEnv) -> None:
        b, op = env.builder, self.op
        length, nk = op.attrs["length"], op.attrs["num_carry"]
        consts, init, xs = scan_parts(op.attrs, [env.pointers[v] for v in op.operands])
        results = [env.pointers[v] for v in op.results]
        if length == 0:
            for value, source, dest in zip(op.results[:nk], init, results[:nk]):
                _copy(b, dest, source, value.type.nbytes)
            return
        region = self.regions[0]
        table = region.table(b)
        spare = [self.scratch_pointer(b, env, k) for k in range(nk)]
        arena = self.arena(b, env)
        x_step = [v.type.nbytes // length for v in op.operands[len(consts) + nk:]]
        y_step = [v.type.nbytes // length for v in op.results[nk:]]

        def trip(counter, carried):
            data = b.sub(index(length - 1), counter) if op.attrs["reverse"] else counter
            first = b.icmp_unsigned("==", counter, index(0))
            # the trip writes the result buffer when (length - 1 - counter) is even
            writes_result = b.icmp_unsigned(
                "==", b.and_(b.sub(index(length - 1), counter), index(1)), index(0))
            sources = [b.select(first, start, b.select(writes_result, extra, final))
                       for start, final, extra in zip(init, results[:nk], spare)]
            targets = [b.select(writes_result, final, extra)
                       for final, extra in zip(results[:nk], spare)]
            slices = [_offset(b, x, b.mul(data, index(step))) for x, step in zip(xs, x_step)]
            ys = [_offset(b, y, b.mul(data, index(step)))
                  for y, step in zip(results[nk:], y_step)]
            region.call(b, table, consts + sources + slices + targets + ys, arena)
            return []

        counted_loop(b, length, trip)


class CondStep(_ControlStep):
    """Runs one of the two branch regions, which write the results directly."""

    def __init__(self, op: Op, true_region: _Region, false_region: _Region):
        super().__init__(op, [true_region, false_region], [])

    def emit(self, env: KernelEnv) -> None:
        b, op = env.builder, self.op
        pointers = [env.pointers[v] for v in op.operands[1:]]
        results = [env.pointers[v] for v in op.results]
        pred = load_element(b, env.pointers[op.operands[0]], index(0), op.operands[0].dtype)
        arena = self.arena(b, env)
        tables = [region.table(b) for region in self.regions]
        with b.if_else(pred) as (taken, other):
            with taken:
                self.regions[0].call(b, tables[0], pointers + results, arena)
            with other:
                self.regions[1].call(b, tables[1], pointers + results, arena)


class WhileStep(_ControlStep):
    """cond, body, cond, body, ... over two alternating scratch carry sets."""

    def __init__(self, op: Op, test: _Region, body: _Region):
        carries = list(op.results)
        super().__init__(op, [test, body], carries + carries)

    def emit(self, env: KernelEnv) -> None:
        b, op = env.builder, self.op
        count = len(op.results)
        consts = [env.pointers[v] for v in op.operands[:op.attrs["num_consts"]]]
        init = [env.pointers[v] for v in op.operands[op.attrs["num_consts"]:]]
        buffers = [[self.scratch_pointer(b, env, k + half * count) for k in range(count)]
                   for half in (0, 1)]
        arena = self.arena(b, env)
        test, body = self.regions
        tables = [test.table(b), body.table(b)]
        flag = _stack_slot(b, I8)
        for value, source, dest in zip(op.results, init, buffers[0]):
            _copy(b, dest, source, value.type.nbytes)
        entry = b.block
        loop = b.append_basic_block("while")
        done = b.append_basic_block("while.end")
        b.branch(loop)
        b.position_at_end(loop)
        parity = b.phi(I1, name="parity")
        parity.add_incoming(lir.Constant(I1, 0), entry)
        current = [b.select(parity, one, zero) for zero, one in zip(*buffers)]
        following = [b.select(parity, zero, one) for zero, one in zip(*buffers)]
        test.call(b, tables[0], consts + current + [flag], arena)
        keep_going = b.icmp_unsigned("!=", b.load(flag, typ=I8), lir.Constant(I8, 0))
        run_body = b.append_basic_block("while.body")
        b.cbranch(keep_going, run_body, done)
        b.position_at_end(run_body)
        body.call(b, tables[1], consts + current + following, arena)
        parity.add_incoming(b.not_(parity), b.block)
        b.branch(loop)
        b.position_at_end(done)
        for value, source, dest in zip(op.results, current, [env.pointers[v] for v in op.results]):
            _copy(b, dest, source, value.type.nbytes)


def control_flow_lowerings(plan_graph: Callable, emit_plan: Callable) -> dict[str, Lowering]:
    """The LOWERINGS entries of scan, cond and while_loop; codegen/emit/lowering.py passes
    its planner and emitter (a region is lowered like a graph of its own)."""

    def kernel(op: Op, step: _ControlStep) -> KernelPlan:
        return KernelPlan(op.results[0], [step], step.workspace, tuple(op.results[1:]))

    def region(graph: Graph, plan) -> _Region:
        """A region planned with the enclosing graph's thread plan and options."""
        return _Region(graph, lambda body: plan_graph(body, threads=plan.threads,
                                                      options=plan.options), emit_plan)

    def scan(op: Op, plan) -> KernelPlan:
        return kernel(op, ScanStep(op, region(op.attrs["body"], plan)))

    def cond(op: Op, plan) -> KernelPlan:
        regions = [region(op.attrs[name], plan) for name in ("true_branch", "false_branch")]
        return kernel(op, CondStep(op, *regions))

    def while_loop(op: Op, plan) -> KernelPlan:
        regions = [region(op.attrs[name], plan) for name in ("cond", "body")]
        return kernel(op, WhileStep(op, *regions))

    return {"scan": Lowering("kernel", scan), "cond": Lowering("kernel", cond),
            "while_loop": Lowering("kernel", while_loop)}
