"""The NumPy-style function namespace of propc (`pc.exp`, `pc.where`, `pc.sum`...).

Elementwise functions live here; shape functions, reductions, matmul and indexing in
their own modules, re-exported below. Every function lowers to primitives only:
operands are promoted (promotion.py) and broadcast (shape_ops.py) explicitly, and a
few NumPy behaviours the primitives lack are composed here:
- bool arithmetic: `+`/maximum is logical or, `*`/minimum logical and (as selects);
- `/` is true division: integer operands divide in float64 (weak ints: float32);
- `**` with a small Python int exponent is repeated multiplication (integers: any
  non-negative exponent), otherwise `pow` on floats;
- ordered comparisons of bools compare them as 0/1.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ir import DType

from .errors import TraceTypeError
from .linalg import matmul
from .promotion import float_result, result_type, to_dtype
from .pytree import tree_map
from .reductions import max, mean, min, sum
from .shape_ops import (broadcast, broadcast_shapes, broadcast_to, concatenate, ones_like,
                        prepare, reshape, transpose, zeros_like)
from .tracing import Tensor, apply, cast, full, to_tensor, traceable, type_info

# --------------------------------------------------------------------------------------
# unary


def _float_unary(prim: str, x: Any) -> Tensor:
    _, dtype, weak = type_info(x, prim)
    dtype, weak = float_result(dtype, weak, prim, str(dtype))
    return apply(prim, cast(to_tensor(x, prim, dtype), dtype), weak=weak)


@traceable
def exp(x: Any) -> Tensor:
    """np.exp; integers are computed in float64."""
    return _float_unary("exp", x)


@traceable
def log(x: Any) -> Tensor:
    """np.log (natural logarithm)."""
    return _float_unary("log", x)


@traceable
def tanh(x: Any) -> Tensor:
    """np.tanh."""
    return _float_unary("tanh", x)


@traceable
def sqrt(x: Any) -> Tensor:
    """np.sqrt."""
    return _float_unary("sqrt", x)


@traceable
def sin(x: Any) -> Tensor:
    """np.sin."""
    return _float_unary("sin", x)


@traceable
def cos(x: Any) -> Tensor:
    """np.cos."""
    return _float_unary("cos", x)


@traceable
def abs(x: Any) -> Tensor:
    """np.abs (bools are their own absolute value)."""
    x = to_tensor(x, "abs")
    if x.type.dtype.is_bool:
        return x
    return apply("abs", x, weak=x.weak)


@traceable
def negative(x: Any) -> Tensor:
    """np.negative (unary -); not defined for bools, like NumPy."""
    x = to_tensor(x, "negative")
    if x.type.dtype.is_bool:
        raise TraceTypeError("negative", f"-x of a bool tensor {x.type} is not supported "
                             "(NumPy neither)", hint="use pc.where(x, False, True)")
    return apply("neg", x, weak=x.weak)


# --------------------------------------------------------------------------------------
# binary arithmetic

# what a binary op means on two bools: logical or, logical and, or undefined (None)
_OR, _AND = "or", "and"


def _arith(prim: str, op: str, x: Any, y: Any, on_bools: str | None = None) -> Tensor:
    (a, b), dtype, weak = prepare(op, x, y)
    if not dtype.is_bool:
        return apply(prim, a, b, weak=weak)
    if on_bools is None:
        raise TraceTypeError(op, f"{a.type} and {b.type}: not defined for bools "
                             "(NumPy neither)", hint="convert with .astype(np.int32)")
    if on_bools == _OR:
        return apply("select", a, a, b)   # a or b
    return apply("select", a, b, a)       # a and b


@traceable
def add(x: Any, y: Any) -> Tensor:
    """np.add (`+`)."""
    return _arith("add", "add", x, y, on_bools=_OR)


@traceable
def subtract(x: Any, y: Any) -> Tensor:
    """np.subtract (`-`)."""
    return _arith("sub", "subtract", x, y)


@traceable
def multiply(x: Any, y: Any) -> Tensor:
    """np.multiply (`*`)."""
    return _arith("mul", "multiply", x, y, on_bools=_AND)


@traceable
def maximum(x: Any, y: Any) -> Tensor:
    """np.maximum: elementwise larger value, NaN propagates."""
    return _arith("max", "maximum", x, y, on_bools=_OR)


@traceable
def minimum(x: Any, y: Any) -> Tensor:
    """np.minimum: elementwise smaller value, NaN propagates."""
    return _arith("min", "minimum", x, y, on_bools=_AND)


@traceable
def divide(x: Any, y: Any) -> Tensor:
    """np.divide (`/`): true division; integer and bool operands divide in float64."""
    infos = [type_info(v, "divide") for v in (x, y)]
    dtype, weak = result_type([(d, w) for _, d, w in infos])
    if not dtype.is_float:
        dtype = DType.f32 if weak else DType.f64
    (a, b), dtype, weak = prepare("divide", x, y, dtype=dtype)
    return apply("div", a, b, weak=weak)


def _static_int(y: Any) -> int | None:
    """The value of an exponent known while tracing (a Python or NumPy int), else None."""
    if isinstance(y, (bool, np.bool_)) or not isinstance(y, (int, np.integer)):
        return None
    return int(y)


def _power_by_multiplying(base: Tensor, exponent: int, weak: bool) -> Tensor:
    """base ** exponent (exponent >= 0) by square-and-multiply."""
    if exponent == 0:
        return full(base.shape, 1, base.type.dtype, weak=weak)
    result = None
    square = base
    while exponent:
        if exponent & 1:
            result = square if result is None else apply("mul", result, square, weak=weak)
        exponent >>= 1
        if exponent:
            square = apply("mul", square, square, weak=weak)
    return Tensor(result.value, result.context, weak)


@traceable
def power(x: Any, y: Any) -> Tensor:
    """np.power (`**`).

    Floats: `pow`, except Python int exponents 0..3 (multiplications). Integers need
    a non-negative exponent known while tracing (NumPy rejects negative ones too).
    """
    infos = [type_info(v, "power") for v in (x, y)]
    dtype, weak = result_type([(d, w) for _, d, w in infos])
    exponent = _static_int(y)
    shape = broadcast_shapes("power", x, y)
    if dtype.is_float and (exponent is None or not 0 <= exponent <= 3):
        (a, b), dtype, weak = prepare("power", x, y)
        return apply("pow", a, b, weak=weak)
    shown = f"{infos[0][1]}{list(infos[0][0])} ** {y!r}"
    if exponent is None:
        raise TraceTypeError("power", f"{shown}: integer power with a traced exponent is not "
                             "supported", hint="convert the base to float with .astype")
    if exponent < 0:
        raise TraceTypeError("power", f"{shown}: integers to negative integer powers are not "
                             "allowed (NumPy neither)", hint="convert the base to float first")
    base = broadcast(cast(to_tensor(x, "power", dtype), dtype), shape)
    return _power_by_multiplying(base, exponent, weak)


# --------------------------------------------------------------------------------------
# comparisons and selection


def _compare(prim: str, op: str, x: Any, y: Any, ordered: bool = True) -> Tensor:
    """A comparison; ordered ones (<, >=...) compare bools as 0/1 like NumPy."""
    (a, b), dtype, _ = prepare(op, x, y)
    if dtype.is_bool and ordered:
        a, b = cast(a, DType.i32), cast(b, DType.i32)
    return apply(prim, a, b)


@traceable
def less(x: Any, y: Any) -> Tensor:
    """np.less (`<`), a bool tensor."""
    return _compare("lt", "less", x, y)


@traceable
def less_equal(x: Any, y: Any) -> Tensor:
    """np.less_equal (`<=`)."""
    return _compare("le", "less_equal", x, y)


@traceable
def greater(x: Any, y: Any) -> Tensor:
    """np.greater (`>`)."""
    return _compare("gt", "greater", x, y)


@traceable
def greater_equal(x: Any, y: Any) -> Tensor:
    """np.greater_equal (`>=`)."""
    return _compare("ge", "greater_equal", x, y)


@traceable
def equal(x: Any, y: Any) -> Tensor:
    """np.equal (`==`)."""
    return _compare("eq", "equal", x, y, ordered=False)


@traceable
def not_equal(x: Any, y: Any) -> Tensor:
    """np.not_equal (`!=`)."""
    return _compare("ne", "not_equal", x, y, ordered=False)


@traceable
def where(condition: Any, x: Any, y: Any) -> Tensor:
    """np.where(condition, x, y): x where condition is true (nonzero), else y.

    All three broadcast together; x and y promote like any binary op. Only the
    chosen values reach the result, so a NaN in the other branch is harmless.
    """
    shape = broadcast_shapes("where", condition, x, y)
    cond = cast(to_tensor(condition, "where"), DType.bool)
    (a, b), dtype, weak = prepare("where", x, y)
    return apply("select", broadcast(cond, shape), broadcast(a, shape), broadcast(b, shape),
                 weak=weak)


# --------------------------------------------------------------------------------------
# dtype and gradient control


@traceable
def astype(x: Any, dtype: Any) -> Tensor:
    """x converted to `dtype` like ndarray.astype (to bool: x != 0)."""
    target = to_dtype(dtype, "astype")
    x = to_tensor(x, "astype")
    converted = cast(x, target)
    return Tensor(converted.value, converted.context, False)


@traceable
def stop_gradient(x: Any) -> Any:
    """The same values, but no gradient flows back through them (any pytree)."""
    def stop(leaf: Any) -> Tensor:
        t = to_tensor(leaf, "stop_gradient")
        return apply("stop_gradient", t, weak=t.weak)
    return tree_map(stop, x)


# NumPy ufuncs applied to tracers (Tensor.__array_ufunc__) run these (numpy_math adds
# its own when it is imported).
UFUNCS = {
    "add": add, "subtract": subtract, "multiply": multiply, "divide": divide,
    "power": power, "matmul": matmul, "negative": negative, "absolute": abs,
    "exp": exp, "log": log, "tanh": tanh, "sqrt": sqrt, "sin": sin, "cos": cos,
    "maximum": maximum, "minimum": minimum, "less": less, "less_equal": less_equal,
    "greater": greater, "greater_equal": greater_equal, "equal": equal,
    "not_equal": not_equal,
}

__all__ = [
    "abs", "add", "astype", "broadcast_to", "concatenate", "cos", "divide", "equal", "exp",
    "greater", "greater_equal", "less", "less_equal", "log", "matmul", "max", "maximum",
    "mean", "min", "minimum", "multiply", "negative", "not_equal", "ones_like", "power",
    "reshape", "sin", "sqrt", "stop_gradient", "subtract", "sum", "tanh", "transpose",
    "where", "zeros_like",
]
