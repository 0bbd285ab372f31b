"""NumPy array-creation and shape functions, compositions of existing primitives:
`zeros`, `ones`, `full`, `arange`, `pad` (constant mode), `stack`, `squeeze`,
`expand_dims`.

Default dtypes: `zeros`/`ones` without a dtype are float32 (propc's default dtype,
as in JAX; NumPy would say float64); `full` takes the fill value's dtype (Python
floats float32, ints int64, bools bool); `arange` follows NumPy (int64 for ints,
float64 for floats) unless a dtype is given.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ir import DType

from .errors import ShapeError, TraceTypeError
from .promotion import to_dtype
from .shape_ops import concatenate, normalize_axes, normalize_axis, reshape
from .tracing import Tensor, apply, cast, full as full_of, to_tensor, traceable, type_info


def _shape(shape: Any, op: str) -> tuple[int, ...]:
    items = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    if any(isinstance(d, (bool, np.bool_)) or not isinstance(d, (int, np.integer)) or d < 0
           for d in items):
        raise TraceTypeError(op, f"shape {shape!r} must be ints >= 0")
    return tuple(int(d) for d in items)


@traceable
def zeros(shape: Any, dtype: Any = np.float32) -> Tensor:
    """np.zeros (default dtype float32)."""
    return full_of(_shape(shape, "zeros"), 0, to_dtype(dtype, "zeros"))


@traceable
def ones(shape: Any, dtype: Any = np.float32) -> Tensor:
    """np.ones (default dtype float32)."""
    return full_of(_shape(shape, "ones"), 1, to_dtype(dtype, "ones"))


def _fill_dtype(value: Any) -> DType:
    if isinstance(value, (bool, np.bool_)):
        return DType.bool
    if isinstance(value, int):
        return DType.i64
    if isinstance(value, float):
        return DType.f32
    return type_info(value, "full")[1]


@traceable
def full(shape: Any, fill_value: Any, dtype: Any = None) -> Tensor:
    """np.full: `shape` filled with a scalar (a Tensor of shape () or a number)."""
    target = to_dtype(dtype, "full") if dtype is not None else _fill_dtype(fill_value)
    shape = _shape(shape, "full")
    if isinstance(fill_value, Tensor):
        if fill_value.ndim:
            raise ShapeError("full", f"fill_value {fill_value.type} must be a scalar")
        return apply("broadcast_in_dim", cast(fill_value, target), shape=shape, dims=())
    return full_of(shape, fill_value, target)


@traceable
def arange(start: Any, stop: Any = None, step: Any = 1, dtype: Any = None) -> Tensor:
    """np.arange for Python numbers: start + i * step for i in range(length)."""
    if stop is None:
        start, stop = 0, start
    for name, value in (("start", start), ("stop", stop), ("step", step)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
            raise TraceTypeError("arange", f"{name} must be a Python number, got {value!r}")
    if step == 0:
        raise ShapeError("arange", "step cannot be zero")
    length = max(int(math.ceil((stop - start) / step)), 0)
    floats = any(isinstance(v, (float, np.floating)) for v in (start, stop, step))
    target = to_dtype(dtype, "arange") if dtype is not None else (
        DType.f64 if floats else DType.i64)
    work = DType.f64 if floats or target.is_float else DType.i64
    values = apply("iota", shape=(length,), dtype=work, dimension=0)
    if step != 1:
        values = values * full_of((length,), step, work)
    if start != 0:
        values = values + full_of((length,), start, work)
    return cast(values, target)


def _pad_widths(pad_width: Any, ndim: int) -> list[tuple[int, int]]:
    """NumPy's pad_width forms: n, (n,), (before, after), or one pair per axis."""
    try:
        widths = np.broadcast_to(np.asarray(pad_width), (ndim, 2))
    except ValueError:
        raise ShapeError("pad", f"pad_width {pad_width!r} does not fit {ndim} axes") from None
    pairs = [(widths[i, 0], widths[i, 1]) for i in range(ndim)]
    for pair in pairs:
        for amount in pair:
            if not isinstance(amount, (int, np.integer)) or amount < 0:
                raise TraceTypeError("pad", f"pad_width {pad_width!r} must hold ints >= 0")
    return [(int(a), int(b)) for a, b in pairs]


@traceable
def pad(array: Any, pad_width: Any, mode: str = "constant", constant_values: Any = 0) -> Tensor:
    """np.pad in constant mode (one scalar constant value)."""
    if mode != "constant":
        raise TraceTypeError("pad", f"mode {mode!r} is not supported (only 'constant')")
    x = to_tensor(array, "pad")
    pairs = _pad_widths(pad_width, x.ndim)
    low = tuple(a for a, _ in pairs)
    high = tuple(b for _, b in pairs)
    padded = apply("pad", x, weak=x.weak, low=low, high=high, interior=(0,) * x.ndim)
    if isinstance(constant_values, (int, float)) and constant_values == 0:
        return padded
    inside = apply("pad", full_of(x.shape, True, DType.bool), low=low, high=high,
                   interior=(0,) * x.ndim)
    fill = cast(to_tensor(constant_values, "pad", x.type.dtype), x.type.dtype)
    if fill.ndim:
        raise TraceTypeError("pad", "constant_values must be a scalar")
    return apply("select", inside, padded,
                 apply("broadcast_in_dim", fill, shape=padded.shape, dims=()), weak=x.weak)


@traceable
def expand_dims(a: Any, axis: Any) -> Tensor:
    """np.expand_dims: new size-1 axes at the given positions of the result."""
    x = to_tensor(a, "expand_dims")
    items = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    rank = x.ndim + len(items)
    new_axes = normalize_axes(items, rank, "expand_dims", str(x.type))
    sizes = iter(x.shape)
    return reshape(x, tuple(1 if i in new_axes else next(sizes) for i in range(rank)))


@traceable
def squeeze(a: Any, axis: Any = None) -> Tensor:
    """np.squeeze: drop size-1 axes (all of them, or the given ones, which must be 1)."""
    x = to_tensor(a, "squeeze")
    if axis is None:
        axes = tuple(i for i, d in enumerate(x.shape) if d == 1)
    else:
        axes = normalize_axes(axis, x.ndim, "squeeze", str(x.type))
        for i in axes:
            if x.shape[i] != 1:
                raise ShapeError("squeeze", f"cannot select axis {i} of size {x.shape[i]} of "
                                 f"{x.type}: it is not 1")
    return reshape(x, tuple(d for i, d in enumerate(x.shape) if i not in axes))


@traceable
def stack(arrays: Sequence[Any], axis: int = 0) -> Tensor:
    """np.stack: join equal-shaped arrays along a new axis."""
    if isinstance(arrays, (Tensor, np.ndarray)) or len(arrays) == 0:
        raise TraceTypeError("stack", "expects a non-empty list or tuple of arrays")
    shapes = {tuple(type_info(a, "stack")[0]) for a in arrays}
    if len(shapes) > 1:
        raise ShapeError("stack", f"all input arrays must have the same shape, got "
                         f"{sorted(shapes)}")
    ndim = len(shapes.pop()) + 1
    axis = normalize_axis(axis, ndim, "stack", f"the stacked rank {ndim}")
    return concatenate([expand_dims(a, axis) for a in arrays], axis=axis)


__all__ = ["arange", "expand_dims", "full", "ones", "pad", "squeeze", "stack", "zeros"]
