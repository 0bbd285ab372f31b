"""Formatting of `propc bench`'s rows into the printed tables.

The main table has one row per (case, thread count, implementation). Its columns:
case, threads, impl, ms (median per call), numpy ms (the NumPy twin in the same
process), ratio (ms / numpy ms: below 1 is faster than NumPy), GFLOP/s (the case's
true FLOPs over ms), eff (GFLOP/s over np.matmul's float32 n=1024 GFLOP/s measured in
the same run at the same thread count), and check (ok, or FAIL when the result
disagreed with NumPy's). Below the table, each CNN step's median is set beside its
matrix products alone through np.matmul, timed on their own in the same worker
(issue 17's target).
"""
from __future__ import annotations

from ir.table import render

from .common import Row, best_peaks

TABLE_HEADER = ("case", "threads", "impl", "ms", "numpy ms", "ratio", "GFLOP/s", "eff", "check")
IMPL_ORDER = {"propc": 0, "jax": 1, "torch": 2, "numpy": 3}


def number(value: float | None, digits: int = 4) -> str:
    """A float with `digits` significant digits, "-" for a missing value."""
    return "-" if value is None else f"{value:.{digits}g}"


def table_line(row: Row) -> tuple[str, ...]:
    ratio = row.ms / row.numpy_ms if row.ms and row.numpy_ms else None
    return (row.case, str(row.threads), row.impl, number(row.ms), number(row.numpy_ms),
            "-" if ratio is None else f"{ratio:.2f}",
            "-" if row.gflops is None else f"{row.gflops:.1f}",
            "-" if row.efficiency is None else f"{row.efficiency:.2f}", row.check)


def ordered(rows: list[Row]) -> list[Row]:
    """Rows grouped by case (in first-seen order), then by threads and implementation."""
    first_seen: dict[str, int] = {}
    for row in rows:
        first_seen.setdefault(row.case, len(first_seen))
    return sorted(rows, key=lambda r: (first_seen[r.case], r.threads, IMPL_ORDER.get(r.impl, 9)))


def format_table(rows: list[Row]) -> str:
    """The main table: MLP steps and peers first, then kernels and call overhead."""
    timed = [row for row in rows
             if row.section in ("mlp", "peer", "cnn", "kernel", "overhead")]
    mlp = ordered([row for row in timed if row.section in ("mlp", "peer", "cnn")])
    kernels = ordered([row for row in timed if row.section in ("kernel", "overhead")])
    lines = [table_line(row) for row in mlp + kernels]
    return "\n".join(render(TABLE_HEADER, lines, left={0, 2, len(TABLE_HEADER) - 1}))


def _threads(count: int) -> str:
    return f"{count} thread{'s' if count != 1 else ''}"


def format_peaks(rows: list[Row]) -> str:
    peaks = best_peaks(rows)
    if not peaks:
        return ""
    parts = [f"{_threads(threads)} {gflops:.1f} GFLOP/s" for threads, gflops in peaks.items()]
    return ("np.matmul peak (float32, n=1024, best of the run's start and end; the eff "
            f"denominator): {', '.join(parts)}")


def format_compile_times(rows: list[Row]) -> str:
    """First-call times (trace + optimise + compile + one run) of the train steps: cold
    (the bench starts with an empty disk cache) and warm (served by the disk cache)."""
    steps = [row for row in rows if row.section == "mlp" and row.impl == "propc"
             and row.case.startswith("train") and row.compile_ms is not None]
    if not steps:
        return ""
    parts = [f"{row.case.split(' ')[1]} {row.compile_ms:.0f} ms cold / "
             f"{row.warm_ms or 0:.0f} ms warm ({_threads(row.threads)})" for row in ordered(steps)]
    return "compile time of the train step (first call): " + ", ".join(parts)


def format_overhead(rows: list[Row]) -> str:
    calls = [row for row in rows if row.section == "overhead" and row.ms is not None]
    parts = [f"propc {row.ms * 1e3:.1f} µs vs numpy {row.numpy_ms * 1e3:.2f} µs "
             f"({_threads(row.threads)})" for row in ordered(calls)]
    return ("call overhead on a 4-element array: " + "; ".join(parts)) if parts else ""


PRODUCTS_TARGET = 1.3   # issue 17: a CNN step within 1.3x of its products alone


def format_products(rows: list[Row]) -> str:
    """Per CNN case and thread count: the step's matrix products alone through np.matmul
    (the "products" rows, timed on their own) next to the propc row's median from
    the same worker."""
    propc = {(row.case, row.threads): row.ms for row in rows
             if row.section == "cnn" and row.impl == "propc"}
    lines = []
    for row in ordered([row for row in rows if row.section == "products" and row.ms]):
        ms = propc.get((row.case, row.threads))
        ratio = "-" if ms is None else f"{ms / row.ms:.2f}x"
        lines.append(f"{row.case.split(' (')[0]}, {_threads(row.threads)}: products alone "
                     f"through np.matmul {number(row.ms, 3)} ms; propc {number(ms, 3)} ms "
                     f"= {ratio} (target <= {PRODUCTS_TARGET}x)")
    return "\n".join(lines)


def failures(rows: list[Row]) -> list[Row]:
    """propc rows whose result disagreed with NumPy's or which did not run."""
    return [row for row in rows if row.impl == "propc" and row.check.startswith("FAIL")]


def format_report(rows: list[Row]) -> str:
    """Everything the main table section prints, as one text."""
    notes = [format_compile_times(rows), format_overhead(rows), format_products(rows)]
    parts = ["propc bench: float32, median ms per call; ratio = ms / numpy ms (below 1: "
             "faster than NumPy); GFLOP/s counts the matmul FLOPs; timings on a shared "
             "machine are noisy.", format_peaks(rows), "", format_table(rows), ""]
    parts += [note for note in notes if note]
    failed = failures(rows)
    if failed:
        parts.append(f"FAIL: {len(failed)} propc case(s) disagreed with NumPy or did not run")
    return "\n".join(parts).rstrip() + "\n"
