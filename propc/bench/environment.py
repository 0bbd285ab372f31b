"""The environment and cores of a bench worker process (propc/bench/command.py starts
one per thread count, propc/bench/distributed.py one mpiexec per configuration):
every library's thread pool held to the worker's count, its cores pinned, one
shared disk cache."""
from __future__ import annotations

import os
import tempfile

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "PROPC_NUM_THREADS")
REMOVED_VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# OpenBLAS's idle threads spin for ~0.1 s after every call: timed between NumPy
# calls, propc's (or a peer's) second thread would find its core taken. With the
# timeout at its minimum (2^4 cycles) they sleep at once; NumPy's own times do not
# change measurably. A value the user set is kept.
QUIET_VARIABLES = {"OPENBLAS_THREAD_TIMEOUT": "4"}

# One empty disk cache per bench run, shared by its workers: first calls are cold
# compiles (only the shared sgemm library is built once, by the first worker).
_BENCH_CACHE = tempfile.TemporaryDirectory(prefix="propc-bench-cache-")


def worker_environment(threads: int) -> dict[str, str]:
    """This process's environment with every thread pool pinned to `threads`."""
    from .peers import peer_environment
    env = dict(os.environ)
    env.setdefault("PROPC_CACHE_DIR", _BENCH_CACHE.name)  # cold compiles, then warm
    for name in REMOVED_VARIABLES:
        env.pop(name, None)
    for name in THREAD_VARIABLES:
        env[name] = str(threads)
    for name, value in QUIET_VARIABLES.items():
        env.setdefault(name, value)
    env.update(peer_environment(threads, env))
    return env


def worker_cores(threads: int) -> set[int] | None:
    """The cores a worker at `threads` may run on: the first `threads` of this
    process's, or None (no pinning) when it has no more than that. Thread-count
    settings alone do not hold every library to its count (XLA's CPU runtime
    ignores them in recent JAX); pinned cores do, for NumPy, peers and propc alike."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    available = sorted(os.sched_getaffinity(0))
    if threads >= len(available):
        return None
    return set(available[:threads])


def pin_to_cores(threads: int):
    """A preexec_fn pinning the worker (and every thread it starts) to worker_cores."""
    cores = worker_cores(threads)
    if cores is None:
        return None
    return lambda: os.sched_setaffinity(0, cores)


__all__ = ["QUIET_VARIABLES", "REMOVED_VARIABLES", "THREAD_VARIABLES", "pin_to_cores",
           "worker_cores", "worker_environment"]
