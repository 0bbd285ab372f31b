"""Locks that survive `os.fork()`, and llvmlite's global lock held across it.

A child made by `os.fork()` has only the thread that forked. A lock another thread
held at that moment stays locked in the child for good, so the child's first
compile (even a cache hit) would wait forever: on llvmlite's global lock (every
llvmlite call takes it), on the compile lock, or on a compiled function's lock.

Two measures:
- before a fork, the forking thread takes llvmlite's lock, so no thread is inside
  LLVM when the process is copied (LLVM's own state is consistent in the child);
  both sides release it after;
- `ForkSafeLock` remembers which thread holds it; in a forked child every one held
  by another thread (a thread the child does not have) is replaced by a fresh lock.
"""
from __future__ import annotations

import os
import threading
import weakref

from llvmlite.binding import ffi


class ForkSafeLock:
    """A lock (re-entrant when asked) that a forked child finds unlocked unless the
    forking thread itself held it. Use it as a context manager."""

    __slots__ = ("_reentrant", "_lock", "_owner", "_depth", "__weakref__")

    def __init__(self, reentrant: bool = False):
        self._reentrant = reentrant
        self._lock = threading.RLock() if reentrant else threading.Lock()
        self._owner: int | None = None
        self._depth = 0
        _ALL.add(self)

    def __enter__(self) -> "ForkSafeLock":
        self._lock.acquire()
        self._owner = threading.get_ident()
        self._depth += 1
        return self

    def __exit__(self, *exc_info) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
        self._lock.release()

    def _renew_in_child(self) -> None:
        """In a forked child: a fresh lock unless the surviving thread holds this one."""
        if self._owner is not None and self._owner != threading.get_ident():
            self._lock = threading.RLock() if self._reentrant else threading.Lock()
            self._owner, self._depth = None, 0


_ALL: "weakref.WeakSet[ForkSafeLock]" = weakref.WeakSet()


def _before_fork() -> None:
    ffi.lib._lock.__enter__()  # no thread is inside LLVM while the process is copied


def _after_fork_in_parent() -> None:
    ffi.lib._lock.__exit__(None, None, None)


def _after_fork_in_child() -> None:
    ffi.lib._lock.__exit__(None, None, None)
    for lock in list(_ALL):
        lock._renew_in_child()


os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                    after_in_child=_after_fork_in_child)
