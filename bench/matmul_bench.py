"""GFLOP/s of propc's emitted sgemm (codegen/matmul.py) against np.matmul, 1 thread.

    python bench/matmul_bench.py [--quick] [MxKxN ...]

Shapes: square n = 256, 512, 1024 and the MLP's matmuls (forward, and the
backward ones with a transposed operand read through the packing). Each row is the
median of many calls, ours and NumPy's interleaved so that both see the same
machine load; "ratio" > 1 means faster than NumPy. NumPy (OpenBLAS) is pinned to
one thread, like the kernel.

Our time per product comes from the batched entry point repeating the same product
`reps` times in one native call (stride 0), so the ~2 us of a 13-argument ctypes
call does not swamp the small shapes: inside a compiled graph the sgemm is called
from native code. NumPy's time is one `np.matmul(a, b, out=c)` call, as NumPy code
written by hand pays it.
"""
from __future__ import annotations

import os

# Must happen before NumPy loads OpenBLAS.
os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ["OMP_NUM_THREADS"] = "1"
os.environ.pop("OPENBLAS_CORETYPE", None)
os.environ.pop("OPENBLAS_L2_SIZE", None)

import argparse  # noqa: E402
import ctypes  # noqa: E402
import time  # noqa: E402

import llvmlite.binding as llvm  # noqa: E402
import llvmlite.ir as lir  # noqa: E402
import numpy as np  # noqa: E402

from codegen.matmul import (emit_sgemm, emit_sgemm_batched, host_config,  # noqa: E402
                            sgemm_scratch_bytes)

# (label, M, K, N, A transposed, B transposed)
CASES = [
    ("square 256", 256, 256, 256, False, False),
    ("square 512", 512, 512, 512, False, False),
    ("square 1024", 1024, 1024, 1024, False, False),
    ("medium fwd X.W1", 128, 784, 256, False, False),
    ("medium fwd H.W2", 128, 256, 256, False, False),
    ("medium fwd H.W3", 128, 256, 10, False, False),
    ("medium bwd X^T.E", 784, 128, 256, True, False),
    ("medium bwd H^T.E", 256, 128, 256, True, False),
    ("medium bwd E.W2^T", 128, 256, 256, False, True),
    ("medium bwd E.W3^T", 128, 10, 256, False, True),
    ("large fwd X.W1", 512, 1024, 1024, False, False),
    ("large fwd H.W3", 512, 1024, 10, False, False),
    ("large bwd H^T.E", 1024, 512, 1024, True, False),
    ("large bwd E.W^T", 512, 1024, 1024, False, True),
    ("small fwd X.W1", 32, 64, 128, False, False),
    ("small fwd H.W2", 32, 128, 10, False, False),
    ("small bwd X^T.E", 64, 32, 128, True, False),
    ("small bwd E.W2^T", 32, 10, 128, False, True),
]

BATCHED_CTYPE = ctypes.CFUNCTYPE(
    None, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
    ctypes.c_int64, ctypes.c_int64, ctypes.c_int64,
    ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
    ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64,
    ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32, ctypes.c_void_p)


def host_machine() -> llvm.TargetMachine:
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(cpu=llvm.get_host_cpu_name(),
                                        features=llvm.get_host_cpu_features().flatten(),
                                        opt=3, codemodel="jitdefault")


def compile_sgemm():
    """JIT a module holding only the sgemm; returns (engine, callable, seconds)."""
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    start = time.perf_counter()
    module = lir.Module(name="bench")
    module.triple = llvm.get_default_triple()
    emit_sgemm(module)
    emit_sgemm_batched(module)
    parsed = llvm.parse_assembly(str(module))
    parsed.verify()
    machine = host_machine()
    tuning = llvm.create_pipeline_tuning_options(speed_level=2)
    tuning.loop_vectorization = True
    tuning.slp_vectorization = True
    passes = llvm.create_pass_builder(machine, tuning)
    passes.getModulePassManager().run(parsed, passes)
    engine = llvm.create_mcjit_compiler(parsed, host_machine())
    engine.finalize_object()
    function = BATCHED_CTYPE(engine.get_function_address("propc_sgemm_batched"))
    return engine, function, time.perf_counter() - start


def aligned_buffer(nbytes: int) -> np.ndarray:
    raw = np.empty(nbytes + 64, dtype=np.uint8)
    skip = (-raw.ctypes.data) % 64
    return raw[skip:skip + nbytes]


def operands(m: int, k: int, n: int, a_transposed: bool, b_transposed: bool):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if a_transposed else (m, k), dtype=np.float32)
    b = rng.standard_normal((n, k) if b_transposed else (k, n), dtype=np.float32)
    return (a.T if a_transposed else a), (b.T if b_transposed else b)


def measure(function, m, k, n, a_transposed, b_transposed, budget_s: float):
    """Median seconds per call of ours and of np.matmul, and our max relative error."""
    a, b = operands(m, k, n, a_transposed, b_transposed)
    ours = np.empty((m, n), np.float32)
    theirs = np.empty((m, n), np.float32)
    scratch = aligned_buffer(max(sgemm_scratch_bytes(m, n, k), 64))
    product = (m, n, k, a.ctypes.data, a.strides[0] // 4, a.strides[1] // 4,
               b.ctypes.data, b.strides[0] // 4, b.strides[1] // 4,
               ours.ctypes.data, n, 0, scratch.ctypes.data)
    function(1, 0, 0, 0, *product)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    error = float(np.abs(ours - exact).max() / max(np.abs(exact).max(), 1e-30))
    start = time.perf_counter()
    np.matmul(a, b, out=theirs)
    single = time.perf_counter() - start
    batch = max(1, int(200e-6 / max(single, 1e-7)))
    args = (batch, 0, 0, 0) + product
    repeats = int(min(2000, max(7, budget_s / 2 / max(single * batch, 1e-7))))
    ours_times, numpy_times = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        function(*args)
        middle = time.perf_counter()
        np.matmul(a, b, out=theirs)
        ours_times.append((middle - start) / batch)
        numpy_times.append(time.perf_counter() - middle)
    return float(np.median(ours_times)), float(np.median(numpy_times)), error


def parse_shape(text: str):
    m, k, n = (int(part) for part in text.lower().split("x"))
    return (text, m, k, n, False, False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shapes", nargs="*", help="extra MxKxN shapes (row-major operands)")
    parser.add_argument("--quick", action="store_true", help="shorter timing budget per row")
    options = parser.parse_args()
    cases = [parse_shape(text) for text in options.shapes] or CASES
    budget = 0.3 if options.quick else 1.5
    _engine, function, seconds = compile_sgemm()
    print(f"sgemm config {host_config()}, compiled in {seconds * 1000:.0f} ms "
          f"(cpu {llvm.get_host_cpu_name()})")
    print("(T): operand is a transposed view (column-major), read through the packing")
    print(f"{'case':20s} {'M x K @ K x N':>20s} {'ours GF/s':>10s} {'numpy GF/s':>11s} "
          f"{'ratio':>6s} {'rel err':>8s}")
    for label, m, k, n, a_t, b_t in cases:
        ours, theirs, error = measure(function, m, k, n, a_t, b_t, budget)
        flops = 2.0 * m * n * k
        shape = f"{m}x{k}{'(T)' if a_t else ''} @ {k}x{n}{'(T)' if b_t else ''}"
        print(f"{label:20s} {shape:>20s} {flops / ours / 1e9:10.1f} {flops / theirs / 1e9:11.1f} "
              f"{theirs / ours:6.2f} {error:8.1e}")


if __name__ == "__main__":
    main()
