"""Threads sharing compiled functions: right answers, one compile per signature, no
leaks. The CI size is small; `python tools/fuzz.py` runs 8 threads x 1000 calls."""
from __future__ import annotations

import threading

import numpy as np

import propc as pc
from concurrency_workload import resident_bytes, run_workload
from propc.compile import compile

RSS_SLACK = 32 * 2**20  # a leak of the 64 KiB+ outputs over 1600 calls would be ~100 MiB


def test_threads_share_compiled_functions_without_wrong_results_or_leaks():
    report = run_workload(threads=8, calls=200)
    assert not report.failures, f"{report}\n" + "\n".join(report.failures[:10])
    assert report.growth < RSS_SLACK, str(report)


def _call_together(threads: int, call) -> list:
    """Start `threads` threads that all make their first call at the same moment."""
    start = threading.Barrier(threads)
    results: list = [None] * threads
    errors: list = []

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = call(index)
        except BaseException as err:  # reported below, with the thread that hit it
            errors.append((index, err))

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not errors, f"threads raised: {errors}"
    return results


def test_first_calls_from_many_threads_compile_each_signature_once():
    fn = compile(lambda a: pc.tanh(a) * 2.0 - a.sum(axis=0))
    inputs = [np.linspace(-2, 2, 12, dtype=np.float32).reshape(4, 3),
              np.linspace(-1, 3, 10, dtype=np.float64).reshape(2, 5)]
    results = _call_together(8, lambda i: fn(inputs[i % 2]))
    for i, result in enumerate(results):
        a = inputs[i % 2]
        expected = np.tanh(a) * a.dtype.type(2) - a.sum(axis=0)
        assert result.dtype == a.dtype
        np.testing.assert_allclose(result, expected, rtol=1e-5)
    assert fn.cache_size == 2
    assert fn.compile_count == 2


def test_short_lived_threads_do_not_leak_scratch_memory():
    """Each calling thread gets its own scratch arena; threads that end free it."""
    fn = compile(lambda a, b: pc.exp(a @ b * 0.01) @ b)
    rng = np.random.default_rng(1)
    a = rng.standard_normal((256, 256)).astype(np.float32)
    b = rng.standard_normal((256, 256)).astype(np.float32)
    expected = np.exp(a @ b * np.float32(0.01)) @ b
    for _ in range(2):  # warm-up: allocator pools reach their steady size
        _call_together(4, lambda i: fn(a, b))
    before = resident_bytes()
    for _ in range(10):
        for result in _call_together(4, lambda i: fn(a, b)):
            np.testing.assert_allclose(result, expected, rtol=1e-3, atol=1e-3)
    assert resident_bytes() - before < RSS_SLACK
