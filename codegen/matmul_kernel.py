"""Building blocks of the packed float32 matmul (codegen/matmul.py drives them).

- `SgemmConfig`: the blocking geometry (vector width, micro-tile MR x NR, KC, MC, NC);
- `emit_pack`: copies a block of A or B into contiguous, zero-padded panels;
- `emit_micro_kernel`: C[MR x NR] (+)= A-panel . B-panel with the whole tile of C
  kept in vector registers as loop-carried values, one `llvm.fmuladd` per vector.

The design is the classic Goto/BLIS one (pack panels so the innermost loop streams
contiguous memory; a register-blocked micro-kernel does all the arithmetic); every
line is written for this project from PERF.md's measurements.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import llvmlite.ir as lir

PTR = lir.PointerType()
I1 = lir.IntType(1)
I32 = lir.IntType(32)
I64 = lir.IntType(64)
F32 = lir.FloatType()
FLOAT_BYTES = 4

# An epilogue emits elementwise code on one vector of finished C values:
# emit(builder, values, row, col, mask, extra_args) -> new values.
# `row` is the i64 row of C, `col` the i64 column of lane 0, `mask` an <W x i1>
# of the lanes inside C (None when all are), `extra_args` the caller's extra
# function arguments (bias pointers...). It runs once per element, after the last
# block of K, so it sees the complete (accumulated) C value.
EpilogueEmit = Callable[[lir.IRBuilder, lir.Value, lir.Value, lir.Value, "lir.Value | None",
                         Sequence[lir.Value]], lir.Value]


@dataclass(frozen=True)
class Epilogue:
    """Elementwise code fused into the store of each C tile (bias add, activation).

    `arg_types` are extra arguments appended to the sgemm signature and handed to
    `emit` unchanged.
    """

    emit: EpilogueEmit
    arg_types: tuple[lir.Type, ...] = ()


@dataclass(frozen=True)
class SgemmConfig:
    """Blocking geometry: MR x (nr_vectors * vector_width) register tile, KC deep
    panels, MC rows of A and NC columns of B per packed block."""

    vector_width: int
    mr: int
    nr_vectors: int
    kc: int
    mc: int
    nc: int

    @property
    def nr(self) -> int:
        return self.nr_vectors * self.vector_width

    def __post_init__(self) -> None:
        if self.mc % self.mr or self.nc % self.nr:
            raise ValueError(f"SgemmConfig: mc must be a multiple of mr and nc of nr: {self}")


def i64(value: int) -> lir.Constant:
    return lir.Constant(I64, value)


def vector_type(config: SgemmConfig) -> lir.VectorType:
    return lir.VectorType(F32, config.vector_width)


def smin(builder: lir.IRBuilder, left: lir.Value, right: lir.Value) -> lir.Value:
    """Signed minimum of two i64 values."""
    return builder.select(builder.icmp_signed("<", left, right), left, right)


def float_at(builder: lir.IRBuilder, base: lir.Value, offset: lir.Value) -> lir.Value:
    """Address of float element `offset` of `base`."""
    return builder.gep(base, [offset], source_etype=F32)


def declare(module: lir.Module, name: str, return_type: lir.Type,
            arg_types: Sequence[lir.Type]) -> lir.Function:
    """The function `name` of the module, declared now if it is not there yet."""
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    return lir.Function(module, lir.FunctionType(return_type, list(arg_types)), name=name)


@contextmanager
def counted(builder: lir.IRBuilder, start: lir.Value, stop: lir.Value, step: lir.Value,
            name: str, plain: bool = False) -> Iterator[lir.Value]:
    """`for i in range(start, stop, step)` (runtime i64 bounds, may run 0 times);
    the body is emitted inside the `with` block, which yields the counter.
    `plain`: ask LLVM not to vectorise or unroll the loop (for cold scalar loops,
    where doing so only costs compile time)."""
    before = builder.block
    head = builder.append_basic_block(f"{name}.head")
    body = builder.append_basic_block(f"{name}.body")
    done = builder.append_basic_block(f"{name}.done")
    builder.branch(head)
    builder.position_at_end(head)
    counter = builder.phi(I64, name=name)
    counter.add_incoming(start, before)
    builder.cbranch(builder.icmp_signed("<", counter, stop), body, done)
    builder.position_at_end(body)
    yield counter
    following = builder.add(counter, step, flags=["nsw"])
    counter.add_incoming(following, builder.block)
    latch = builder.branch(head)
    if plain:
        latch.set_metadata("llvm.loop", _plain_loop_id(builder.module))
    builder.position_at_end(done)


def _plain_loop_id(module: lir.Module) -> lir.Value:
    """A fresh `!llvm.loop` node disabling vectorisation and unrolling. Loop IDs must
    be distinct and refer to themselves, which llvmlite's `add_metadata` (it
    interns nodes by content) cannot express, so the node is built directly."""
    disable_vectors = module.add_metadata([lir.MetaDataString(module, "llvm.loop.vectorize.enable"),
                                           lir.Constant(I1, 0)])
    disable_unroll = module.add_metadata([lir.MetaDataString(module, "llvm.loop.unroll.disable")])
    loop_id = lir.values.MDValue(module, [], name=str(len(module.metadata)))
    loop_id.operands = (loop_id, disable_vectors, disable_unroll)
    return loop_id


def _internal_function(module: lir.Module, name: str, arg_types: Sequence[lir.Type],
                       arg_names: Sequence[str]) -> lir.Function:
    fn = lir.Function(module, lir.FunctionType(lir.VoidType(), list(arg_types)), name=name)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    # Called once per block or tile: inlining only slows compilation (the driver's
    # loops get unswitched and duplicated around the bodies).
    fn.attributes.add("noinline")
    for arg, arg_name in zip(fn.args, arg_names):
        arg.name = arg_name
    return fn


# ---------------------------------------------------------------- packing

def emit_pack(module: lir.Module, name: str, lanes: int, vector_width: int) -> lir.Function:
    """void pack(ptr dst, ptr src, i64 lane_stride, i64 k_stride, i64 kc, i64 count).

    Packs `count` lanes (rows of A or columns of B) x `kc` into panels of `lanes`:
    dst[p*lanes*kc + k*lanes + l] = src[(p*lanes + l)*lane_stride + k*k_stride],
    zero where p*lanes + l >= count. Full panels are copied as vectors when lanes
    are adjacent floats, or transposed in registers when each lane is contiguous
    along k; the ragged last panel and other strides go element by element.
    """
    gather = _emit_gather(module, f"{name}.gather", lanes)
    fn = _internal_function(module, name, [PTR, PTR, I64, I64, I64, I64],
                            ["dst", "src", "lane_stride", "k_stride", "kc", "count"])
    _no_alias(fn.args[:2])
    dst, src, lane_stride, k_stride, kc, count = fn.args
    builder = lir.IRBuilder(fn.append_basic_block("entry"))
    adjacent = builder.icmp_signed("==", lane_stride, i64(1))
    fast = builder.or_(adjacent, builder.icmp_signed("==", k_stride, i64(1)))
    full_count = builder.mul(builder.sdiv(count, i64(lanes)), i64(lanes))
    fast_count = builder.select(fast, full_count, i64(0))
    with builder.if_else(adjacent) as (then, otherwise):
        with then:
            _pack_adjacent_lanes(builder, dst, src, k_stride, kc, fast_count, lanes)
        with otherwise:
            _pack_transposed(builder, gather, dst, src, lane_stride, kc, fast_count, lanes,
                             vector_width)
    with counted(builder, fast_count, count, i64(lanes), "panel") as first:
        builder.call(gather, [dst, src, first, lane_stride, k_stride, i64(0), kc, count])
    builder.ret_void()
    return fn


def _no_alias(pointers) -> None:
    """Packing reads an operand and writes the scratch buffer: they never overlap,
    and saying so spares LLVM its runtime overlap checks and fallback loops."""
    for pointer in pointers:
        pointer.add_attribute("noalias")


PACK_K_CHUNK = 8


def _pack_adjacent_lanes(builder, dst, src, k_stride, kc, full_count, lanes: int) -> None:
    """Lanes are adjacent floats (rows of row-major B, columns of a transposed A):
    copy `lanes` floats per k as one vector, for a chunk of k across all panels at
    a time, so the reads run along rows of the source."""
    vector = lir.VectorType(F32, lanes)
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


def _emit_gather(module: lir.Module, name: str, lanes: int) -> lir.Function:
    """void gather(ptr dst, ptr src, i64 first, i64 lane_stride, i64 k_stride,
    i64 k_start, i64 kc, i64 count): the panel starting at lane `first`, for
    k_start <= k < kc, one element at a time, any strides. Lanes past `count` (the
    ragged last panel) read the last valid lane, so no memory outside the operand
    is touched, and store zeros."""
    fn = _internal_function(module, name, [PTR, PTR] + [I64] * 6,
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


def _pack_transposed(builder, gather, dst, src, lane_stride, kc, full_count, lanes: int,
                     width: int) -> None:
    """Full panels whose lanes are each contiguous along k (rows of row-major A,
    columns of a transposed B): read `width` k of up to `width` lanes as vectors
    and transpose the square in registers (missing lanes are zeros, and only the
    real ones are stored); the k left over go element by element."""
    vector = lir.VectorType(F32, width)
    k_vectors = builder.mul(builder.sdiv(kc, i64(width)), i64(width))
    with counted(builder, i64(0), full_count, i64(lanes), "tpanel") as first:
        panel = float_at(builder, dst, builder.mul(first, kc))
        with counted(builder, i64(0), k_vectors, i64(width), "kblock") as k0:
            for group in range(0, lanes, width):
                used = min(width, lanes - group)
                rows = [builder.load(float_at(builder, src, builder.add(
                            builder.mul(builder.add(first, i64(lane)), lane_stride), k0)),
                            typ=vector, align=FLOAT_BYTES)
                        for lane in range(group, group + used)]
                rows += [lir.Constant(vector, None)] * (width - used)
                for j, column in enumerate(transpose_square(builder, rows)):
                    offset = builder.add(builder.mul(builder.add(k0, i64(j)), i64(lanes)), i64(group))
                    _store_leading(builder, column, used, float_at(builder, panel, offset))
        builder.call(gather, [dst, src, first, lane_stride, i64(1), k_vectors, kc,
                              builder.add(first, i64(lanes))])


def _store_leading(builder, values, count: int, address) -> None:
    """Store the first `count` lanes of a vector at `address`."""
    width = values.type.count
    if count < width:
        values = builder.shuffle_vector(values, lir.Constant(values.type, None),
                                        lir.Constant(lir.VectorType(I32, count), list(range(count))))
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
                rows[i] = builder.shuffle_vector(first, second, lir.Constant(mask_type, low))
                rows[i + block] = builder.shuffle_vector(first, second, lir.Constant(mask_type, high))
        block //= 2
    return rows


# ---------------------------------------------------------------- micro-kernel

MICRO_KERNEL_ARGS = ["kc", "a", "a_row_stride", "a_k_stride", "b", "c", "ldc",
                     "row0", "col0", "rows", "cols", "flags"]
FLAG_ACCUMULATE = 1   # C += tile (else C = tile)
FLAG_EPILOGUE = 2     # apply the epilogue (this is the last block of K)


def emit_micro_kernel(module: lir.Module, name: str, config: SgemmConfig, packed_a: bool,
                      epilogue: Epilogue | None) -> lir.Function:
    """void kernel(i64 kc, ptr a, i64 a_row_stride, i64 a_k_stride, ptr b, ptr c, i64 ldc,
    i64 row0, i64 col0, i64 rows, i64 cols, i32 flags, extra...).

    Computes the MR x NR tile sum_k a[r, k] * b[k, j] and stores its top-left
    `rows` x `cols` into c (row stride ldc), adding to c when FLAG_ACCUMULATE is set.
    b is a packed panel (NR floats per k, 64-byte aligned, zero padded), read with
    aligned vector loads. `packed_a`: a is a packed panel too (MR floats per k; the
    stride arguments are ignored); otherwise a is read through its strides and
    rows past `rows` re-read the last valid row, so no memory outside A is touched.
    (`row0`, `col0`: where the tile sits in C, for the epilogue.)
    """
    extra = list(epilogue.arg_types) if epilogue else []
    arg_types = [I64, PTR, I64, I64, PTR, PTR, I64, I64, I64, I64, I64, I32] + extra
    fn = _internal_function(module, name, arg_types,
                            MICRO_KERNEL_ARGS + [f"extra{i}" for i in range(len(extra))])
    builder = lir.IRBuilder(fn.append_basic_block("entry"))
    args = dict(zip(MICRO_KERNEL_ARGS, fn.args))
    if packed_a:
        row_pointers = [float_at(builder, args["a"], i64(r)) for r in range(config.mr)]
        a_step = i64(config.mr)
    else:
        last_row = builder.sub(args["rows"], i64(1))
        row_pointers = [float_at(builder, args["a"],
                                 builder.mul(smin(builder, i64(r), last_row), args["a_row_stride"]))
                        for r in range(config.mr)]
        a_step = args["a_k_stride"]
    _prefetch_tile(builder, config, args["c"], args["ldc"])
    loads = _PanelReads(config, row_pointers, a_step, args["b"])
    tile = _k_loop(builder, config, args["kc"], loads)
    masks = _lane_masks(builder, config, args["cols"])
    store = _TileStore(module, config, args, masks, fn.args[len(MICRO_KERNEL_ARGS):], epilogue)
    store.emit(builder, tile)
    builder.ret_void()
    return fn


def _prefetch_tile(builder, config: SgemmConfig, c, ldc) -> None:
    """Ask for C's tile (first and last float of each row) to be in cache by the time
    the k loop ends; prefetches never fault, so rows past the edge are harmless."""
    prefetch = declare(builder.module, "llvm.prefetch.p0", lir.VoidType(), [PTR, I32, I32, I32])
    flags = [lir.Constant(I32, 1), lir.Constant(I32, 3), lir.Constant(I32, 1)]  # write, keep, data
    for r in range(config.mr):
        row = float_at(builder, c, builder.mul(i64(r), ldc))
        builder.call(prefetch, [row] + flags)
        builder.call(prefetch, [float_at(builder, row, i64(config.nr - 1))] + flags)


def _lane_masks(builder, config: SgemmConfig, cols) -> list[lir.Value]:
    """Per vector of the tile row, the <W x i1> of lanes with column < cols."""
    width = config.vector_width
    mask_type = lir.VectorType(I64, width)
    limit = builder.insert_element(lir.Constant(mask_type, None), cols, i64(0))
    limit = builder.shuffle_vector(limit, lir.Constant(mask_type, None),
                                   lir.Constant(lir.VectorType(I32, width), [0] * width))
    return [builder.icmp_signed("<", lir.Constant(mask_type, [v * width + lane for lane in range(width)]),
                                limit)
            for v in range(config.nr_vectors)]


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
    phis = [[builder.phi(vector, name=f"c{r}_{v}") for v in range(config.nr_vectors)]
            for r in range(config.mr)]
    b_row = loads.b_row(builder, k)
    updated = []
    for r in range(config.mr):
        splat = loads.a_splat(builder, k, r)
        updated.append([builder.call(fma, [splat, b_row[v], phis[r][v]])
                        for v in range(config.nr_vectors)])
    following = builder.add(k, i64(1), flags=["nsw"])
    k.add_incoming(following, loop)
    builder.cbranch(builder.icmp_signed("<", following, kc), loop, done)
    builder.position_at_end(done)
    tile = []
    for r in range(config.mr):
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
        full = builder.and_(builder.icmp_signed("==", self.args["rows"], i64(config.mr)),
                            builder.icmp_signed("==", self.args["cols"], i64(config.nr)))
        with builder.if_else(full) as (then, otherwise):
            with then:
                for r in range(config.mr):
                    self._store_row(builder, tile[r], r, with_epilogue, masked=False)
            with otherwise:
                for r in range(config.mr):
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
                old = builder.call(self.masked_load, [address, align, mask, lir.Constant(vector, None)])
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
