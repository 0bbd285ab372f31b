"""Test access to the process-wide sgemm library (codegen/sgemm_step.py): its public
functions as ctypes callables and its global state (the parallel backoff counters,
the thread pool's block) as ctypes integers the tests read and write."""
from __future__ import annotations

import ctypes

import llvmlite.binding as llvm

from codegen.threads.library import load_library


def shared_function(symbol: str, *argtypes, restype=None):
    """The library's public function `symbol` (e.g. codegen.threads.host.PARALLEL)."""
    load_library()
    address = llvm.address_of_symbol(symbol)
    assert address, symbol
    return ctypes.CFUNCTYPE(restype, *argtypes)(address)


def library_i64(name: str, slot: int = 0) -> ctypes.c_int64:
    """i64 `slot` of the library global `name` (a counter, or a slot of a block)."""
    from codegen.runtime import jit
    load_library()
    address = jit._LIBRARIES["sgemm"]._engine.get_global_value_address(name)
    assert address, name
    return ctypes.c_int64.from_address(address + 8 * slot)
