"""Float32 dot through the packed sgemm of codegen/kernels/matmul.py.

Whether a dot qualifies, and its sizes and strides, is a planning question
(codegen/plan/sgemm_layout.py): `batch` products C[M,N] = A[M,K] . B[K,N] with A
and B read through strides (transposed operands cost no copy: the packing reads
them). Its threads follow the compile's ThreadPlan. The sgemm's
packing scratch comes from the kernel's workspace in the buffer plan: per thread,
the scratch of the largest block of C that thread computes. In debug mode the
call's reads and writes are bounds checked by their lowest and highest offsets.

The sgemm itself is compiled once per process into the shared library
(codegen/threads/library.py) that graph modules declare and call.
"""
from __future__ import annotations

import llvmlite.ir as lir

from ir.graph import Op, Value

from ..errors import CodegenError
from ..plan.fusion import FusionPlan
from ..plan.sgemm_layout import SgemmShape, sgemm_layout, writes_rows
from ..plan.threads import ThreadPlan
from ..emit.expr import ExprBuilder
from ..threads.library import BATCHED, SINGLE, THREADED, shared_sgemm
from .matmul import SgemmConfig, sgemm_config
from ..emit.llvmtypes import F32, I32, PTR, index
from ..emit.steps import WORKSPACE, KernelEnv, KernelPlan, Step

# fewer FLOPs than this (~0.35 ms on one core) and a product runs on one thread
# when a region has to wake sleeping threads (10-80 µs on this machine: libgomp
# teams, codegen/threads/host.py); 16 MFLOP products (~0.2 ms) gained nothing then
THREADED_MIN_FLOPS = 32_000_000
# ... and from this size when the threads spin for it (the pool of a compiled
# call, or OMP_WAIT_POLICY=ACTIVE): a region then costs ~1 µs; the 256x256 layers
# of a batch-128 MLP (17 MFLOP) gain
SPINNING_MIN_FLOPS = 4_000_000


def plan_sgemm(op: Op, materialized: FusionPlan) -> KernelPlan | None:
    """A kernel plan calling sgemm for `op`, or None when it does not qualify
    (codegen/plan/sgemm_layout.py); its threads follow the plan's ThreadPlan."""
    layout = sgemm_layout(op, materialized)
    if layout is None:
        return None
    threads = _threads_for(layout.shape, materialized.threads)
    step = SgemmStep(layout.exprs, layout.lhs, layout.rhs, op.result, layout.shape, threads,
                     config=sgemm_config(materialized.options.cpu))
    return KernelPlan(op.result, [step], step.workspace_bytes())


def plan_sgemm_with_epilogue(op: Op, materialized: FusionPlan, epilogue) -> KernelPlan:
    """The sgemm of dot `op` writing the epilogue's destination and running it on
    each finished block (the fusion plan's choice: codegen/plan/epilogues.py)."""
    layout = sgemm_layout(op, materialized)
    if layout is None or not writes_rows(layout.shape, op.result):
        raise CodegenError("the fusion plan gave an epilogue to a dot that is not one "
                           "row-major sgemm")
    threads = _threads_for(layout.shape, materialized.threads)
    step = SgemmStep(layout.exprs, layout.lhs, layout.rhs, epilogue.dest, layout.shape,
                     threads, epilogue, config=sgemm_config(materialized.options.cpu))
    return KernelPlan(epilogue.dest, [step], step.workspace_bytes())


def _threads_for(shape: SgemmShape, threads: ThreadPlan) -> int:
    """Threads for one product: all of them when it is big enough to pay for a
    parallel region, else 1 (batched products stay on one thread)."""
    least = SPINNING_MIN_FLOPS if threads.cheap_regions else THREADED_MIN_FLOPS
    if shape.batch != 1 or 2 * shape.m * shape.n * shape.k < least:
        return 1
    return threads.count


class SgemmStep(Step):
    """Calls the shared sgemm (batched when there is a batch loop, threaded when
    `threads` > 1). `epilogue` (codegen/kernels/matmul_epilogue.py) is elementwise code run
    on each finished tile of C; then `dest` is the epilogue's result, whose buffer
    holds the raw product until the epilogue rewrites it. `config`: the blocking of
    the CPU planned for (CompileOptions.cpu), which sizes the packing scratch."""

    def __init__(self, exprs: ExprBuilder, lhs: Value, rhs: Value, dest: Value,
                 shape: SgemmShape, threads: int = 1, epilogue=None, *, config: SgemmConfig):
        self.exprs = exprs
        self.lhs, self.rhs, self.dest = lhs, rhs, dest
        self.shape = shape
        self.threads = threads
        self.epilogue = epilogue
        self.config = config

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
        return block_scratch_bytes(s.m, s.n, s.k, self.threads, self.config)

    def workspace_bytes(self) -> int:
        """The kernel's workspace: one scratch stride per thread (the threaded call),
        or the whole product's scratch (one call; batched calls reuse it in turn)."""
        from ..threads.sgemm import threaded_workspace_bytes
        s = self.shape
        return threaded_workspace_bytes(s.m, s.n, s.k, self.threads, self.config)

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
           "plan_sgemm_with_epilogue",
           "shared_sgemm"]
