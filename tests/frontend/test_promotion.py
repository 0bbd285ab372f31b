"""dtype promotion against NumPy 2 itself: arrays with arrays, arrays with Python
scalars (weakly typed), true division, powers, reductions, and Python scalar arguments."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

import propc as pc
from ir import DType
from propc.promotion import result_type
from frontend_helpers import DTYPES, NUMERIC, assert_same, run, sample

PAIRS = list(itertools.product(DTYPES, DTYPES))
SCALARS = [True, 3, -2, 2.5]


@pytest.mark.parametrize("a,b", PAIRS, ids=str)
def test_result_type_of_two_arrays_is_numpys(a, b):
    got = result_type([(DType.from_numpy(a), False), (DType.from_numpy(b), False)])
    assert got == (DType.from_numpy(np.result_type(a, b)), False)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scalar", SCALARS, ids=repr)
def test_result_type_with_python_scalar_is_numpys(dtype, scalar):
    weak_type = {bool: (DType.bool, False), int: (DType.i32, True), float: (DType.f32, True)}
    got = result_type([(DType.from_numpy(dtype), False), weak_type[type(scalar)]])
    expected = np.result_type(np.zeros(2, dtype), scalar)  # NumPy 2: Python scalars are weak
    assert got == (DType.from_numpy(expected), False)


@pytest.mark.parametrize("a,b", PAIRS, ids=str)
def test_add_and_multiply_of_arrays_promote_like_numpy(a, b):
    x, y = sample((3,), a, 1), sample((3,), b, 2)
    if np.dtype(a).kind == "b" and np.dtype(b).kind == "b":
        expected = x * y
    else:
        expected = x + y
    op = (lambda s, t: s * t) if expected.dtype.kind == "b" else (lambda s, t: s + t)
    assert_same(run(op, x, y), expected, f"{a.__name__} with {b.__name__}")


@pytest.mark.parametrize("dtype", NUMERIC + [np.bool_])
@pytest.mark.parametrize("scalar", SCALARS, ids=repr)
def test_operators_with_python_scalars_promote_like_numpy(dtype, scalar):
    x = sample((4,), dtype, 3)
    assert_same(run(lambda t: t * scalar, x), x * scalar, f"{dtype.__name__} * {scalar!r}")
    assert_same(run(lambda t: scalar + t, x), scalar + x, f"{scalar!r} + {dtype.__name__}")


@pytest.mark.parametrize("a,b", PAIRS, ids=str)
def test_true_division_dtypes(a, b):
    x = sample((3,), a, 4, low=1, high=5)
    y = sample((3,), b, 5, low=1, high=5)
    y = np.where(y == 0, True, y).astype(b)
    assert_same(run(lambda s, t: s / t, x, y), x / y, f"{a.__name__} / {b.__name__}")


@pytest.mark.parametrize("dtype", NUMERIC)
@pytest.mark.parametrize("scalar", [2, 2.0, -4])
def test_true_division_by_python_scalar(dtype, scalar):
    x = sample((3,), dtype, 6)
    assert_same(run(lambda t: t / scalar, x), x / scalar, f"{dtype.__name__} / {scalar!r}")


@pytest.mark.parametrize("dtype", [np.bool_, np.int32, np.int64])
def test_power_of_bool_and_int_arrays(dtype):
    x = sample((4,), dtype, 7, low=0, high=3)
    assert_same(run(lambda t: t ** 3, x), x ** 3, f"{dtype.__name__} ** 3")
    assert_same(run(lambda t: t ** 1.5, x), x ** 1.5, f"{dtype.__name__} ** 1.5")


def test_numpy_scalars_are_strong():
    x = sample((3,), np.float32, 8)
    assert_same(run(lambda t: t * np.float64(2.0), x), x * np.float64(2.0), "np.float64 scalar")
    assert_same(run(lambda t: t + np.int32(1), x), x + np.int32(1), "np.int32 scalar")


@pytest.mark.parametrize("dtype", DTYPES)
def test_reduction_result_dtypes(dtype):
    x = sample((2, 3), dtype, 9)
    for name in ("sum", "mean", "max", "min"):
        expected = getattr(np, name)(x, axis=0)
        assert_same(run(lambda t: getattr(pc, name)(t, axis=0), x), expected, f"{name}")


def test_python_scalar_arguments_stay_weak_through_computation():
    mask = np.array([True, False, True])
    # a Python int times a Python int is still a Python int: bool + int -> int64
    got = run(lambda m, a: m + a * 2, mask, 3)
    assert_same(got, mask + 3 * 2, "bool array + weak int expression")
    floats = sample((3,), np.float32, 10)
    assert_same(run(lambda x, a: x * pc.exp(a), floats, 0.5), floats * np.exp(0.5).astype(
        np.float32), "f32 * exp(weak float)")


def test_weak_only_results():
    for a, b in [(1, 2), (1, 2.5), (2.0, 3.0)]:
        got = run(lambda s, t: s + t, a, b)
        expected_dtype = np.float32 if isinstance(a + b, float) else np.int32
        assert got.dtype == expected_dtype and got.shape == ()
        assert got == a + b


def test_python_bool_arguments_are_strong_bools():
    got = run(lambda s, t: s + t, True, 2)
    assert_same(got, np.bool_(True) + 2, "True + 2")
    assert_same(run(lambda s, t: s * t, True, False), np.asarray(False), "True * False")
