"""float32 `conv` (one feature group) through the shared packed sgemm.

The product is out[rows, K] = patches[rows, taps * C] . kernel[taps * C, K], with
rows the output positions (batch and spatial, in the result's order) and the kernel
already laid out as that matrix (window, C, K row-major). The patches matrix is
never built whole: the kernel loops over blocks of rows and blocks of taps, writes
one block of patches (ROWS x TAPS*C floats at most, in the kernel's workspace, next
to the sgemm's packing scratch) and calls sgemm on it, accumulating over the tap
blocks. Block sizes keep the patches block near BLOCK_FLOATS (cache sized) while
giving sgemm a contraction of about CONTRACTION_TARGET, so both the forward convs
(many rows, short contraction) and the kernel-gradient convs (few rows, contraction
over the whole batch) run as well-shaped products. Each block's product is split
over threads by the threaded sgemm when it is big enough (sgemm_step's rule); the
patches are written by the calling thread. Positions in padding or
dilation holes are written as 0. Nothing here is a residual: the block is scratch.
"""
from __future__ import annotations

from typing import Callable

import llvmlite.ir as lir

from ir.graph import Op, Value
from ir.types import DType

from ..emit.bounds import check_access, check_span
from ..emit.direct import all_of, buffered_operands, flat, window_position
from ..emit.llvmtypes import F32, I32, I64, PTR, index
from ..threads.sgemm import block_scratch_bytes, threaded_workspace_bytes
from ..threads.host import regions_are_cheap, thread_count
from .matmul_ir import declare
from .sgemm_step import SPINNING_MIN_FLOPS, THREADED_MIN_FLOPS
from ..threads.library import SINGLE, THREADED, shared_sgemm
from ..emit.steps import WORKSPACE, KernelEnv, KernelPlan, Step

BLOCK_FLOATS = 1 << 18          # one patches block: 1 MiB of float32
CONTRACTION_TARGET = 1024       # taps * C per sgemm call, at least one tap


def gemm_qualifies(op: Op) -> bool:
    x, w = op.operands
    return (op.result.dtype is DType.f32 and op.attrs["feature_group_count"] == 1
            and min(x.type.size, w.type.size, op.result.type.size) > 0)


def lower_conv_gemm(op: Op, materialized: set[Value]) -> KernelPlan:
    buffered_operands(op, materialized)
    step = ConvGemmStep(op)
    return KernelPlan(op.result, [step], step.workspace_bytes())


def dynamic_loop(b: lir.IRBuilder, count: lir.Value, body: Callable[[lir.Value], None]) -> None:
    """for i in range(count), count an i64 value >= 1 (tested at the bottom)."""
    entry = b.block
    loop = b.append_basic_block("dyn.loop")
    done = b.append_basic_block("dyn.end")
    b.branch(loop)
    b.position_at_end(loop)
    counter = b.phi(I64, name="j")
    counter.add_incoming(index(0), entry)
    body(counter)
    following = b.add(counter, index(1), flags=["nuw", "nsw"])
    counter.add_incoming(following, b.block)
    b.cbranch(b.icmp_signed("<", following, count), loop, done)
    b.position_at_end(done)


def _digits(b: lir.IRBuilder, value: lir.Value, sizes) -> list[lir.Value]:
    """Row-major multi-index of a flat index over `sizes`."""
    digits = []
    for size in reversed(sizes):
        digits.append(b.urem(value, index(size)))
        value = b.udiv(value, index(size))
    return list(reversed(digits))


class ConvGemmStep(Step):
    """The blocked patches + sgemm loop of one conv (see the module docstring)."""

    def __init__(self, op: Op):
        self.op = op
        x, w = op.operands
        n = len(op.attrs["strides"])
        self.spatial = n
        self.window = w.shape[:n]
        self.channels = x.shape[-1]
        self.features = w.shape[-1]
        self.taps = 1
        for size in self.window:
            self.taps *= size
        self.rows = op.result.type.size // self.features
        self.tap_block = max(1, min(self.taps, CONTRACTION_TARGET // max(self.channels, 1)))
        depth = self.tap_block * self.channels
        self.row_block = max(1, min(self.rows, BLOCK_FLOATS // depth))
        self.threads = _threads_for(self.row_block, self.features, depth)
        self.scratch = threaded_workspace_bytes(self.row_block, self.features, depth,
                                                self.threads)
        self.scratch_stride = block_scratch_bytes(self.row_block, self.features, depth,
                                                  self.threads)

    def reads(self) -> set[Value]:
        return set(self.op.operands)

    def workspace_bytes(self) -> int:
        return self.scratch + self.row_block * self.tap_block * self.channels * 4

    def work(self) -> int:
        return self.rows * self.taps * self.channels * self.features

    def emit(self, env: KernelEnv) -> None:
        b = env.builder
        x, w = self.op.operands
        y = self.op.result
        check_span(b, env.pointers[w], 0, w.type.size - 1, "load")
        check_span(b, env.pointers[y], 0, y.type.size - 1, "store")
        workspace = env.pointers[WORKSPACE]
        block = b.gep(workspace, [index(self.scratch)], inbounds=True,
                      source_etype=lir.IntType(8))
        row_blocks = -(-self.rows // self.row_block)
        tap_blocks = -(-self.taps // self.tap_block)

        def row_chunk(chunk):
            first_row = b.mul(chunk, index(self.row_block))
            rows = _smaller(b, index(self.row_block), b.sub(index(self.rows), first_row))

            def tap_chunk(tap_index):
                first_tap = b.mul(tap_index, index(self.tap_block))
                taps = _smaller(b, index(self.tap_block), b.sub(index(self.taps), first_tap))
                self._fill(b, env.pointers, block, first_row, rows, first_tap, taps)
                self._multiply(b, env.pointers, block, workspace, first_row, rows, first_tap,
                               taps, tap_index)
            dynamic_loop(b, index(tap_blocks), tap_chunk)
        dynamic_loop(b, index(row_blocks), row_chunk)

    def _fill(self, b, pointers, block, first_row, rows, first_tap, taps) -> None:
        """block[r, t*C + c] = x at row first_row + r, tap first_tap + t (0 outside)."""
        x = self.op.operands[0]
        attrs = self.op.attrs
        n = self.spatial
        out_sizes = self.op.result.shape[:-1]
        width = index(self.tap_block * self.channels)

        def row(r):
            position = _digits(b, b.add(first_row, r), out_sizes)
            batch, outs = position[0], position[1:]

            def tap(t):
                offsets = _digits(b, b.add(first_tap, t), self.window)
                found = [window_position(b, outs[k], offsets[k], attrs["strides"][k],
                                         attrs["rhs_dilation"][k], attrs["padding_low"][k],
                                         attrs["lhs_dilation"][k], x.shape[1 + k])
                         for k in range(n)]
                inside = all_of(b, [flag for flag, _ in found])
                source = b.mul(flat(b, [batch] + [at for _, at in found], x.shape[:-1]),
                               index(self.channels))
                target = b.add(b.mul(r, width), b.mul(t, index(self.channels)))
                _copy_or_zero(b, inside, pointers[x], source, block, target, self.channels)
            dynamic_loop(b, taps, tap)
        dynamic_loop(b, rows, row)

    def _multiply(self, b, pointers, block, workspace, first_row, rows, first_tap, taps,
                  tap_index) -> None:
        w = self.op.operands[1]
        y = self.op.result
        c, k = self.channels, self.features
        b_ptr = b.gep(pointers[w], [b.mul(first_tap, index(c * k))], inbounds=True,
                      source_etype=F32)
        c_ptr = b.gep(pointers[y], [b.mul(first_row, index(k))], inbounds=True,
                      source_etype=F32)
        accumulate = b.trunc(b.zext(b.icmp_signed(">", tap_index, index(0)), I64), I32)
        args = [rows, index(k), b.mul(taps, index(c)),
                block, index(self.tap_block * c), index(1),
                b_ptr, index(k), index(1),
                c_ptr, index(k), accumulate, workspace,
                lir.Constant(PTR, None), lir.Constant(PTR, None), index(0), index(0)]
        if self.threads > 1:
            threaded = [index(self.threads), index(self.scratch_stride)]
            b.call(shared_sgemm(b.module, THREADED), threaded + args)
        else:
            b.call(shared_sgemm(b.module, SINGLE), args)


def _copy_or_zero(b: lir.IRBuilder, inside: lir.Value, x: lir.Value, source: lir.Value,
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


def _threads_for(rows: int, features: int, depth: int) -> int:
    """Threads for each block's product, by the rule sgemm_step uses for a dot."""
    least = SPINNING_MIN_FLOPS if regions_are_cheap() else THREADED_MIN_FLOPS
    return thread_count() if 2 * rows * features * depth >= least else 1


def _smaller(b: lir.IRBuilder, x: lir.Value, y: lir.Value) -> lir.Value:
    return b.select(b.icmp_signed("<", x, y), x, y)
