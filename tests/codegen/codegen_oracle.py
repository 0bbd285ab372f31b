"""Shared helpers for the backend tests: seeded inputs with edge values, and the
comparison of compiled results against `ir.interpret` (the oracle).

Checks by kind:
- "exact": integer/bool results equal; float results bit-identical (so -0.0 and
  0.0 differ) except that any NaN matches any NaN;
- "ulp": transcendentals, within `ulps` units in the last place of the reference
  (NaN/inf in the same places), or `atol` absolutely near zero;
- "sum": an absolute bound per element, supplied by the test as `atol` arrays or
  scalars: `n * eps * (sum of |terms|)` for reductions and dots whose summation
  order differs, or the rounding differences propagated through a whole graph
  (tests/codegen/rounding_bounds.py).
"""
from __future__ import annotations

import numpy as np

from ir import DType, TensorType

INT_EDGES = {DType.i32: [np.iinfo(np.int32).min, np.iinfo(np.int32).max, 0, -1, 1],
             DType.i64: [np.iinfo(np.int64).min, np.iinfo(np.int64).max, 0, -1, 1]}
FLOAT_EDGES = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0]


def random_array(rng: np.random.Generator, type: TensorType, *, edges: bool = True,
                 low: float = -3.0, high: float = 3.0) -> np.ndarray:
    """Seeded values of `type`; with `edges`, NaN/inf/±0/extreme ints mixed in."""
    shape, dtype = type.shape, type.dtype
    if dtype is DType.bool:
        return np.asarray(rng.random(shape) < 0.5)
    if dtype.is_int:
        values = rng.integers(-50, 50, size=shape).astype(dtype.numpy)
        extra = INT_EDGES[dtype]
    else:
        values = rng.uniform(low, high, size=shape).astype(dtype.numpy)
        extra = FLOAT_EDGES
    flat = values.reshape(-1)
    if edges and flat.size >= 4:
        picks = rng.choice(flat.size, size=min(len(extra), flat.size // 2), replace=False)
        for position, value in zip(picks, extra):
            flat[position] = value
    return np.asarray(values)


def _same_specials(got: np.ndarray, want: np.ndarray, what: str) -> None:
    nan_got, nan_want = np.isnan(got), np.isnan(want)
    assert np.array_equal(nan_got, nan_want), f"{what}: NaN positions differ\n{got}\n{want}"
    inf_got, inf_want = np.isinf(got), np.isinf(want)
    assert np.array_equal(inf_got, inf_want), f"{what}: inf positions differ\n{got}\n{want}"
    assert np.array_equal(got[inf_got], want[inf_want]), f"{what}: inf signs differ"


def assert_matches(got: np.ndarray, want: np.ndarray, what: str, kind: str = "exact", *,
                   ulps: float = 4, atol=0.0) -> None:
    """Compiled `got` vs interpreted `want`: same shape/dtype, values per `kind`."""
    assert isinstance(got, np.ndarray), f"{what}: result is {type(got).__name__}, not ndarray"
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    if want.dtype.kind != "f":
        assert np.array_equal(got, want), f"{what}: values differ\n{got}\n{want}"
        return
    _same_specials(got, want, what)
    finite = np.isfinite(want)
    if kind == "exact":
        same_bits = got.view(f"u{got.itemsize}") == want.view(f"u{want.itemsize}")
        ok = same_bits | np.isnan(want)
        assert ok.all(), (f"{what}: not bit-identical at {np.argwhere(~ok)[:5].tolist()}\n"
                          f"got {got[~ok][:5]}\nwant {want[~ok][:5]}")
        return
    with np.errstate(invalid="ignore"):
        error = np.abs(got.astype(np.float64) - want.astype(np.float64))
    if kind == "ulp":
        bound = ulps * np.spacing(np.abs(want)).astype(np.float64) + atol
    elif kind == "sum":
        bound = np.broadcast_to(np.asarray(atol, dtype=np.float64), want.shape)
    else:
        raise ValueError(f"unknown comparison kind {kind!r}")
    bad = finite & ~(error <= bound)
    assert not bad.any(), (f"{what}: error too large at {np.argwhere(bad)[:5].tolist()}\n"
                           f"got {got[bad][:5]}\nwant {want[bad][:5]}\nbound {bound[bad][:5]}")
