"""The threaded float32 matmul: one sgemm split over a team of threads.

    void sgemm_parallel(i64 threads, i64 scratch_stride, <the sgemm's arguments,
                        CALLBACK_ARGS included>)

C is cut into one block per thread, each computed with the ordinary sgemm
(codegen/kernels/matmul.py) on its own scratch, `scratch + block * scratch_stride` (a
stride of at least `block_scratch_bytes(M, N, K, threads)`: the scratch of the
largest block, 64-byte aligned); the threads
claim blocks in turn (codegen/threads/host.py), so a late thread's block is done by
another. C is split into column blocks
(whole NR-wide panels, each thread packing only its columns of B) when N is at
least as large as M, else into row blocks (whole MR-tall panels): the operand
every thread then packs whole is the smaller one. The run-time epilogue sees
absolute coordinates (row0/col0 shifted by the block's origin), so it needs no
change. With threads <= 1, or while the parallel regions back off (see
codegen/threads/region.py), it is one plain call on the whole scratch (`threads *
scratch_stride` bytes: `threaded_workspace_bytes` reserves at least the whole
product's sgemm_scratch_bytes there).

The split is made at run time (M and N are arguments) and mirrored here in Python
(`largest_block`) to size the scratch at compile time: both take the panel width of
a split from `_split_grain` and the split rule from `_by_columns`; the share
arithmetic is parallel.split_range's, which `largest_share` restates (a test runs
the emitted split_range against it).
"""
from __future__ import annotations

import llvmlite.ir as lir

from ..kernels.matmul import (CALLBACK_ARGS, SCRATCH_ALIGN, SGEMM_ARGS, host_config, round_up,
                     sgemm_scratch_bytes)
from ..kernels.matmul_ir import I64, PTR, SgemmConfig, float_at, i64
from .host import split_range
from .region import take_serial_turn

PARALLEL_SGEMM_ARGS = ["threads", "scratch_stride"] + SGEMM_ARGS + CALLBACK_ARGS


def _split_grain(config: SgemmConfig, columns: bool) -> int:
    """Blocks are whole panels: NR columns wide, or MR rows tall."""
    return config.nr if columns else config.mr


def _by_columns(m: int, n: int) -> bool:
    """The split rule (emitted as `N >= M` in `_emit_block_body`): cut the larger
    side of C, so the operand every thread packs whole is the smaller one."""
    return n >= m


def largest_share(total: int, parts: int, grain: int) -> int:
    """The longest share of range(total) parallel.split_range gives any of `parts`
    shares: ceil(total / parts) rounded up to a multiple of `grain`, at most total."""
    if total <= 0 or parts <= 0:
        return 0
    return min(round_up(-(-total // parts), grain), total)


def largest_block(m: int, n: int, threads: int, config: SgemmConfig | None = None
                  ) -> tuple[int, int]:
    """(rows, columns) of the largest block of an M x N product C that one of
    `threads` threads computes (the whole of C for one thread)."""
    config = config or host_config()
    if threads <= 1:
        return m, n
    if _by_columns(m, n):
        return m, largest_share(n, threads, _split_grain(config, True))
    return largest_share(m, threads, _split_grain(config, False)), n


def block_scratch_bytes(m: int, n: int, k: int, threads: int,
                        config: SgemmConfig | None = None) -> int:
    """Packing scratch per thread (`scratch_stride`): what the sgemm needs for the
    largest block, rounded up to a multiple of 64 bytes."""
    rows, columns = largest_block(m, n, threads, config)
    needed = sgemm_scratch_bytes(rows, columns, k, config)
    return round_up(needed, SCRATCH_ALIGN)


def threaded_workspace_bytes(m: int, n: int, k: int, threads: int,
                             config: SgemmConfig | None = None) -> int:
    """Bytes of scratch one threaded sgemm call takes: `threads` strides, and never
    less than the whole product needs, since a serial fallback (threads <= 1, or a
    backed-off region) packs the whole product into the same scratch. (threads
    strides always suffice: the blocks' panels add up to at least the whole's.)"""
    whole = round_up(sgemm_scratch_bytes(m, n, k, config), SCRATCH_ALIGN)
    return max(whole, max(threads, 1) * block_scratch_bytes(m, n, k, threads, config))


def emit_sgemm_parallel(module: lir.Module, name: str, sgemm: lir.Function,
                        parallel: lir.Function, config: SgemmConfig,
                        gomp: bool = True) -> lir.Function:
    """Define the threaded sgemm `name` calling `sgemm` (emitted with callback=True)
    on each thread's block, through `parallel` (codegen/threads/region.py's
    emit_parallel). When that backoff says serial (or threads <= 1), one plain call."""
    arg_types = [I64, I64] + [arg.type for arg in sgemm.args]
    fn = lir.Function(module, lir.FunctionType(lir.VoidType(), arg_types), name=name)
    fn.attributes.add("nounwind")
    for arg, arg_name in zip(fn.args, PARALLEL_SGEMM_ARGS):
        arg.name = arg_name
    threads, _, *rest = fn.args
    body = _emit_block_body(module, f"{name}.block", sgemm, config)
    builder = lir.IRBuilder(fn.append_basic_block("entry"))
    alone = builder.icmp_signed("<=", threads, i64(1))
    serial = take_serial_turn(builder, alone) if gomp else alone
    with builder.if_else(serial) as (then, otherwise):
        with then:  # one call on the whole product: no block re-packs an operand
            builder.call(sgemm, rest)
        with otherwise:
            block = builder.alloca(lir.ArrayType(I64, len(fn.args)))
            block.type = PTR
            for position, arg in enumerate(fn.args):
                builder.store(arg, builder.gep(block, [i64(position)], source_etype=I64))
            builder.call(parallel, [builder.bitcast(body, PTR), block, threads, threads])
    builder.ret_void()
    return fn


def _emit_block_body(module: lir.Module, name: str, sgemm: lir.Function,
                     config: SgemmConfig) -> lir.Function:
    """void body(ptr args, i64 block, i64 blocks): one block of C."""
    fn = lir.Function(module, lir.FunctionType(lir.VoidType(), [PTR, I64, I64]), name=name)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    packed, part, parts = fn.args
    builder = lir.IRBuilder(fn.append_basic_block("entry"))
    types = [I64, I64] + [arg.type for arg in sgemm.args]
    loaded = [builder.load(builder.gep(packed, [i64(position)], source_etype=I64), typ=kind)
              for position, kind in enumerate(types)]
    arg = dict(zip(PARALLEL_SGEMM_ARGS, loaded))
    by_columns = builder.icmp_signed(">=", arg["N"], arg["M"])    # _by_columns
    with builder.if_else(by_columns) as (then, otherwise):
        with then:
            start, stop = split_range(builder, arg["N"], part, parts,
                                      _split_grain(config, True))
            _call_block(builder, sgemm, arg, part, start, stop, columns=True)
        with otherwise:
            start, stop = split_range(builder, arg["M"], part, parts,
                                      _split_grain(config, False))
            _call_block(builder, sgemm, arg, part, start, stop, columns=False)
    builder.ret_void()
    return fn


def _call_block(builder: lir.IRBuilder, sgemm: lir.Function, arg: dict, part, start, stop,
                columns: bool) -> None:
    """sgemm on columns (or rows) [start, stop) of C (block `part`, with its own
    scratch), when that block is not empty."""
    with builder.if_then(builder.icmp_signed("<", start, stop)):
        block = dict(arg)
        count = builder.sub(stop, start)
        if columns:
            block["N"] = count
            block["B"] = float_at(builder, arg["B"], builder.mul(start, arg["csB"]))
            block["C"] = float_at(builder, arg["C"], start)
            block["col0"] = builder.add(arg["col0"], start)
        else:
            block["M"] = count
            block["A"] = float_at(builder, arg["A"], builder.mul(start, arg["rsA"]))
            block["C"] = float_at(builder, arg["C"], builder.mul(start, arg["ldc"]))
            block["row0"] = builder.add(arg["row0"], start)
        scratch_offset = builder.mul(part, arg["scratch_stride"])
        block["scratch"] = builder.gep(arg["scratch"], [scratch_offset],
                                       source_etype=lir.IntType(8))
        builder.call(sgemm, [block[key] for key in SGEMM_ARGS + CALLBACK_ARGS])


__all__ = ["PARALLEL_SGEMM_ARGS", "block_scratch_bytes", "emit_sgemm_parallel",
           "largest_block", "largest_share", "threaded_workspace_bytes"]
