"""LLVM plumbing: initialisation, the host target machine, the optimisation pipeline
and the MCJIT engine that turns one LLVM module into callable native code.

Everything here follows the measured llvmlite 0.50 recipes in PERF.md: native target
and asm printer initialised explicitly, a fresh target machine per engine (MCJIT
owns the one it is given), the new pass manager at O2 with SLP vectorisation
switched on, its pass builder shared by a few compiles (`_SharedPassBuilder`).
Nothing here refers to itself: a dropped `JitModule` frees its engine at once.
"""
from __future__ import annotations

import contextlib
import functools
import signal
import threading
import time
import zlib
from pathlib import Path
from typing import Callable, Iterator

import llvmlite.binding as llvm
from llvmlite.binding import ffi
import llvmlite.ir as lir

from ..errors import CodegenError
from ..forksafe import ForkSafeLock
from ..llvm_init import initialise

# llvmlite works in LLVM's one global context and releases the GIL while doing so:
# compiles from several threads are serialised (calling compiled code is not).
_COMPILE_LOCK = ForkSafeLock(reentrant=True)


def host_target_machine(opt: int = 3) -> llvm.TargetMachine:
    """A new target machine for this CPU (name and features from the host)."""
    initialise()
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(
        cpu=llvm.get_host_cpu_name(),
        features=llvm.get_host_cpu_features().flatten(),
        opt=opt,
        codemodel="jitdefault",
    )


def host_fingerprint() -> str:
    """Triple, CPU name and features: what a cache of native code must key on."""
    initialise()
    return (f"{llvm.get_default_triple()}|{llvm.get_host_cpu_name()}|"
            f"{llvm.get_host_cpu_features().flatten()}|llvmlite-{llvm.llvm_version_info}")


def prepare_module(module: lir.Module) -> None:
    """Stamp the host triple and data layout on a module before it is parsed."""
    machine = host_target_machine()
    module.triple = machine.triple
    module.data_layout = str(machine.target_data)


def parse_and_verify(module: lir.Module, context=None) -> llvm.ModuleRef:
    """Parse llvmlite IR text into an LLVM module (in `context`, default LLVM's
    global one) and run LLVM's verifier on it."""
    initialise()
    text = str(module)
    try:
        parsed = llvm.parse_assembly(text, context)
        parsed.verify()
    except RuntimeError as err:
        raise CodegenError(f"generated LLVM IR is invalid: {err}") from None
    return parsed


def optimise(parsed: llvm.ModuleRef, machine: llvm.TargetMachine | None = None) -> None:
    """Run the O2 new-pass-manager pipeline with loop and SLP vectorisation, for
    `machine` (an export's target), else for the host through the JIT's shared pass
    builder. Call it holding _COMPILE_LOCK."""
    builder = _JIT_PASSES.builder() if machine is None else _pass_builder(machine)
    manager = builder.getModulePassManager()
    try:
        manager.run(parsed, builder)
    finally:
        _dispose_pass_manager(manager)


def _pass_builder(machine: llvm.TargetMachine):
    """A pass builder for `machine` with propc's pipeline tuning."""
    tuning = llvm.create_pipeline_tuning_options(speed_level=2)
    tuning.loop_vectorization = True
    tuning.slp_vectorization = True
    tuning.loop_unrolling = False  # full unrolls of short loops doubled compile time
    return llvm.create_pass_builder(machine, tuning)


class _SharedPassBuilder:
    """The host's pass builder, shared by PASS_BUILDER_RUNS optimiser runs, then replaced.

    A pass builder of llvmlite 0.50 allocates LLVM pass-instrumentation callbacks it
    never frees (~1.7 KiB per builder: one per compile was most of what a dropped
    compile left behind). Sharing one for good is no better: every run leaves one
    more callback on it (the standard instrumentations' optnone check, whose owner
    dies with the run; it reads that owner only for optnone functions, which propc
    never emits), and every later run calls them all for every pass: after 3,000
    compiles a small module took 24 ms to optimise instead of 3. Replacing the
    builder every PASS_BUILDER_RUNS runs bounds both: ~130 B per compile, at most
    PASS_BUILDER_RUNS callbacks per pass. Used under _COMPILE_LOCK.
    """

    def __init__(self) -> None:
        self._builder = None
        self._runs = 0

    def builder(self):
        """The builder for the next run (a new one every PASS_BUILDER_RUNS runs)."""
        if self._builder is None or self._runs >= PASS_BUILDER_RUNS:
            self._builder = _pass_builder(host_target_machine())
            self._runs = 0
        self._runs += 1
        return self._builder


PASS_BUILDER_RUNS = 16
_JIT_PASSES = _SharedPassBuilder()


def _dispose_pass_manager(manager) -> None:
    """Free a module pass manager now.

    In llvmlite 0.50 `ModulePassManager` inherits `ffi.ObjectRef._dispose` (a no-op)
    ahead of `NewPassManager._dispose` (the real one): its method order puts
    ObjectRef first, so the pipeline was never freed and every compile leaked ~55 KiB.
    Only when that is still so, free it by hand and detach it (no double free).
    """
    if type(manager)._dispose is ffi.ObjectRef._dispose:
        ffi.lib.LLVMPY_DisposeNewModulePassManger(manager)
        manager.detach()


def finalize(engine) -> None:
    """`engine.finalize_object()` with Ctrl-C held back until it returns.

    While finalising, MCJIT calls back into Python (the object cache hooks). A
    KeyboardInterrupt raised inside such a callback cannot leave it: ctypes prints
    "Exception ignored" and the compile carries on, so the interrupt was lost. On
    the main thread (the only one Python runs signal handlers on) a SIGINT that
    arrives meanwhile is recorded and handed to the previous handler afterwards."""
    with _interrupts_deferred():
        engine.finalize_object()


@contextlib.contextmanager
def _interrupts_deferred() -> Iterator[None]:
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):  # another thread, or SIG_IGN / SIG_DFL / not Python's
        yield
        return
    caught: list = []
    signal.signal(signal.SIGINT, lambda signum, frame: caught.append((signum, frame)))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            previous(*caught[0])


class JitModule:
    """An optimised module living in its own MCJIT engine.

    Holds the engine (and so the machine code) alive; `address(name)` gives the
    entry point of a function defined in the module. `object_code` is the native
    object MCJIT produced (what the disk cache stores); `JitModule.from_object`
    loads such an object back without parsing, optimising or generating anything,
    and a fresh compile does the same once its object is made (the compiling engine
    is released). `compressed_ir` (fresh compiles) is the optimised IR, zlib'd.
    """

    def __init__(self, module: lir.Module, *, debug: bool = False, keep_ir: bool | None = None):
        """`debug` re-verifies the module after optimisation; `keep_ir` keeps the
        unoptimised IR text as `.unoptimised_ir` (default: when debugging)."""
        with _COMPILE_LOCK:
            self._build(module, debug, debug if keep_ir is None else keep_ir)

    def _build(self, module: lir.Module, debug: bool, keep_ir: bool) -> None:
        started = time.perf_counter()
        prepare_module(module)
        self.unoptimised_ir = str(module) if keep_ir else None
        # A context of its own, freed with the module: what optimising and generating
        # code leave in a context (uniqued constants, metadata) stayed in LLVM's global
        # one for good, ~6 KiB per compile.
        context = llvm.create_context()
        parsed = parse_and_verify(module, context)
        parsed_at = time.perf_counter()
        optimise(parsed)
        if debug:
            parsed.verify()
        optimised_at = time.perf_counter()
        from .cache import compress_ir
        self.compressed_ir = compress_ir(str(parsed))
        self._llvm_ir: str | None = None
        # not a bound method: a JitModule referring to itself would live on after
        # its last user until the cyclic collector ran, and its engine with it
        self._llvm_ir_loader = functools.partial(_decompressed, self.compressed_ir)
        self._asm: str | None = None
        engine = llvm.create_mcjit_compiler(parsed, host_target_machine())
        captured: list[bytes] = []
        engine.set_object_cache(lambda _module, data: captured.append(bytes(data)), None)
        finalize(engine)
        # seconds per stage: IR text + LLVM parse, the optimiser, machine code
        self.times = {"parse": parsed_at - started, "optimise": optimised_at - parsed_at,
                      "machine code": time.perf_counter() - optimised_at}
        self.object_code = captured[0] if captured else b""
        if not self.object_code:
            self._engine, self._module, self._context = engine, parsed, context
            return
        # The compiling engine keeps the LLVM module and its code generator's state
        # (~700 KiB for a small graph): drop it and load the object code it made, so
        # that a fresh compile keeps what a disk-cache load keeps (~95 KiB).
        engine.close()
        context.close()
        self._load(self.object_code)

    def _load(self, object_code: bytes) -> None:
        """An engine running `object_code` (no parsing, optimising or generating)."""
        self._module = llvm.parse_assembly("")
        self._engine = llvm.create_mcjit_compiler(self._module, host_target_machine())
        # MCJIT asks the object cache before generating code for a module: handing
        # it the stored object makes it load that instead of compiling anything.
        self._engine.set_object_cache(None, lambda _module: object_code)
        finalize(self._engine)

    @classmethod
    def from_object(cls, object_code: bytes, llvm_ir: Callable[[], str],
                    unoptimised_ir: str | None = None) -> "JitModule":
        """Load native object code made by an earlier `JitModule` (the disk cache).

        `llvm_ir` produces the optimised IR text when `.llvm_ir` is first asked for.
        """
        self = cls.__new__(cls)
        with _COMPILE_LOCK:
            initialise()
            self._load(object_code)
        self.object_code = object_code
        self.compressed_ir = None  # a loaded module's IR comes from `llvm_ir`
        self.unoptimised_ir = unoptimised_ir
        self.times = {}
        self._llvm_ir = None
        self._llvm_ir_loader = llvm_ir
        self._asm = None
        return self

    @property
    def llvm_ir(self) -> str:
        """Optimised LLVM IR text of the module."""
        if self._llvm_ir is None:
            self._llvm_ir = self._llvm_ir_loader()
        return self._llvm_ir

    @property
    def asm(self) -> str:
        """Native assembly of the optimised module (generated on first use)."""
        if self._asm is None:
            with _COMPILE_LOCK:
                reparsed = llvm.parse_assembly(self.llvm_ir)
                self._asm = host_target_machine().emit_assembly(reparsed)
        return self._asm

    def address(self, name: str) -> int:
        """Native address of function `name`; raises CodegenError when missing."""
        addr = self._engine.get_function_address(name)
        if not addr:
            raise CodegenError(f"function {name!r} not found in the compiled module")
        return addr


def _decompressed(compressed_ir: bytes) -> str:
    return zlib.decompress(compressed_ir).decode()


# --------------------------------------------------------------------------------------
# process-wide libraries (the sgemm) that graph modules call by symbol

_LIBRARIES: dict[str, JitModule] = {}
_LLVM_TYPES = {"void": lir.VoidType(), "ptr": lir.PointerType(), "i1": lir.IntType(1),
               "i8": lir.IntType(8), "i32": lir.IntType(32), "i64": lir.IntType(64),
               "float": lir.FloatType(), "double": lir.DoubleType()}

LibraryBuilder = Callable[[], "tuple[lir.Module, dict[str, lir.Function]]"]


def load_shared_library(name: str, build: LibraryBuilder, cache_dir: Path | None,
                        options: dict | None = None) -> dict[str, lir.FunctionType]:
    """JIT a library module once per process and publish its functions as symbols.

    `build()` returns the module and {public symbol: function defined in it}. The
    object code is cached on disk (in `cache_dir`; None: not) under `name`,
    `options` and the compiler fingerprint (codegen's source included), so a new
    process skips emitting and compiling it. Each public symbol is registered with
    `llvm.add_symbol`; graph modules declare and call it. Returns the functions'
    types by public symbol.
    """
    from . import cache
    key = cache.cache_key(f"library:{name}", [], options or {})
    entry = cache.load(key, cache_dir)
    types = _library_types(entry.meta) if entry is not None else None
    if types is not None:
        jit = JitModule.from_object(entry.object_code, entry.llvm_ir)
        internal = entry.meta["internal"]
    else:
        module, functions = build()
        jit = JitModule(module)
        internal = {public: fn.name for public, fn in functions.items()}
        types = {public: fn.function_type for public, fn in functions.items()}
        if jit.object_code:
            meta = {"internal": internal,
                    "types": {public: str(kind) for public, kind in types.items()}}
            cache.store(key, cache.CacheEntry(meta, jit.object_code,
                                              jit.compressed_ir), cache_dir)
    for public, symbol in internal.items():
        llvm.add_symbol(public, jit.address(symbol))
    _LIBRARIES[name] = jit  # keeps the machine code alive for the process
    return types


def _library_types(meta: dict) -> dict[str, lir.FunctionType] | None:
    """Function types from their text (`void (i64, ptr)`); None if any is unknown."""
    try:
        found = {}
        for public, text in meta["types"].items():
            result, _, rest = text.partition(" (")
            names = [part.strip() for part in rest.rstrip(")").split(",") if part.strip()]
            found[public] = lir.FunctionType(_LLVM_TYPES[result],
                                             [_LLVM_TYPES[arg] for arg in names])
        if set(found) != set(meta["internal"]):
            return None
        return found
    except (KeyError, AttributeError, TypeError):
        return None
