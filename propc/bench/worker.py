"""The measuring side of `propc bench`: one process at one thread count.

`propc bench` starts this worker once per thread count, with OPENBLAS_NUM_THREADS,
OMP_NUM_THREADS and PROPC_NUM_THREADS set before NumPy loads, so NumPy, propc and
the peers all run at that thread count. The worker prints one line per measured
row, `BENCHROW {json}`, for the parent to format; progress goes to stderr.
"""
from __future__ import annotations

import json
import sys
import time
from typing import Any, Callable

import numpy as np

from .cases import Case, kernel_cases, mlp_cases
from .common import (PEAK_MATMUL_N, MLPSize, Row, Timing, interleaved_medians_ms,
                           matmul_flops, matmul_products, median_ms)

ROW_PREFIX = "BENCHROW "


def emit(row: Row) -> None:
    """Hand one row to the parent process."""
    print(ROW_PREFIX + json.dumps(row.to_dict()), flush=True)


def progress(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def failure_text(err: BaseException) -> str:
    """A one-line FAIL for a case that raised instead of returning a result."""
    first_line = (str(err).strip().splitlines() or [""])[0]
    return f"FAIL {type(err).__name__}: {first_line[:120]}"


def measure_peak(threads: int, timing: Timing, seed: int = 4) -> Row:
    """np.matmul GFLOP/s on float32 n x n matrices: the efficiency denominator."""
    rng = np.random.default_rng(seed)
    n = PEAK_MATMUL_N
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    ms = median_ms(lambda: a @ b, timing)
    row = Row("peak", f"np.matmul float32 {n}x{n} @ {n}x{n}", "numpy", threads, ms=ms,
              numpy_ms=ms, flops=matmul_flops(n, n, n))
    return row.finish()


Contender = tuple[Row, Callable[[], Any] | None]


def prepare_propc(case: Case, want: Any, threads: int) -> Contender:
    """Compile the case with pc.compile, time its first call and check its result;
    the callable to time is None when it raised."""
    import propc as pc
    row = Row(case.section, case.name, "propc", threads, flops=case.flops)
    try:
        compiled = pc.compile(case.program)
        started = time.perf_counter()
        got = compiled(*case.args)
        row.compile_ms = (time.perf_counter() - started) * 1e3
        row.check = case.check(got, want)
        again = pc.compile(case.program)    # same graph: served by the disk cache
        started = time.perf_counter()
        again(*case.args)
        row.warm_ms = (time.perf_counter() - started) * 1e3
    except Exception as err:  # a broken case is reported in its row; the others still run
        row.check = failure_text(err)
        return row, None
    return row, lambda: compiled(*case.args)


def prepare_peer(case: Case, impl: str, prepared: tuple[Callable, Callable], want: Any,
                 threads: int) -> Contender:
    """Check a peer framework's version of an MLP case (see bench/peers.py)."""
    run, to_numpy = prepared
    row = Row("peer", case.name, impl, threads, flops=case.flops)
    try:
        row.check = case.check(to_numpy(run()), want)
    except Exception as err:  # a peer's failure must not stop the benchmark
        row.check = failure_text(err)
        return row, None
    return row, run


def run_case(case: Case, threads: int, timing: Timing, peers: bool = False) -> list[Row]:
    """Rows of one case: propc (and peers for MLP cases) against the NumPy twin, every
    result checked against NumPy's first, then all timed in turns; a case that lists
    its matrix products (CNN steps) also gets a "products" row, those products alone
    through np.matmul, timed on their own afterwards: in turns with the others their
    operands leave the cache (small train step: 246 µs in turns, 180 µs alone), so
    alone is their best case and the stricter yardstick for propc."""
    progress(f"[{threads} thread{'s' if threads > 1 else ''}] {case.name}")
    want = case.reference()
    contenders = [prepare_propc(case, want, threads)]
    if peers and (case.size is not None or case.section == "cnn"):
        if case.section == "cnn":
            from .cnn import prepare_cnn_peers as prepare_peers
        else:
            from .peers import prepare_peers
        for impl, prepared in prepare_peers(case.args, case.train, threads):
            contenders.append(prepare_peer(case, impl, prepared, want, threads))
    timed = [(row, fn) for row, fn in contenders if fn is not None]
    medians = interleaved_medians_ms([case.reference] + [fn for _, fn in timed], timing)
    for (row, _), ms in zip(timed, medians[1:]):
        row.ms = ms
    rows = [row for row, _ in contenders]
    if case.products:
        products = Row("products", case.name, "numpy", threads, flops=case.flops)
        products.ms = median_ms(matmul_products(case.products), timing)
        rows.append(products)
    for row in rows:
        row.numpy_ms = medians[0]
        row.finish()
    return rows


def run_table(sizes: list[MLPSize], threads: int, timing: Timing, peers: bool,
              cnn: tuple[str, ...] = ("small", "medium")) -> list[Row]:
    """The main table at one thread count: MLP steps, CNN steps (propc/bench/cnn.py),
    kernels and call overhead, between two measurements of the np.matmul peak."""
    from .cnn import cnn_cases
    rows = [measure_peak(threads, timing)]
    emit(rows[0])
    cases = ([case for size in sizes for case in mlp_cases(size)] + cnn_cases(list(cnn))
             + kernel_cases(sizes))
    for case in cases:
        for row in run_case(case, threads, timing, peers):
            rows.append(row)
            emit(row)
    rows.append(measure_peak(threads, timing))
    emit(rows[-1])
    return rows
