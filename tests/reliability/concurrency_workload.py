"""Many threads calling shared compiled functions: results right, memory stable.

`run_workload(threads, calls)` builds a few compiled functions with different
signatures (float32/float64/int, pytree in and out, a gradient, one `Compiled`
holding two signatures), computes each case's NumPy reference single-threaded,
then has `threads` worker threads make `calls` calls each, cycling through the
cases from different starting points. Every result is compared with the
reference. RSS (from /proc/self/statm) is read after a warm-up round made by the
same threads (so per-thread scratch arenas already exist) and again after the
run; the difference is the growth a leak would show. Outputs are 64 KiB or more,
so leaking them would be obvious.

Used by tests/reliability/test_concurrency.py (small) and tools/fuzz.py (full).
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

import propc as pc
from propc.compile import compile

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
WARMUP_CALLS = 20


def resident_bytes() -> int:
    """This process' resident set size, from /proc/self/statm (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_SIZE


@dataclass
class Case:
    """One call: a compiled function, its arguments and the expected result."""

    name: str
    function: Callable
    args: tuple
    expected: Any


@dataclass
class WorkloadReport:
    threads: int
    calls: int
    rss_after_warmup: int
    rss_after_run: int
    failures: list[str] = field(default_factory=list)

    @property
    def growth(self) -> int:
        return self.rss_after_run - self.rss_after_warmup

    def __str__(self) -> str:
        return (f"{self.threads} threads x {self.calls} calls: {len(self.failures)} wrong "
                f"results, RSS {self.rss_after_warmup / 2**20:.1f} -> "
                f"{self.rss_after_run / 2**20:.1f} MiB")


def _mlp_loss(params, x):
    (W1, b1), (W2, b2) = params
    hidden = pc.tanh(x @ W1 + b1)
    return ((hidden @ W2 + b2) ** 2).mean()


def _numpy_mlp_grad_W2(params, x):
    """d mean((tanh(x W1 + b1) W2 + b2)^2) / dW2, by hand in float64."""
    (W1, b1), (W2, b2) = [(np.float64(0) + W, np.float64(0) + b) for W, b in params]
    hidden = np.tanh(x.astype(np.float64) @ W1 + b1)
    out = hidden @ W2 + b2
    return hidden.T @ (2 * out / out.size)


def make_cases(seed: int = 0) -> list[Case]:
    """The shared functions and one reference result per (function, signature)."""
    rng = np.random.default_rng(seed)
    f32, f64 = np.float32, np.float64
    a32 = rng.standard_normal((128, 128)).astype(f32)
    b32 = rng.standard_normal((128, 128)).astype(f32)
    a64 = rng.standard_normal((96, 200)).astype(f64)
    ints = rng.integers(-1000, 1000, size=(128, 160)).astype(np.int64)
    params = [(rng.standard_normal((16, 32)).astype(f32) * 0.3, np.zeros(32, f32)),
              (rng.standard_normal((32, 128)).astype(f32) * 0.3, np.zeros(128, f32))]
    x = rng.standard_normal((64, 16)).astype(f32)
    big = rng.standard_normal((600, 700)).astype(f32)   # enough work for threaded loops

    elementwise = compile(lambda a, b: pc.exp(-a * a) + pc.maximum(a, b) * 0.5)
    matmul = compile(lambda a, b: a @ b)
    both = compile(lambda d: {"sum": d["a"] + d["b"], "rows": d["a"].sum(axis=1)})
    integer = compile(lambda n: (n * 3 - 7).sum(axis=0) + pc.maximum(n, -n))
    gradient = compile(pc.grad(_mlp_loss))
    loop = compile(lambda a: (pc.tanh(a) * 2.0 + a, (a * a).sum(axis=1)))
    return [
        Case("elementwise f32", elementwise, (a32, b32),
             np.exp(-a32 * a32) + np.maximum(a32, b32) * f32(0.5)),
        Case("elementwise f64 (second signature)", elementwise, (a64, a64 * 2),
             np.exp(-a64 * a64) + np.maximum(a64, a64 * 2) * 0.5),
        Case("matmul f32", matmul, (a32, b32), a32 @ b32),
        Case("matmul f64", matmul, (a64.T.copy(), a64), a64.T @ a64),
        Case("pytree in and out", both, ({"a": a32, "b": b32},),
             {"rows": a32.sum(axis=1), "sum": a32 + b32}),
        Case("int64 arithmetic", integer, (ints,),
             (ints * 3 - 7).sum(axis=0) + np.maximum(ints, -ints)),
        Case("gradient of an MLP loss", lambda p, x: gradient(p, x)[1][0], (params, x),
             _numpy_mlp_grad_W2(params, x).astype(f32)),
        # threaded regions: one calling thread at a time holds the thread pool, the
        # others fork their own teams (codegen/parallel_pool.py)
        Case("threaded loops", lambda a: loop(a)[0], (big,), np.tanh(big) * f32(2) + big),
    ]


def mismatch(case: Case, result: Any) -> str | None:
    """Why `result` is not `case.expected` (None when it is)."""
    expected = case.expected
    if isinstance(expected, dict):
        if not isinstance(result, dict) or sorted(result) != sorted(expected):
            return f"{case.name}: structure {type(result).__name__} differs"
        for key in expected:
            reason = mismatch(Case(f"{case.name}[{key!r}]", case.function, (), expected[key]),
                              result[key])
            if reason:
                return reason
        return None
    if not isinstance(result, np.ndarray) or result.dtype != expected.dtype \
            or result.shape != expected.shape:
        return f"{case.name}: got {type(result).__name__} {getattr(result, 'dtype', '')}" \
               f"{getattr(result, 'shape', '')}, want {expected.dtype}{expected.shape}"
    if expected.dtype.kind in "iub":
        ok = np.array_equal(result, expected)
    else:
        tolerance = 1e-4 if expected.dtype == np.float32 else 1e-10
        ok = np.allclose(result, expected, rtol=tolerance, atol=tolerance)
    return None if ok else f"{case.name}: values differ from the NumPy reference"


def _worker(cases: list[Case], start: int, calls: int) -> list[str]:
    failures = []
    for i in range(calls):
        case = cases[(start + i) % len(cases)]
        reason = mismatch(case, case.function(*case.args))
        if reason:
            failures.append(reason)
    return failures


def run_workload(threads: int = 8, calls: int = 200, seed: int = 0) -> WorkloadReport:
    """`threads` threads x `calls` calls on shared compiled functions (module doc)."""
    cases = make_cases(seed)
    failures = [reason for case in cases if (reason := mismatch(case, case.function(*case.args)))]
    arrived = threading.Barrier(threads)

    def warm_up(start: int) -> list[str]:
        arrived.wait()  # holds every pool thread at once, so each one warms up
        return _worker(cases, start, WARMUP_CALLS)

    with ThreadPoolExecutor(threads) as pool:
        for found in pool.map(warm_up, range(threads)):
            failures.extend(found)
        before = resident_bytes()
        for found in pool.map(lambda start: _worker(cases, start, calls), range(threads)):
            failures.extend(found)
        after = resident_bytes()
    return WorkloadReport(threads, calls, before, after, failures)
