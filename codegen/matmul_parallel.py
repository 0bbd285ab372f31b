"""The threaded float32 matmul: one sgemm split over a team of threads.

    void sgemm_parallel(i64 threads, i64 scratch_stride, <the sgemm's arguments,
                        CALLBACK_ARGS included>)

C is cut into one block per thread, each computed with the ordinary sgemm
(codegen/matmul.py) on its own scratch, `scratch + block * scratch_stride` (a
stride of at least sgemm_scratch_bytes(M, N, K), 64-byte aligned); the threads
claim blocks in turn (codegen/parallel.py), so a late thread's block is done by
another. C is split into column blocks
(whole NR-wide panels, each thread packing only its columns of B) when N is at
least as large as M, else into row blocks (whole MR-tall panels): the operand
every thread then packs whole is the smaller one. The run-time epilogue sees
absolute coordinates (row0/col0 shifted by the block's origin), so it needs no
change. With threads <= 1, or while the parallel regions back off (see
codegen/parallel_region.py), it is one plain call.
"""
from __future__ import annotations

import llvmlite.ir as lir

from .matmul import CALLBACK_ARGS, SGEMM_ARGS
from .matmul_ir import I64, PTR, SgemmConfig, float_at, i64
from .parallel import split_range
from .parallel_region import take_serial_turn

PARALLEL_SGEMM_ARGS = ["threads", "scratch_stride"] + SGEMM_ARGS + CALLBACK_ARGS


def emit_sgemm_parallel(module: lir.Module, name: str, sgemm: lir.Function,
                        parallel: lir.Function, config: SgemmConfig,
                        gomp: bool = True) -> lir.Function:
    """Define the threaded sgemm `name` calling `sgemm` (emitted with callback=True)
    on each thread's block, through `parallel` (codegen/parallel_region.py's
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
    by_columns = builder.icmp_signed(">=", arg["N"], arg["M"])
    with builder.if_else(by_columns) as (then, otherwise):
        with then:
            start, stop = split_range(builder, arg["N"], part, parts, config.nr)
            _call_block(builder, sgemm, arg, part, start, stop, columns=True)
        with otherwise:
            start, stop = split_range(builder, arg["M"], part, parts, config.mr)
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


__all__ = ["PARALLEL_SGEMM_ARGS", "emit_sgemm_parallel"]
