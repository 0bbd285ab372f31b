"""Float32 dot through the packed sgemm of codegen/kernels/matmul.py.

A dot qualifies when, in the loop space (batch, lhs free, rhs free, contract), each
of the four groups collapses to at most one loop for both operands and the result:
it is then `batch` products C[M,N] = A[M,K] . B[K,N] with A and B read through
strides (transposed operands cost no copy: the packing reads them). The sgemm's
packing scratch comes from the kernel's workspace in the buffer plan: per thread,
the scratch of the largest block of C that thread computes. In debug mode the
call's reads and writes are bounds checked by their lowest and highest offsets.

The sgemm itself is compiled once per process into the shared library
(codegen/threads/library.py) that graph modules declare and call.
"""
from __future__ import annotations

from dataclasses import dataclass

import llvmlite.ir as lir

from ir.graph import Op, Value

from ..plan.affine import Affine, LoopPlan, flat_offset, plan_loops
from ..plan.dot_axes import dot_axes
from ..emit.expr import ExprBuilder, Load
from ..threads.host import regions_are_cheap, thread_count
from ..threads.library import BATCHED, SINGLE, THREADED, shared_sgemm
from ..emit.llvmtypes import F32, I32, PTR, index
from ..emit.steps import WORKSPACE, KernelEnv, KernelPlan, Step

GROUPS = ("batch", "m", "n", "k")
# fewer FLOPs than this (~0.35 ms on one core) and a product runs on one thread
# when a region has to wake sleeping threads (10-80 µs on this machine: libgomp
# teams, codegen/threads/host.py); 16 MFLOP products (~0.2 ms) gained nothing then
THREADED_MIN_FLOPS = 32_000_000
# ... and from this size when the threads spin for it (the pool of a compiled
# call, or OMP_WAIT_POLICY=ACTIVE): a region then costs ~1 µs; the 256x256 layers
# of a batch-128 MLP (17 MFLOP) gain
SPINNING_MIN_FLOPS = 4_000_000


@dataclass(frozen=True)
class SgemmShape:
    """Sizes and element strides of one (batched) product."""

    batch: int
    m: int
    n: int
    k: int
    a: dict  # group -> stride of lhs, plus "const"
    b: dict
    c: dict


def plan_sgemm(op: Op, materialized: set[Value]) -> KernelPlan | None:
    """A kernel plan calling sgemm for `op`, or None when it does not qualify."""
    lhs, rhs = op.operands
    lb, rb, lc, rc, lf, rf = dot_axes(op)
    counts = [len(lb), len(lf), len(rf), len(lc)]
    rank = sum(counts)
    starts = [sum(counts[:g]) for g in range(4)]
    lhs_access = _access(lhs.ndim, [(lb, starts[0]), (lf, starts[1]), (lc, starts[3])], rank)
    rhs_access = _access(rhs.ndim, [(rb, starts[0]), (rc, starts[3]), (rf, starts[2])], rank)
    exprs = ExprBuilder(materialized, rank)
    a_node, b_node = exprs.read(lhs, lhs_access), exprs.read(rhs, rhs_access)
    if not (isinstance(a_node, Load) and isinstance(b_node, Load)):
        return None
    dest_axes = list(range(starts[0], starts[2] + counts[2]))
    dest = flat_offset(tuple(Affine.counter(k, rank) for k in dest_axes), op.result.shape, rank)
    sizes = ([lhs.shape[a] for a in lb] + [lhs.shape[a] for a in lf]
             + [rhs.shape[a] for a in rf] + [lhs.shape[a] for a in lc])
    plan = plan_loops(sizes, [a_node.offset, b_node.offset, dest], barriers=starts[1:])
    shape = _shape(plan, starts, a_node.offset, b_node.offset, dest)
    if shape is None:
        return None
    threads = _threads_for(shape)
    step = SgemmStep(exprs, a_node.value, b_node.value, op.result, shape, threads)
    return KernelPlan(op.result, [step], step.workspace_bytes())


def _threads_for(shape: "SgemmShape") -> int:
    """Threads for one product: all of them when it is big enough to pay for a
    parallel region, else 1 (batched products stay on one thread)."""
    least = SPINNING_MIN_FLOPS if regions_are_cheap() else THREADED_MIN_FLOPS
    if shape.batch != 1 or 2 * shape.m * shape.n * shape.k < least:
        return 1
    return thread_count()


def _access(ndim: int, groups, rank: int):
    access = [Affine.constant(0, rank)] * ndim
    for axes, first in groups:
        for position, axis in enumerate(axes):
            access[axis] = Affine.counter(first + position, rank)
    return tuple(access)


def _shape(plan: LoopPlan, starts: list[int], a: Affine, b: Affine, c: Affine
           ) -> SgemmShape | None:
    """Sizes and strides per group, or None if a group needs more than one loop."""
    found: dict[str, tuple[int, int]] = {}
    for position, group in enumerate(plan.groups):
        name = GROUPS[max(g for g in range(4) if starts[g] <= group[0])]
        if name in found:
            return None
        found[name] = (position, plan.sizes[position])
    a_coeffs, a_const = plan.project(a)
    b_coeffs, b_const = plan.project(b)
    c_coeffs, c_const = plan.project(c)

    def strides(coeffs, const):
        table = {name: coeffs[position] for name, (position, _) in found.items()}
        table["const"] = const
        return table

    size = {name: found.get(name, (0, 1))[1] for name in GROUPS}
    c_strides = strides(c_coeffs, c_const)
    if c_strides.get("n", 1) != 1:
        return None
    return SgemmShape(size["batch"], size["m"], size["n"], size["k"],
                      strides(a_coeffs, a_const), strides(b_coeffs, b_const), c_strides)


class SgemmStep(Step):
    """Calls the shared sgemm (batched when there is a batch loop, threaded when
    `threads` > 1). `epilogue` (codegen/kernels/matmul_epilogue.py) is elementwise code run
    on each finished tile of C; then `dest` is the epilogue's result, whose buffer
    holds the raw product until the epilogue rewrites it."""

    def __init__(self, exprs: ExprBuilder, lhs: Value, rhs: Value, dest: Value,
                 shape: SgemmShape, threads: int = 1, epilogue=None):
        self.exprs = exprs
        self.lhs, self.rhs, self.dest = lhs, rhs, dest
        self.shape = shape
        self.threads = threads
        self.epilogue = epilogue

    def reads(self) -> set[Value]:
        found = super().reads()
        if self.epilogue is not None:
            found |= self.epilogue.reads()
        return found

    def scratch_stride(self) -> int:
        """Bytes of packing scratch per thread (64-byte aligned): for the largest
        block of C one thread computes (codegen/threads/sgemm.py)."""
        from ..threads.sgemm import block_scratch_bytes
        s = self.shape
        return block_scratch_bytes(s.m, s.n, s.k, self.threads)

    def workspace_bytes(self) -> int:
        """The kernel's workspace: one scratch stride per thread (the threaded call),
        or the whole product's scratch (one call; batched calls reuse it in turn)."""
        from ..threads.sgemm import threaded_workspace_bytes
        s = self.shape
        return threaded_workspace_bytes(s.m, s.n, s.k, self.threads)

    def pointer_offsets(self) -> dict[Value, int]:
        """A and B start at a constant offset (a slice of a bigger array: one time
        step of a sequence); the caller may apply it, unless the buffer is also
        read otherwise (the other operand, C, the epilogue)."""
        if self.lhs is self.rhs:
            return {}
        others = {self.dest} | (self.epilogue.reads() if self.epilogue is not None else set())
        offsets = {self.lhs: self.shape.a["const"], self.rhs: self.shape.b["const"]}
        return {value: elements for value, elements in offsets.items()
                if elements != 0 and value not in others}

    def emit(self, env: KernelEnv) -> None:
        b = env.builder
        s = self.shape
        self._check_spans(env)
        a_const = 0 if self.lhs in env.hoisted else s.a["const"]
        b_const = 0 if self.rhs in env.hoisted else s.b["const"]
        a_ptr = _shifted(b, env.pointers[self.lhs], a_const)
        b_ptr = _shifted(b, env.pointers[self.rhs], b_const)
        c_ptr = _shifted(b, env.pointers[self.dest], s.c["const"])
        # no workspace when sgemm needs no scratch (K or N is 0): it reads none then
        workspace = env.pointers.get(WORKSPACE, lir.Constant(PTR, None))
        callback = [lir.Constant(PTR, None), lir.Constant(PTR, None)]
        if self.epilogue is not None:
            callback = self.epilogue.emit_callback(env)
        args = [index(s.m), index(s.n), index(s.k),
                a_ptr, index(s.a.get("m", 0)), index(s.a.get("k", 0)),
                b_ptr, index(s.b.get("k", 0)), index(s.b.get("n", 0)),
                c_ptr, index(s.c.get("m", s.n)), lir.Constant(I32, 0), workspace,
                *callback, index(0), index(0)]
        module = b.module
        if s.batch == 1 and self.threads > 1:
            threaded = [index(self.threads), index(self.scratch_stride())]
            b.call(shared_sgemm(module, THREADED), threaded + args)
        elif s.batch == 1:
            b.call(shared_sgemm(module, SINGLE), args)
        else:
            batch = [index(s.batch), index(s.a.get("batch", 0)), index(s.b.get("batch", 0)),
                     index(s.c.get("batch", 0))]
            b.call(shared_sgemm(module, BATCHED), batch + args)

    def _check_spans(self, env: KernelEnv) -> None:
        """Debug mode (codegen/emit/bounds.py): the library call's reads of A and B and
        writes of C, checked by their lowest and highest element offsets against
        the kernel's buffer arguments (keyed by the un-shifted pointers, so "const"
        goes into the offsets). C is written when the product is not empty (K = 0
        writes zeros); A and B are read only when K > 0 too."""
        from ..emit.bounds import check_span
        s = self.shape
        if min(s.batch, s.m, s.n) == 0:
            return
        b = env.builder
        check_span(b, env.pointers[self.dest], *_span(s, s.c, ("batch", "m", "n")), "store")
        if s.k == 0:
            return
        check_span(b, env.pointers[self.lhs], *_span(s, s.a, ("batch", "m", "k")), "load")
        check_span(b, env.pointers[self.rhs], *_span(s, s.b, ("batch", "k", "n")), "load")


def _span(shape: SgemmShape, strides: dict, groups: tuple[str, ...]) -> tuple[int, int]:
    """Lowest and highest element offset of one operand over the product's index
    space: "const" plus each group's (size - 1) * stride, taken at whichever end is
    lower (negative and zero strides included). A group without a stride entry has
    size 1 (`_shape`), so it reaches nothing."""
    sizes = {"batch": shape.batch, "m": shape.m, "n": shape.n, "k": shape.k}
    first = last = strides["const"]
    for group in groups:
        reach = (sizes[group] - 1) * strides.get(group, 0)
        first += min(0, reach)
        last += max(0, reach)
    return first, last


def _shifted(builder: lir.IRBuilder, pointer: lir.Value, elements: int) -> lir.Value:
    if elements == 0:
        return pointer
    return builder.gep(pointer, [index(elements)], inbounds=True, source_etype=F32)


__all__ = ["SPINNING_MIN_FLOPS", "SgemmShape", "SgemmStep", "THREADED_MIN_FLOPS", "plan_sgemm",
           "shared_sgemm"]
