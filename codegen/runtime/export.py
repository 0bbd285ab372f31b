"""Ahead-of-time export: graphs compiled into one relocatable object for a chosen CPU.

    code = build_object("model", [ExportPass("run", graph)], named_target("x86-64-v2"))
    code.object_code    # ELF object: NAME_* functions global, everything else internal

One LLVM module holds, for every pass, the graph's kernels and entry
(codegen/emit/lowering.py, lowered for the target and its thread count), its C function
NAME_PASS (codegen/runtime/export_abi.py), the queries NAME_workspace_bytes /
NAME_abi_version / NAME_ir_hash, and the sgemm the kernels call, defined in the
module itself under the symbols graph code calls in the JIT (`propc.shared.*`)
instead of the process-wide library. Every definition except NAME_* then gets
internal linkage, so the optimiser inlines or drops it and the object needs
nothing of propc: only libc (aligned_alloc, free, mem*) and libm.

The code is position independent (no text relocations in a shared library) and
reentrant (the arena is per call). By default it is single-threaded (no libgomp);
with `threads` > 1 its big products and loops run as libgomp teams (no thread
pool: the pool lives in propc's process-wide library, codegen/threads/pool.py).
codegen/runtime/export_link.py turns the object into a shared library; export_header.py
writes its C header.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

import llvmlite.binding as llvm
import llvmlite.ir as lir

from ir.graph import Graph
from ir.types import TensorType

from ..errors import CodegenError
from .export_abi import emit_pass, emit_queries
from .jit import _COMPILE_LOCK, optimise, parse_and_verify
from ..emit.lowering import lower_graph
from ..plan.threads import ThreadPlan
from ..threads.host import load_gomp
from ..kernels.matmul import sgemm_config
from ..options import DEFAULT_OPTIONS, CompileOptions
from ..threads.library import define_exported_library
from ..target import Target


@dataclass(frozen=True)
class ExportPass:
    """One graph to export as the C function `<library name>_<name>`."""

    name: str
    graph: Graph


@dataclass(frozen=True)
class ExportedPass:
    """What the C function of one exported pass takes: its symbol, the graph's
    input and output types (in argument order) and the arena it needs."""

    symbol: str
    inputs: list[TensorType]
    outputs: list[TensorType]
    workspace_bytes: int


@dataclass(frozen=True)
class ExportedCode:
    """The object file and what it defines."""

    name: str
    object_code: bytes
    passes: list[ExportedPass]
    workspace_bytes: int
    ir_hash: str
    target: Target
    llvm_ir: str


def ir_hash(graphs: list[Graph]) -> str:
    """SHA-256 of the graphs' printed text: names exactly what was exported."""
    digest = hashlib.sha256()
    for graph in graphs:
        digest.update(str(graph).encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()


def build_object(name: str, passes: list[ExportPass], target: Target) -> ExportedCode:
    """Compile `passes` for `target` into one object file (see the module docstring).

    `name` is the C prefix of every exported symbol. `target.threads` (None: 1) is
    the thread count of the code: more than one plans big products and loops as
    libgomp regions (the code then calls GOMP_parallel: link with libgomp); an
    export's thread plan has no pool and never counts regions as cheap (how the
    other process's libgomp waits is its business). The module defines what its
    kernels call (`define_exported_library`): this process's library is not needed.
    """
    if not passes:
        raise ValueError("build_object needs at least one pass")
    threads = max(1, target.threads or 1)
    if threads > 1 and not load_gomp():
        raise CodegenError(f"exporting with {threads} threads needs libgomp, which this "
                           "machine lacks; export with one thread")
    module = lir.Module(name=f"{name}_export")
    chosen = dataclasses.replace(target, threads=threads)
    options = dataclasses.replace(DEFAULT_OPTIONS, cpu=chosen.name)  # planned for the target
    define_exported_library(module, threads, sgemm_config(chosen.name))
    exported = [_lower_pass(module, name, item, ThreadPlan(threads), options)
                for item in passes]
    workspace = max(item.workspace_bytes for item in exported)
    digest = ir_hash([item.graph for item in passes])
    emit_queries(module, name, workspace, digest)
    object_code, text = _compile(module, name, chosen)
    return ExportedCode(name, object_code, exported, workspace, digest, chosen, text)


def _lower_pass(module: lir.Module, prefix: str, item: ExportPass, threads: ThreadPlan,
                options: CompileOptions) -> ExportedPass:
    if not isinstance(item.graph, Graph):
        raise TypeError(f"pass {item.name!r}: expected an ir.Graph, got "
                        f"{type(item.graph).__name__}")
    lowered = lower_graph(item.graph, module, f"{prefix}.{item.name}", threads=threads,
                          options=options)
    run = module.globals[f"{lowered.symbol}.run"]
    graph = item.graph
    symbol = f"{prefix}_{item.name}"
    arena = lowered.memory.arena_bytes
    emit_pass(module, symbol, run, len(graph.inputs), len(graph.outputs), arena)
    return ExportedPass(symbol, [v.type for v in graph.inputs],
                        [v.type for v in graph.outputs], arena)


def _compile(module: lir.Module, prefix: str, target: Target) -> tuple[bytes, str]:
    """Internalise, optimise and emit position-independent object code."""
    with _COMPILE_LOCK:
        machine = target.target_machine(pic=True)
        module.triple = machine.triple
        module.data_layout = str(machine.target_data)
        parsed = parse_and_verify(module)
        _internalise(parsed, f"{prefix}_")
        optimise(parsed, machine)
        _check_externals(parsed)
        return machine.emit_object(parsed), str(parsed)


def _internalise(parsed: llvm.ModuleRef, exported_prefix: str) -> None:
    """Give every definition not named `exported_prefix*` internal linkage."""
    for value in list(parsed.functions) + list(parsed.global_variables):
        if not value.is_declaration and not value.name.startswith(exported_prefix):
            value.linkage = "internal"


def _check_externals(parsed: llvm.ModuleRef) -> None:
    """Fail if optimised code still calls one of propc's process-wide functions
    (it would be an undefined symbol of the library)."""
    missing = sorted(fn.name for fn in parsed.functions
                     if fn.is_declaration and fn.name.startswith("propc."))
    if missing:
        raise CodegenError(f"exported code calls propc runtime functions it does not "
                           f"define: {missing}")


__all__ = ["ExportPass", "ExportedCode", "ExportedPass", "build_object", "ir_hash"]
