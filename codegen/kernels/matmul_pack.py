"""Packing for the float32 matmul: copies a block of A or B into contiguous,
zero-padded panels of `lanes` rows (A) or columns (B), k-major, so that the
micro-kernel streams them with plain (aligned) loads.

Three ways, chosen at run time from the strides: adjacent lanes are copied as
vectors; lanes contiguous along k (row-major A, transposed B) are read as vectors
and transposed in registers; anything else goes element by element through one
out-of-line gather function.
"""
from __future__ import annotations

import llvmlite.ir as lir

from .matmul_ir import (F32, FLOAT_BYTES, I1, I32, I64, PTR, counted, declare, float_at, i64,
                        internal_function, lanes_below, smin)


def emit_pack(module: lir.Module, name: str, lanes: int, vector_width: int) -> lir.Function:
    """void pack(ptr dst, ptr src, i64 lane_stride, i64 k_stride, i64 kc, i64 count).

    Packs `count` lanes (rows of A or columns of B) x `kc` into panels of `lanes`:
    dst[p*lanes*kc + k*lanes + l] = src[(p*lanes + l)*lane_stride + k*k_stride],
    zero where p*lanes + l >= count. Panels are copied as vectors when lanes are
    adjacent floats, transposed in registers when each lane is contiguous along k,
    and gathered element by element otherwise.
    """
    gather = _emit_gather(module, f"{name}.gather", lanes)
    fn = internal_function(module, name, [PTR, PTR, I64, I64, I64, I64],
                           ["dst", "src", "lane_stride", "k_stride", "kc", "count"])
    _no_alias(fn.args[:2])
    dst, src, lane_stride, k_stride, kc, count = fn.args
    builder = lir.IRBuilder(fn.append_basic_block("entry"))
    adjacent = builder.icmp_signed("==", lane_stride, i64(1))
    along_k = builder.icmp_signed("==", k_stride, i64(1))
    with builder.if_else(adjacent) as (then, otherwise):
        with then:
            _pack_adjacent_lanes(builder, dst, src, k_stride, kc, count, lanes)
        with otherwise:
            with builder.if_else(along_k) as (then_transpose, otherwise_gather):
                with then_transpose:
                    _pack_transposed(builder, dst, src, lane_stride, kc, count, lanes,
                                     vector_width)
                with otherwise_gather:
                    with counted(builder, i64(0), count, i64(lanes), "panel") as first:
                        builder.call(gather, [dst, src, first, lane_stride, k_stride, i64(0), kc,
                                              count])
    builder.ret_void()
    return fn


def _no_alias(pointers) -> None:
    """Packing reads an operand and writes the scratch buffer: they never overlap,
    and saying so spares LLVM its runtime overlap checks and fallback loops."""
    for pointer in pointers:
        pointer.add_attribute("noalias")


PACK_K_CHUNK = 8


def _pack_adjacent_lanes(builder, dst, src, k_stride, kc, count, lanes: int) -> None:
    """Lanes are adjacent floats (rows of row-major B, columns of a transposed A):
    copy `lanes` floats per k as one vector, for a chunk of k across all full panels
    at a time, so the reads run along rows of the source; then the ragged last
    panel with masked loads (its missing lanes become zeros)."""
    vector = lir.VectorType(F32, lanes)
    full_count = builder.mul(builder.sdiv(count, i64(lanes)), i64(lanes))
    with counted(builder, i64(0), kc, i64(PACK_K_CHUNK), "kchunk") as chunk:
        chunk_end = smin(builder, builder.add(chunk, i64(PACK_K_CHUNK)), kc)
        with counted(builder, i64(0), full_count, i64(lanes), "panel") as first:
            panel = float_at(builder, dst, builder.mul(first, kc))
            column = float_at(builder, src, first)
            with counted(builder, chunk, chunk_end, i64(1), "kcopy") as k:
                values = builder.load(float_at(builder, column, builder.mul(k, k_stride)),
                                      typ=vector, align=FLOAT_BYTES)
                builder.store(values, float_at(builder, panel, builder.mul(k, i64(lanes))),
                              align=FLOAT_BYTES)
    with builder.if_then(builder.icmp_signed("<", full_count, count)):
        masked_load = declare(builder.module, f"llvm.masked.load.v{lanes}f32.p0", vector,
                              [PTR, I32, lir.VectorType(I1, lanes), vector])
        mask = lanes_below(builder, builder.sub(count, full_count), lanes)
        panel = float_at(builder, dst, builder.mul(full_count, kc))
        column = float_at(builder, src, full_count)
        with counted(builder, i64(0), kc, i64(1), "kragged") as k:
            values = builder.call(masked_load, [float_at(builder, column, builder.mul(k, k_stride)),
                                                lir.Constant(I32, FLOAT_BYTES), mask,
                                                lir.Constant(vector, None)])
            builder.store(values, float_at(builder, panel, builder.mul(k, i64(lanes))),
                          align=FLOAT_BYTES)


def _emit_gather(module: lir.Module, name: str, lanes: int) -> lir.Function:
    """void gather(ptr dst, ptr src, i64 first, i64 lane_stride, i64 k_stride,
    i64 k_start, i64 kc, i64 count): the panel starting at lane `first`, for
    k_start <= k < kc, one element at a time, any strides. Lanes past `count` (the
    ragged last panel) read the last valid lane, so no memory outside the operand
    is touched, and store zeros."""
    fn = internal_function(module, name, [PTR, PTR] + [I64] * 6,
                           ["dst", "src", "first", "lane_stride", "k_stride", "k_start", "kc",
                            "count"])
    _no_alias(fn.args[:2])
    dst, src, first, lane_stride, k_stride, k_start, kc, count = fn.args
    builder = lir.IRBuilder(fn.append_basic_block("entry"))
    panel = float_at(builder, dst, builder.mul(first, kc))
    last = builder.sub(count, i64(1))
    zero = lir.Constant(F32, 0.0)
    with counted(builder, i64(0), i64(lanes), i64(1), "lane") as lane:
        index = builder.add(first, lane)
        valid = builder.icmp_signed("<", index, count)
        source = float_at(builder, src, builder.mul(smin(builder, index, last), lane_stride))
        target = float_at(builder, panel, lane)
        with counted(builder, k_start, kc, i64(1), "kgather", plain=True) as k:
            value = builder.load(float_at(builder, source, builder.mul(k, k_stride)), typ=F32,
                                 align=FLOAT_BYTES)
            builder.store(builder.select(valid, value, zero),
                          float_at(builder, target, builder.mul(k, i64(lanes))), align=FLOAT_BYTES)
    builder.ret_void()
    return fn


def _pack_transposed(builder, dst, src, lane_stride, kc, count, lanes: int,
                     width: int) -> None:
    """Lanes each contiguous along k (rows of row-major A, columns of a transposed
    B): read `width` k of up to `width` lanes as vectors and transpose the square in
    registers. Lanes past `count` read the last valid lane and are zeroed, lanes
    beyond `lanes` are zero and not stored; the k left over (fewer than `width`) are
    read with masked loads and only their rows of the square are stored."""
    vector = lir.VectorType(F32, width)
    last = builder.sub(count, i64(1))
    k_vectors = builder.mul(builder.sdiv(kc, i64(width)), i64(width))
    left = builder.sub(kc, k_vectors)
    masked_load = declare(builder.module, f"llvm.masked.load.v{width}f32.p0", vector,
                          [PTR, I32, lir.VectorType(I1, width), vector])
    tail_mask = lanes_below(builder, left, width)
    with counted(builder, i64(0), count, i64(lanes), "tpanel") as first:
        panel = float_at(builder, dst, builder.mul(first, kc))
        sources = []
        for lane in range(lanes):
            index = builder.add(first, i64(lane))
            clamped = builder.mul(smin(builder, index, last), lane_stride)
            valid = builder.icmp_signed("<", index, count)
            sources.append((float_at(builder, src, clamped), valid))

        def full_load(address):
            return builder.load(address, typ=vector, align=FLOAT_BYTES)

        def tail_load(address):
            return builder.call(masked_load, [address, lir.Constant(I32, FLOAT_BYTES),
                                              tail_mask, lir.Constant(vector, None)])

        with counted(builder, i64(0), k_vectors, i64(width), "kblock") as k0:
            _transpose_block(builder, sources, panel, k0, lanes, width, full_load, None)
        with builder.if_then(builder.icmp_signed(">", left, i64(0))):
            _transpose_block(builder, sources, panel, k_vectors, lanes, width, tail_load, left)


def _transpose_block(builder, sources, panel, k0, lanes: int, width: int, load,
                     rows_left) -> None:
    """Pack k0..k0+width-1 of every lane of one panel: `width` lanes at a time are
    loaded as vectors along k, transposed, and stored as k rows of the panel (only
    the first `rows_left` rows when that is given: the tail of kc)."""
    zero = lir.Constant(lir.VectorType(F32, width), None)
    for group in range(0, lanes, width):
        used = min(width, lanes - group)
        rows = []
        for source, valid in sources[group:group + used]:
            rows.append(builder.select(valid, load(float_at(builder, source, k0)), zero))
        rows += [zero] * (width - used)
        for j, column in enumerate(transpose_square(builder, rows)):
            k_row = builder.mul(builder.add(k0, i64(j)), i64(lanes))
            address = float_at(builder, panel, builder.add(k_row, i64(group)))
            if rows_left is None:
                _store_leading(builder, column, used, address)
            else:
                with builder.if_then(builder.icmp_signed("<", i64(j), rows_left)):
                    _store_leading(builder, column, used, address)


def _store_leading(builder, values, count: int, address) -> None:
    """Store the first `count` lanes of a vector at `address`."""
    width = values.type.count
    if count < width:
        leading = lir.Constant(lir.VectorType(I32, count), list(range(count)))
        values = builder.shuffle_vector(values, lir.Constant(values.type, None), leading)
    builder.store(values, address, align=FLOAT_BYTES)


def transpose_square(builder: lir.IRBuilder, rows: list[lir.Value]) -> list[lir.Value]:
    """Transpose a W x W block held as W vectors of W floats (W a power of two):
    log2(W) rounds, each swapping the off-diagonal b x b blocks of every 2b x 2b
    block with two-source shuffles (b = W/2, ..., 1; for W = 8 they become the
    usual vperm2f128 / vshufps / unpack sequence)."""
    width = len(rows)
    mask_type = lir.VectorType(I32, width)
    rows = list(rows)
    block = width // 2
    while block >= 1:
        low = [j if not j & block else width + j - block for j in range(width)]
        high = [j + block if not j & block else width + j for j in range(width)]
        for i in range(width):
            if not i & block:
                first, second = rows[i], rows[i + block]
                low_mask = lir.Constant(mask_type, low)
                high_mask = lir.Constant(mask_type, high)
                rows[i] = builder.shuffle_vector(first, second, low_mask)
                rows[i + block] = builder.shuffle_vector(first, second, high_mask)
        block //= 2
    return rows
