"""LLVM's native target, initialised once per process (a leaf: the JIT, the disk
cache's compiler fingerprint and the export targets all need it first)."""
from __future__ import annotations

import functools

import llvmlite.binding as llvm

from .forksafe import ForkSafeLock

_INIT_LOCK = ForkSafeLock()


def initialise() -> None:
    """Initialise LLVM's native target once per process (thread-safe)."""
    with _INIT_LOCK:
        _initialise_native_target()


@functools.lru_cache(maxsize=None)
def _initialise_native_target() -> None:
    """The initialisation itself: run once (the cache remembers it ran; the lock
    keeps a second thread from running it while the first still is)."""
    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()


__all__ = ["initialise"]
