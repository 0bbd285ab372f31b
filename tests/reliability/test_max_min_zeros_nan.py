"""max/min with signed zeros and NaN, interpreted and compiled, against NumPy.

What NumPy does, established here by calling it:
- np.maximum / np.minimum (elementwise) give NaN where either operand is NaN, and
  on a -0.0/+0.0 tie the answer NumPy gives is taken as the oracle bit for bit;
- np.max / np.min give NaN wherever a reduced slice holds a NaN;
- np.max / np.min of slices made only of -0.0 (or only of +0.0) give that zero. For
  slices mixing -0.0 and +0.0 NumPy's sign depends on the order it visits elements
  in ([-0.0, 0.0] and [0.0, -0.0] give different zeros), so there propc follows its
  documented rule (README, numerics conventions): -0.0 < +0.0 as in IEEE 754-2019
  maximum/minimum, so a zero max is +0.0 if any element is +0.0 and a zero min is
  -0.0 if any element is -0.0, whatever the order or memory layout.
"""
from __future__ import annotations

import numpy as np
import pytest

import propc as pc

FLOATS = (np.float32, np.float64)
RUNNERS = {"interpreted": pc.interpret, "compiled": pc.compile}
ZERO_ROWS = {
    "neg_pos": [-0.0, 0.0], "pos_neg": [0.0, -0.0], "all_neg": [-0.0, -0.0, -0.0],
    "all_pos": [0.0, 0.0], "one_pos_last": [-0.0] * 20 + [0.0],
    "one_neg_last": [0.0] * 20 + [-0.0], "alternating": [-0.0, 0.0] * 11,
}


def _assert_bits_equal(actual: np.ndarray, expected: np.ndarray, context: str) -> None:
    """Same dtype, shape, values (NaN equal to NaN) and, off NaNs, sign bits (so
    -0.0 != 0.0)."""
    actual = np.asarray(actual)
    assert actual.dtype == expected.dtype and actual.shape == expected.shape, context
    same = np.array_equal(actual, expected, equal_nan=expected.dtype.kind == "f")
    numbers = ~np.isnan(expected) if expected.dtype.kind == "f" else np.ones(expected.shape, bool)
    assert same and np.array_equal(np.signbit(actual)[numbers], np.signbit(expected)[numbers]), (
        f"{context}: expected {expected!r}, got {actual!r}")


def _documented_extremum(x: np.ndarray, kind: str, axis) -> np.ndarray:
    """propc's rule: NumPy's value, with a zero result's sign from -0.0 < +0.0."""
    value = np.max(x, axis=axis) if kind == "max" else np.min(x, axis=axis)
    wanted_sign = kind == "min"                  # min prefers -0.0, max prefers +0.0
    found = np.any((x == 0) & (np.signbit(x) == wanted_sign), axis=axis)
    zero = np.where(found == wanted_sign, -0.0, 0.0).astype(x.dtype)
    return np.where(value == 0, zero, value).astype(x.dtype)


def _reducers(kind: str):
    """The front-end spellings of one reduction: method and function."""
    if kind == "max":
        return {"method": lambda a, axis: a.max(axis=axis),
                "function": lambda a, axis: pc.max(a, axis=axis)}
    return {"method": lambda a, axis: a.min(axis=axis),
            "function": lambda a, axis: pc.min(a, axis=axis)}


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: d.__name__)
@pytest.mark.parametrize("row", ZERO_ROWS)
@pytest.mark.parametrize("kind", ["max", "min"])
def test_reduction_of_signed_zeros_follows_the_documented_rule(kind, row, dtype, runner):
    x = np.array(ZERO_ROWS[row], dtype=dtype)
    expected = _documented_extremum(x, kind, None)
    if np.all(np.signbit(x)) or not np.any(np.signbit(x)):   # NumPy is order-free here
        numpy_result = np.max(x) if kind == "max" else np.min(x)
        _assert_bits_equal(expected, np.asarray(numpy_result), "oracle vs NumPy")
    for spelling, reduce in _reducers(kind).items():
        fn = RUNNERS[runner](lambda a: reduce(a, None))
        _assert_bits_equal(fn(x), expected, f"{runner} {spelling} {kind} {row} {dtype.__name__}")


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: d.__name__)
@pytest.mark.parametrize("axis", [0, 1, -1, (0, 2), None])
@pytest.mark.parametrize("kind", ["max", "min"])
def test_regression_reduce_max_signed_zero_sign_depended_on_memory_layout(
        kind, axis, dtype, runner):
    """Compiled reductions over the last axis used IEEE ordering but over other axes
    NumPy's visit-order rule, and the interpreter always NumPy's: the sign of a zero
    result differed between layouts and between compiled and interpreted."""
    rng = np.random.default_rng(3)
    x = np.where(rng.random((5, 9, 13)) < 0.5, -0.0, 0.0).astype(dtype)
    x[0, 0, 0] = 1.0 if kind == "max" else -1.0      # one slice with a nonzero winner
    expected = _documented_extremum(x, kind, axis)
    for spelling, reduce in _reducers(kind).items():
        fn = RUNNERS[runner](lambda a: reduce(a, axis))
        _assert_bits_equal(fn(x), expected, f"{runner} {spelling} {kind} axis={axis}")


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: d.__name__)
@pytest.mark.parametrize("kind", ["max", "min"])
def test_elementwise_maximum_minimum_of_signed_zeros_match_numpy(kind, dtype, runner):
    pairs = np.array([[-0.0, 0.0], [0.0, -0.0], [-0.0, -0.0], [0.0, 0.0]], dtype=dtype)
    x, y = np.repeat(pairs[:, 0], 9), np.repeat(pairs[:, 1], 9)   # long enough to vectorise
    numpy_fn, propc_fn = (np.maximum, pc.maximum) if kind == "max" else (np.minimum, pc.minimum)
    fn = RUNNERS[runner](propc_fn)
    _assert_bits_equal(fn(x, y), numpy_fn(x, y), f"{runner} {kind} of signed zeros")


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: d.__name__)
@pytest.mark.parametrize("axis", [0, 1, None])
@pytest.mark.parametrize("kind", ["max", "min"])
def test_reduction_with_nan_gives_nan_like_numpy(kind, axis, dtype, runner):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(6, 21)).astype(dtype)
    x[1, 0] = x[2, 20] = x[3, 9] = np.nan           # first, last, middle of a row
    x[4, :] = np.inf if kind == "max" else -np.inf   # an infinite row with one NaN
    x[4, 7] = np.nan
    x[5, :] = -0.0
    x[5, 3] = np.nan                                 # NaN among zeros
    expected = np.max(x, axis=axis) if kind == "max" else np.min(x, axis=axis)
    assert np.isnan(expected).any()
    for spelling, reduce in _reducers(kind).items():
        fn = RUNNERS[runner](lambda a: reduce(a, axis))
        _assert_bits_equal(np.asarray(fn(x)), np.asarray(expected),
                           f"{runner} {spelling} {kind} axis={axis} with NaN")


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: d.__name__)
@pytest.mark.parametrize("kind", ["max", "min"])
def test_elementwise_maximum_minimum_with_nan_give_nan_like_numpy(kind, dtype, runner):
    x = np.array([np.nan, 1.0, np.nan, -0.0, np.inf, np.nan] * 4, dtype=dtype)
    y = np.array([2.0, np.nan, np.nan, np.nan, np.nan, -np.inf] * 4, dtype=dtype)
    numpy_fn, propc_fn = (np.maximum, pc.maximum) if kind == "max" else (np.minimum, pc.minimum)
    fn = RUNNERS[runner](propc_fn)
    _assert_bits_equal(np.isnan(fn(x, y)), np.isnan(numpy_fn(x, y)), f"{runner} {kind} NaN")
    assert np.isnan(fn(x, y)).all()
