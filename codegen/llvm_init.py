"""LLVM's native target, initialised once per process (a leaf: the JIT, the disk
cache's compiler fingerprint and the export targets all need it first)."""
from __future__ import annotations

import llvmlite.binding as llvm

from .forksafe import ForkSafeLock

_INIT_LOCK = ForkSafeLock()
_INITIALISED = False


def initialise() -> None:
    """Initialise LLVM's native target once per process (thread-safe)."""
    global _INITIALISED
    with _INIT_LOCK:
        if not _INITIALISED:
            llvm.initialize_native_target()
            llvm.initialize_native_asmprinter()
            _INITIALISED = True


__all__ = ["initialise"]
