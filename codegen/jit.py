"""LLVM plumbing: initialisation, the host target machine, the optimisation pipeline
and the MCJIT engine that turns one LLVM module into callable native code.

Everything here follows the measured llvmlite 0.50 recipes in PERF.md: native target
and asm printer initialised explicitly, a fresh target machine per engine (MCJIT
owns the one it is given), the new pass manager at O2 with SLP vectorisation
switched on.
"""
from __future__ import annotations

import threading

import llvmlite.binding as llvm
from llvmlite.binding import ffi
import llvmlite.ir as lir

from .errors import CodegenError

_INIT_LOCK = threading.Lock()
_INITIALISED = False
# llvmlite works in LLVM's one global context and releases the GIL while doing so:
# compiles from several threads are serialised (calling compiled code is not).
_COMPILE_LOCK = threading.RLock()


def initialise() -> None:
    """Initialise LLVM's native target once per process (thread-safe)."""
    global _INITIALISED
    with _INIT_LOCK:
        if not _INITIALISED:
            llvm.initialize_native_target()
            llvm.initialize_native_asmprinter()
            _INITIALISED = True


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


def parse_and_verify(module: lir.Module) -> llvm.ModuleRef:
    """Parse llvmlite IR text into an LLVM module and run LLVM's verifier on it."""
    initialise()
    text = str(module)
    try:
        parsed = llvm.parse_assembly(text)
        parsed.verify()
    except RuntimeError as err:
        raise CodegenError(f"generated LLVM IR is invalid: {err}") from None
    return parsed


def optimise(parsed: llvm.ModuleRef, machine: llvm.TargetMachine) -> None:
    """Run the O2 new-pass-manager pipeline with loop and SLP vectorisation."""
    tuning = llvm.create_pipeline_tuning_options(speed_level=2)
    tuning.loop_vectorization = True
    tuning.slp_vectorization = True
    tuning.loop_unrolling = False  # full unrolls of short loops doubled compile time
    builder = llvm.create_pass_builder(machine, tuning)
    manager = builder.getModulePassManager()
    try:
        manager.run(parsed, builder)
    finally:
        _dispose_pass_manager(manager)


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


class JitModule:
    """An optimised module living in its own MCJIT engine.

    Holds the engine (and so the machine code) alive; `address(name)` gives the
    entry point of a function defined in the module.
    """

    def __init__(self, module: lir.Module, *, debug: bool = False):
        with _COMPILE_LOCK:
            self._build(module, debug)

    def _build(self, module: lir.Module, debug: bool) -> None:
        prepare_module(module)
        self.unoptimised_ir = str(module) if debug else None
        parsed = parse_and_verify(module)
        machine = host_target_machine()
        optimise(parsed, machine)
        if debug:
            parsed.verify()
        self.llvm_ir = str(parsed)
        self._asm: str | None = None
        engine_machine = host_target_machine()
        self._engine = llvm.create_mcjit_compiler(parsed, engine_machine)
        self._engine.finalize_object()
        self._module = parsed

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
