"""Conv epilogues: a conv's elementwise consumer (its bias add, relu) run on each
finished block of the conv's rows, the way matmul_epilogue.py fuses a dot's.

`fuse_conv_epilogues` rewrites a graph's kernel list: a conv kernel D (one
ConvGemmStep, codegen/kernels/conv_gemm.py) whose result is read by exactly one map
kernel E (one loop over the conv's output space, reading D only at the element it
writes) becomes one kernel at E's place: the conv's products write into E's buffer
and E's expression runs on each block of rows while it is in cache, so D's buffer
and one pass over the activations disappear. E's loop space is seen as the
product's [rows, features] by merging its leading axes (plan_loops with a barrier
before the last axis); a map whose reads do not merge that way (one that reads
another array transposed, say) is left alone. Moving the conv to E's place is legal
for the same reason as for a dot: only E reads D, and the buffer plan computes
lifetimes from the rewritten list.
"""
from __future__ import annotations

from ir.graph import Value
from ir.types import DType

from ..plan.affine import LoopPlan, flat_offset, identity_access, plan_loops
from ..emit.steps import KernelPlan, MapStep
from .conv_gemm import ConvGemmStep
from .matmul_epilogue import USE_EPILOGUES, TileEpilogue, _candidates


def fuse_conv_epilogues(graph, kernels: list[KernelPlan]) -> list[KernelPlan]:
    """The kernel list with each fusable (conv, consumer map) pair merged."""
    if not USE_EPILOGUES:
        return kernels
    readers = _readers(kernels)
    producer = {kernel.dest: position for position, kernel in enumerate(kernels)}
    merged = list(kernels)
    removed: set[int] = set()
    for position, kernel in enumerate(kernels):
        step, plan = _row_map(kernel)
        for product in _candidates(step) if step is not None else []:
            source = producer.get(product)
            conv = None if source is None else _plain_conv(kernels[source])
            if (conv is None or source in removed or product in graph.outputs
                    or readers.get(product) != [position]):
                continue
            epilogue = TileEpilogue(step.exprs, step.node, product, kernel.dest,
                                    step.dest_offset, plan.sizes, graph.value_numbers(), plan)
            fused = conv.with_epilogue(kernel.dest, epilogue)
            merged[position] = KernelPlan(kernel.dest, [fused], fused.workspace_bytes())
            removed.add(source)
            break
    return [kernel for position, kernel in enumerate(merged) if position not in removed]


def _readers(kernels: list[KernelPlan]) -> dict[Value, list[int]]:
    """value -> positions of the kernels that read it."""
    found: dict[Value, list[int]] = {}
    for position, kernel in enumerate(kernels):
        for value in kernel.reads():
            found.setdefault(value, []).append(position)
    return found


def _row_map(kernel: KernelPlan) -> tuple[MapStep | None, LoopPlan | None]:
    """The kernel's one map step, when it writes a float32 value row-major and its
    loop space merges into [rows, last axis]; with that two-loop plan."""
    if len(kernel.steps) != 1 or not isinstance(kernel.steps[0], MapStep):
        return None, None
    step = kernel.steps[0]
    dest = kernel.dest
    if (not isinstance(dest, Value) or step.dest is not dest or dest.dtype is not DType.f32
            or dest.ndim < 2 or step.empty):
        return None, None
    rank = dest.ndim
    if step.dest_offset != flat_offset(identity_access(rank), dest.shape, rank):
        return None, None
    plan = plan_loops(dest.shape, step.exprs.affines() + [step.dest_offset], [rank - 1])
    if len(plan.sizes) != 2 or plan.groups[-1] != (rank - 1,):
        return None, None
    return step, plan


def _plain_conv(kernel: KernelPlan) -> ConvGemmStep | None:
    """The kernel's conv step when it is one conv through sgemm without an epilogue."""
    if len(kernel.steps) != 1 or not isinstance(kernel.steps[0], ConvGemmStep):
        return None
    step = kernel.steps[0]
    return step if step.epilogue is None else None


__all__ = ["fuse_conv_epilogues"]
