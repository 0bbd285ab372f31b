"""Convs with a contraction past DIRECT_MAX_DEPTH and at most two vector registers
of output features per row, summed in vector registers without patches or sgemm
(chosen in codegen/kernels/conv_blocking.py).

A kernel-gradient conv of a first layer has 9 rows (1 input channel x 3x3 taps), 16
features and a contraction of 4096 (batch 64 x 8 x 8): through sgemm its 8-row tile,
1-row tile and half-empty 32-wide column tile ran at about a third of the FMA rate.
A conv with 16 or 32 features and a contraction of a few hundred (the small CNN's
second layer, its input gradient) spent a third of its time writing and packing
patches. Here groups of rows (as many <K x float> sums as the sgemm micro-kernel has
accumulators) keep their features in registers while the contraction runs as loops:
the window taps outer (each row's input address found once per tap), the input
channels inner, one fma per row and channel with the kernel's row for that tap and
channel (a broadcast input element per row and K-wide vector loads of the kernel:
the loads a micro-kernel does, without the packing). A row whose tap falls in
padding or a dilation hole reads its channels from a row of zeros in the workspace
instead (its pointer chosen once per tap): a select per element, as conv_direct.py
does, became masked loads that ran out of mask and general registers, 3x the
instructions. Both operands are read at strides (conv_views.py): a kernel
gradient's transposed operands are read in their untransposed buffers; when the
input's batch elements are adjacent there, a group's rows are batch elements at
one output position (`groups_along_batch`), which read one cache line per channel
and share their window positions, else consecutive rows.
"""
from __future__ import annotations

import llvmlite.ir as lir

from ir.graph import Op

from ..emit.bounds import check_access
from ..emit.direct import all_of, digits, window_position
from ..emit.llvmtypes import F32, index
from ..emit.loops import counted_loop, loop_nest
from .conv_blocking import ConvBlocking
from .conv_direct import feature_vector, splat
from .conv_patches import ZERO
from .matmul import SCRATCH_ALIGN, round_up
from .matmul_ir import counted, float_at


def zero_row_bytes(channels: int, stride: int) -> int:
    """Workspace for the row of zeros: `channels` zeros `stride` floats apart (the
    input's channel stride in its buffer, codegen/kernels/conv_views.py)."""
    return round_up(((channels - 1) * stride + 1) * 4, SCRATCH_ALIGN)


def write_zero_row(b: lir.IRBuilder, blocking: ConvBlocking, sources: list,
                   zeros: lir.Value) -> None:
    """The row of zeros (zero_row_bytes of workspace) that taps in padding read,
    written once before any rows are summed (by one thread, ahead of a region)."""
    x_strides = sources[0].strides
    with counted(b, index(0), index(blocking.channels), index(1), "zero") as channel:
        b.store(ZERO, float_at(b, zeros, b.mul(channel, index(x_strides[-1]))))


def share_units(op: Op, blocking: ConvBlocking, sources: list) -> int:
    """What the threads of a region share out: output positions when the groups run
    along the batch (`groups_along_batch`), else row groups (a tail group among them)."""
    if groups_along_batch(sources[0].strides, op.result.shape[0], blocking.row_group):
        return op.result.type.size // (op.result.shape[0] * op.result.shape[-1])
    return -(-blocking.rows // blocking.row_group)


def emit_long_direct(b: lir.IRBuilder, op: Op, blocking: ConvBlocking, sources: list,
                     x: lir.Value, w: lir.Value, y: lir.Value, zeros: lir.Value,
                     first: lir.Value, stop: lir.Value) -> tuple[lir.Value, lir.Value] | None:
    """Units [first, stop) of `share_units` (see the module docstring), in groups of
    blocking.row_group rows; `sources`: the operands' OperandSource (strides in their
    buffers x and w, the kernel's features contiguous); `zeros`: the row written by
    `write_zero_row`. Returns the rows written, [start, end), when they are
    consecutive, else None (groups along the batch)."""
    group = blocking.row_group
    emit = lambda places, rows: _group(b, op, blocking, sources, x, w, y, zeros, places, rows)
    if groups_along_batch(sources[0].strides, op.result.shape[0], group):
        _along_batch(b, op, group, emit, first, stop)
        return None
    whole, tail = divmod(blocking.rows, group)
    shape = op.result.shape[:-1]

    def consecutive(start, count):
        rows = [b.add(start, index(r)) for r in range(count)]
        emit([digits(b, row, shape) for row in rows], rows)
    if whole:
        last = b.select(b.icmp_signed("<", stop, index(whole)), stop, index(whole))
        with counted(b, first, last, index(1), "lgroup") as number:
            consecutive(b.mul(number, index(group)), group)
    if tail:
        with b.if_then(b.icmp_signed(">", stop, index(whole))):
            consecutive(index(whole * group), tail)
    end = b.mul(stop, index(group))
    end = b.select(b.icmp_signed("<", end, index(blocking.rows)), end, index(blocking.rows))
    return b.mul(first, index(group)), end


def groups_along_batch(x_strides, batch: int, group: int) -> bool:
    """Group rows along the batch axis when the input's batch elements are adjacent
    in its buffer (a kernel gradient's input read in place): a group's rows then
    read one cache line per channel, and share their window positions."""
    return x_strides[0] == 1 and batch >= group


def _along_batch(b, op, group, emit, first, stop) -> None:
    """Groups of `group` batch elements (and a tail group) at each output position
    of [first, stop)."""
    batch, shape = op.result.shape[0], op.result.shape[1:-1]
    positions = op.result.type.size // (batch * op.result.shape[-1])
    whole, tail = divmod(batch, group)
    with counted(b, first, stop, index(1), "lposition") as position:
        outs = digits(b, position, shape)

        def members(first, count):
            batches = [b.add(first, index(i)) for i in range(count)]
            emit([[element] + outs for element in batches],
                 [b.add(b.mul(element, index(positions)), position) for element in batches])
        if whole:
            with counted(b, index(0), index(whole * group), index(group), "lbatch") as start:
                members(start, group)
        if tail:
            members(index(whole * group), tail)


def _group(b, op, blocking, sources, x_ptr, w_ptr, y_ptr, zeros, places, rows) -> None:
    """The rows at `places` ([batch, *output position] each), flat row numbers `rows`:
    every tap and channel into registers, then stored."""
    x = op.operands[0]
    x_strides, w_strides = sources[0].strides, sources[1].strides
    attrs = op.attrs
    spatial = len(attrs["strides"])
    features, channels = blocking.features, blocking.channels
    vector, fma = feature_vector(b, features)
    window = list(op.operands[1].shape[:spatial])

    def tap_body(taps, sums):
        starts = []
        for place in places:
            found = [window_position(b, place[1 + k], taps[k], attrs["strides"][k],
                                     attrs["rhs_dilation"][k], attrs["padding_low"][k],
                                     attrs["lhs_dilation"][k], x.shape[1 + k])
                     for k in range(spatial)]
            inside = all_of(b, [flag for flag, _ in found])
            base = strided(b, [place[0]] + [at for _, at in found], x_strides)
            check_access(b, x_ptr, base, "load")
            check_access(b, x_ptr, b.add(base, index((channels - 1) * x_strides[-1])), "load")
            starts.append(b.select(inside, float_at(b, x_ptr, base), zeros))
        kernel_row = strided(b, taps, w_strides)

        def channel_body(channel, values):
            row = b.add(kernel_row, b.mul(channel, index(w_strides[-2])))
            weights = b.load(float_at(b, w_ptr, row), typ=vector, align=4)
            element = b.mul(channel, index(x_strides[-1]))
            updated = []
            for total, first in zip(values, starts):
                value = b.load(float_at(b, first, element), typ=F32)
                updated.append(b.call(fma, [splat(b, value, vector), weights, total]))
            return updated
        return counted_loop(b, channels, channel_body, sums)

    sums = loop_nest(b, window, tap_body, [lir.Constant(vector, None)] * len(places))
    for row, total in zip(rows, sums):
        b.store(total, float_at(b, y_ptr, b.mul(row, index(features))), align=4)


def strided(b: lir.IRBuilder, indices: list, strides) -> lir.Value:
    """Element offset of `indices` along axes `strides` apart (the leading axes)."""
    offset = index(0)
    for position, stride in zip(indices, strides):
        offset = b.add(offset, b.mul(position, index(stride)))
    return offset


__all__ = ["emit_long_direct", "groups_along_batch", "share_units", "write_zero_row",
           "zero_row_bytes"]
