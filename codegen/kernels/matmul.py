"""A fast float32 matmul (sgemm) emitted with llvmlite: `emit_sgemm`.

    void @propc_sgemm(i64 M, i64 N, i64 K,
                      ptr A, i64 rsA, i64 csA,      ; A[i, k] = A[i*rsA + k*csA]
                      ptr B, i64 rsB, i64 csB,      ; B[k, j] = B[k*rsB + j*csB]
                      ptr C, i64 ldc,               ; C[i, j] = C[i*ldc + j]
                      i32 accumulate,               ; 0: C = A.B   1: C += A.B
                      ptr scratch,                  ; 64-byte aligned, sgemm_scratch_bytes(M, N, K)
                      [ptr epilogue, ptr context,   ; callback=True: run-time epilogue
                       i64 row0, i64 col0]
                      extra...)                     ; the Epilogue's arguments, if any

Any strides work, so transposed operands (A.T of a row-major array: rsA=1,
csA=lda) are read through the packing with no transpose materialised. K = 0 gives
C = 0 (or C unchanged when accumulating); M or N = 0 does nothing.

How (Goto/BLIS-style blocking, PERF.md's measured recipe): for each NC-wide block
of columns and KC-deep slice of K, B is packed into NR-wide panels; for each MC-tall
block of rows, A is packed into MR-tall panels; a micro-kernel then computes each
MR x NR tile of C in vector registers (a half-height one does ragged last rows).
Packing A only pays when its panels are reused by several column tiles, so narrow
products skip it: a second micro-kernel reads A through its strides (see
`_choose_packing`).

Using it from a lowering: `emit_sgemm(module)` once per module (later calls return
the same function), then one `call` per product with strides in elements; reserve
`sgemm_scratch_bytes(M, N, K)` of 64-byte aligned scratch per concurrent call.
Batched products: `emit_sgemm_batched` (a loop over the same sgemm; stride 0
broadcasts an operand). Threads: split C into row blocks (offset A, C and M) or
column blocks (offset B, C and N), each call with its own scratch; the function
has no global state (codegen/threads/sgemm.py does this). Epilogues: compiled
into the final store of C through `Epilogue` (see matmul_ir.py), or, with
callback=True, a function pointer called on each finished block of C (how graph
kernels fuse their elementwise consumers: codegen/kernels/matmul_epilogue.py).
"""
from __future__ import annotations

import llvmlite.ir as lir

from .. import target

from .matmul_ir import I32, I64, PTR, Epilogue, SgemmConfig, counted, float_at, i64, smin
from .matmul_kernel import FLAG_ACCUMULATE, FLAG_EPILOGUE, emit_micro_kernel
from .matmul_pack import emit_pack

__all__ = ["AVX2_CONFIG", "AVX512_CONFIG", "BASIC_CONFIG", "CALLBACK_ARGS", "CALLBACK_ARG_TYPES",
           "EPILOGUE_TYPE", "SGEMM_ARG_TYPES",
           "Epilogue", "SGEMM_ARGS", "SgemmConfig", "emit_sgemm", "emit_sgemm_batched",
           "host_config", "sgemm_config", "sgemm_scratch_bytes"]

SGEMM_ARGS = ["M", "N", "K", "A", "rsA", "csA", "B", "rsB", "csB", "C", "ldc", "accumulate",
              "scratch"]
SGEMM_ARG_TYPES = [I64, I64, I64, PTR, I64, I64, PTR, I64, I64, PTR, I64, I32, PTR]
# The run-time epilogue of `emit_sgemm(..., callback=True)`: after the last block of
# K, `epilogue(context, row0 + row, col0 + col, rows, cols)` runs on each finished
# block of C at C[row, col] (up to MC rows x NC columns: one row block of a column
# block, still in cache), unless `epilogue` is null.
CALLBACK_ARGS = ["epilogue", "context", "row0", "col0"]
CALLBACK_ARG_TYPES = [PTR, PTR, I64, I64]
EPILOGUE_TYPE = lir.FunctionType(lir.VoidType(), [PTR, I64, I64, I64, I64])
SCRATCH_ALIGN = 64

# Register tiles: AVX-512 has 32 vector registers (8 x 2 zmm accumulators, KC 256 and
# MC 64-96 measured at 105-112 GFLOP/s on znver4 in PERF.md); AVX2 has 16 (6 x 2 ymm
# accumulators + 2 b vectors + 1 splat; on znver3 KC 512 / MC 48 gave 85-93 GFLOP/s,
# level with or above OpenBLAS; KC 256-768 and MC 24-144 were within a few percent).
# NC bounds the packed B block (and the scratch) to KC * NC floats.
AVX512_CONFIG = SgemmConfig(vector_width=16, mr=8, nr_vectors=2, kc=256, mc=96, nc=2048)
AVX2_CONFIG = SgemmConfig(vector_width=8, mr=6, nr_vectors=2, kc=512, mc=48, nc=2048)
BASIC_CONFIG = SgemmConfig(vector_width=4, mr=4, nr_vectors=2, kc=256, mc=64, nc=1024)


def host_config() -> SgemmConfig:
    """The blocking geometry for this machine's vector registers (the JIT's, and the
    process-wide library's)."""
    return sgemm_config(target.HOST)


def sgemm_config(cpu: str) -> SgemmConfig:
    """The blocking geometry for the vector registers of the CPU called `cpu` (the
    compile's `CompileOptions.cpu`: this machine, or an export's target)."""
    features = target.features(cpu)
    if features.get("avx512f", False):
        return AVX512_CONFIG
    if features.get("avx2", False) and features.get("fma", False):
        return AVX2_CONFIG
    return BASIC_CONFIG


def round_up(value: int, multiple: int) -> int:
    """`value` rounded up to a multiple of `multiple`."""
    return -(-value // multiple) * multiple


def sgemm_scratch_bytes(m: int, n: int, k: int, config: SgemmConfig | None = None) -> int:
    """Bytes of the scratch buffer `emit_sgemm`'s function needs for an M x K . K x N
    product (packed panels of B, then of A, each starting 64-byte aligned)."""
    config = config or host_config()
    if min(m, n, k) < 0:
        raise ValueError(f"sgemm_scratch_bytes: sizes must be >= 0, got M={m} N={n} K={k}")
    depth = min(k, config.kc)
    b_floats = round_up(min(n, config.nc), config.nr) * depth
    a_floats = round_up(min(m, config.mc), config.mr) * depth
    return round_up(b_floats * 4, SCRATCH_ALIGN) + a_floats * 4


def emit_sgemm(module: lir.Module, name: str = "propc_sgemm", *,
               config: SgemmConfig | None = None,
               epilogue: Epilogue | None = None, callback: bool = False) -> lir.Function:
    """Define the sgemm function `name` in `module` (once: an existing definition is
    returned as is) and return it. See the module docstring for its signature.

    `epilogue` (optional) fuses elementwise code into the final store of C; its
    `arg_types` are appended to the signature. `callback` adds CALLBACK_ARGS after
    the usual ones: a run-time epilogue function (EPILOGUE_TYPE, or null) called on
    each finished tile of C, for code the caller compiles elsewhere. `config`
    overrides the blocking geometry chosen for the host CPU (tests use this).
    """
    existing = _existing(module, name)
    if existing is not None:
        return existing
    config = config or host_config()
    extra_types = list(epilogue.arg_types) if epilogue else []
    callback_types = CALLBACK_ARG_TYPES if callback else []
    fn = lir.Function(module, lir.FunctionType(lir.VoidType(),
                                               SGEMM_ARG_TYPES + callback_types + extra_types),
                      name=name)
    fn.attributes.add("nounwind")
    names = SGEMM_ARGS + (CALLBACK_ARGS if callback else [])
    for arg, arg_name in zip(fn.args, names + [f"extra{i}" for i in range(len(extra_types))]):
        arg.name = arg_name
    kernels = _Kernels(
        pack_a=emit_pack(module, f"{name}.pack_a", config.mr, config.vector_width),
        pack_b=emit_pack(module, f"{name}.pack_b", config.nr, config.vector_width),
        packed=emit_micro_kernel(module, f"{name}.kernel_packed", config, True, epilogue),
        strided=emit_micro_kernel(module, f"{name}.kernel_strided", config, False, epilogue),
        packed_short=emit_micro_kernel(module, f"{name}.kernel_packed_short", config, True,
                                       epilogue, short_rows(config)),
        strided_short=emit_micro_kernel(module, f"{name}.kernel_strided_short", config, False,
                                        epilogue, short_rows(config)))
    _Driver(fn, config, kernels, callback).emit()
    return fn


def emit_sgemm_batched(module: lir.Module, name: str = "propc_sgemm_batched", *,
                       sgemm_name: str = "propc_sgemm", config: SgemmConfig | None = None,
                       epilogue: Epilogue | None = None) -> lir.Function:
    """Define `void name(i64 batch, i64 strideA, i64 strideB, i64 strideC, <sgemm args>)`:
    `batch` independent products, product b reading A + b*strideA, B + b*strideB
    and writing C + b*strideC (strides in floats; 0 repeats an operand). One scratch
    buffer of sgemm_scratch_bytes(M, N, K) serves every product. It calls the sgemm
    `sgemm_name`, defined with `config`/`epilogue` unless the module already has it
    (so a module holding both variants holds the kernels once)."""
    existing = _existing(module, name)
    if existing is not None:
        return existing
    single = emit_sgemm(module, sgemm_name, config=config, epilogue=epilogue)
    arg_types = [I64] * 4 + [arg.type for arg in single.args]
    fn = lir.Function(module, lir.FunctionType(lir.VoidType(), arg_types), name=name)
    fn.attributes.add("nounwind")
    batch, stride_a, stride_b, stride_c, *rest = fn.args
    for arg, arg_name in zip(fn.args, ["batch", "strideA", "strideB", "strideC"]):
        arg.name = arg_name
    builder = lir.IRBuilder(fn.append_basic_block("entry"))
    with counted(builder, i64(0), batch, i64(1), "batch") as entry:
        args = list(rest)
        for position, stride in ((3, stride_a), (6, stride_b), (9, stride_c)):
            args[position] = float_at(builder, rest[position], builder.mul(entry, stride))
        builder.call(single, args)
    builder.ret_void()
    return fn


def _existing(module: lir.Module, name: str) -> lir.Function | None:
    """The function already defined as `name`, None when the name is free."""
    found = module.globals.get(name)
    if found is not None and not isinstance(found, lir.Function):
        raise ValueError(f"cannot define sgemm {name!r}: the module already has a "
                         f"{type(found).__name__} of that name")
    return found


class _Kernels:
    """The helper functions one sgemm calls."""

    def __init__(self, pack_a, pack_b, packed, strided, packed_short, strided_short):
        self.pack_a = pack_a
        self.pack_b = pack_b
        self.packed = packed
        self.strided = strided
        self.packed_short = packed_short
        self.strided_short = strided_short


class _Driver:
    """Emits the blocked loop nest jc (NC) / pc (KC) / ic (MC) / jr (NR) / ir (MR)."""

    def __init__(self, fn: lir.Function, config: SgemmConfig, kernels: _Kernels,
                 callback: bool = False):
        self.fn = fn
        self.config = config
        self.kernels = kernels
        self.arg = dict(zip(SGEMM_ARGS, fn.args))
        first_extra = len(SGEMM_ARGS) + (len(CALLBACK_ARGS) if callback else 0)
        self.callback = dict(zip(CALLBACK_ARGS, fn.args[len(SGEMM_ARGS):])) if callback else None
        self.extra = list(fn.args[first_extra:])

    def emit(self) -> None:
        builder = lir.IRBuilder(self.fn.append_basic_block("entry"))
        self.builder = builder
        a = self.arg
        empty = builder.or_(builder.icmp_signed("<=", a["M"], i64(0)),
                            builder.icmp_signed("<=", a["N"], i64(0)))
        with builder.if_then(builder.not_(empty)):
            self.pack_a_flag = _choose_packing(builder, self.config, a)
            self.a_scratch = self._a_scratch_pointer()
            self.k_step = self._k_step()
            self._column_blocks()
        builder.ret_void()

    def _a_scratch_pointer(self) -> lir.Value:
        """Packed A follows packed B in the scratch buffer (same layout as
        sgemm_scratch_bytes)."""
        builder, config, a = self.builder, self.config, self.arg
        depth = smin(builder, a["K"], i64(config.kc))
        columns = _round_up_ir(builder, smin(builder, a["N"], i64(config.nc)), config.nr)
        floats = _round_up_ir(builder, builder.mul(columns, depth), SCRATCH_ALIGN // 4)
        return float_at(builder, a["scratch"], floats)

    def _k_step(self) -> lir.Value:
        """Depth of each block of K: at most KC, and equal blocks (K = 784 with
        KC = 512 gives 2 x 392 rather than 512 + 272)."""
        builder, kc, k = self.builder, i64(self.config.kc), self.arg["K"]
        depth = builder.select(builder.icmp_signed(">", k, i64(0)), k, i64(1))
        blocks = builder.sdiv(builder.add(depth, builder.sub(kc, i64(1))), kc)
        return builder.sdiv(builder.add(depth, builder.sub(blocks, i64(1))), blocks)

    def _column_blocks(self) -> None:
        builder, config, a = self.builder, self.config, self.arg
        # K = 0 still runs one (empty) block of K so that C gets written.
        k_stop = builder.select(builder.icmp_signed(">", a["K"], i64(0)), a["K"], i64(1))
        with counted(builder, i64(0), a["N"], i64(config.nc), "jc") as jc:
            nc = smin(builder, i64(config.nc), builder.sub(a["N"], jc))
            with counted(builder, i64(0), k_stop, self.k_step, "pc") as pc:
                kc = smin(builder, self.k_step, builder.sub(a["K"], pc))
                flags = self._flags(pc)
                builder.call(self.kernels.pack_b,
                             [a["scratch"], self._b_at(pc, jc), a["csB"], a["rsB"], kc, nc])
                self._row_blocks(jc, nc, pc, kc, flags)

    def _flags(self, pc) -> lir.Value:
        """FLAG_ACCUMULATE unless this is the first block of K of a C = A.B call;
        FLAG_EPILOGUE on the last block of K."""
        builder, a = self.builder, self.arg
        later = builder.icmp_signed(">", pc, i64(0))
        add = builder.or_(later, builder.icmp_signed("!=", a["accumulate"], lir.Constant(I32, 0)))
        last = builder.icmp_signed(">=", builder.add(pc, self.k_step), a["K"])
        add_bits = builder.select(add, lir.Constant(I32, FLAG_ACCUMULATE), lir.Constant(I32, 0))
        last_bits = builder.select(last, lir.Constant(I32, FLAG_EPILOGUE), lir.Constant(I32, 0))
        return builder.or_(add_bits, last_bits)

    def _a_at(self, row, pc) -> lir.Value:
        builder, a = self.builder, self.arg
        offset = builder.add(builder.mul(row, a["rsA"]), builder.mul(pc, a["csA"]))
        return float_at(builder, a["A"], offset)

    def _b_at(self, pc, column) -> lir.Value:
        builder, a = self.builder, self.arg
        offset = builder.add(builder.mul(pc, a["rsB"]), builder.mul(column, a["csB"]))
        return float_at(builder, a["B"], offset)

    def _row_blocks(self, jc, nc, pc, kc, flags) -> None:
        builder, config, a = self.builder, self.config, self.arg
        with counted(builder, i64(0), a["M"], i64(config.mc), "ic") as ic:
            mc = smin(builder, i64(config.mc), builder.sub(a["M"], ic))
            with builder.if_then(self.pack_a_flag):
                builder.call(self.kernels.pack_a,
                             [self.a_scratch, self._a_at(ic, pc), a["rsA"], a["csA"], kc, mc])
            with counted(builder, i64(0), nc, i64(config.nr), "jr") as jr:
                column = builder.add(jc, jr)
                cols = smin(builder, i64(config.nr), builder.sub(nc, jr))
                b_tile = float_at(builder, a["scratch"], builder.mul(jr, kc))
                self._tiles(ic, mc, pc, kc, column, cols, b_tile, flags)
            if self.callback is not None:
                self._call_epilogue(flags, ic, jc, mc, nc)

    def _tiles(self, ic, mc, pc, kc, column, cols, b_tile, flags) -> None:
        builder, config, a = self.builder, self.config, self.arg
        with counted(builder, i64(0), mc, i64(config.mr), "ir") as ir:
            row = builder.add(ic, ir)
            rows = smin(builder, i64(config.mr), builder.sub(mc, ir))
            packed_a = self.pack_a_flag
            a_panel = float_at(builder, self.a_scratch, builder.mul(ir, kc))
            a_tile = builder.select(packed_a, a_panel, self._a_at(row, pc))
            a_row_step = builder.select(packed_a, i64(1), a["rsA"])
            a_k_step = builder.select(packed_a, i64(config.mr), a["csA"])
            c_tile = float_at(builder, a["C"], builder.add(builder.mul(row, a["ldc"]), column))
            args = [kc, a_tile, a_row_step, a_k_step, b_tile, c_tile, a["ldc"],
                    row, column, rows, cols, flags] + self.extra
            short = builder.icmp_signed("<=", rows, i64(short_rows(config)))
            with builder.if_else(packed_a) as (then, otherwise):
                with then:
                    _call_by_height(builder, short, self.kernels.packed_short,
                                    self.kernels.packed, args)
                with otherwise:
                    _call_by_height(builder, short, self.kernels.strided_short,
                                    self.kernels.strided, args)

    def _call_epilogue(self, flags, row, column, rows, cols) -> None:
        """The run-time epilogue on the block just finished (MC rows of an NC-wide
        column block, still in L2), after the last block of K."""
        builder, callback = self.builder, self.callback
        last = builder.icmp_signed("!=", builder.and_(flags, lir.Constant(I32, FLAG_EPILOGUE)),
                                   lir.Constant(I32, 0))
        address = builder.ptrtoint(callback["epilogue"], I64)
        present = builder.icmp_signed("!=", address, i64(0))
        with builder.if_then(builder.and_(last, present)):
            # an indirect call needs a pointer typed with its function type
            target = builder.inttoptr(address, EPILOGUE_TYPE.as_pointer())
            builder.call(target, [callback["context"], builder.add(callback["row0"], row),
                                  builder.add(callback["col0"], column), rows, cols])


def short_rows(config: SgemmConfig) -> int:
    """Height of the short micro-kernels that do ragged last rows of C: a few rows
    left over (M = 128 with MR = 6 leaves 2) then cost about half a tile, not one."""
    return (config.mr + 1) // 2


def _call_by_height(builder: lir.IRBuilder, short, short_kernel, kernel, args) -> None:
    with builder.if_else(short) as (then, otherwise):
        with then:
            builder.call(short_kernel, args)
        with otherwise:
            builder.call(kernel, args)


def _round_up_ir(builder: lir.IRBuilder, value: lir.Value, multiple: int) -> lir.Value:
    """`value` (an i64 >= 0) rounded up to a multiple of `multiple`, in IR."""
    bumped = builder.add(value, i64(multiple - 1))
    return builder.mul(builder.sdiv(bumped, i64(multiple)), i64(multiple))


def _choose_packing(builder: lir.IRBuilder, config: SgemmConfig, a: dict) -> lir.Value:
    """Whether to pack A (an i1). B is always packed: its panels are read by every
    MR-row tile, and packed panels are what the micro-kernel's aligned vector loads
    need. A's panels are read by every NR-column tile, so packing A pays only when
    N spans several; otherwise the micro-kernel reads A through its strides."""
    return builder.icmp_signed(">", a["N"], i64(2 * config.nr))
