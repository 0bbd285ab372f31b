"""codegen/matmul.py: the emitted sgemm against float64 NumPy, through ctypes.

One module holds every variant under test (host blocking, a tiny blocking that
runs every loop of the blocked driver many times on small matrices, the other
vector width, a batched entry and a bias + relu epilogue); it is JIT-compiled once
by the harness below. Errors are bounded like a float32 dot product: each element
within 2*K*eps32 * (|A| @ |B|) of the exact value.
"""
from __future__ import annotations

import ctypes
import re
import time

import llvmlite.binding as llvm
import llvmlite.ir as lir
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codegen.kernels.matmul import (AVX2_CONFIG, AVX512_CONFIG, Epilogue, SgemmConfig, emit_sgemm,
                            emit_sgemm_batched, host_config, sgemm_scratch_bytes)

TINY = SgemmConfig(vector_width=4, mr=3, nr_vectors=2, kc=5, mc=6, nc=16)
OTHER_WIDTH = AVX2_CONFIG if host_config().vector_width == 16 else AVX512_CONFIG
EPS32 = 2.0 ** -24
GUARD = 256

_SGEMM_ARGS = [ctypes.c_int64] * 3 + [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64] * 2 + [
    ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32, ctypes.c_void_p]
# run-time epilogue (callback=True): function, context, row0, col0
_CALLBACK_ARGS = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64]
EPILOGUE_FUNCTION = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
                                     ctypes.c_int64, ctypes.c_int64)


# ---------------------------------------------------------------- harness

def _bias_relu(builder: lir.IRBuilder, values, row, col, mask, extra):
    """Epilogue under test: relu(value + bias[col]) (masked bias load at edges)."""
    vector = values.type
    bias = builder.gep(extra[0], [col], source_etype=lir.FloatType())
    if mask is None:
        loaded = builder.load(bias, typ=vector, align=4)
    else:
        name = f"llvm.masked.load.v{vector.count}f32.p0"
        masked_load = builder.module.globals.get(name) or lir.Function(
            builder.module, lir.FunctionType(vector, [lir.PointerType(), lir.IntType(32),
                                                      mask.type, vector]), name=name)
        loaded = builder.call(masked_load, [bias, lir.Constant(lir.IntType(32), 4), mask,
                                            lir.Constant(vector, None)])
    total = builder.fadd(values, loaded)
    zero = lir.Constant(vector, None)
    return builder.select(builder.fcmp_ordered(">", total, zero), total, zero)


BIAS_RELU = Epilogue(emit=_bias_relu, arg_types=(lir.PointerType(),))


def _host_machine() -> llvm.TargetMachine:
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(cpu=llvm.get_host_cpu_name(),
                                        features=llvm.get_host_cpu_features().flatten(),
                                        opt=3, codemodel="jitdefault")


class Compiled:
    """The JIT-compiled test module and ctypes entry points into it."""

    def __init__(self):
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        module = lir.Module(name="test_matmul")
        module.triple = llvm.get_default_triple()
        self.first = emit_sgemm(module, "sgemm_host")
        self.again = emit_sgemm(module, "sgemm_host")
        emit_sgemm(module, "sgemm_tiny", config=TINY)
        emit_sgemm(module, "sgemm_other", config=OTHER_WIDTH)
        emit_sgemm_batched(module, "sgemm_batched", sgemm_name="sgemm_host")
        emit_sgemm(module, "sgemm_bias_relu", epilogue=BIAS_RELU)
        emit_sgemm(module, "sgemm_callback", callback=True)
        emit_sgemm(module, "sgemm_callback_tiny", config=TINY, callback=True)
        parsed = llvm.parse_assembly(str(module))
        parsed.verify()
        tuning = llvm.create_pipeline_tuning_options(speed_level=2)
        tuning.loop_vectorization = True
        tuning.slp_vectorization = True
        passes = llvm.create_pass_builder(_host_machine(), tuning)
        passes.getModulePassManager().run(parsed, passes)
        self.engine = llvm.create_mcjit_compiler(parsed, _host_machine())
        self.engine.finalize_object()
        self.functions = {
            name: ctypes.CFUNCTYPE(None, *args)(self.engine.get_function_address(name))
            for name, args in [("sgemm_host", _SGEMM_ARGS), ("sgemm_tiny", _SGEMM_ARGS),
                               ("sgemm_other", _SGEMM_ARGS),
                               ("sgemm_batched", [ctypes.c_int64] * 4 + _SGEMM_ARGS),
                               ("sgemm_bias_relu", _SGEMM_ARGS + [ctypes.c_void_p]),
                               ("sgemm_callback", _SGEMM_ARGS + _CALLBACK_ARGS),
                               ("sgemm_callback_tiny", _SGEMM_ARGS + _CALLBACK_ARGS)]}


@pytest.fixture(scope="module")
def compiled() -> Compiled:
    return Compiled()


CONFIGS = {"sgemm_host": host_config(), "sgemm_tiny": TINY, "sgemm_other": OTHER_WIDTH,
           "sgemm_batched": host_config(), "sgemm_bias_relu": host_config(),
           "sgemm_callback": host_config(), "sgemm_callback_tiny": TINY}


def element_strides(array: np.ndarray) -> tuple[int, int]:
    assert all(stride % 4 == 0 for stride in array.strides)
    return array.strides[0] // 4, array.strides[1] // 4


def guarded_scratch(m: int, n: int, k: int, config: SgemmConfig) -> tuple[np.ndarray, np.ndarray]:
    """A 64-byte aligned scratch of exactly sgemm_scratch_bytes, followed by guard
    bytes that the call must leave alone; returns (scratch, guard)."""
    size = sgemm_scratch_bytes(m, n, k, config)
    raw = np.full(size + GUARD + 64, 0xAB, dtype=np.uint8)
    skip = (-raw.ctypes.data) % 64
    return raw[skip:skip + size], raw[skip + size:skip + size + GUARD]


def run_sgemm(compiled: Compiled, name: str, a: np.ndarray, b: np.ndarray, c: np.ndarray,
              accumulate: bool = False, *extra) -> None:
    """c (+)= a @ b through the compiled function `name`; checks the scratch guard."""
    (m, k), n = a.shape, b.shape[1]
    assert c.size == 0 or c.strides[1] == 4, "C must have unit column stride"
    ldc = c.strides[0] // 4 if c.size else n
    scratch, guard = guarded_scratch(m, n, k, CONFIGS[name])
    compiled.functions[name](m, n, k, a.ctypes.data, *element_strides(a),
                             b.ctypes.data, *element_strides(b), c.ctypes.data,
                             ldc, int(accumulate), scratch.ctypes.data, *extra)
    assert (guard == 0xAB).all(), f"{name} wrote past its scratch of {scratch.size} bytes"


def exact_product(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A @ B in float64 and the error each float32 element may carry."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    bound = 2.0 * max(a.shape[1], 1) * EPS32 * (np.abs(a64) @ np.abs(b64))
    return a64 @ b64, bound


def assert_close(actual: np.ndarray, expected: np.ndarray, bound: np.ndarray, what: str) -> None:
    excess = np.abs(actual.astype(np.float64) - expected) - bound - 1e-30
    assert actual.shape == expected.shape
    assert not np.isnan(actual).any(), f"{what}: NaN in the result"
    assert (excess <= 0).all(), (f"{what}: max error {np.abs(actual - expected).max():.3g} "
                                 f"beyond the float32 bound at {np.argwhere(excess > 0)[:3]}")


def operands(rng, m: int, k: int, n: int, a_transposed: bool, b_transposed: bool):
    """Random float32 operands, optionally as transposed (column-major) views."""
    a = rng.standard_normal((k, m) if a_transposed else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if b_transposed else (k, n)).astype(np.float32)
    return (a.T if a_transposed else a), (b.T if b_transposed else b)


# ---------------------------------------------------------------- products

MLP_SHAPES = [  # (M, K, N, A transposed, B transposed)
    (128, 784, 256, False, False), (128, 256, 256, False, False), (128, 256, 10, False, False),
    (784, 128, 256, True, False),   # X^T . E: weight gradient, A read transposed
    (128, 256, 784, False, True),   # E . W^T: input gradient, B read transposed
    (128, 10, 256, False, True), (256, 128, 10, True, False),
    (32, 64, 128, False, False), (32, 128, 10, False, False), (10, 32, 128, True, False),
]
ODD_SHAPES = [(1, 1, 1), (17, 65, 33), (3, 0, 5), (0, 4, 4), (4, 4, 0), (0, 0, 0),
              (1, 300, 1), (300, 1, 1), (1, 1, 300), (7, 9, 100), (100, 9, 7), (6, 512, 16),
              (73, 1100, 41), (200, 3, 70)]


@pytest.mark.parametrize("m,k,n,a_t,b_t", MLP_SHAPES)
def test_mlp_shapes_match_numpy(compiled, m, k, n, a_t, b_t):
    a, b = operands(np.random.default_rng(m * k + n), m, k, n, a_t, b_t)
    c = np.full((m, n), np.nan, np.float32)
    run_sgemm(compiled, "sgemm_host", a, b, c)
    assert_close(c, *exact_product(a, b), f"{m}x{k}@{k}x{n} a_t={a_t} b_t={b_t}")


@pytest.mark.parametrize("name", ["sgemm_host", "sgemm_tiny", "sgemm_other"])
@pytest.mark.parametrize("m,k,n", ODD_SHAPES)
def test_edge_sizes_every_layout(compiled, name, m, k, n):
    rng = np.random.default_rng(m + 7 * k + 31 * n)
    for a_t in (False, True):
        for b_t in (False, True):
            a, b = operands(rng, m, k, n, a_t, b_t)
            c = np.full((m, n), np.nan, np.float32)
            run_sgemm(compiled, name, a, b, c)
            assert_close(c, *exact_product(a, b), f"{name} {m}x{k}@{k}x{n} {a_t} {b_t}")


def test_large_square_product(compiled):
    a, b = operands(np.random.default_rng(5), 512, 1024, 1024, False, False)
    c = np.empty((512, 1024), np.float32)
    run_sgemm(compiled, "sgemm_host", a, b, c)
    assert_close(c, *exact_product(a, b), "512x1024@1024x1024")


@pytest.mark.parametrize("name", ["sgemm_host", "sgemm_tiny"])
def test_accumulate_adds_to_c(compiled, name):
    rng = np.random.default_rng(3)
    for m, k, n in [(37, 70, 45), (128, 256, 10), (5, 3, 2)]:
        a, b = operands(rng, m, k, n, False, False)
        before = rng.standard_normal((m, n)).astype(np.float32)
        c = before.copy()
        run_sgemm(compiled, name, a, b, c, True)
        product, bound = exact_product(a, b)
        assert_close(c, before + product, bound + EPS32 * np.abs(before + product), name)


@pytest.mark.parametrize("name", ["sgemm_host", "sgemm_tiny"])
def test_k_zero_zeroes_or_keeps_c(compiled, name):
    a = np.zeros((9, 0), np.float32)
    b = np.zeros((0, 20), np.float32)
    c = np.full((9, 20), np.nan, np.float32)
    run_sgemm(compiled, name, a, b, c)
    assert (c == 0).all()
    kept = np.arange(180, dtype=np.float32).reshape(9, 20)
    c = kept.copy()
    run_sgemm(compiled, name, a, b, c, True)
    assert (c == kept).all()


@pytest.mark.parametrize("name", ["sgemm_host", "sgemm_tiny"])
def test_non_unit_strides_and_c_inside_a_larger_array(compiled, name):
    rng = np.random.default_rng(11)
    big_a = rng.standard_normal((90, 150)).astype(np.float32)
    big_b = rng.standard_normal((160, 110)).astype(np.float32)
    cases = [(big_a[::2, ::3], big_b[::3, ::2]),          # both strided
             (big_a[::3, 1::2].T, big_b[1::4, ::3].T),    # strided transposed views
             (big_a[::-2, :40], big_b[:40, ::-3])]        # negative strides
    for a, b in cases:
        m, n = a.shape[0], b.shape[1]
        a, b = a[:, :b.shape[0]], b[:a.shape[1]]
        frame = np.full((m + 2, n + 7), np.nan, np.float32)
        c = frame[1:m + 1, 3:n + 3]
        run_sgemm(compiled, name, a, b, c)
        assert_close(c, *exact_product(a, b), f"{name} strides {a.strides} {b.strides}")
        outside = frame.copy()
        outside[1:m + 1, 3:n + 3] = np.nan
        assert np.isnan(outside).all(), "wrote outside C"


@settings(max_examples=60, deadline=None)
@given(m=st.integers(0, 40), k=st.integers(0, 40), n=st.integers(0, 40),
       a_t=st.booleans(), b_t=st.booleans(), accumulate=st.booleans(),
       name=st.sampled_from(["sgemm_host", "sgemm_tiny"]), seed=st.integers(0, 2 ** 16))
def test_random_shapes(compiled, m, k, n, a_t, b_t, accumulate, name, seed):
    rng = np.random.default_rng(seed)
    a, b = operands(rng, m, k, n, a_t, b_t)
    before = rng.standard_normal((m, n)).astype(np.float32)
    c = before.copy()
    run_sgemm(compiled, name, a, b, c, accumulate)
    product, bound = exact_product(a, b)
    expected = before + product if accumulate else product
    assert_close(c, expected, bound + EPS32 * np.abs(expected), f"{name} {m}x{k}@{k}x{n}")


# ---------------------------------------------------------------- variants

def test_batched_runs_each_product(compiled):
    rng = np.random.default_rng(8)
    batch, m, k, n = 3, 33, 70, 50
    a = rng.standard_normal((batch, m, k)).astype(np.float32)
    b = rng.standard_normal((batch, k, n)).astype(np.float32)
    c = np.full((batch, m, n), np.nan, np.float32)
    scratch, guard = guarded_scratch(m, n, k, host_config())
    compiled.functions["sgemm_batched"](batch, m * k, k * n, m * n, m, n, k, a.ctypes.data, k, 1,
                                        b.ctypes.data, n, 1, c.ctypes.data, n, 0,
                                        scratch.ctypes.data)
    assert (guard == 0xAB).all()
    for index in range(batch):
        assert_close(c[index], *exact_product(a[index], b[index]), f"batch entry {index}")


def test_epilogue_applies_once_to_the_final_value(compiled):
    rng = np.random.default_rng(9)
    for m, k, n in [(50, 1100, 45), (7, 3, 19), (64, 300, 256)]:  # 1100 > KC: several K blocks
        a, b = operands(rng, m, k, n, False, True)
        bias = rng.standard_normal(n).astype(np.float32)
        before = rng.standard_normal((m, n)).astype(np.float32)
        c = before.copy()
        run_sgemm(compiled, "sgemm_bias_relu", a, b, c, True, bias.ctypes.data)
        product, bound = exact_product(a, b)
        expected = np.maximum(before + product + bias, 0.0)
        assert_close(c, expected, bound + 2 * EPS32 * np.abs(before + product + bias),
                     f"bias+relu {m}x{k}@{k}x{n}")


@pytest.mark.parametrize("name", ["sgemm_callback", "sgemm_callback_tiny"])
def test_run_time_epilogue_sees_every_finished_element_once(compiled, name):
    """The callback gets each element of C exactly once, after its last block of K,
    at coordinates shifted by row0/col0, with the caller's context."""
    rng = np.random.default_rng(10)
    origin, context = (5, 7), 12345
    for m, k, n in [(50, 1100, 45), (7, 3, 19), (13, 0, 9), (64, 300, 256), (1, 1, 1)]:
        a, b = operands(rng, m, k, n, m % 2 == 0, n % 2 == 0)
        c = np.full((m, n), np.nan, np.float32)
        visits = np.zeros((m, n), np.int64)
        contexts = set()

        def epilogue(given, row, col, rows, cols):
            contexts.add(given)
            top, left = row - origin[0], col - origin[1]
            visits[top:top + rows, left:left + cols] += 1
            block = c[top:top + rows, left:left + cols]
            block[...] = np.tanh(block)

        callback = EPILOGUE_FUNCTION(epilogue)
        run_sgemm(compiled, name, a, b, c, False, ctypes.cast(callback, ctypes.c_void_p),
                  context, *origin)
        assert (visits == 1).all(), f"{name} {m}x{k}@{k}x{n}: visits {np.unique(visits)}"
        assert contexts <= {context}
        product, bound = exact_product(a, b)
        assert_close(c, np.tanh(product), bound + EPS32, f"{name} tanh epilogue")


def test_null_run_time_epilogue_is_a_plain_product(compiled):
    a, b = operands(np.random.default_rng(11), 40, 70, 90, False, True)
    c = np.full((40, 90), np.nan, np.float32)
    run_sgemm(compiled, "sgemm_callback", a, b, c, False, None, None, 0, 0)
    assert_close(c, *exact_product(a, b), "null epilogue")


def test_emit_is_idempotent_per_name(compiled):
    assert compiled.first is compiled.again


def test_name_taken_by_a_global_is_an_error():
    module = lir.Module()
    lir.GlobalVariable(module, lir.IntType(32), "propc_sgemm")
    with pytest.raises(ValueError, match="propc_sgemm"):
        emit_sgemm(module)


def test_scratch_bytes_covers_packed_panels():
    config = host_config()
    for m, n, k in [(1, 1, 1), (128, 256, 784), (5000, 5000, 5000), (0, 7, 7), (7, 7, 0)]:
        size = sgemm_scratch_bytes(m, n, k)
        depth = min(k, config.kc)
        assert size >= 4 * depth * (min(m, config.mc) + min(n, config.nc))
        padded = min(m, config.mc) + config.mr + min(n, config.nc) + config.nr
        assert size <= 4 * depth * padded + 64
    with pytest.raises(ValueError, match="M=-1"):
        sgemm_scratch_bytes(-1, 2, 3)


def test_config_rejects_unaligned_blocks():
    with pytest.raises(ValueError, match="multiple"):
        SgemmConfig(vector_width=8, mr=6, nr_vectors=2, kc=256, mc=100, nc=256)


def _hot_loop(cpu: str, config: SgemmConfig) -> list[str]:
    """Assembly lines of the packed micro-kernel's k loop, compiled for `cpu`."""
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    module = lir.Module(name="asm_check")
    module.triple = llvm.get_default_triple()
    emit_sgemm(module, config=config)
    parsed = llvm.parse_assembly(str(module))
    target = llvm.Target.from_default_triple()
    tuning = llvm.create_pipeline_tuning_options(speed_level=2)
    tuning.loop_vectorization = True
    tuning.slp_vectorization = True
    passes = llvm.create_pass_builder(target.create_target_machine(cpu=cpu, opt=3), tuning)
    passes.getModulePassManager().run(parsed, passes)
    asm = target.create_target_machine(cpu=cpu, opt=3).emit_assembly(parsed)
    start = asm.index("propc_sgemm.kernel_packed:")
    lines = asm[start:asm.index(".size\tpropc_sgemm.kernel_packed", start)].splitlines()
    for first, line in enumerate(lines):
        label = re.match(r"^(\.LBB\S+):", line)
        if label is None:
            continue
        back = re.compile(r"\bj\w+\s+" + re.escape(label.group(1)) + "$")
        for last in range(first + 1, len(lines)):
            if back.search(lines[last]):
                body = lines[first:last + 1]
                if any("vfmadd" in text for text in body):
                    return body
                break
    raise AssertionError(f"no FMA loop found in the micro-kernel for {cpu}")


@pytest.mark.skipif(not llvm.get_default_triple().startswith("x86_64"), reason="x86 asm check")
@pytest.mark.parametrize("cpu,config,register", [("znver4", AVX512_CONFIG, "zmm"),
                                                 ("skylake-avx512", AVX512_CONFIG, "zmm"),
                                                 ("znver3", AVX2_CONFIG, "ymm"),
                                                 ("haswell", AVX2_CONFIG, "ymm")])
def test_micro_kernel_keeps_the_tile_in_registers(cpu, config, register):
    """The k loop is all FMAs on full-width registers and touches no stack slot
    (a spill there costs a large fraction of the FLOP rate)."""
    body = _hot_loop(cpu, config)
    fmas = [text for text in body if "vfmadd" in text]
    assert len(fmas) % (config.mr * config.nr_vectors) == 0
    assert all(register in text for text in fmas)
    assert not [text for text in body if "rsp" in text], "\n".join(body)


def test_report_speed(compiled):
    """Prints GFLOP/s next to np.matmul (informational: timings are not asserted)."""
    rng = np.random.default_rng(1)
    for m, k, n, a_t, b_t in [(128, 784, 256, False, False), (784, 128, 256, True, False),
                              (128, 256, 784, False, True)]:
        a, b = operands(rng, m, k, n, a_t, b_t)
        c = np.empty((m, n), np.float32)
        scratch, _ = guarded_scratch(m, n, k, host_config())
        args = (m, n, k, a.ctypes.data, *element_strides(a), b.ctypes.data, *element_strides(b),
                c.ctypes.data, n, 0, scratch.ctypes.data)
        ours, theirs = [], []
        for _ in range(10):
            start = time.perf_counter()
            compiled.functions["sgemm_host"](*args)
            middle = time.perf_counter()
            np.matmul(a, b)
            ours.append(middle - start)
            theirs.append(time.perf_counter() - middle)
        flops = 2.0 * m * n * k
        print(f"\nsgemm {m}x{k}@{k}x{n} (a_t={a_t}, b_t={b_t}): "
              f"{flops / np.median(ours) / 1e9:.1f} GFLOP/s, np.matmul "
              f"{flops / np.median(theirs) / 1e9:.1f} GFLOP/s (its default thread count)")
        assert_close(c, *exact_product(a, b), "timed product")
