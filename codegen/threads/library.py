"""The process-wide library: the sgemm and the thread functions, compiled once.

Graph modules never define the sgemm or talk to libgomp or the pool themselves: they
declare the library's public symbols (`shared_sgemm(module, symbol)`) and call them.
The library is compiled once per process into its own JIT module (it takes most of a
second to optimise and would otherwise be paid by every graph), or loaded from the
disk cache, and its symbols are registered globally. Its functions: the single,
batched and threaded sgemm (codegen/kernels/matmul*.py), `parallel` (a region, see
region.py), `team` (the pool of a compiled call, pool.py), the switch that makes a
forked child serial, and the pool's awake count (waited on at exit).
"""
from __future__ import annotations

import atexit
import ctypes
import os
from pathlib import Path

import llvmlite.binding as llvm
import llvmlite.ir as lir

from ..forksafe import ForkSafeLock
from ..errors import CodegenError
from ..kernels.matmul import (CALLBACK_ARG_TYPES, SGEMM_ARG_TYPES, emit_sgemm,
                              emit_sgemm_batched, host_config)
from ..kernels.matmul_ir import I64, SgemmConfig
from .sgemm import emit_sgemm_parallel
from ..runtime.jit import load_shared_library
from .host import PARALLEL, PARALLEL_TYPE, load_gomp
from .pool import TEAM, TEAM_TYPE, emit_awake_count, emit_team, wait_until_asleep
from .region import emit_parallel, emit_serial_switch

SINGLE = "propc.shared.sgemm"
BATCHED = "propc.shared.sgemm_batched"
THREADED = "propc.shared.sgemm_parallel"
SERIAL_AFTER_FORK = "propc.shared.parallel_serial"
POOL_AWAKE = "propc.shared.pool_awake"
_LIBRARY_LOCK = ForkSafeLock()
_LIBRARY: dict = {}
_NATIVE_CALLBACKS: list = []


def _library_types() -> dict[str, lir.FunctionType]:
    """The public symbols' types, known without building the library (load_library
    checks the built or cached library against them)."""
    void = lir.VoidType()
    single = lir.FunctionType(void, SGEMM_ARG_TYPES + CALLBACK_ARG_TYPES)
    return {SINGLE: single,
            BATCHED: lir.FunctionType(void, [I64] * 4 + list(single.args)),
            THREADED: lir.FunctionType(void, [I64] * 2 + list(single.args)),
            PARALLEL: PARALLEL_TYPE, TEAM: TEAM_TYPE,
            SERIAL_AFTER_FORK: lir.FunctionType(void, []),
            POOL_AWAKE: lir.FunctionType(I64, [])}


LIBRARY_TYPES = _library_types()


def shared_sgemm(module: lir.Module, symbol: str) -> lir.Function:
    """Declare the process-wide function `symbol` (SINGLE, BATCHED, THREADED,
    PARALLEL or TEAM) in `module`. Declaring loads nothing: the edge that compiles
    the module (codegen/runtime/executable.py) loads the library, from its cache
    directory, when the module calls it."""
    found = module.globals.get(symbol)
    if found is None:
        found = lir.Function(module, LIBRARY_TYPES[symbol], symbol)
    return found


def load_library(cache_dir: Path | None = None) -> dict[str, lir.FunctionType]:
    """Make the shared sgemm symbols callable in this process (once): compiled, or
    loaded from the disk cache in `cache_dir` (codegen/runtime/jit.py; the edge
    passes its CompileOptions.cache_dir, codegen/runtime/executable.py; None: no
    disk cache). Returns their types by symbol. libgomp is loaded first when
    present: the library's threaded functions call it (without it they run on the
    calling thread: a different library, "sgemm-serial")."""
    with _LIBRARY_LOCK:
        if not _LIBRARY:
            gomp = load_gomp()
            name = "sgemm" if gomp else "sgemm-serial"
            types = load_shared_library(name, lambda: _build_library(gomp), cache_dir)
            if {k: str(v) for k, v in types.items()} != {
                    k: str(v) for k, v in LIBRARY_TYPES.items()}:
                raise CodegenError("the shared library's function types differ from "
                                   "LIBRARY_TYPES (codegen/threads/library.py)")
            _LIBRARY.update(types)
            _serial_in_forked_children()
            _pool_asleep_at_exit()
    return _LIBRARY


def _serial_in_forked_children() -> None:
    """libgomp's threads do not survive os.fork(): a child that started a region
    would hang, so forked children run every region on one thread."""
    switch = ctypes.CFUNCTYPE(None)(llvm.address_of_symbol(SERIAL_AFTER_FORK))
    _NATIVE_CALLBACKS.append(switch)
    os.register_at_fork(after_in_child=switch)


def _pool_asleep_at_exit() -> None:
    """At exit, let the pool's workers fall asleep before the interpreter frees the
    library's code (codegen/threads/pool.py)."""
    awake = ctypes.CFUNCTYPE(ctypes.c_int64)(llvm.address_of_symbol(POOL_AWAKE))
    _NATIVE_CALLBACKS.append(awake)
    atexit.register(wait_until_asleep, awake)


def _build_library(gomp: bool) -> tuple[lir.Module, dict[str, lir.Function]]:
    """The module defining the shared functions, by public symbol."""
    library = lir.Module(name="propc_sgemm_library")
    single = emit_sgemm(library, "propc_sgemm", callback=True)
    batched = emit_sgemm_batched(library, "propc_sgemm_batched", sgemm_name="propc_sgemm")
    parallel = emit_parallel(library, gomp)
    threaded = emit_sgemm_parallel(library, "propc_sgemm_parallel", single, parallel,
                                   host_config(), gomp)
    serial = emit_serial_switch(library, "propc_parallel_serial")
    team = emit_team(library, gomp)
    awake = emit_awake_count(library, "propc_pool_awake")
    return library, {SINGLE: single, BATCHED: batched, PARALLEL: parallel, THREADED: threaded,
                     SERIAL_AFTER_FORK: serial, TEAM: team, POOL_AWAKE: awake}



def define_exported_library(module: lir.Module, threads: int, config: SgemmConfig) -> None:
    """Define, in an exported module, what its graph kernels call under the symbols
    they call it by: the single and batched sgemm blocked by `config` (the export
    target's), and with threads the region function and threaded sgemm (libgomp
    teams: exported code has no thread pool)."""
    single = emit_sgemm(module, SINGLE, config=config, callback=True)
    emit_sgemm_batched(module, BATCHED, sgemm_name=SINGLE, config=config)
    if threads > 1:
        region = _alias(module, PARALLEL, emit_parallel(module, gomp=True))
        emit_sgemm_parallel(module, THREADED, single, region, config, gomp=True)


def _alias(module: lir.Module, symbol: str, target: lir.Function) -> lir.Function:
    """`symbol`, a function that calls `target` with its own arguments (inlined)."""
    fn = lir.Function(module, target.function_type, symbol)
    fn.attributes.add("nounwind")
    fn.attributes.add("alwaysinline")
    builder = lir.IRBuilder(fn.append_basic_block("entry"))
    builder.call(target, fn.args)
    builder.ret_void()
    return fn


__all__ = ["BATCHED", "LIBRARY_TYPES", "POOL_AWAKE", "SERIAL_AFTER_FORK", "SINGLE", "TEAM", "THREADED", "define_exported_library", "load_library",
           "shared_sgemm"]
