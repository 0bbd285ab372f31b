"""Conv operands read through a transpose, in the transposed value's own buffer.

A conv's kernel gradient is a conv of transposed operands (ir/passes/vjp_window.py:
the input with batch and channels swapped, the cotangent with the batch moved next
to the features); materialising a transpose is a pass over memory of its own. A
conv summed in registers over a long contraction (codegen/kernels/conv_long_direct.py)
reads its kernel one row of features at a time (and its input one run of channels
per row and tap), so it can as well read them at the strides a transpose gives them
in its operand's buffer, as long as the last axis stays last: the fusion plan gives
that buffer to the transpose's operand instead (`buffers_read`, behind the conv's
`Lowering.buffers_read` query), and the kernel finds each operand's buffer and
strides with `operand_source`.
"""
from __future__ import annotations

from dataclasses import dataclass

from ir.graph import Op, Value

from .conv_blocking import plan_blocking


@dataclass(frozen=True)
class OperandSource:
    """Where a conv operand's elements are: in `buffer`'s buffer, axis i of the
    operand `strides[i]` elements apart."""

    buffer: Value
    strides: tuple[int, ...]


def contiguous_strides(shape) -> tuple[int, ...]:
    strides, step = [], 1
    for size in reversed(shape):
        strides.append(step)
        step *= size
    return tuple(reversed(strides))


def _readable_transpose(op: Op, position: int) -> bool:
    """Whether operand `position` of conv `op` is a transpose the conv may read
    through: one that leaves the last axis last (the input's channels, the kernel's
    features stay contiguous). A kernel gradient's input has batch and channels
    swapped: read in place, its channels 256 floats apart in the small CNN, the
    conv took 77 µs instead of 38 (cache sets, one line per element), more than
    the transpose costs; its cotangent keeps the features last and reads well."""
    producer = op.operands[position].producer
    if producer is None or producer.prim != "transpose":
        return False
    perm = producer.attrs["perm"]
    return perm[-1] == len(perm) - 1


def buffers_read(op: Op) -> list[Value]:
    """The values whose buffers a float32 single-group conv's kernel reads: each
    operand, or, summed in registers over a long contraction, the operand of a
    transpose it reads through (the rest of the conv's `Lowering.buffers_read`
    query is codegen/kernels/conv.py's)."""
    through = plan_blocking(op).row_group > 0
    return [operand.producer.operands[0] if through and _readable_transpose(op, position)
            else operand for position, operand in enumerate(op.operands)]


def operand_source(op: Op, position: int, materialized) -> OperandSource:
    """Buffer and strides of operand `position` of conv `op` under the fusion plan
    `materialized`: its own buffer when it has one, else its transpose's operand's."""
    operand = op.operands[position]
    if operand in materialized or not _readable_transpose(op, position):
        return OperandSource(operand, contiguous_strides(operand.shape))
    base = operand.producer.operands[0]
    base_strides = contiguous_strides(base.shape)
    return OperandSource(base, tuple(base_strides[axis] for axis in operand.producer.attrs["perm"]))


__all__ = ["OperandSource", "buffers_read", "contiguous_strides", "operand_source"]
