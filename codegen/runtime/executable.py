"""Compiled graphs you can call: `compile_graph`, `compile_graphs`, `compile_traced`,
`Executable`.

An `Executable` calls its native entry point once per invocation through a
`ctypes.CFUNCTYPE` (which releases the GIL), passing one pointer to a block holding
the input arrays and the freshly allocated output arrays (as array objects: the
entry reads their data pointers, see codegen/emit/entry.py) and the scratch arena. The
block and the arena are per thread, so several Python threads may call one
Executable at the same time.

Compiling goes through the disk cache (codegen/runtime/cache.py): a hit loads the stored
object code (no lowering, no LLVM); a miss compiles and stores it.

Debug mode (`debug=True`, or the environment variable `PROPC_DEBUG=1` when `debug`
is left None) verifies the graphs and compiles a bounds check into every load and
store: an out-of-bounds access stops the call with `BoundsCheckError` naming the
op (codegen/emit/bounds.py). An explicit `debug=True` also keeps the unoptimised IR.

The compile functions here are codegen's edge: each takes the compile's
`CompileOptions` (propc builds them once per compile, codegen/options.py), reads
them from the environment only when called without (`edge_options`), and passes
them down: the debug setting, the thread plan (`thread_plan`, made once here) to
lowering, the cache directory to the disk cache and the process-wide library.
"""
from __future__ import annotations

import ctypes
import functools
import logging
import threading
import time
from pathlib import Path
from typing import Callable, NamedTuple

import llvmlite.binding as llvm
import llvmlite.ir as lir
import numpy as np

from ir.graph import Graph
from ir.types import DType, TensorType
from ir.verify import verify

from . import cache
from ..emit.bounds import ERROR_WORDS, BoundsCheckError, describe_failure
from ..errors import CodegenError
from .jit import JitModule
from ..emit.lowering import LoweredGraph, lower_graph, unique_name
from ..emit.release import release_module
from ..plan.memplan import ALIGN, MemoryPlan
from ..plan.threads import ThreadPlan
from ..options import CompileOptions, from_environment
from ..target import HOST
from ..threads.host import thread_plan
from ..threads.library import load_library

log = logging.getLogger("propc.compile")

_ENTRY_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)


def edge_options(options: CompileOptions | None) -> CompileOptions:
    """The options of one compile: the caller's, else (a direct caller of codegen)
    the environment's, read here: the one place below propc that builds them."""
    return from_environment() if options is None else options


def compile_options(debug: bool | None, options: CompileOptions | None = None) -> dict:
    """Everything besides the graph text that changes what is compiled (part of the
    cache key), for `options` (None: the environment's)."""
    chosen = edge_options(options)
    return _key_options(debug, chosen, thread_plan(chosen))


def _key_options(debug: bool | None, options: CompileOptions, threads: ThreadPlan) -> dict:
    """The cache key's options: debug checks (explicit, else PROPC_DEBUG), whether the
    unoptimised IR is kept, the options' kernel switches, and the thread plan: the thread
    count generated code is planned for (PROPC_NUM_THREADS, else the cores this
    process may use), whether libgomp's idle threads spin and whether calls hold the
    thread pool (both decide which work gets threads, and the pool adds an entry
    function)."""
    checks = options.debug if debug is None else bool(debug)
    return {"checks": checks, "keep_ir": debug is True, "sgemm": options.sgemm,
            "sgemm_conv": options.sgemm_conv, "mathlib": options.mathlib,
            "epilogues": options.epilogues, "conv_long_direct": options.conv_long_direct,
            "threads": threads.count, "spinning": threads.spinning, "pool": threads.pool}


class _Compile(NamedTuple):
    """One compile's settings, decided once at the edge and passed down."""

    key_options: dict
    threads: ThreadPlan
    options: CompileOptions


def _settings(debug: bool | None, options: CompileOptions | None) -> _Compile:
    chosen = edge_options(options)
    if chosen.cpu != HOST:
        # the kernels' sgemm workspace would be sized for another CPU's blocking than
        # the process-wide sgemm they call uses
        raise ValueError(f"the JIT compiles for this machine: options.cpu must be "
                         f"{HOST!r}, not {chosen.cpu!r} (export code for other CPUs)")
    threads = thread_plan(chosen)
    return _Compile(_key_options(debug, chosen, threads), threads, chosen)


class GraphCode:
    """What an Executable needs to know about its compiled graph: the entry symbol,
    input/output types, buffer plan and kernel descriptions (debug messages).

    Built from a fresh lowering or from a cache entry's metadata (`to_meta` /
    `from_meta`); `graph` is the ir.Graph itself, or a function building it on demand.
    """

    def __init__(self, name: str, symbol: str, inputs: list[TensorType],
                 outputs: list[TensorType], memory: MemoryPlan, kernel_count: int,
                 kernels: list[str], graph: Graph | Callable[[], Graph]):
        self.name, self.symbol = name, symbol
        self.inputs, self.outputs = inputs, outputs
        self.memory, self.kernel_count, self.kernels = memory, kernel_count, kernels
        self.graph = graph

    @classmethod
    def from_lowered(cls, lowered: LoweredGraph) -> "GraphCode":
        graph = lowered.graph
        return cls(lowered.name, lowered.symbol, [v.type for v in graph.inputs],
                   [v.type for v in graph.outputs], lowered.memory, lowered.kernel_count,
                   list(lowered.kernels), graph)

    def to_meta(self) -> dict:
        return {"name": self.name, "symbol": self.symbol, "kernel_count": self.kernel_count,
                "inputs": [_type_meta(t) for t in self.inputs],
                "outputs": [_type_meta(t) for t in self.outputs],
                "memory": self.memory.to_meta(), "kernels": self.kernels}

    @classmethod
    def from_meta(cls, meta: dict, graph) -> "GraphCode":
        return cls(meta["name"], meta["symbol"], [_type_of(t) for t in meta["inputs"]],
                   [_type_of(t) for t in meta["outputs"]], MemoryPlan.from_meta(meta["memory"]),
                   int(meta["kernel_count"]), list(meta["kernels"]), graph)


def _type_meta(kind: TensorType) -> list:
    return [kind.dtype.value, list(kind.shape)]


def _type_of(meta: list) -> TensorType:
    return TensorType(tuple(int(d) for d in meta[1]), DType.from_name(meta[0]))


class CallParts(NamedTuple):
    """An executable's calling convention, for specialised callers: input and output
    (shape, NumPy dtype) lists; `thread_state()` -> (object block, its address,
    arena address) of the calling thread; `entry(address, arena)` runs the graph
    once the block holds id() of every input then output array; `after_call(arena)`
    raises a debug-mode bounds failure (None when the code has no checks)."""

    inputs: list
    outputs: list
    thread_state: Callable[[], tuple]
    entry: Callable[[int, int], None]
    after_call: Callable[[int], None] | None


class Executable:
    """A graph compiled to native code; call it with the graph's input arrays.

    `.llvm_ir` and `.asm` are the text of the whole optimised module (shared by the
    graphs compiled together), `.memory` the buffer plan, `.unoptimised_ir` the
    module before optimisation (only with debug=True, else None), `.from_cache`
    whether the machine code came from the disk cache.
    """

    def __init__(self, code: GraphCode, jit: JitModule, from_cache: bool = False,
                 compile_times: dict | None = None):
        self._code = code
        # seconds per backend stage of the compile that made it ({} from the cache)
        self.compile_times = dict(compile_times or {})
        self.name = code.name
        self.memory: MemoryPlan = code.memory
        self.kernel_count = code.kernel_count
        self.from_cache = from_cache
        self._jit = jit
        self._entry = _ENTRY_TYPE(jit.address(code.symbol))
        self._inputs = [(t.shape, t.dtype.numpy, str(t)) for t in code.inputs]
        self._outputs = [(t.shape, t.dtype.numpy) for t in code.outputs]
        self._checked = code.memory.error_slot is not None
        self._local = threading.local()

    @property
    def graph(self) -> Graph:
        """The compiled graph (rebuilt on first use when the code came from the cache)."""
        if callable(self._code.graph):
            self._code.graph = self._code.graph()
        return self._code.graph

    @property
    def llvm_ir(self) -> str:
        return self._jit.llvm_ir

    @property
    def asm(self) -> str:
        return self._jit.asm

    @property
    def unoptimised_ir(self) -> str | None:
        return self._jit.unoptimised_ir

    def __repr__(self) -> str:
        return (f"<Executable @{self.name}: {len(self._inputs)} inputs, "
                f"{len(self._outputs)} outputs, {self.kernel_count} kernels>")

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        """Run on C-contiguous arrays of exactly the input types; fresh outputs."""
        if len(arrays) != len(self._inputs):
            raise ValueError(f"@{self.name} takes {len(self._inputs)} input arrays, "
                             f"got {len(arrays)}")
        block, address, arena = self._thread_state()
        for position, array in enumerate(arrays):
            self._check(position, array)
            block[position] = id(array)
        outputs = [np.empty(shape, dtype) for shape, dtype in self._outputs]
        base = len(self._inputs)
        for position, array in enumerate(outputs):
            block[base + position] = id(array)
        # `arrays` and `outputs` keep every object in the block alive during the call
        self._entry(address, arena)
        if self._checked:
            self._raise_if_out_of_bounds(arena)
        return outputs

    def call_parts(self) -> "CallParts":
        """What a caller specialised to this executable's signature needs to run it
        without `__call__`'s checks (propc/callpath.py); that caller must pass
        exactly C-contiguous, aligned arrays of the input types."""
        after = self._raise_if_out_of_bounds if self._checked else None
        inputs = [(shape, dtype) for shape, dtype, _ in self._inputs]
        return CallParts(inputs, list(self._outputs), self._thread_state, self._entry, after)

    def _check(self, position: int, array) -> None:
        shape, dtype, text = self._inputs[position]
        if not isinstance(array, np.ndarray):
            raise ValueError(f"@{self.name} input {position}: expected a NumPy array {text}, "
                             f"got {type(array).__name__}")
        if array.dtype != dtype or array.shape != shape:
            raise ValueError(f"@{self.name} input {position}: expected {text}, got "
                             f"{array.dtype.name}{list(array.shape)}")
        flags = array.flags
        if not (flags.c_contiguous and flags.aligned):
            raise ValueError(f"@{self.name} input {position}: array must be C-contiguous "
                             "and aligned (use np.ascontiguousarray)")

    def _raise_if_out_of_bounds(self, arena: int) -> None:
        record = (ctypes.c_int64 * ERROR_WORDS).from_address(arena + self.memory.error_slot)
        if record[0]:
            raise BoundsCheckError(describe_failure(self.name, list(record), self._code.kernels))

    def _thread_state(self) -> tuple:
        """This thread's object block, its address, and the 64-byte aligned arena."""
        found = getattr(self._local, "state", None)
        if found is None:
            block = _block_type(len(self._inputs) + len(self._outputs))()
            arena = np.empty(self.memory.arena_bytes + ALIGN, dtype=np.uint8)
            address = arena.ctypes.data
            aligned = address + (-address) % ALIGN
            self._local.state = found = (block, ctypes.addressof(block), aligned)
            self._local.arena = arena
        return found


@functools.lru_cache(maxsize=64)
def _block_type(count: int) -> type:
    """The ctypes array type of an object block of `count` pointers, made once:
    ctypes keeps only weak references to the array types it makes, and a type is a
    reference cycle, so each executable's block type was cyclic garbage."""
    return ctypes.c_void_p * count


def compile_graph(graph: Graph, *, name: str | None = None, debug: bool | None = None,
                  options: CompileOptions | None = None) -> Executable:
    """Compile one graph to native code (one LLVM module, one JIT)."""
    return _compile_graphs([graph], [name], debug, options)[0]


def compile_graphs(graphs: list[Graph], *, debug: bool | None = None,
                   options: CompileOptions | None = None) -> list[Executable]:
    """Compile several graphs into ONE LLVM module and one JIT (e.g. forward and
    backward pass); returns one Executable per graph, in order."""
    return _compile_graphs(list(graphs), [None] * len(graphs), debug, options)


def compile_traced(source: str, build: Callable[[], Graph], *, name: str | None = None,
                   debug: bool | None = None, options: CompileOptions | None = None
                   ) -> Executable:
    """Compile the graph `build()` returns, keyed in the disk cache by `source`.

    `source` is a text the graph is derived from deterministically by the compiler's
    own code (pc.compile passes the traced graph's text and simplifies only on a
    miss): a warm start then skips optimising the graph, not just LLVM.
    """
    settings = _settings(debug, options)
    key = cache.cache_key("traced", [source, name or ""], settings.key_options)
    found = _load(key, [build], settings)
    if found is not None:
        return found[0]
    return _build_and_store(key, [build()], [name], settings)[0]


def _compile_graphs(graphs: list[Graph], names: list, debug: bool | None,
                    options: CompileOptions | None) -> list[Executable]:
    if not graphs:
        raise ValueError("compile_graphs needs at least one graph")
    for graph in graphs:
        if not isinstance(graph, Graph):
            raise TypeError(f"expected an ir.Graph, got {type(graph).__name__}")
    settings = _settings(debug, options)
    texts = [str(graph) for graph in graphs] + [name or "" for name in names]
    key = cache.cache_key("graphs", texts, settings.key_options)
    found = _load(key, graphs, settings)
    if found is not None:
        return found
    return _build_and_store(key, graphs, names, settings)


def _load(key: str, graphs: list, settings: _Compile) -> list[Executable] | None:
    """Executables from the cache entry `key`, or None (miss, or unusable entry)."""
    entry = cache.load(key, settings.options.cache_dir)
    if entry is None:
        return None
    try:
        codes = [GraphCode.from_meta(meta, graph)
                 for meta, graph in zip(entry.meta["graphs"], graphs, strict=True)]
        _provide_symbols(entry.meta["externals"], settings.options.cache_dir)
        jit = JitModule.from_object(entry.object_code, entry.llvm_ir,
                                    entry.meta.get("unoptimised_ir"))
        return [Executable(code, jit, from_cache=True) for code in codes]
    except (CodegenError, KeyError, TypeError, ValueError, RuntimeError) as err:
        log.warning("propc cache: entry %s unusable (%s); recompiling", key[:16], err)
        return None


def _build_and_store(key: str, graphs: list[Graph], names: list, settings: _Compile
                     ) -> list[Executable]:
    checks = settings.key_options["checks"]
    started = time.perf_counter()
    module = lir.Module(name="propc")
    taken: set[str] = set()
    lowered = []
    for graph, name in zip(graphs, names):
        if checks:
            verify(graph)
        lowered.append(lower_graph(graph, module, unique_name(name or graph.name, taken),
                                   checks=checks, threads=settings.threads,
                                   options=settings.options))
    lowering = time.perf_counter() - started
    # the process-wide library (sgemm, regions, pool) the module calls: loaded once
    # per process, from this compile's cache directory
    _provide_symbols(_externals(module), settings.options.cache_dir)
    jit = JitModule(module, debug=checks, keep_ir=settings.key_options["keep_ir"])
    codes = [GraphCode.from_lowered(item) for item in lowered]
    stored_at = time.perf_counter()
    if jit.object_code:
        meta = {"graphs": [code.to_meta() for code in codes], "externals": _externals(module)}
        if jit.unoptimised_ir is not None:
            meta["unoptimised_ir"] = jit.unoptimised_ir
        cache.store(key, cache.CacheEntry(meta, jit.object_code, jit.compressed_ir),
                    settings.options.cache_dir)
    release_module(module)   # its IR objects freed now, not by a cyclic collection
    times = {"lower": lowering, **jit.times, "cache store": time.perf_counter() - stored_at}
    return [Executable(code, jit, compile_times=times) for code in codes]


def _externals(module: lir.Module) -> list[str]:
    """propc's own process-wide functions the module calls (the shared sgemm)."""
    return sorted(fn.name for fn in module.functions
                  if fn.is_declaration and fn.name.startswith("propc."))


def _provide_symbols(names: list[str], cache_dir: Path | None) -> None:
    """Make the propc symbols compiled or cached code calls resolvable before it is
    loaded: machine code with an unresolved call would jump to address 0. The
    shared library is loaded on demand (its disk cache in `cache_dir`); anything
    else missing is a CodegenError (a cache entry: unusable). (C library functions
    are resolved by the JIT from the process, as always.)"""
    missing = [name for name in names if not llvm.address_of_symbol(name)]
    if any(name.startswith("propc.shared.") for name in missing):
        load_library(cache_dir)
        missing = [name for name in missing if not llvm.address_of_symbol(name)]
    if missing:
        raise CodegenError(f"cached code calls symbols this process lacks: {missing}")
