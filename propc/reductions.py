"""Reductions of the propc namespace: sum, mean, max, min.

`axis` is None (all axes), an int or a tuple, negative allowed; `keepdims` is a
reshape after the reduce. Result dtypes follow NumPy: sums of bool/int32 are int64,
means of integers are float64, max/min keep the dtype. `mean` is sum * (1/n).
"""
from __future__ import annotations

from typing import Any

from .errors import ShapeError
from .promotion import mean_dtype, sum_dtype
from .shape_ops import normalize_axes, reshape
from .tracing import Tensor, apply, cast, full, to_tensor, traceable


def _reduce(prim: str, op: str, x: Tensor, axis: Any, keepdims: bool,
            weak: bool) -> Tensor:
    axes = normalize_axes(axis, x.ndim, op, str(x.type))
    result = apply(prim, x, weak=weak, axes=axes)
    if keepdims:
        kept = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        result = reshape(result, kept)
    return result


@traceable
def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """np.sum: bool and int32 sum in int64, like NumPy on 64-bit Linux."""
    x = to_tensor(x, "sum")
    dtype = sum_dtype(x.type.dtype)
    weak = x.weak and dtype is x.type.dtype
    return _reduce("reduce_sum", "sum", cast(x, dtype), axis, keepdims, weak)


@traceable
def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """np.mean: the sum times 1/n; integers and bools average in float64."""
    x = to_tensor(x, "mean")
    dtype = mean_dtype(x.type.dtype)
    weak = x.weak and dtype is x.type.dtype
    axes = normalize_axes(axis, x.ndim, "mean", str(x.type))
    count = 1
    for a in axes:
        count *= x.shape[a]
    total = _reduce("reduce_sum", "mean", cast(x, dtype), axes, keepdims, weak)
    scale = full((), 1.0 / count if count else float("inf"), dtype, weak=True)
    return apply("mul", total, _broadcast_scalar(scale, total.shape), weak=weak)


def _broadcast_scalar(scalar: Tensor, shape: tuple[int, ...]) -> Tensor:
    if not shape:
        return scalar
    return apply("broadcast_in_dim", scalar, weak=scalar.weak, shape=shape, dims=())


def _extremum(prim: str, op: str, x: Any, axis: Any, keepdims: bool) -> Tensor:
    x = to_tensor(x, op)
    axes = normalize_axes(axis, x.ndim, op, str(x.type))
    empty = [a for a in axes if x.shape[a] == 0]
    if empty:
        raise ShapeError(op, f"zero-size axis {empty[0]} of {x.type} has no {op}imum",
                         hint="NumPy raises here too; reduce over non-empty axes")
    return _reduce(prim, op, x, axes, keepdims, x.weak)


@traceable
def max(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """np.max over the given axes (NaN propagates)."""
    return _extremum("reduce_max", "max", x, axis, keepdims)


@traceable
def min(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """np.min over the given axes (NaN propagates)."""
    return _extremum("reduce_min", "min", x, axis, keepdims)
