"""Shared helpers for the front-end tests: run through pc.interpret, compare to NumPy."""
from __future__ import annotations

import numpy as np

import propc as pc
from tolerances import tolerance


DTYPES = [np.float32, np.float64, np.int32, np.int64, np.bool_]
NUMERIC = [np.float32, np.float64, np.int32, np.int64]


def run(fn, *args):
    """fn traced and run by the NumPy interpreter of the IR."""
    return pc.interpret(fn)(*args)


def assert_same(actual, expected, what: str = "", rtol: float | None = None,
                atol: float | None = None) -> None:
    """Same dtype, same shape, values equal (ints, bools) or close (floats)."""
    expected = np.asarray(expected)
    assert isinstance(actual, np.ndarray), f"{what}: expected an ndarray, got {type(actual)}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    if expected.dtype.kind == "f":
        default_rtol, default_atol = tolerance("numpy", expected.dtype)
        np.testing.assert_allclose(actual, expected, rtol=rtol or default_rtol,
                                   atol=atol or default_atol, err_msg=what)
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=what)


def sample(shape, dtype, seed: int = 0, low: float = -3.0, high: float = 3.0) -> np.ndarray:
    """Seeded values of a dtype: floats uniform in [low, high), ints in a small range."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind == "i":
        return rng.integers(int(low), int(high) + 1, size=shape).astype(dtype)
    return rng.uniform(low, high, size=shape).astype(dtype)
