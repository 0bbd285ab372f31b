"""The float32 matmul micro-kernel: C[MR x NR] (+)= A-panel . B-panel with the
whole tile of C kept in vector registers as loop-carried values, one
`llvm.fmuladd` per vector and k (Goto/BLIS-style register blocking, as measured
in PERF.md), then a store that handles the edges of C, accumulation and the
optional epilogue.
"""
from __future__ import annotations

import llvmlite.ir as lir

from .matmul_ir import (F32, FLOAT_BYTES, I1, I32, I64, PTR, Epilogue, SgemmConfig, declare,
                        float_at, i64, internal_function, lanes_below, smin, vector_type)


MICRO_KERNEL_ARGS = ["kc", "a", "a_row_stride", "a_k_stride", "b", "c", "ldc",
                     "row0", "col0", "rows", "cols", "flags"]
FLAG_ACCUMULATE = 1   # C += tile (else C = tile)
FLAG_EPILOGUE = 2     # apply the epilogue (this is the last block of K)


def emit_micro_kernel(module: lir.Module, name: str, config: SgemmConfig, packed_a: bool,
                      epilogue: Epilogue | None, tile_rows: int | None = None) -> lir.Function:
    """void kernel(i64 kc, ptr a, i64 a_row_stride, i64 a_k_stride, ptr b, ptr c, i64 ldc,
    i64 row0, i64 col0, i64 rows, i64 cols, i32 flags, extra...).

    Computes the MR x NR tile sum_k a[r, k] * b[k, j] and stores its top-left
    `rows` x `cols` into c (row stride ldc), adding to c when FLAG_ACCUMULATE is set.
    b is a packed panel (NR floats per k, 64-byte aligned, zero padded), read with
    aligned vector loads. `packed_a`: a is a packed panel too (MR floats per k; the
    stride arguments are ignored); otherwise a is read through its strides and
    rows past `rows` re-read the last valid row, so no memory outside A is touched.
    (`row0`, `col0`: where the tile sits in C, for the epilogue.) `tile_rows` < MR
    makes a shorter kernel for the ragged last rows of C (same panel layout).
    """
    tile_rows = tile_rows or config.mr
    extra = list(epilogue.arg_types) if epilogue else []
    arg_types = [I64, PTR, I64, I64, PTR, PTR, I64, I64, I64, I64, I64, I32] + extra
    fn = internal_function(module, name, arg_types,
                           MICRO_KERNEL_ARGS + [f"extra{i}" for i in range(len(extra))])
    builder = lir.IRBuilder(fn.append_basic_block("entry"))
    args = dict(zip(MICRO_KERNEL_ARGS, fn.args))
    if packed_a:
        row_pointers = [float_at(builder, args["a"], i64(r)) for r in range(tile_rows)]
        a_step = i64(config.mr)
    else:
        last_row = builder.sub(args["rows"], i64(1))
        row_pointers = [float_at(builder, args["a"],
                                 builder.mul(smin(builder, i64(r), last_row), args["a_row_stride"]))
                        for r in range(tile_rows)]
        a_step = args["a_k_stride"]
    _prefetch_tile(builder, config, args["c"], args["ldc"], tile_rows)
    loads = _PanelReads(config, row_pointers, a_step, args["b"])
    tile = _k_loop(builder, config, args["kc"], loads)
    masks = _lane_masks(builder, config, args["cols"])
    store = _TileStore(module, config, args, masks, fn.args[len(MICRO_KERNEL_ARGS):], epilogue)
    store.emit(builder, tile)
    builder.ret_void()
    return fn


def _prefetch_tile(builder, config: SgemmConfig, c, ldc, tile_rows: int) -> None:
    """Ask for C's tile (first and last float of each row) to be in cache by the time
    the k loop ends; prefetches never fault, so rows past the edge are harmless."""
    prefetch = declare(builder.module, "llvm.prefetch.p0", lir.VoidType(), [PTR, I32, I32, I32])
    flags = [lir.Constant(I32, 1), lir.Constant(I32, 3), lir.Constant(I32, 1)]  # write, keep, data
    for r in range(tile_rows):
        row = float_at(builder, c, builder.mul(i64(r), ldc))
        builder.call(prefetch, [row] + flags)
        builder.call(prefetch, [float_at(builder, row, i64(config.nr - 1))] + flags)


def _lane_masks(builder, config: SgemmConfig, cols) -> list[lir.Value]:
    """Per vector of the tile row, the <W x i1> of lanes with column < cols."""
    width = config.vector_width
    return [lanes_below(builder, cols, width, v * width) for v in range(config.nr_vectors)]


class _PanelReads:
    """Emits the loads of one k step: the NR-wide row of b and the MR splats of a."""

    def __init__(self, config: SgemmConfig, row_pointers, a_step, b):
        self.config = config
        self.row_pointers = row_pointers
        self.a_step = a_step
        self.b = b

    def b_row(self, builder, k) -> list[lir.Value]:
        config = self.config
        row = float_at(builder, self.b, builder.mul(k, i64(config.nr)))
        return [builder.load(float_at(builder, row, i64(v * config.vector_width)),
                             typ=vector_type(config), align=config.vector_width * FLOAT_BYTES)
                for v in range(config.nr_vectors)]

    def a_splat(self, builder, k, r: int) -> lir.Value:
        width = self.config.vector_width
        scalar = builder.load(float_at(builder, self.row_pointers[r], builder.mul(k, self.a_step)),
                              typ=F32, align=FLOAT_BYTES)
        vector = vector_type(self.config)
        single = builder.insert_element(lir.Constant(vector, None), scalar, i64(0))
        return builder.shuffle_vector(single, lir.Constant(vector, None),
                                      lir.Constant(lir.VectorType(I32, width), [0] * width))


def _k_loop(builder, config: SgemmConfig, kc, loads: _PanelReads) -> list[list[lir.Value]]:
    """acc[r][v] += splat(a[r, k]) * b[k, v] for k < kc, the accumulators carried
    as phis; returns the tile (zeros when kc <= 0)."""
    module = builder.module
    vector = vector_type(config)
    fma = declare(module, f"llvm.fmuladd.v{config.vector_width}f32", vector, [vector] * 3)
    zero = lir.Constant(vector, None)
    entry = builder.block
    loop = builder.append_basic_block("kloop")
    done = builder.append_basic_block("kdone")
    builder.cbranch(builder.icmp_signed(">", kc, i64(0)), loop, done)
    builder.position_at_end(loop)
    k = builder.phi(I64, name="k")
    k.add_incoming(i64(0), entry)
    rows = len(loads.row_pointers)
    phis = [[builder.phi(vector, name=f"c{r}_{v}") for v in range(config.nr_vectors)]
            for r in range(rows)]
    b_row = loads.b_row(builder, k)
    updated = []
    for r in range(rows):
        splat = loads.a_splat(builder, k, r)
        updated.append([builder.call(fma, [splat, b_row[v], phis[r][v]])
                        for v in range(config.nr_vectors)])
    following = builder.add(k, i64(1), flags=["nsw"])
    k.add_incoming(following, loop)
    builder.cbranch(builder.icmp_signed("<", following, kc), loop, done)
    builder.position_at_end(done)
    tile = []
    for r in range(rows):
        row = []
        for v in range(config.nr_vectors):
            phis[r][v].add_incoming(zero, entry)
            phis[r][v].add_incoming(updated[r][v], loop)
            result = builder.phi(vector, name=f"t{r}_{v}")
            result.add_incoming(zero, entry)
            result.add_incoming(updated[r][v], loop)
            row.append(result)
        tile.append(row)
    return tile


class _TileStore:
    """Stores a finished tile into C: whole vectors when the tile is full, masked
    lanes and guarded rows at the edges of C; optional accumulate and epilogue."""

    def __init__(self, module, config: SgemmConfig, args: dict, masks, extra_args,
                 epilogue: Epilogue | None):
        self.config = config
        self.args = args
        self.masks = masks
        self.extra_args = list(extra_args)
        self.epilogue = epilogue
        vector = vector_type(config)
        mask_type = lir.VectorType(I1, config.vector_width)
        width = config.vector_width
        self.masked_load = declare(module, f"llvm.masked.load.v{width}f32.p0", vector,
                                   [PTR, I32, mask_type, vector])
        self.masked_store = declare(module, f"llvm.masked.store.v{width}f32.p0", lir.VoidType(),
                                    [vector, PTR, I32, mask_type])

    def emit(self, builder, tile) -> None:
        flags = self.args["flags"]
        self.accumulate = builder.icmp_signed(
            "!=", builder.and_(flags, lir.Constant(I32, FLAG_ACCUMULATE)), lir.Constant(I32, 0))
        if self.epilogue is None:
            self._by_shape(builder, tile, False)
            return
        apply = builder.icmp_signed(
            "!=", builder.and_(flags, lir.Constant(I32, FLAG_EPILOGUE)), lir.Constant(I32, 0))
        with builder.if_else(apply) as (then, otherwise):
            with then:
                self._by_shape(builder, tile, True)
            with otherwise:
                self._by_shape(builder, tile, False)

    def _by_shape(self, builder, tile, with_epilogue: bool) -> None:
        config = self.config
        full = builder.and_(builder.icmp_signed("==", self.args["rows"], i64(len(tile))),
                            builder.icmp_signed("==", self.args["cols"], i64(config.nr)))
        with builder.if_else(full) as (then, otherwise):
            with then:
                for r in range(len(tile)):
                    self._store_row(builder, tile[r], r, with_epilogue, masked=False)
            with otherwise:
                for r in range(len(tile)):
                    with builder.if_then(builder.icmp_signed("<", i64(r), self.args["rows"])):
                        self._store_row(builder, tile[r], r, with_epilogue, masked=True)

    def _store_row(self, builder, values, r: int, with_epilogue: bool, masked: bool) -> None:
        config = self.config
        width = config.vector_width
        vector = vector_type(config)
        row = float_at(builder, self.args["c"], builder.mul(i64(r), self.args["ldc"]))
        align = lir.Constant(I32, FLOAT_BYTES)
        for v in range(config.nr_vectors):
            address = float_at(builder, row, i64(v * width))
            mask = self.masks[v] if masked else None
            if masked:
                old = builder.call(self.masked_load,
                                   [address, align, mask, lir.Constant(vector, None)])
            else:
                old = builder.load(address, typ=vector, align=FLOAT_BYTES)
            value = builder.select(self.accumulate, builder.fadd(old, values[v]), values[v])
            if with_epilogue:
                row_index = builder.add(self.args["row0"], i64(r))
                col_index = builder.add(self.args["col0"], i64(v * width))
                value = self.epilogue.emit(builder, value, row_index, col_index, mask,
                                           self.extra_args)
            if masked:
                builder.call(self.masked_store, [value, address, align, mask])
            else:
                builder.store(value, address, align=FLOAT_BYTES)
