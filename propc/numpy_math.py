"""More NumPy functions, each a composition of existing primitives (README lists them):
`log1p`, `expm1`, `erf`, `floor_divide` (`//`), `mod` (`%`), `clip`, `var`, `std`,
`argmax`, `argmin`.

Accuracy notes (each written from the math, not copied):
- log1p and expm1 use Kahan's corrections: with u = 1 + x (or u = exp(x)),
  log1p = log(u) * x / (u - 1) and expm1 = (u - 1) * x / log(u), which cancel the
  rounding of u; where u == 1 the answer is x. Denominators are made safe with an
  inner `where`, so the untaken branch never sends NaN into a gradient.
- erf: the Taylor series (12 terms) for |x| < 0.5, and for larger |x| the
  Chebyshev-fitted erfc of Press et al., Numerical Recipes §6.2 (fractional error
  below 1.2e-7): accurate to about 1e-7 in float32 and float64 alike.
- floor_divide and mod of floats: floor(x / y) and x - floor(x / y) * y (result with
  the sign of y, like NumPy), floor taken through an int64 conversion for
  |q| < 2**52 (larger floats are already integers). Integers: `div` is floor
  division with x // 0 == 0, and x % 0 == 0, like NumPy.
"""
from __future__ import annotations

import math
from typing import Any

from ir import DType

from .errors import ShapeError, TraceTypeError
from .numpy_api import UFUNCS, abs, exp, log, maximum, minimum, sqrt, where
from .promotion import float_result, mean_dtype
from .reductions import max as reduce_max
from .reductions import min as reduce_min
from .reductions import mean, sum
from .shape_ops import normalize_axes, normalize_axis, prepare, reshape
from .tracing import Tensor, apply, cast, full, to_tensor, traceable


def float_operand(x: Any, op: str) -> Tensor:
    """x as a float Tensor (integers become float64, weak ints weak float32)."""
    t = to_tensor(x, op)
    dtype, weak = float_result(t.type.dtype, t.weak, op, str(t.type))
    converted = cast(t, dtype)
    return Tensor(converted.value, converted.context, weak)


@traceable
def log1p(x: Any) -> Tensor:
    """np.log1p: log(1 + x), accurate for tiny x."""
    x = float_operand(x, "log1p")
    u = x + 1.0
    shifted = u - 1.0
    exact = shifted == 0.0
    safe = where(exact, 1.0, shifted)
    corrected = where(exact, x, log(u) * (x / safe))
    return where(abs(x) < 1.0, corrected, log(u))     # large x (inf too): plain log


@traceable
def expm1(x: Any) -> Tensor:
    """np.expm1: exp(x) - 1, accurate for tiny x."""
    x = float_operand(x, "expm1")
    u = exp(x)
    shifted = u - 1.0
    near = abs(x) < 0.5
    unused = where(near, u == 1.0, True)      # log(u) not needed (or zero) there
    corrected = shifted * (x / log(where(unused, 2.0, u)))
    return where(near, where(u == 1.0, x, corrected), shifted)


_ERFC_COEFFICIENTS = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806,
                      0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277)


def _erf_series(x: Tensor) -> Tensor:
    """2/sqrt(pi) * sum_n (-1)^n x^(2n+1) / (n! (2n+1)), 12 terms."""
    square = x * x
    term = x
    total = x
    for n in range(1, 12):
        term = term * square * (-1.0 / n)
        total = total + term * (1.0 / (2 * n + 1))
    return total * (2.0 / math.sqrt(math.pi))


def _erfc_fit(magnitude: Tensor) -> Tensor:
    """erfc(|x|) by Numerical Recipes' Chebyshev fit (fractional error < 1.2e-7)."""
    t = 1.0 / (1.0 + 0.5 * magnitude)
    poly = full(magnitude.shape, _ERFC_COEFFICIENTS[-1], magnitude.type.dtype)
    for coefficient in reversed(_ERFC_COEFFICIENTS[:-1]):
        poly = poly * t + coefficient
    return t * exp(poly - magnitude * magnitude)


@traceable
def erf(x: Any) -> Tensor:
    """The error function (scipy.special.erf / math.erf), accurate to ~1e-7."""
    x = float_operand(x, "erf")
    magnitude = abs(x)
    small = magnitude < 0.5
    large = 1.0 - _erfc_fit(where(small, 1.0, magnitude))
    signed = where(x < 0.0, -large, large)
    return where(small, _erf_series(where(small, x, 0.0)), signed)


def _floor(q: Tensor) -> Tensor:
    """floor of a float tensor: through int64 where |q| < 2**52, else q itself
    (already an integer, inf or NaN)."""
    fits = abs(q) < 2.0 ** 52
    safe = where(fits, q, 0.0)
    truncated = cast(cast(safe, DType.i64), q.type.dtype)
    floored = where(truncated > safe, truncated - 1.0, truncated)
    return where(fits, floored, q)


@traceable
def floor_divide(x: Any, y: Any) -> Tensor:
    """np.floor_divide (`//`): integers floor-divide (x // 0 == 0), floats floor(x / y)."""
    (a, b), dtype, weak = prepare("floor_divide", x, y)
    if dtype.is_bool:
        raise TraceTypeError("floor_divide", f"{a.type} // {b.type}: bools are not supported")
    if not dtype.is_float:
        return apply("div", a, b, weak=weak)
    return _floor(apply("div", a, b, weak=weak))


@traceable
def mod(x: Any, y: Any) -> Tensor:
    """np.mod (`%`): x - floor(x / y) * y, with the sign of y; integers: x % 0 == 0."""
    (a, b), dtype, weak = prepare("mod", x, y)
    if dtype.is_bool:
        raise TraceTypeError("mod", f"{a.type} % {b.type}: bools are not supported")
    if not dtype.is_float:
        remainder = a - apply("div", a, b, weak=weak) * b
        return where(b == 0, 0, remainder)
    remainder = a - _floor(apply("div", a, b, weak=weak)) * b
    # rounding can leave x - q*y a hair past y: keep the result in [0, y) / (y, 0]
    wrong_sign = where(remainder != 0.0, (remainder < 0.0) != (b < 0.0), False)
    wrapped = where(wrong_sign, remainder + b, remainder)
    return where(wrapped == b, 0.0 * b, wrapped)


@traceable
def clip(a: Any, a_min: Any, a_max: Any) -> Tensor:
    """np.clip: minimum(maximum(a, a_min), a_max); either bound may be None."""
    if a_min is None and a_max is None:
        raise TraceTypeError("clip", "a_min and a_max cannot both be None")
    result = to_tensor(a, "clip")
    if a_min is not None:
        result = maximum(result, a_min)
    if a_max is not None:
        result = minimum(result, a_max)
    return result


@traceable
def var(a: Any, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> Tensor:
    """np.var: mean of squared deviations from the mean (two passes), divided by
    n - ddof; integers in float64."""
    x = to_tensor(a, "var")
    x = cast(x, mean_dtype(x.type.dtype))
    axes = normalize_axes(axis, x.ndim, "var", str(x.type))
    count = 1
    for reduced in axes:
        count *= x.shape[reduced]
    centered = x - mean(x, axis=axes, keepdims=True)
    total = sum(centered * centered, axis=axes, keepdims=keepdims)
    return total * (1.0 / (count - ddof) if count - ddof > 0 else float("nan"))


@traceable
def std(a: Any, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> Tensor:
    """np.std: sqrt(var)."""
    return sqrt(var(a, axis=axis, ddof=ddof, keepdims=keepdims))


def _arg_extremum(a: Any, axis: Any, op: str, largest: bool) -> Tensor:
    """Index (int64) of the first extreme element, NaN counting as extreme like NumPy."""
    x = to_tensor(a, op)
    if axis is None:
        x = reshape(x, (-1,))
        axis = 0
    axis = normalize_axis(axis, x.ndim, op, str(x.type))
    if x.shape[axis] == 0:
        raise ShapeError(op, f"attempt to get {op} of an empty axis of {x.type}")
    if x.type.dtype.is_bool:
        x = cast(x, DType.i32)
    extreme = (reduce_max if largest else reduce_min)(x, axis=axis, keepdims=True)
    hit = x == extreme
    if x.type.dtype.is_float:
        hit = where(hit, True, x != x)
    positions = apply("iota", shape=x.shape, dtype=DType.i64, dimension=axis)
    beyond = full(x.shape, x.shape[axis], DType.i64)
    return reduce_min(where(hit, positions, beyond), axis=axis)


@traceable
def argmax(a: Any, axis: Any = None) -> Tensor:
    """np.argmax: int64 index of the first maximum (of the flattened array if axis is
    None); the first NaN wins."""
    return _arg_extremum(a, axis, "argmax", True)


@traceable
def argmin(a: Any, axis: Any = None) -> Tensor:
    """np.argmin: int64 index of the first minimum; the first NaN wins."""
    return _arg_extremum(a, axis, "argmin", False)


# np.floor_divide(tracer, ...) and friends (Tensor.__array_ufunc__ looks them up here)
UFUNCS.update({"floor_divide": floor_divide, "remainder": mod, "log1p": log1p, "expm1": expm1})

__all__ = ["argmax", "argmin", "clip", "erf", "expm1", "floor_divide", "log1p", "mod", "std",
           "var"]
