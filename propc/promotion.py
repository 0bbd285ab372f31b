"""dtype promotion: NumPy 2's rules (NEP 50) for propc's five dtypes.

Every traced value has a dtype and a `weak` flag. Python scalars (and values
computed only from them) are weak: they take the dtype of the arrays they meet
instead of promoting them, so `x_f32 * 2.0` stays float32 and `x_i32 + 1` stays
int32. When a weak value's kind is higher than the array's (a Python float with an
int array, a Python int with a bool array) the result is NumPy's default of that
kind: float64 or int64. Strong dtypes promote with `np.promote_types`
(int32 + float32 -> float64, as NumPy does). Alone, weak ints are int32 and weak
floats float32.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ir import DType

from .errors import TraceTypeError

# 0: bool, 1: integer, 2: floating point
_KIND = {DType.bool: 0, DType.i32: 1, DType.i64: 1, DType.f32: 2, DType.f64: 2}
_WEAK_DEFAULT = {0: DType.bool, 1: DType.i32, 2: DType.f32}
_STRONG_DEFAULT = {0: DType.bool, 1: DType.i64, 2: DType.f64}

SUPPORTED = "float32, float64, int32, int64, bool"


def kind(dtype: DType) -> int:
    """0 for bool, 1 for integers, 2 for floats."""
    return _KIND[dtype]


def promote_strong(a: DType, b: DType) -> DType:
    """NumPy's promotion of two array dtypes."""
    return DType.from_numpy(np.promote_types(a.numpy, b.numpy))


def result_type(operands: Sequence[tuple[DType, bool]]) -> tuple[DType, bool]:
    """The (dtype, weak) of an operation's result from its operands' (dtype, weak).

    Strong dtypes promote among themselves first; weak operands then only matter if
    their kind is higher (NEP 50). With no strong operand the result is weak.
    """
    strong = [d for d, weak in operands if not weak]
    weak_kinds = [kind(d) for d, weak in operands if weak]
    if not strong:
        return _WEAK_DEFAULT[max(weak_kinds)], True
    dtype = strong[0]
    for other in strong[1:]:
        dtype = promote_strong(dtype, other)
    if weak_kinds and max(weak_kinds) > kind(dtype):
        dtype = _STRONG_DEFAULT[max(weak_kinds)]
    return dtype, False


def python_scalar_type(value: Any) -> tuple[DType, bool] | None:
    """(dtype, weak) of a Python bool/int/float, or None for anything else.

    NumPy scalars are not Python scalars here (np.float64 subclasses float, but it
    is a strongly typed 0-d array in NumPy 2).
    """
    if isinstance(value, np.generic):
        return None
    if isinstance(value, bool):
        return DType.bool, False
    if isinstance(value, int):
        return DType.i32, True
    if isinstance(value, float):
        return DType.f32, True
    return None


def to_dtype(dtype_like: Any, op: str) -> DType:
    """A user-supplied dtype (np.float32, 'int32', float, a DType) as an ir DType."""
    if isinstance(dtype_like, DType):
        return dtype_like
    try:
        np_dtype = np.dtype(dtype_like)
    except TypeError:
        raise TraceTypeError(op, f"{dtype_like!r} is not a dtype",
                             hint=f"use one of {SUPPORTED}") from None
    try:
        return DType.from_numpy(np_dtype)
    except TypeError:
        raise TraceTypeError(op, f"unsupported dtype {np_dtype}",
                             hint=f"propc supports {SUPPORTED}") from None


def float_result(dtype: DType, weak: bool, op: str, shown: str) -> tuple[DType, bool]:
    """Result of a float-only function (exp, sqrt...) of an operand, like NumPy.

    Floats keep their dtype, integers become float64 (weak ints: weak float32).
    Bool would be float16 in NumPy, which propc does not have, so it is an error.
    """
    if dtype.is_float:
        return dtype, weak
    if dtype.is_bool:
        raise TraceTypeError(op, f"{shown}: NumPy computes this in float16, which propc "
                             "does not support", hint="convert first with .astype(np.float32)")
    return (DType.f32, True) if weak else (DType.f64, False)


def sum_dtype(dtype: DType) -> DType:
    """np.sum's result dtype: bool and int32 accumulate in int64 (64-bit Linux)."""
    if dtype.is_bool or dtype.is_int:
        return DType.i64
    return dtype


def mean_dtype(dtype: DType) -> DType:
    """np.mean's result dtype: integers and bools average in float64."""
    return dtype if dtype.is_float else DType.f64
