"""Shape functions of the propc namespace: broadcasting, reshape, transpose,
broadcast_to, concatenate, zeros_like/ones_like, and axis normalisation.

Broadcasting follows NumPy: shapes align at the right, and an axis of size 1 (or a
missing leading axis) stretches. It is always an explicit `broadcast_in_dim`.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ir import DType

from .errors import OutOfBoundsError, ShapeError, TraceTypeError
from .promotion import result_type, to_dtype
from .tracing import (Tensor, apply, cast, describe, full, to_tensor, traceable, type_info)


def _shape_text(shape: Sequence[int]) -> str:
    return f"[{','.join(str(d) for d in shape)}]"


def broadcast_shapes(op: str, *operands: Any) -> tuple[int, ...]:
    """NumPy's broadcast result shape of the operands; ShapeError naming them if none."""
    shapes = [type_info(x, op)[0] for x in operands]
    ndim = max(len(s) for s in shapes)
    result = []
    for axis in range(-ndim, 0):
        sizes = {s[axis] for s in shapes if len(s) >= -axis} - {1}
        if len(sizes) > 1:
            raise ShapeError(op, "shapes " + ", ".join(describe(x) for x in operands)
                             + f" cannot be broadcast together (axis {axis}: sizes "
                             f"{sorted(sizes)})",
                             hint="NumPy rules: trailing axes must be equal or 1")
        result.append(sizes.pop() if sizes else 1)
    return tuple(result)


def broadcast(t: Tensor, shape: Sequence[int]) -> Tensor:
    """`t` stretched to `shape` (which NumPy rules must allow); no op if already there."""
    shape = tuple(shape)
    if t.shape == shape:
        return t
    offset = len(shape) - t.ndim
    return apply("broadcast_in_dim", t, weak=t.weak, shape=shape,
                 dims=tuple(range(offset, len(shape))))


def prepare(op: str, *operands: Any, dtype: DType | None = None) -> tuple[list[Tensor], DType, bool]:
    """Promote and broadcast operands for an elementwise op.

    Returns the operands as Tensors of one dtype and shape, that dtype, and whether
    the result is weak. `dtype` overrides the promoted dtype.
    """
    infos = [type_info(x, op) for x in operands]
    promoted, weak = result_type([(d, w) for _, d, w in infos])
    target = dtype or promoted
    shape = broadcast_shapes(op, *operands)
    tensors = [broadcast(cast(to_tensor(x, op, target), target), shape) for x in operands]
    return tensors, target, weak


def normalize_axis(axis: Any, ndim: int, op: str, shown: str) -> int:
    """One axis as a non-negative int; OutOfBoundsError/TraceTypeError if it can't be."""
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise TraceTypeError(op, f"axis must be an int, got {axis!r}")
    if not -ndim <= axis < ndim:
        raise OutOfBoundsError(op, f"axis {axis} is out of bounds for {shown} "
                               f"(rank {ndim})")
    return int(axis) % ndim


def normalize_axes(axis: Any, ndim: int, op: str, shown: str) -> tuple[int, ...]:
    """None (all axes), an int or a tuple of ints as sorted non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    items = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    axes = [normalize_axis(a, ndim, op, shown) for a in items]
    if len(set(axes)) != len(axes):
        raise ShapeError(op, f"repeated axis in {axis!r} for {shown}")
    return tuple(sorted(axes))


def _resolve_shape(op: str, x: Tensor, shape: Any) -> tuple[int, ...]:
    items = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    for d in items:
        if isinstance(d, (bool, np.bool_)) or not isinstance(d, (int, np.integer)) or d < -1:
            raise TraceTypeError(op, f"shape {items!r} for {x.type} must be ints >= 0 "
                                 "(one -1 allowed)")
    unknown = [i for i, d in enumerate(items) if d == -1]
    if len(unknown) > 1:
        raise ShapeError(op, f"shape {items} for {x.type} has more than one -1")
    known = int(np.prod([d for d in items if d != -1], dtype=np.int64))
    result = [int(d) for d in items]
    if unknown:
        if known == 0 or x.size % known:
            raise ShapeError(op, f"cannot reshape {x.type} ({x.size} elements) to {items}")
        result[unknown[0]] = x.size // known
    if int(np.prod(result, dtype=np.int64)) != x.size:
        raise ShapeError(op, f"cannot reshape {x.type} ({x.size} elements) to "
                         f"{_shape_text(result)}")
    return tuple(result)


@traceable
def reshape(x: Any, shape: Any) -> Tensor:
    """np.reshape: same elements in row-major order; one -1 is inferred."""
    x = to_tensor(x, "reshape")
    new_shape = _resolve_shape("reshape", x, shape)
    if new_shape == x.shape:
        return x
    return apply("reshape", x, weak=x.weak, shape=new_shape)


@traceable
def transpose(x: Any, axes: Any = None) -> Tensor:
    """np.transpose: reverse the axes, or permute them by `axes` (negative allowed)."""
    x = to_tensor(x, "transpose")
    if axes is None:
        perm = tuple(reversed(range(x.ndim)))
    else:
        items = tuple(axes)
        perm = tuple(normalize_axis(a, x.ndim, "transpose", str(x.type)) for a in items)
        if sorted(perm) != list(range(x.ndim)):
            raise ShapeError("transpose", f"axes {items} are not a permutation of the axes "
                             f"of {x.type}")
    if perm == tuple(range(x.ndim)):
        return x
    return apply("transpose", x, weak=x.weak, perm=perm)


@traceable
def broadcast_to(x: Any, shape: Any) -> Tensor:
    """np.broadcast_to: stretch size-1 axes and add leading axes to reach `shape`."""
    x = to_tensor(x, "broadcast_to")
    target = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    if any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 0 for d in target):
        raise TraceTypeError("broadcast_to", f"shape {target!r} must be ints >= 0")
    target = tuple(int(d) for d in target)
    fits = len(target) >= x.ndim and all(
        d in (1, t) for d, t in zip(x.shape, target[len(target) - x.ndim:]))
    if not fits:
        raise ShapeError("broadcast_to", f"cannot broadcast {x.type} to {_shape_text(target)}",
                         hint="NumPy rules: trailing axes must be equal or 1")
    return broadcast(x, target)


@traceable
def concatenate(arrays: Sequence[Any], axis: int | None = 0) -> Tensor:
    """np.concatenate: join along an existing axis (None: flatten first); dtypes promote."""
    if isinstance(arrays, (Tensor, np.ndarray)) or len(arrays) == 0:
        raise TraceTypeError("concatenate", "expects a non-empty list or tuple of arrays")
    infos = [type_info(x, "concatenate") for x in arrays]
    dtype, weak = result_type([(d, w) for _, d, w in infos])
    tensors = [cast(to_tensor(x, "concatenate", dtype), dtype) for x in arrays]
    if axis is None:
        tensors = [reshape(t, (-1,)) for t in tensors]
        axis = 0
    first = tensors[0]
    if first.ndim == 0:
        raise ShapeError("concatenate", "zero-dimensional arrays cannot be concatenated")
    axis = normalize_axis(axis, first.ndim, "concatenate", str(first.type))
    for t in tensors[1:]:
        if t.ndim != first.ndim or any(a != b for i, (a, b) in
                                       enumerate(zip(t.shape, first.shape)) if i != axis):
            raise ShapeError("concatenate", "shapes " + ", ".join(str(u.type) for u in tensors)
                             + f" must agree except on axis {axis}")
    if len(tensors) == 1:
        return first
    return apply("concatenate", *tensors, weak=weak, axis=axis)


def _filled_like(op: str, x: Any, value: int, dtype: Any) -> Tensor:
    shape, own_dtype, weak = type_info(x, op)
    if dtype is not None:
        return full(shape, value, to_dtype(dtype, op))
    return full(shape, value, own_dtype, weak=weak)


@traceable
def zeros_like(x: Any, dtype: Any = None) -> Tensor:
    """np.zeros_like: zeros of x's shape (and dtype unless given)."""
    return _filled_like("zeros_like", x, 0, dtype)


@traceable
def ones_like(x: Any, dtype: Any = None) -> Tensor:
    """np.ones_like: ones of x's shape (and dtype unless given)."""
    return _filled_like("ones_like", x, 1, dtype)
