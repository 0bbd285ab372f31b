"""Shared pieces of `propc bench`: the MLP sizes, FLOP counts, timing, checks, rows.

Nothing here imports propc's compiler, so the parent process of `propc bench` can
use it without loading NumPy's thread pools in a particular configuration.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class MLPSize:
    """One benchmarked MLP: a name, the batch size and the layer widths."""

    name: str
    batch: int
    widths: tuple[int, ...]

    def describe(self) -> str:
        return f"b{self.batch} {'-'.join(str(w) for w in self.widths)}"

    def layers(self) -> list[tuple[int, int]]:
        """(inputs, outputs) of every layer, the first layer first."""
        return list(zip(self.widths[:-1], self.widths[1:]))


SIZES = {
    "small": MLPSize("small", 32, (64, 128, 10)),
    "medium": MLPSize("medium", 128, (784, 256, 256, 10)),
    "large": MLPSize("large", 512, (1024, 1024, 1024, 10)),
}

LEARNING_RATE = 0.1
PEAK_MATMUL_N = 1024


# -- FLOPs ----------------------------------------------------------------------------


def matmul_flops(m: int, k: int, n: int) -> int:
    """Multiply-adds of an (m, k) @ (k, n) product, counted as 2 FLOPs each."""
    return 2 * m * k * n


def matmul_products(shapes: list[tuple[int, int, int]], seed: int = 5) -> Callable[[], None]:
    """A call doing the (m, k) @ (k, n) products of `shapes` through np.matmul on float32
    operands allocated once, into preallocated outputs: a step's matrix products alone,
    at np.matmul's rate, with no allocation or other work timed."""
    rng = np.random.default_rng(seed)
    operands = [(rng.standard_normal((m, k)).astype(np.float32),
                 rng.standard_normal((k, n)).astype(np.float32),
                 np.empty((m, n), np.float32)) for m, k, n in shapes]

    def run() -> None:
        for a, b, out in operands:
            np.matmul(a, b, out=out)
    return run


def mlp_flops(batch: int, widths: tuple[int, ...] | list[int], train: bool) -> int:
    """The true FLOPs of an MLP step's matrix products (elementwise work not counted).

    Forward: 2·n·m·d per layer (batch n, m inputs, d outputs). Training adds the
    backward pass: 4·n·m·d per layer (the weight gradient and the input gradient),
    except 2·n·m·d for the first layer, whose input needs no gradient.
    """
    layers = list(zip(widths[:-1], widths[1:]))
    total = 0
    for index, (m, d) in enumerate(layers):
        total += 2 * batch * m * d
        if train:
            total += (2 if index == 0 else 4) * batch * m * d
    return total


# -- timing ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """How long to time each case: a budget in seconds and bounds on samples."""

    budget_s: float
    min_samples: int
    max_samples: int = 2000


FULL_TIMING = Timing(budget_s=0.5, min_samples=5)
QUICK_TIMING = Timing(budget_s=0.02, min_samples=3, max_samples=50)

_MIN_SAMPLE_S = 50e-6  # cheap calls are timed in groups, so the clock's cost is negligible


Clock = Callable[[], float]   # seconds, monotonic; time.perf_counter unless a test fakes it


def _probe(fn: Callable[[], Any], clock: Clock) -> int:
    """Warm fn up and return how many calls make one sample of at least 50 µs."""
    fn()
    started = clock()
    fn()
    first = max(clock() - started, 1e-9)
    return max(1, int(_MIN_SAMPLE_S / first))


def _time_group(fn: Callable[[], Any], group: int, clock: Clock) -> float:
    started = clock()
    for _ in range(group):
        fn()
    return (clock() - started) / group


def interleaved_medians_ms(fns: list[Callable[[], Any]], timing: Timing,
                           clock: Clock = time.perf_counter) -> list[float]:
    """Median milliseconds per call of each fn(), sampled in turns (a, b, c, a, b, c...)
    so that every contender sees the same machine load; ratios between them stay
    meaningful on a busy machine.

    After a warm-up call each, the number of rounds adapts so that every fn gets about
    `timing.budget_s`; a call much faster than 50 µs is timed in groups and divided.
    `clock` is a parameter so that tests can drive this logic with a fake one.
    """
    groups = [_probe(fn, clock) for fn in fns]
    round_s = sum(_time_group(fn, group, clock) * group for fn, group in zip(fns, groups))
    rounds = int(timing.budget_s * len(fns) / max(round_s, 1e-9))
    rounds = min(max(rounds, timing.min_samples), timing.max_samples)
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for times, fn, group in zip(samples, fns, groups):
            times.append(_time_group(fn, group, clock))
    return [float(np.median(times)) * 1e3 for times in samples]


def median_ms(fn: Callable[[], Any], timing: Timing, clock: Clock = time.perf_counter) -> float:
    """Median milliseconds per call of fn() (see interleaved_medians_ms)."""
    return interleaved_medians_ms([fn], timing, clock)[0]


# -- correctness guard ----------------------------------------------------------------

TOLERANCE = 1e-4        # relative to the largest reference magnitude, float32 results
UPDATE_TOLERANCE = 2e-3  # relative, on the SGD update (new - old) of each parameter


def relative_error(got: Any, want: Any) -> float:
    """max |got - want| / max |want| (NaN or a shape mismatch gives inf)."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return float("inf")
    error = float(np.max(np.abs(got - want), initial=0.0))
    scale = float(np.max(np.abs(want), initial=0.0))
    result = error / scale if scale > 0 else error
    return result if np.isfinite(result) else float("inf")


def check_arrays(pairs: list[tuple[str, Any, Any, float]]) -> str:
    """"ok", or a loud FAIL naming the first (name, got, want, tolerance) that differs."""
    for name, got, want, tolerance in pairs:
        error = relative_error(got, want)
        if not error <= tolerance:
            return f"FAIL {name} rel err {error:.1e} > {tolerance:.0e}"
    return "ok"


def check_train_step(params: list, got: tuple, want: tuple) -> str:
    """Compare (new_params, loss) of a train step with the reference's.

    Parameters are compared through their updates (new - old), so a wrong gradient
    is not hidden by the much larger parameter values.
    """
    got_params, got_loss = got
    want_params, want_loss = want
    pairs = [("loss", got_loss, want_loss, TOLERANCE)]
    if len(got_params) != len(want_params):
        return f"FAIL {len(got_params)} layers returned, expected {len(want_params)}"
    for index, (old, new, ref) in enumerate(zip(params, got_params, want_params)):
        for leaf, name in enumerate(("W", "b")):
            pairs.append((f"{name}{index} update", np.asarray(new[leaf]) - old[leaf],
                          ref[leaf] - old[leaf], UPDATE_TOLERANCE))
    return check_arrays(pairs)


# -- rows -----------------------------------------------------------------------------


@dataclass
class Row:
    """One timed case, as the worker measures it and the table prints it."""

    section: str                 # "mlp", "peer", "cnn", "products" (a CNN step's matmuls
    #                              alone), "kernel", "peak", "overhead", "scaling", ...
    case: str
    impl: str                    # "propc", "jax", "torch", "numpy"
    threads: int
    ms: float | None = None      # median per call
    numpy_ms: float | None = None
    flops: int | None = None
    gflops: float | None = None
    efficiency: float | None = None
    check: str = "-"
    compile_ms: float | None = None   # first call with an empty disk cache (cold)
    warm_ms: float | None = None      # first call of a new pc.compile served by the disk cache

    def finish(self) -> "Row":
        """Fill GFLOP/s from ms and flops (efficiency comes from apply_peaks)."""
        if self.ms and self.flops:
            self.gflops = self.flops / (self.ms * 1e-3) / 1e9
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "Row":
        return cls(**{key: data.get(key) for key in cls.__dataclass_fields__
                      if key in data})


def best_peaks(rows: list[Row]) -> dict[int, float]:
    """The best np.matmul GFLOP/s measured at each thread count (a worker measures it
    at its start and its end; the better one is the least disturbed by other load)."""
    peaks: dict[int, float] = {}
    for row in rows:
        if row.section == "peak" and row.gflops:
            peaks[row.threads] = max(peaks.get(row.threads, 0.0), row.gflops)
    return peaks


def apply_peaks(rows: list[Row]) -> list[Row]:
    """Set every timed row's efficiency: its GFLOP/s over the np.matmul peak measured in
    the same run at the same thread count."""
    peaks = best_peaks(rows)
    for row in rows:
        if row.section != "peak" and row.gflops and row.threads in peaks:
            row.efficiency = row.gflops / peaks[row.threads]
    return rows


def random_inputs(size: MLPSize, seed: int = 0) -> tuple[list, np.ndarray, np.ndarray]:
    """Seeded (params, x, labels) for one MLP size, float32 with int32 labels."""
    rng = np.random.default_rng(seed)
    params = []
    for m, d in size.layers():
        w = rng.standard_normal((m, d)) * np.sqrt(1.0 / m)
        b = rng.standard_normal(d) * 0.1
        params.append((w.astype(np.float32), b.astype(np.float32)))
    x = rng.standard_normal((size.batch, size.widths[0])).astype(np.float32)
    labels = rng.integers(0, size.widths[-1], size=size.batch).astype(np.int32)
    return params, x, labels
