"""The C functions an exported library defines (codegen/runtime/export.py), emitted as LLVM IR.

For a library called NAME with a pass called PASS:

    int NAME_PASS(const T *in0, ..., T *out0, ..., void *workspace)
        one pointer per graph input, then per graph output (flat, C order, the
        graph's dtypes), then the scratch arena: NULL (the call allocates and frees
        its own) or NAME_workspace_bytes() bytes, 64-byte aligned, used by one call
        at a time. Returns STATUS_OK, STATUS_NO_MEMORY or STATUS_MISALIGNED.
    size_t NAME_workspace_bytes(void)     the largest arena any pass needs
    int NAME_abi_version(void)            ABI_VERSION
    const char *NAME_ir_hash(void)        the hash of the exported IR text

NAME_PASS fills the buffer block of `propc.<pass>.run` (codegen/emit/entry.py: inputs,
outputs, arena) and calls it. The arena is allocated with C11 `aligned_alloc`
when the caller passes none, so a call needs nothing else from the library.
"""
from __future__ import annotations

import llvmlite.ir as lir

from ..emit.llvmtypes import I32, I64, I8, PTR, index
from ..kernels.matmul_ir import declare
from ..plan.memplan import ALIGN, align_up

# Raise when the calling convention of the functions above changes: a loader
# refuses a library whose version differs from its own (propc/exported.py).
ABI_VERSION = 1
STATUS_OK, STATUS_NO_MEMORY, STATUS_MISALIGNED = 0, 1, 2


def emit_pass(module: lir.Module, symbol: str, run: lir.Function, n_inputs: int,
              n_outputs: int, arena_bytes: int) -> lir.Function:
    """Define `int symbol(ptr arrays..., ptr workspace)` calling `run(block)`."""
    count = n_inputs + n_outputs
    fn = lir.Function(module, lir.FunctionType(I32, [PTR] * (count + 1)), symbol)
    fn.attributes.add("nounwind")
    for position, arg in enumerate(fn.args[:count]):
        arg.name = f"in{position}" if position < n_inputs else f"out{position - n_inputs}"
    workspace = fn.args[count]
    workspace.name = "workspace"
    builder = lir.IRBuilder(fn.append_basic_block("entry"))
    block = builder.alloca(lir.ArrayType(PTR, count + 1))
    block.type = PTR  # alloca hands back a typed pointer; llvmlite 0.50 uses opaque ones
    for position, arg in enumerate(fn.args[:count]):
        builder.store(arg, _slot(builder, block, position))
    if arena_bytes == 0:
        builder.store(workspace, _slot(builder, block, count))
        builder.call(run, [block])
        builder.ret(lir.Constant(I32, STATUS_OK))
        return fn
    _emit_with_arena(builder, fn, run, block, count, align_up(arena_bytes))
    return fn


def _slot(builder: lir.IRBuilder, block: lir.Value, position: int) -> lir.Value:
    return builder.gep(block, [index(position)], inbounds=True, source_etype=PTR)


def _emit_with_arena(builder: lir.IRBuilder, fn: lir.Function, run: lir.Function,
                     block: lir.Value, count: int, arena_bytes: int) -> None:
    """Check the caller's arena (64-byte aligned) or allocate one; run; free it."""
    module = builder.module
    workspace = fn.args[count]
    given = builder.icmp_unsigned("!=", workspace, lir.Constant(PTR, None))
    with builder.if_else(given) as (caller, own):
        with caller:
            misaligned = builder.and_(builder.ptrtoint(workspace, I64), index(ALIGN - 1))
            with builder.if_then(builder.icmp_unsigned("!=", misaligned, index(0)),
                                 likely=False):
                builder.ret(lir.Constant(I32, STATUS_MISALIGNED))
            builder.store(workspace, _slot(builder, block, count))
            builder.call(run, [block])
            builder.ret(lir.Constant(I32, STATUS_OK))
        with own:
            allocate = declare(module, "aligned_alloc", PTR, [I64, I64])
            arena = builder.call(allocate, [index(ALIGN), index(arena_bytes)])
            failed = builder.icmp_unsigned("==", arena, lir.Constant(PTR, None))
            with builder.if_then(failed, likely=False):
                builder.ret(lir.Constant(I32, STATUS_NO_MEMORY))
            builder.store(arena, _slot(builder, block, count))
            builder.call(run, [block])
            builder.call(declare(module, "free", lir.VoidType(), [PTR]), [arena])
            builder.ret(lir.Constant(I32, STATUS_OK))
    builder.unreachable()


def emit_queries(module: lir.Module, prefix: str, workspace_bytes: int, ir_hash: str) -> None:
    """Define `prefix_workspace_bytes`, `prefix_abi_version` and `prefix_ir_hash`."""
    _constant_function(module, f"{prefix}_workspace_bytes", I64, index(workspace_bytes))
    _constant_function(module, f"{prefix}_abi_version", I32, lir.Constant(I32, ABI_VERSION))
    text = bytearray(ir_hash.encode("ascii") + b"\0")
    string = lir.GlobalVariable(module, lir.ArrayType(I8, len(text)), f"{prefix}.ir_hash_text")
    string.initializer = lir.Constant(lir.ArrayType(I8, len(text)), text)
    string.global_constant = True
    string.linkage = "internal"
    _constant_function(module, f"{prefix}_ir_hash", PTR, string)


def _constant_function(module: lir.Module, symbol: str, kind: lir.Type,
                       value: lir.Value) -> None:
    fn = lir.Function(module, lir.FunctionType(kind, []), symbol)
    fn.attributes.add("nounwind")
    builder = lir.IRBuilder(fn.append_basic_block("entry"))
    builder.ret(value)


__all__ = ["ABI_VERSION", "STATUS_MISALIGNED", "STATUS_NO_MEMORY", "STATUS_OK", "emit_pass",
           "emit_queries"]
