"""The entry points of a compiled graph (its calling convention).

Two functions per graph:

    void @propc.<name>.run(ptr %buffers)
        buffers = [input data..., output data..., scratch arena]; a plain C ABI
        (what an exported shared library calls);
    void @propc.<name>(ptr %arrays, ptr %arena)
        arrays = [PyArrayObject* of the inputs..., of the outputs...]: reads each
        array's `data` field and calls `.run`. The Python runtime fills `arrays`
        with `id(array)`, which costs ~50 ns per array where `array.ctypes.data`
        costs ~1.5 µs: for small graphs that is most of the call.

A graph with parallel regions has a third function: `.run` then hands its
buffers to `propc.shared.team` (codegen/threads/pool.py), which calls

    void @propc.<name>.body(ptr %buffers)

(the kernels) with the process's thread pool held for the call.

The offset of `data` inside a NumPy array object is public C API layout
(PyArrayObject_fields: the PyObject header, then `char *data`), and is probed once
against `ndarray.ctypes.data` rather than assumed.
"""
from __future__ import annotations

import ctypes
import functools

import llvmlite.ir as lir
import numpy as np

from ..errors import CodegenError
from .llvmtypes import I8, PTR, index
from ..kernels.matmul_ir import counted

UNROLLED_ARRAYS = 64  # the wrapper copies more data pointers in a loop


@functools.lru_cache(maxsize=None)
def array_data_offset() -> int:
    """Byte offset of the data pointer inside a NumPy array object (CPython)."""
    samples = [np.empty(n, dtype=np.float64) for n in (1, 3, 1000)]
    for offset in range(8, 72, 8):
        if all(ctypes.c_void_p.from_address(id(a) + offset).value == a.ctypes.data
               for a in samples):
            return offset
    raise CodegenError("cannot locate the data pointer inside NumPy array objects")


def emit_entry_points(module: lir.Module, symbol: str, n_arrays: int, team_threads: int = 1
                      ) -> tuple[lir.IRBuilder, list, lir.Value]:
    """Define `symbol.run` and the array-object wrapper `symbol` (and `symbol.body`
    run by a pool of `team_threads` threads, when that is more than one).

    Returns a builder positioned in the function that runs the kernels, the data
    pointers of the arrays (inputs then outputs) and the arena pointer; the caller
    emits the kernel calls and the final `ret void`.
    """
    run = lir.Function(module, lir.FunctionType(lir.VoidType(), [PTR]), f"{symbol}.run")
    run.attributes.add("nounwind")
    kernels = run
    if team_threads > 1:
        from ..threads.library import TEAM, shared_sgemm
        kernels = lir.Function(module, run.function_type, f"{symbol}.body")
        kernels.linkage = "internal"
        kernels.attributes.add("nounwind")
        builder = lir.IRBuilder(run.append_basic_block("entry"))
        builder.call(shared_sgemm(module, TEAM), [kernels, run.args[0], index(team_threads)])
        builder.ret_void()
    builder = lir.IRBuilder(kernels.append_basic_block("entry"))
    buffers = kernels.args[0]
    pointers = [load_slot(builder, buffers, position) for position in range(n_arrays + 1)]
    _emit_wrapper(module, symbol, run, n_arrays)
    return builder, pointers[:n_arrays], pointers[n_arrays]


def load_slot(builder: lir.IRBuilder, block: lir.Value, position: int) -> lir.Value:
    """Load the pointer in slot `position` of a block of pointers."""
    address = builder.gep(block, [index(position)], inbounds=True, source_etype=PTR)
    return builder.load(address, typ=PTR, align=8)


def _emit_wrapper(module: lir.Module, symbol: str, run: lir.Function, n_arrays: int) -> None:
    wrapper = lir.Function(module, lir.FunctionType(lir.VoidType(), [PTR, PTR]), symbol)
    wrapper.attributes.add("nounwind")
    builder = lir.IRBuilder(wrapper.append_basic_block("entry"))
    objects, arena = wrapper.args
    block_type = lir.ArrayType(PTR, n_arrays + 1)
    block = builder.alloca(block_type)
    block.type = PTR  # alloca hands back a typed pointer; llvmlite 0.50 uses opaque ones
    offset = index(array_data_offset())

    def copy_data_pointer(position: lir.Value) -> None:
        array = builder.load(builder.gep(objects, [position], inbounds=True, source_etype=PTR),
                             typ=PTR, align=8)
        field = builder.gep(array, [offset], inbounds=True, source_etype=I8)
        data = builder.load(field, typ=PTR, align=8)
        builder.store(data, builder.gep(block, [position], inbounds=True, source_etype=PTR))

    if n_arrays <= UNROLLED_ARRAYS:
        for position in range(n_arrays):
            copy_data_pointer(index(position))
    else:  # thousands of straight-line copies took LLVM time quadratic in their number
        with counted(builder, index(0), index(n_arrays), index(1), "arrays", plain=True) as i:
            copy_data_pointer(i)
    builder.store(arena, builder.gep(block, [index(n_arrays)], inbounds=True, source_etype=PTR))
    builder.call(run, [block])
    builder.ret_void()
