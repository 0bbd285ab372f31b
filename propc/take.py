"""Integer-array indexing through the `gather` primitive: `take`, `take_along_axis`
and `nn.embedding`.

Negative indices count from the end (NumPy); indices still out of range are clamped
to the axis, as in JAX (NumPy would raise; the values are unknown while tracing).
Compiled in debug mode (PROPC_DEBUG=1), an out-of-range index stops the call with
BoundsCheckError instead. The gradient of a gather is a `scatter_add`, so
repeated indices accumulate.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ir import DType

from .errors import ShapeError, TraceTypeError
from .shape_ops import broadcast_shapes, normalize_axis, reshape
from .tracing import Tensor, apply, full, to_tensor, traceable


def _indices(indices: Any, op: str) -> Tensor:
    t = to_tensor(indices, op)
    if t.type.dtype not in (DType.i32, DType.i64):
        raise TraceTypeError(op, f"indices must be an int32 or int64 array, got {t.type}",
                             hint="convert with .astype(np.int64)")
    return t


def _wrapped(indices: Tensor, size: int) -> Tensor:
    """Negative indices counted from the end of an axis of `size`."""
    dtype = indices.type.dtype
    zero = full(indices.shape, 0, dtype)
    shifted = apply("add", indices, full(indices.shape, size, dtype))
    return apply("select", apply("lt", indices, zero), shifted, indices)


def _gather(x: Tensor, indices: Tensor, axis: int) -> Tensor:
    return apply("gather", x, _wrapped(indices, x.shape[axis]), weak=x.weak, axis=axis)


def _check_axis_nonempty(x: Tensor, axis: int, indices: Tensor, op: str) -> None:
    if x.shape[axis] == 0 and indices.size:
        raise ShapeError(op, f"cannot take from axis {axis} of size 0 of {x.type}")


@traceable
def take(a: Any, indices: Any, axis: Any = None) -> Tensor:
    """np.take: elements of `a` (flattened if axis is None) at integer `indices`; the
    result has a.shape[:axis] + indices.shape + a.shape[axis + 1:]."""
    x = to_tensor(a, "take")
    idx = _indices(indices, "take")
    if axis is None:
        x = reshape(x, (-1,))
        axis = 0
    axis = normalize_axis(axis, x.ndim, "take", str(x.type))
    _check_axis_nonempty(x, axis, idx, "take")
    flat = reshape(idx, (idx.size,))
    spread = x.shape[:axis] + (idx.size,) + x.shape[axis + 1:]
    picks = apply("broadcast_in_dim", flat, shape=spread, dims=(axis,))
    gathered = _gather(x, picks, axis)
    return reshape(gathered, x.shape[:axis] + idx.shape + x.shape[axis + 1:])


@traceable
def take_along_axis(arr: Any, indices: Any, axis: Any) -> Tensor:
    """np.take_along_axis: indices of arr's rank, broadcast against arr off `axis`."""
    x = to_tensor(arr, "take_along_axis")
    idx = _indices(indices, "take_along_axis")
    if axis is None:
        x = reshape(x, (-1,))
        axis = 0
    if idx.ndim != x.ndim:
        raise ShapeError("take_along_axis", f"indices {idx.type} and arr {x.type} must have "
                         "the same number of dimensions")
    axis = normalize_axis(axis, x.ndim, "take_along_axis", str(x.type))
    _check_axis_nonempty(x, axis, idx, "take_along_axis")
    others = broadcast_shapes("take_along_axis", _without(x, axis), _without(idx, axis))
    x_shape = others[:axis] + (x.shape[axis],) + others[axis:]
    idx_shape = others[:axis] + (idx.shape[axis],) + others[axis:]
    x = _stretch(x, x_shape)
    idx = _stretch(idx, idx_shape)
    return _gather(x, idx, axis)


def _without(t: Tensor, axis: int) -> Any:
    """A stand-in of t's shape without `axis` for broadcast_shapes."""
    return np.empty(t.shape[:axis] + t.shape[axis + 1:], dtype=np.bool_)


def _stretch(t: Tensor, shape: tuple[int, ...]) -> Tensor:
    if t.shape == tuple(shape):
        return t
    return apply("broadcast_in_dim", t, weak=t.weak, shape=tuple(shape),
                 dims=tuple(range(t.ndim)))


@traceable
def embedding(ids: Any, table: Any) -> Tensor:
    """table[ids]: rows of `table` (V, D) for integer ids of any shape -> ids.shape + (D,)."""
    table = to_tensor(table, "embedding")
    if table.ndim < 1:
        raise ShapeError("embedding", f"table {table.type} needs at least one axis")
    return take(table, ids, axis=0)


__all__ = ["embedding", "take", "take_along_axis"]
