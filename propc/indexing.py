"""Basic indexing of tracers: `x[i]`, `x[a:b:s]`, `x[..., None]`, combinations.

An index becomes at most one `rev` (axes sliced with a negative step), one `slice`
primitive (start/stop/stride per axis) and one `reshape` (removing integer-indexed
axes, inserting None axes). Integers and slice bounds may be negative (counted from
the end) and slice bounds are clipped like NumPy's. A negative step walks the
reversed axis with the positive step: x[a:b:-s] is rev(x)[n-1-a : ... : s].
Indexing with arrays or traced values (advanced indexing) is not supported.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .errors import OutOfBoundsError, ShapeError, TraceTypeError
from .tracing import Tensor, apply


def _expand_ellipsis(x: Tensor, items: tuple) -> tuple:
    """Replace `...` by full slices; check the number of indexed axes."""
    ellipses = [i for i, item in enumerate(items) if item is Ellipsis]
    if len(ellipses) > 1:
        raise OutOfBoundsError("index", f"{x.type}: an index can only have one ellipsis")
    used = sum(1 for item in items if item is not None and item is not Ellipsis)
    if used > x.ndim:
        raise OutOfBoundsError("index", f"too many indices for {x.type}: {used} indices, "
                               f"{x.ndim} axes")
    if ellipses:
        at = ellipses[0]
        return items[:at] + (slice(None),) * (x.ndim - used) + items[at + 1:]
    return items + (slice(None),) * (x.ndim - used)


def _check_item(x: Tensor, item: Any) -> None:
    if item is None or item is Ellipsis or isinstance(item, slice):
        return
    if isinstance(item, (bool, np.bool_)):
        raise TraceTypeError("index", f"{x.type}[{item!r}]: boolean indices are not supported",
                             hint="select values with pc.where")
    if isinstance(item, (int, np.integer)):
        return
    raise TraceTypeError("index", f"{x.type}: index {type(item).__name__} is not supported "
                         "(only ints, slices, None and ...)",
                         hint="select with pc.where, or pc.one_hot and a sum")


def _slice_bounds(x: Tensor, axis: int, item: slice) -> tuple[int, int, int, int, bool]:
    """(start, stop, stride, result size, reversed) of a slice on one axis; a negative
    step is expressed on the reversed axis (reversed=True) with a positive stride."""
    for bound in (item.start, item.stop, item.step):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, np.integer))):
            raise TraceTypeError("index", f"{x.type}: slice bounds must be ints or None, "
                                 f"got {item!r}")
    if item.step == 0:
        raise ShapeError("index", f"{x.type}[{item.start}:{item.stop}:0]: slice step cannot be "
                         "zero")
    size = x.shape[axis]
    start, stop, step = item.indices(size)
    count = len(range(start, stop, step))
    if step < 0:
        first = size - 1 - start if count else 0
        return first, first + (count - 1) * -step + 1 if count else first, -step, count, True
    stop = max(stop, start)
    return start, stop, step, count, False


def getitem(x: Tensor, key: Any) -> Tensor:
    """x[key] for ints, slices, None and Ellipsis, with NumPy semantics."""
    items = key if isinstance(key, tuple) else (key,)
    for item in items:
        _check_item(x, item)
    items = _expand_ellipsis(x, items)
    starts, stops, strides, shape, reversed_axes = [], [], [], [], []
    axis = 0
    for item in items:
        if item is None:
            shape.append(1)
            continue
        size = x.shape[axis]
        if isinstance(item, slice):
            start, stop, stride, count, reverse = _slice_bounds(x, axis, item)
            shape.append(count)
            if reverse:
                reversed_axes.append(axis)
        else:
            if not -size <= item < size:
                raise OutOfBoundsError("index", f"index {item} is out of bounds for axis "
                                       f"{axis} with size {size} ({x.type})")
            start, stop, stride = int(item) % size, int(item) % size + 1, 1
        starts.append(start)
        stops.append(stop)
        strides.append(stride)
        axis += 1
    result = x
    if reversed_axes:
        result = apply("rev", x, weak=x.weak, dims=tuple(reversed_axes))
    if (tuple(starts), tuple(stops), tuple(strides)) != ((0,) * x.ndim, x.shape, (1,) * x.ndim):
        result = apply("slice", result, weak=x.weak, start=tuple(starts), stop=tuple(stops),
                       stride=tuple(strides))
    if tuple(shape) != result.shape:
        result = apply("reshape", result, weak=x.weak, shape=tuple(shape))
    return result
