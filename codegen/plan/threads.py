"""The thread plan of one compile: how its generated code may use threads.

Decided once, at the edge, from the compile's `CompileOptions`
(`codegen.threads.host.thread_plan`; an export fixes its own), and passed down to
everything that plans threads: the loop steps (`codegen/emit/steps.py`), the sgemm
(`codegen/kernels/sgemm_step.py`), the entry point (whether a call holds the pool).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ThreadPlan:
    """`count`: threads generated code uses (1: none); `spinning`: libgomp's idle
    threads spin (the user's OMP_WAIT_POLICY / GOMP_SPINCOUNT); `pool`: compiled
    calls run their regions on the thread pool (codegen/threads/pool.py)."""

    count: int = 1
    spinning: bool = False
    pool: bool = False

    @property
    def cheap_regions(self) -> bool:
        """Whether a parallel region costs about a microsecond (the pool, or libgomp
        threads that spin), not a wake-up of tens: smaller products and loops then
        pay for threads."""
        return self.pool or self.spinning


# One thread, no regions: an export without threads, or a process without libgomp.
SERIAL = ThreadPlan()

__all__ = ["SERIAL", "ThreadPlan"]
