"""Conv operands read through a transpose, in the transposed value's own buffer.

A conv's kernel gradient is a conv of transposed operands (ir/passes/vjp_window.py:
the input with batch and channels swapped, the cotangent with the batch moved next
to the features); materialising a transpose is a pass over memory of its own. A
conv summed in registers over a long contraction (codegen/kernels/conv_long_direct.py)
reads its kernel one row of features at a time and its input one element per row
and channel, so it can as well read them at the strides a transpose gives them in
its operand's buffer: the kernel when its features stay last, the input when its
channels stay last or when its batch elements become adjacent (the rows are then
grouped along the batch). The fusion plan gives the buffer to the transpose's
operand instead (`buffers_read`, behind the conv's `Lowering.buffers_read` query),
and the kernel finds each operand's buffer and strides with `operand_source`.
Small CNN train step, 1 thread, CPU time per call: 188.8 µs with both kernel
gradients' transposes materialized, 180.3 reading them in place.
"""
from __future__ import annotations

from dataclasses import dataclass

from ir.graph import Op, Value

from ..options import CompileOptions
from ..plan.affine import row_major_strides
from ..plan.threads import ThreadPlan
from .conv_blocking import ConvBlocking, plan_blocking
from .matmul import sgemm_config
from .conv_long_direct import groups_along_batch


@dataclass(frozen=True)
class OperandSource:
    """Where a conv operand's elements are: in `buffer`'s buffer, axis i of the
    operand `strides[i]` elements apart."""

    buffer: Value
    strides: tuple[int, ...]


def _readable_transpose(op: Op, position: int, blocking: ConvBlocking) -> bool:
    """Whether operand `position` of conv `op` is a transpose the conv may read
    through: one that leaves the last axis last (the input's channels, the kernel's
    features stay contiguous), or an input whose batch elements become adjacent
    (a kernel gradient's input, batch and channels swapped: conv_long_direct.py then
    groups its rows along the batch, each group reading one cache line per channel;
    grouped by output position instead, its channels 256 floats apart in the small
    CNN, the conv took 77 µs instead of 38)."""
    producer = op.operands[position].producer
    if producer is None or producer.prim != "transpose":
        return False
    perm = producer.attrs["perm"]
    last = len(perm) - 1
    if perm[-1] == last:
        return True
    return (position == 0 and perm[0] == last
            and groups_along_batch((1,), op.operands[0].shape[0], blocking.row_group))


def buffers_read(op: Op, threads: ThreadPlan, options: CompileOptions) -> list[Value]:
    """The values whose buffers a float32 single-group conv's kernel reads: each
    operand, or, summed in registers over a long contraction, the operand of a
    transpose it reads through (the rest of the conv's `Lowering.buffers_read`
    query is codegen/kernels/conv.py's)."""
    blocking = plan_blocking(op, threads, sgemm_config(options.cpu), options.conv_long_direct)
    through = blocking.row_group > 0
    return [operand.producer.operands[0]
            if through and _readable_transpose(op, position, blocking) else operand
            for position, operand in enumerate(op.operands)]


def operand_source(op: Op, position: int, materialized, blocking: ConvBlocking
                   ) -> OperandSource:
    """Buffer and strides of operand `position` of conv `op` (planned as `blocking`)
    under the fusion plan `materialized`: its own buffer when it has one, else its
    transpose's operand's."""
    operand = op.operands[position]
    if operand in materialized or not _readable_transpose(op, position, blocking):
        return OperandSource(operand, row_major_strides(operand.shape))
    base = operand.producer.operands[0]
    base_strides = row_major_strides(base.shape)
    perm = operand.producer.attrs["perm"]
    return OperandSource(base, tuple(base_strides[axis] for axis in perm))


__all__ = ["OperandSource", "buffers_read", "operand_source"]
