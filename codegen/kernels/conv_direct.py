"""Convs with a short contraction (a first layer: 1-3 input channels, a 3x3 or 5x5
window) computed in vector registers, without patches or sgemm.

With taps * C of 9 or 25, a product through sgemm spends more on its patches and on
loading and storing each tile of C than on arithmetic (a K = 9 product is one short
pass over every tile). Here each output row (position) keeps its K features in
registers (<K x float> values, K <= DIRECT_MAX_FEATURES) while every tap and channel
adds its input element, broadcast, times the kernel's row for that tap and
channel: one fma per (row, tap, channel). Rows go in groups of ROW_GROUP, each with
its own accumulator, so the fma chains are independent and run at throughput.
Input elements in padding or dilation holes are read from a clamped address and
replaced by 0 with a select (no branches), as in the patches code.
"""
from __future__ import annotations

import itertools

import llvmlite.ir as lir

from ir.graph import Op

from ..emit.direct import all_of, digits, flat, window_position
from ..emit.llvmtypes import F32, I32, index, load_element
from .conv_blocking import ConvBlocking
from .matmul_ir import counted, declare, float_at

ROW_GROUP = 8


def emit_direct_block(b: lir.IRBuilder, op: Op, blocking: ConvBlocking, x: lir.Value,
                      w: lir.Value, y: lir.Value, first_line: lir.Value, lines: lir.Value
                      ) -> None:
    """y rows of lines [first_line, +lines) (see the module docstring)."""
    spatial = len(op.attrs["strides"])
    line_sizes = op.result.shape[:-2] if spatial else op.result.shape[:-1]
    line = blocking.line
    whole, tail = divmod(line, ROW_GROUP)
    with counted(b, index(0), lines, index(1), "dline") as line_index:
        place = digits(b, b.add(first_line, line_index), line_sizes)
        row0 = b.mul(b.add(first_line, line_index), index(line))
        if whole:
            with counted(b, index(0), index(whole * ROW_GROUP), index(ROW_GROUP),
                         "dgroup") as start:
                _rows(b, op, blocking, x, w, y, place, row0, start, ROW_GROUP)
        if tail:
            _rows(b, op, blocking, x, w, y, place, row0, index(whole * ROW_GROUP), tail)


def _rows(b, op, blocking, x_ptr, w_ptr, y_ptr, place, row0, start, count) -> None:
    """`count` consecutive rows of one line from position `start`, each row's
    features accumulated in a vector register, then stored."""
    x = op.operands[0]
    attrs = op.attrs
    spatial = len(attrs["strides"])
    features, channels = blocking.features, blocking.channels
    vector, fma = feature_vector(b, features)
    window = op.operands[1].shape[:spatial]
    batch, outer = place[0], place[1:]
    positions = [b.add(start, index(r)) for r in range(count)]
    sums = [lir.Constant(vector, None)] * count
    for tap_number, offsets in enumerate(itertools.product(*(range(s) for s in window))):
        for channel in range(channels):
            row = (tap_number * channels + channel) * features
            weights = b.load(float_at(b, w_ptr, index(row)), typ=vector, align=4)
            for r, position in enumerate(positions):
                outs = outer + [position] if spatial else []
                found = [window_position(b, outs[k], index(offsets[k]), attrs["strides"][k],
                                         attrs["rhs_dilation"][k], attrs["padding_low"][k],
                                         attrs["lhs_dilation"][k], x.shape[1 + k])
                         for k in range(spatial)]
                inside = all_of(b, [flag for flag, _ in found])
                at = b.add(b.mul(flat(b, [batch] + [i for _, i in found], x.shape[:-1]),
                                 index(channels)), index(channel))
                value = b.select(inside, load_element(b, x_ptr, at, x.dtype),
                                 lir.Constant(F32, 0.0))
                sums[r] = b.call(fma, [splat(b, value, vector), weights, sums[r]])
    for r, position in enumerate(positions):
        out = float_at(b, y_ptr, b.mul(b.add(row0, position), index(features)))
        b.store(sums[r], out, align=4)


def feature_vector(b: lir.IRBuilder, features: int) -> tuple[lir.VectorType, lir.Function]:
    """The <K x float> type a row's features sum in, and its fma intrinsic."""
    vector = lir.VectorType(F32, features)
    return vector, declare(b.module, f"llvm.fma.v{features}f32", vector, [vector] * 3)


def splat(b: lir.IRBuilder, value: lir.Value, vector: lir.VectorType) -> lir.Value:
    """<K x float> with every lane `value`."""
    one = b.insert_element(lir.Constant(vector, None), value, lir.Constant(I32, 0))
    mask = lir.Constant(lir.VectorType(I32, vector.count), [0] * vector.count)
    return b.shuffle_vector(one, lir.Constant(vector, None), mask)


__all__ = ["ROW_GROUP", "emit_direct_block", "feature_vector", "splat"]
