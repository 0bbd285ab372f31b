"""Writing one patches block of a conv (codegen/kernels/conv_gemm.py).

The block holds rows [first_line * line, +lines * line) of the patches matrix and
taps [first_tap, +taps) of its columns, in one of two layouts
(codegen/kernels/conv_blocking.py): row-major, block[r, t*C + c], one memcpy (or
memset, in padding) of the C channels per row and tap; or k-major ("columns"),
block[t*C + c, r], one contiguous run of a line's positions per tap and channel,
read from a clamped in-bounds address and zeroed by a select (a branch-free loop
the vectoriser widens). Positions in padding or dilation holes are 0.
"""
from __future__ import annotations

import llvmlite.ir as lir

from ir.graph import Op

from ..emit.bounds import check_access
from ..emit.direct import all_of, digits, flat, window_position
from ..emit.llvmtypes import F32, I64, PTR, index, load_element, store_element
from ..emit.loops import loop_nest
from .conv_blocking import ConvBlocking
from .matmul_ir import counted, declare

ZERO = lir.Constant(F32, 0.0)


class PatchWriter:
    """Emits the loops that fill one block (see the module docstring)."""

    def __init__(self, op: Op, blocking: ConvBlocking):
        self.op = op
        self.blocking = blocking
        x, w = op.operands
        self.spatial = len(op.attrs["strides"])
        self.window = w.shape[:self.spatial]
        self.line_sizes = op.result.shape[:-2] if self.spatial else op.result.shape[:-1]

    def fill(self, b: lir.IRBuilder, x: lir.Value, block: lir.Value, first_line: lir.Value,
             lines: lir.Value, first_tap: lir.Value, taps: lir.Value) -> None:
        """Write lines [first_line, +lines) and taps [first_tap, +taps) into block."""
        blocking = self.blocking

        def line_body(line_index):
            place = digits(b, b.add(first_line, line_index), self.line_sizes)
            batch, outer = place[0], place[1:]

            def tap_body(offsets, tap_index):
                def point(counters, _):
                    self._point(b, x, block, line_index, batch, outer + counters[:1],
                                offsets, tap_index, counters[0] if counters else index(0))
                    return []
                loop_nest(b, [blocking.line] if self.spatial else [], point)

            if blocking.tap_blocks == 1:   # every tap: a constant nest, no division
                loop_nest(b, list(self.window), lambda offsets, _: tap_body(
                    offsets, flat(b, offsets, self.window)) or [])
            else:
                with counted(b, index(0), taps, index(1), "ptap") as tap_index:
                    tap_body(digits(b, b.add(first_tap, tap_index), self.window), tap_index)

        with counted(b, index(0), lines, index(1), "pline") as line_index:
            line_body(line_index)

    def fill_runs(self, b: lir.IRBuilder, x: lir.Value, block: lir.Value,
                  first_line: lir.Value, lines: lir.Value) -> None:
        """The window-row runs block of lines [first_line, +lines) of one image
        (codegen/kernels/conv_blocking.py): padded input row p (output line
        first_line + p, shifted by the window's rows) and position o hold, for each
        tap dx of a window row, its C channels at block[(p * line + o) * depth +
        dx * C]; rows beyond the image or in padding are zeros."""
        op, blocking = self.op, self.blocking
        attrs = op.attrs
        operand = op.operands[0]
        channels, width = blocking.channels, self.window[1]
        batch, first_row = digits(b, first_line, self.line_sizes)
        padded = b.add(lines, index(blocking.tap_blocks - 1))
        with counted(b, index(0), padded, index(1), "prow") as row:
            vertical, at_row = window_position(b, b.add(first_row, row), index(0), 1, 1,
                                               attrs["padding_low"][0], 1, operand.shape[1])

            def point(counters, _):
                position, tap = counters
                across, at = window_position(b, position, tap, attrs["strides"][1],
                                             attrs["rhs_dilation"][1], attrs["padding_low"][1],
                                             attrs["lhs_dilation"][1], operand.shape[2])
                source = b.mul(flat(b, [batch, at_row, at], operand.shape[:-1]),
                               index(channels))
                place = b.add(b.mul(row, index(blocking.line)), position)
                target = b.add(b.mul(place, index(blocking.depth)),
                               b.mul(tap, index(channels)))
                copy_or_zero(b, b.and_(vertical, across), x, source, block, target, channels)
                return []
            loop_nest(b, [blocking.line, width], point)

    def _point(self, b, x_ptr, block, line_index, batch, outs, offsets, tap_index,
               position) -> None:
        """One output position (row) and one tap: its C channels into the block."""
        x = self.op.operands[0]
        attrs = self.op.attrs
        blocking = self.blocking
        channels = blocking.channels
        found = [window_position(b, outs[k], offsets[k], attrs["strides"][k],
                                 attrs["rhs_dilation"][k], attrs["padding_low"][k],
                                 attrs["lhs_dilation"][k], x.shape[1 + k])
                 for k in range(self.spatial)]
        inside = all_of(b, [flag for flag, _ in found])
        source = b.mul(flat(b, [batch] + [at for _, at in found], x.shape[:-1]),
                       index(channels))
        row = b.add(b.mul(line_index, index(blocking.line)), position)
        if not blocking.columns:
            target = b.add(b.mul(row, index(blocking.depth)), b.mul(tap_index, index(channels)))
            copy_or_zero(b, inside, x_ptr, source, block, target, channels)
            return
        for channel in range(channels):
            value = load_element(b, x_ptr, b.add(source, index(channel)), x.dtype)
            column = b.add(b.mul(tap_index, index(channels)), index(channel))
            target = b.add(b.mul(column, index(blocking.row_block)), row)
            store_element(b, block, target, x.dtype, b.select(inside, value, ZERO))


def copy_or_zero(b: lir.IRBuilder, inside: lir.Value, x: lir.Value, source: lir.Value,
                 block: lir.Value, target: lir.Value, count: int) -> None:
    """block[target:target+count] = x[source:source+count] if inside, else zeros
    (one memcpy or memset of the channels; debug mode checks the run's ends)."""
    check_access(b, x, b.select(inside, source, index(0)), "load")
    check_access(b, x, b.select(inside, b.add(source, index(count - 1)), index(0)), "load")
    destination = b.gep(block, [target], inbounds=True, source_etype=F32)
    size = index(4 * count)
    with b.if_else(inside) as (copy, clear):
        with copy:
            origin = b.gep(x, [source], inbounds=True, source_etype=F32)
            memcpy = declare(b.module, "llvm.memcpy.p0.p0.i64", lir.VoidType(),
                             [PTR, PTR, I64, lir.IntType(1)])
            b.call(memcpy, [destination, origin, size, lir.Constant(lir.IntType(1), 0)])
        with clear:
            memset = declare(b.module, "llvm.memset.p0.i64", lir.VoidType(),
                             [PTR, lir.IntType(8), I64, lir.IntType(1)])
            b.call(memset, [destination, lir.Constant(lir.IntType(8), 0), size,
                            lir.Constant(lir.IntType(1), 0)])


__all__ = ["PatchWriter", "copy_or_zero"]
