"""Threads for generated code: libgomp's fork-join regions, reached through the
shared library.

Generated code never names libgomp: a graph module that wants a parallel region
calls `propc.shared.parallel(body, data, nthreads)` (or the threaded sgemm
`propc.shared.sgemm_parallel`), defined in the process-wide library of
codegen/sgemm_step.py. There `GOMP_parallel` starts the team (~1 µs per region,
PERF.md) and each thread runs `body(data, thread, threads)`, splitting its loop
by its thread number. Only the library depends on libgomp, so a graph compiled
(or cached) with threads runs anywhere the library loads; without libgomp the
library runs every body on the calling thread alone (never fails).

The thread count of generated code is `thread_count()`: PROPC_NUM_THREADS, else the
cores this process may run on. Waiting: libgomp's threads spin for a while after a
region before they sleep; `load_gomp` shortens that spin (GOMP_SPINCOUNT) unless
OMP_WAIT_POLICY or GOMP_SPINCOUNT is set, so that idle workers give a busy core
back quickly.
"""
from __future__ import annotations

import ctypes.util
import os
import subprocess
import threading

import llvmlite.binding as llvm
import llvmlite.ir as lir

from .matmul_ir import I32, I64, PTR, declare, i64

PARALLEL = "propc.shared.parallel"
# body(data, thread, threads): the part of a region one thread runs
BODY_TYPE = lir.FunctionType(lir.VoidType(), [PTR, I64, I64])
PARALLEL_TYPE = lir.FunctionType(lir.VoidType(), [PTR, PTR, I64])
# workers spin this many rounds (a few tens of µs) after a region before sleeping
DEFAULT_SPINCOUNT = "20000"

_LOCK = threading.Lock()
_GOMP: list[bool] = []


def _library_candidates() -> list[str]:
    """Where libgomp may be: the compiler's copy, then the dynamic linker's."""
    found = []
    try:
        path = subprocess.run(["gcc", "-print-file-name=libgomp.so.1"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        if os.path.isabs(path) and os.path.exists(path):
            found.append(path)
    except (OSError, subprocess.SubprocessError):
        pass
    name = ctypes.util.find_library("gomp")
    if name:
        found.append(name)
    found.append("libgomp.so.1")
    return found


def load_gomp() -> bool:
    """Load libgomp into the process once (its symbols become visible to the JIT);
    False when it cannot be found or loaded."""
    with _LOCK:
        if not _GOMP:
            _GOMP.append(_load())
        return _GOMP[0]


def _load() -> bool:
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["GOMP_SPINCOUNT"] = DEFAULT_SPINCOUNT  # read when libgomp starts
    for candidate in _library_candidates():
        try:
            llvm.load_library_permanently(candidate)
        except RuntimeError:
            continue
        if llvm.address_of_symbol("GOMP_parallel"):
            return True
    return False


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def requested_threads() -> int:
    """PROPC_NUM_THREADS when it is a positive integer, else the available cores."""
    text = os.environ.get("PROPC_NUM_THREADS", "").strip()
    if text.isdigit() and int(text) > 0:
        return int(text)
    return available_cores()


def thread_count() -> int:
    """Threads generated code uses: `requested_threads()`, or 1 without libgomp."""
    wanted = requested_threads()
    if wanted <= 1 or not load_gomp():
        return 1
    return wanted


# --------------------------------------------------------------------------------------
# the library side: propc.shared.parallel


def emit_parallel(module: lir.Module, gomp: bool) -> lir.Function:
    """Define `void propc.shared.parallel(ptr body, ptr data, i64 nthreads)`: run
    `body(data, t, n)` on a team of up to `nthreads` threads (t = 0..n-1), or on the
    calling thread alone (t = 0, n = 1) when nthreads <= 1 or `gomp` is False."""
    fn = lir.Function(module, PARALLEL_TYPE, name=module.get_unique_name("parallel"))
    fn.attributes.add("nounwind")
    body, data, threads = fn.args
    builder = lir.IRBuilder(fn.append_basic_block("entry"))
    if gomp:
        alone = builder.icmp_signed("<=", threads, i64(1))
        with builder.if_else(alone) as (then, otherwise):
            with then:
                call_body(builder, body, data, i64(0), i64(1))
            with otherwise:
                _fork(builder, body, data, threads)
    else:
        call_body(builder, body, data, i64(0), i64(1))
    builder.ret_void()
    return fn


def call_body(builder: lir.IRBuilder, body: lir.Value, data: lir.Value, thread: lir.Value,
              threads: lir.Value) -> None:
    """Call the region body held in pointer `body` (an indirect call)."""
    target = builder.inttoptr(builder.ptrtoint(body, I64), BODY_TYPE.as_pointer())
    builder.call(target, [data, thread, threads])


def _fork(builder: lir.IRBuilder, body, data, threads) -> None:
    """GOMP_parallel(trampoline, {body, data}, threads, 0)."""
    module = builder.module
    gomp_parallel = declare(module, "GOMP_parallel", lir.VoidType(), [PTR, PTR, I32, I32])
    block_type = lir.ArrayType(PTR, 2)
    block = builder.alloca(block_type)
    block.type = PTR
    builder.store(body, builder.gep(block, [i64(0)], source_etype=PTR))
    builder.store(data, builder.gep(block, [i64(1)], source_etype=PTR))
    count = builder.trunc(threads, I32)
    builder.call(gomp_parallel, [_trampoline(module), block, count, lir.Constant(I32, 0)])


def _trampoline(module: lir.Module) -> lir.Function:
    """The function each team thread runs: unpack {body, data}, ask libgomp which
    thread this is, call body(data, thread, threads)."""
    name = "propc.parallel.trampoline"
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    fn = lir.Function(module, lir.FunctionType(lir.VoidType(), [PTR]), name=name)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    builder = lir.IRBuilder(fn.append_basic_block("entry"))
    block = fn.args[0]
    body = builder.load(builder.gep(block, [i64(0)], source_etype=PTR), typ=PTR)
    data = builder.load(builder.gep(block, [i64(1)], source_etype=PTR), typ=PTR)
    thread_num = declare(module, "omp_get_thread_num", I32, [])
    num_threads = declare(module, "omp_get_num_threads", I32, [])
    thread = builder.sext(builder.call(thread_num, []), I64)
    threads = builder.sext(builder.call(num_threads, []), I64)
    call_body(builder, body, data, thread, threads)
    builder.ret_void()
    return fn


def split_range(builder: lir.IRBuilder, total: lir.Value, thread: lir.Value,
                threads: lir.Value, grain: int) -> tuple[lir.Value, lir.Value]:
    """[start, stop) of `thread`'s share of range(total): equal shares rounded up to
    a multiple of `grain` (the last threads may get less, or nothing)."""
    share = builder.sdiv(builder.add(total, builder.sub(threads, i64(1))), threads)
    share = builder.mul(builder.sdiv(builder.add(share, i64(grain - 1)), i64(grain)), i64(grain))
    start = builder.mul(thread, share)
    start = builder.select(builder.icmp_signed("<", start, total), start, total)
    stop = builder.add(start, share)
    stop = builder.select(builder.icmp_signed("<", stop, total), stop, total)
    return start, stop


__all__ = ["BODY_TYPE", "PARALLEL", "PARALLEL_TYPE", "available_cores", "call_body",
           "emit_parallel", "load_gomp", "requested_threads", "split_range", "thread_count"]
