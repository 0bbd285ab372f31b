"""The threaded sgemm's per-thread packing scratch (codegen/matmul_parallel.py,
codegen/sgemm_step.py): sized for the largest block of C one thread computes, not
for the whole product.

Checks: the Python bound equals what the emitted split_range hands out; the library
call with exactly that scratch (guard bytes around it) computes the product and
writes nothing outside; compiled graphs with two threads match the interpreter
with a workspace of two per-block strides, computed here from the split rule.
"""
from __future__ import annotations

import ctypes

import llvmlite.binding as llvm
import llvmlite.ir as lir
import numpy as np
import pytest

import codegen
from codegen.threads import host as parallel
from codegen.runtime.jit import JitModule
from codegen.kernels.matmul import host_config, sgemm_scratch_bytes
from codegen.threads.sgemm import block_scratch_bytes, largest_share
from codegen.kernels.sgemm_step import THREADED_MIN_FLOPS
from codegen.threads.library import THREADED, load_library
from ir import Builder, DType, TensorType, interpret
from shared_library import library_i64  # noqa: E402

F32 = DType.f32
GUARD = 4096
CANARY = 0xA5
_SGEMM = [ctypes.c_int64] * 3 + [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64] * 2 + [
    ctypes.c_void_p, ctypes.c_int64, ctypes.c_int32, ctypes.c_void_p,
    ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64]
# (M, K, N): N >= M (column blocks) and N < M (row blocks), sizes that are not
# multiples of NR or MR, and one side shorter than a panel per thread
SHAPES = [(300, 200, 301), (401, 200, 263), (97, 61, 1001), (1001, 61, 97), (5, 33, 700),
          (700, 33, 5), (128, 784, 256), (1001, 200, 97)]

needs_threads = pytest.mark.skipif(not parallel.load_gomp(), reason="needs libgomp")


def block_bytes_by_hand(m: int, n: int, k: int, threads: int) -> int:
    """Scratch per thread, from the documented split: C is cut along its longer
    side (columns when N >= M) into `threads` shares of whole NR / MR panels; the
    largest share is the first one."""
    config = host_config()
    if n >= m:
        panels = -(-n // config.nr)
        n = min(n, -(-panels // threads) * config.nr)
    else:
        panels = -(-m // config.mr)
        m = min(m, -(-panels // threads) * config.mr)
    return -(-sgemm_scratch_bytes(m, n, k) // 64) * 64


def emitted_split_range():
    """parallel.split_range compiled into split(total, thread, threads, grain, out)
    for a few grains (one function per grain: it is a compile-time constant)."""
    module = lir.Module("split")
    i64 = lir.IntType(64)
    grains = (1, 4, 6, 8, 16)
    for grain in grains:
        kind = lir.FunctionType(lir.VoidType(), [i64] * 3 + [lir.PointerType()])
        fn = lir.Function(module, kind, f"split{grain}")
        builder = lir.IRBuilder(fn.append_basic_block())
        start, stop = parallel.split_range(builder, fn.args[0], fn.args[1], fn.args[2], grain)
        builder.store(start, fn.args[3])
        builder.store(stop, builder.gep(fn.args[3], [lir.Constant(i64, 1)], source_etype=i64))
        builder.ret_void()
    jit = JitModule(module)
    kind = ctypes.CFUNCTYPE(None, *[ctypes.c_int64] * 3, ctypes.c_void_p)
    return jit, {grain: kind(jit.address(f"split{grain}")) for grain in grains}


def test_largest_share_is_the_longest_block_split_range_gives():
    jit, splits = emitted_split_range()
    result = np.zeros(2, np.int64)
    for grain, split in splits.items():
        for total in [0, 1, 5, 6, 7, 16, 17, 97, 263, 1001, 1024]:
            for parts in [1, 2, 3, 4, 7]:
                longest = 0
                for part in range(parts):
                    split(total, part, parts, result.ctypes.data)
                    longest = max(longest, int(result[1] - result[0]))
                assert largest_share(total, parts, grain) == longest, (grain, total, parts)
    del jit


def test_block_scratch_of_the_large_mlp_layer_is_about_half():
    """512 x 1024 . 1024 x 1024 on two threads: each packs half of B's columns."""
    whole = sgemm_scratch_bytes(512, 1024, 1024)
    per_thread = block_scratch_bytes(512, 1024, 1024, 2)
    assert per_thread == block_bytes_by_hand(512, 1024, 1024, 2)
    assert 2 * per_thread <= whole + 2 * 128 * 1024      # was 2 * whole


def _library_skip_counter() -> ctypes.c_int64:
    from codegen.threads.region import SKIP
    return library_i64(SKIP)


@needs_threads
@pytest.mark.parametrize("m,k,n", SHAPES)
@pytest.mark.parametrize("threads", [2, 3])
def test_threaded_sgemm_stays_inside_per_block_scratch(m, k, n, threads):
    rng = np.random.default_rng(m * 7 + n)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    stride = block_scratch_bytes(m, n, k, threads)
    raw = np.full(2 * GUARD + threads * stride + 64, CANARY, np.uint8)
    start = GUARD + (-(raw.ctypes.data + GUARD)) % 64
    c = np.full((m, n), np.nan, np.float32)
    load_library()
    sgemm = ctypes.CFUNCTYPE(None, ctypes.c_int64, ctypes.c_int64, *_SGEMM)(
        llvm.address_of_symbol(THREADED))
    _library_skip_counter().value = 0           # no backoff left over: really split
    sgemm(threads, stride, m, n, k, a.ctypes.data, k, 1, b.ctypes.data, n, 1,
          c.ctypes.data, n, 0, raw.ctypes.data + start, None, None, 0, 0)
    outside = np.concatenate([raw[:start], raw[start + threads * stride:]])
    assert (outside == CANARY).all(), "the threaded sgemm wrote outside its scratch"
    exact = a.astype(np.float64) @ b.astype(np.float64)
    bound = 2 * k * 2.0 ** -24 * (np.abs(a).astype(np.float64) @ np.abs(b)) + 1e-30
    assert (np.abs(c - exact) <= bound).all()


def product_graph(m: int, k: int, n: int):
    b = Builder("product")
    x = b.input(TensorType((m, k), F32))
    w = b.input(TensorType((k, n), F32))
    b.output(b.dot(x, w, lhs_batch=(), rhs_batch=(), lhs_contract=(1,), rhs_contract=(0,)))
    return b.build()


@needs_threads
@pytest.mark.parametrize("m,k,n", [shape for shape in SHAPES
                                   if 2 * shape[0] * shape[1] * shape[2] >= THREADED_MIN_FLOPS])
def test_two_thread_graph_matches_interpreter_with_per_block_workspace(m, k, n, monkeypatch):
    monkeypatch.setenv("PROPC_NUM_THREADS", "2")
    monkeypatch.setenv("PROPC_CACHE", "0")
    monkeypatch.delenv("PROPC_DEBUG", raising=False)
    graph = product_graph(m, k, n)
    exe = codegen.compile_graph(graph)
    assert "sgemm_parallel" in exe.llvm_ir
    workspaces = [nbytes for label, nbytes, *_ in exe.memory.slots if "workspace" in label]
    assert workspaces == [2 * block_bytes_by_hand(m, n, k, 2)]
    rng = np.random.default_rng(m + n)
    x = rng.standard_normal((m, k)).astype(np.float32)
    w = rng.standard_normal((k, n)).astype(np.float32)
    for _ in range(3):                          # regions may back off to one call
        (got,) = exe(x, w)
        (want,) = interpret(graph, x, w)
        bound = 2 * k * 2.0 ** -24 * (np.abs(x).astype(np.float64) @ np.abs(w)) + 1e-30
        assert (np.abs(got.astype(np.float64) - want) <= bound).all()
