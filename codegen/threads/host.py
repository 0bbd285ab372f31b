"""Threads for generated code: parallel regions run by the process-wide library.

Generated code never names libgomp: a graph module that wants a parallel region
calls `propc.shared.parallel(body, data, threads, chunks)` (or the threaded sgemm
`propc.shared.sgemm_parallel`), defined in the process-wide library of
codegen/threads/library.py (see codegen/threads/region.py), whose threads claim
chunks 0..chunks-1, running `body(data, chunk, chunks)` for each; regions that
ran slower than one thread would have (other processes on the cores) make the
next ones serial for a while. A graph with regions runs inside
`propc.shared.team` (codegen/threads/pool.py): for the call it holds a pool of
worker threads that spin for its regions (~1 µs each) and sleep between calls.
A call that finds the pool taken (another Python thread's call) forks a libgomp
team per region instead (`GOMP_parallel`). Only the library depends on libgomp,
so a graph compiled (or cached) with threads runs anywhere the library loads;
without libgomp the library runs every chunk on the calling thread (never fails).

A compile's use of threads is its `ThreadPlan` (codegen/plan/threads.py), made once
at the edge by `thread_plan(options)` from its CompileOptions and passed down:
the thread count (`thread_count(options)`: PROPC_NUM_THREADS, else the cores this
process may run on; 1 without libgomp), whether libgomp's idle threads spin, and
whether calls hold the pool. libgomp's waiting: unless OMP_WAIT_POLICY or
GOMP_SPINCOUNT is set, `load_gomp` makes its idle threads sleep at once (the one
environment write of codegen, in codegen/options.py, the options builder)
(OMP_WAIT_POLICY=PASSIVE) instead of spinning for about half a millisecond after
each region: measured on this 2-core machine, a spinning worker next to one busy
process (or next to OpenBLAS's own spinning threads, as when NumPy matmuls
alternate with compiled calls) slowed 1-thread-sized work 2-8x. Regions are cheap
(`ThreadPlan.cheap_regions`: the pool, or OMP_WAIT_POLICY=ACTIVE) in the usual
case, so products from SPINNING_MIN_FLOPS and loops from SPINNING_MIN_WORK get
threads.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import subprocess
from typing import Iterator

import llvmlite.binding as llvm
import llvmlite.ir as lir

from ..forksafe import ForkSafeLock
from ..options import CompileOptions, prepare_libgomp_environment
from ..plan.threads import ThreadPlan
from ..kernels.matmul_ir import I64, PTR, i64

log = logging.getLogger("propc.compile")

PARALLEL = "propc.shared.parallel"
# body(data, chunk, chunks): one chunk of a region's work
BODY_TYPE = lir.FunctionType(lir.VoidType(), [PTR, I64, I64])
PARALLEL_TYPE = lir.FunctionType(lir.VoidType(), [PTR, PTR, I64, I64])
# chunks a parallel loop is cut into per thread (a late thread leaves its chunks to
# the others; the sgemm uses one chunk per thread: each chunk re-packs an operand)
CHUNKS_PER_THREAD = 4

_LOCK = ForkSafeLock()
_GOMP: list[bool] = []
_HANDLES: list = []  # libgomp stays mapped: LLVM closes its own handles at exit


def _library_candidates() -> Iterator[str]:
    """Where libgomp may be, cheapest look-up first: the dynamic linker's search
    path, then the C compiler's copy, then ctypes.util (the last two run programs)."""
    yield "libgomp.so.1"
    try:
        path = subprocess.run(["gcc", "-print-file-name=libgomp.so.1"], capture_output=True,
                              text=True, timeout=10).stdout.strip()
        if os.path.isabs(path) and os.path.exists(path):
            yield path
    except (OSError, subprocess.SubprocessError):
        pass
    name = ctypes.util.find_library("gomp")
    if name:
        yield name


def load_gomp() -> bool:
    """Load libgomp into the process once (its symbols become visible to the JIT);
    False when it cannot be found or loaded."""
    with _LOCK:
        if not _GOMP:
            _GOMP.append(_load())
        return _GOMP[0]


def threads_spin(options: CompileOptions) -> bool:
    """Whether libgomp's idle threads spin, as the user asked with
    OMP_WAIT_POLICY=ACTIVE or a positive GOMP_SPINCOUNT (`options.spinning`),
    instead of sleeping at once (propc's default). A region then costs about a
    microsecond rather than a wake-up of tens, so smaller products and loops pay
    for threads (codegen/emit/steps.py, codegen/kernels/sgemm_step.py). libgomp
    reads the policy once, when it loads; the options are read per compile: they
    agree unless the process changes those variables after libgomp loaded."""
    return bool(options.spinning) and load_gomp()


SYS_FUTEX = {"x86_64": 202, "aarch64": 98}


def futex_syscall() -> int | None:
    """futex's system call number on this host, or None (no pool there)."""
    return syscall_number(SYS_FUTEX)


def syscall_number(table: dict) -> int | None:
    triple = llvm.get_default_triple()
    if "linux" not in triple:
        return None
    return table.get(triple.split("-")[0])


def pool_available() -> bool:
    """Whether this process can run compiled calls' regions on the thread pool:
    libgomp (threads at all) on a host with futexes (Linux x86-64 / AArch64)."""
    return load_gomp() and futex_syscall() is not None


def thread_plan(options: CompileOptions) -> ThreadPlan:
    """The thread plan of a compile for this process (JIT): made once, at the edge
    (codegen/runtime/executable.py), and passed down; compiled calls hold the thread
    pool (codegen/threads/pool.py) while they run when `options.pool` asks for it
    and the host has one (else every region wakes a libgomp team of its own). (An
    export makes its own: a fixed count, libgomp teams, no pool, regions never
    cheap.)"""
    return ThreadPlan(thread_count(options), threads_spin(options),
                      options.pool and pool_available())


def _load() -> bool:
    prepare_libgomp_environment()  # the wait policy is read when libgomp starts
    for candidate in _library_candidates():
        try:
            # a ctypes handle is never closed: LLVM's own (dlclosed when LLVM shuts down
            # at exit) must not unmap the code a spinning worker thread is running
            _HANDLES.append(ctypes.CDLL(candidate, mode=ctypes.RTLD_GLOBAL))
            llvm.load_library_permanently(candidate)
        except (OSError, RuntimeError):
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


def requested_threads(options: CompileOptions) -> int:
    """PROPC_NUM_THREADS (`options.num_threads`) when it is a positive integer (at
    most MAX_THREADS_PER_CPU threads per CPU of the machine), else the available
    cores. A value that is not used as given is said once, with what is used instead."""
    text = options.num_threads
    if not text:
        return available_cores()
    if not (text.isdigit() and int(text) > 0):
        cores = available_cores()
        _warn_once(text, f"PROPC_NUM_THREADS={text!r} is not a positive integer; "
                         f"using the {cores} available core(s)")
        return cores
    cap = MAX_THREADS_PER_CPU * (os.cpu_count() or 1)
    if int(text) > cap:
        _warn_once(text, f"PROPC_NUM_THREADS={text} is more than {MAX_THREADS_PER_CPU} "
                         f"threads per CPU of this machine ({os.cpu_count()}); using {cap}")
        return cap
    return int(text)


MAX_THREADS_PER_CPU = 2
_WARNED: set[str] = set()


def _warn_once(text: str, message: str) -> None:
    if text not in _WARNED:
        _WARNED.add(text)
        log.warning("propc: %s", message)


def thread_count(options: CompileOptions) -> int:
    """Threads generated code uses: `requested_threads(options)`, or 1 without
    libgomp."""
    wanted = requested_threads(options)
    if wanted <= 1 or not load_gomp():
        return 1
    return wanted


def split_range(builder: lir.IRBuilder, total: lir.Value, thread: lir.Value,
                threads: lir.Value, grain: int) -> tuple[lir.Value, lir.Value]:
    """[start, stop) of share `thread` of range(total) cut in `threads` shares:
    equal shares rounded up to a multiple of `grain` (the last may get less, or
    nothing)."""
    share = builder.sdiv(builder.add(total, builder.sub(threads, i64(1))), threads)
    share = builder.mul(builder.sdiv(builder.add(share, i64(grain - 1)), i64(grain)), i64(grain))
    start = builder.mul(thread, share)
    start = builder.select(builder.icmp_signed("<", start, total), start, total)
    stop = builder.add(start, share)
    stop = builder.select(builder.icmp_signed("<", stop, total), stop, total)
    return start, stop


__all__ = ["BODY_TYPE", "PARALLEL", "PARALLEL_TYPE", "ThreadPlan", "available_cores",
           "futex_syscall", "syscall_number", "load_gomp", "pool_available",
           "requested_threads", "split_range", "thread_count",
           "thread_plan", "threads_spin"]
