"""Algebraic rewrites: the identities autodiff and the front end leave behind.

`ALGEBRA_RULES` maps a primitive name to one small function
`rule(builder, op, operands) -> Value | None`: given the old op and its operands in
the new graph, it returns the value that replaces the op's result (emitting new ops
first if needed, stamped with the op's source location by `rebuild`), or None to
keep the op. A replacement always has the op's exact result type.

Only rewrites that give the same numbers are made, with one documented exception:
- none for floats: `reduce_sum` only folds for integers (see reduce_sum_rule).
Rewrites that IEEE floats forbid are not made: `x * 0`, `x - x` and `x / x` (NaN and
infinities) stay for floats, and so does `x + (+0.0)` (it turns x = -0.0 into +0.0,
which a later division can tell apart: 1/-0 = -inf); `x + (-0.0)` and `x - (+0.0)` are
exact and fold; for integers `x * 0` and `x - x` fold to zeros.
`stop_gradient` is kept: it is the identity on values, but a graph may be
differentiated again after simplification.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ..builder import Builder
from ..graph import Graph, Op, Value
from ..registry import Registry
from ..types import DType
from .fold import emit_splat, splat_equals, splat_scalar
from .rebuild import rebuild

Rule = Callable[[Builder, Op, list[Value]], "Value | None"]


def _producer_prim(value: Value) -> str | None:
    return value.producer.prim if value.producer is not None else None


# --------------------------------------------------------------------------------------
# elementwise arithmetic


def _is_additive_identity(value: Value) -> bool:
    """0 for integers; only -0.0 for floats (x + -0.0 == x bit for bit, x + +0.0 is
    not when x is -0.0)."""
    scalar = splat_scalar(value)
    if scalar is None or scalar != 0:
        return False
    return not value.dtype.is_float or bool(np.signbit(scalar))


def add_rule(b: Builder, op: Op, operands: list[Value]) -> Value | None:
    x, y = operands
    if _is_additive_identity(y):
        return x
    if _is_additive_identity(x):
        return y
    return None


def sub_rule(b: Builder, op: Op, operands: list[Value]) -> Value | None:
    x, y = operands
    scalar = splat_scalar(y)
    if scalar is not None and scalar == 0 and not np.signbit(scalar):
        return x
    if x is y and x.dtype.is_int:
        return b.zeros(op.result.type)
    return None


def mul_rule(b: Builder, op: Op, operands: list[Value]) -> Value | None:
    x, y = operands
    if splat_equals(y, 1):
        return x
    if splat_equals(x, 1):
        return y
    if op.result.dtype.is_int:
        for operand in operands:
            if splat_equals(operand, 0):
                return operand
    return None


def div_rule(b: Builder, op: Op, operands: list[Value]) -> Value | None:
    x, y = operands
    return x if splat_equals(y, 1) else None


def neg_rule(b: Builder, op: Op, operands: list[Value]) -> Value | None:
    (x,) = operands
    if _producer_prim(x) == "neg":
        return x.producer.operands[0]
    return None


def select_rule(b: Builder, op: Op, operands: list[Value]) -> Value | None:
    pred, on_true, on_false = operands
    if on_true is on_false:
        return on_true
    scalar = splat_scalar(pred)
    if scalar is None:
        return None
    return on_true if bool(scalar) else on_false


# convert(convert(x, b), a) == x when x's dtype a -> b loses nothing.
LOSSLESS_CONVERSIONS = frozenset({
    (DType.bool, DType.i32), (DType.bool, DType.i64), (DType.bool, DType.f32),
    (DType.bool, DType.f64), (DType.i32, DType.i64), (DType.i32, DType.f64),
    (DType.f32, DType.f64),
})


def convert_rule(b: Builder, op: Op, operands: list[Value]) -> Value | None:
    (x,) = operands
    if x.dtype is op.result.dtype:
        return x
    if _producer_prim(x) == "convert":
        original = x.producer.operands[0]
        if (original.dtype is op.result.dtype
                and (original.dtype, x.dtype) in LOSSLESS_CONVERSIONS):
            return original
    return None


# --------------------------------------------------------------------------------------
# shape ops


def _splat_through(b: Builder, op: Op, x: Value) -> Value | None:
    """A layout op applied to a splat is a splat of the result's shape."""
    scalar = splat_scalar(x)
    return emit_splat(b, op.result.shape, scalar) if scalar is not None else None


def transpose_rule(b: Builder, op: Op, operands: list[Value]) -> Value | None:
    (x,) = operands
    perm = op.attrs["perm"]
    if list(perm) == list(range(len(perm))):
        return x
    if _producer_prim(x) == "transpose":
        inner = x.producer
        composed = tuple(inner.attrs["perm"][p] for p in perm)
        return b.transpose(inner.operands[0], perm=composed)
    return _splat_through(b, op, x)


def reshape_rule(b: Builder, op: Op, operands: list[Value]) -> Value | None:
    (x,) = operands
    if x.shape == op.result.shape:
        return x
    if _producer_prim(x) == "reshape":
        return b.reshape(x.producer.operands[0], shape=op.attrs["shape"])
    return _splat_through(b, op, x)


def broadcast_in_dim_rule(b: Builder, op: Op, operands: list[Value]) -> Value | None:
    (x,) = operands
    shape, dims = op.attrs["shape"], op.attrs["dims"]
    if x.shape == op.result.shape and list(dims) == list(range(len(dims))):
        return x
    if _producer_prim(x) == "broadcast_in_dim":
        inner = x.producer
        composed = tuple(dims[d] for d in inner.attrs["dims"])
        return b.broadcast_in_dim(inner.operands[0], shape=shape, dims=composed)
    return None


def slice_rule(b: Builder, op: Op, operands: list[Value]) -> Value | None:
    (x,) = operands
    if x.shape == op.result.shape and not any(op.attrs["start"]):
        return x
    return _splat_through(b, op, x)


def rev_rule(b: Builder, op: Op, operands: list[Value]) -> Value | None:
    """Reversing size-0/1 axes (or none) is the identity; rev of rev cancels on the
    axes both reverse."""
    (x,) = operands
    dims = tuple(d for d in op.attrs["dims"] if x.shape[d] > 1)
    producer = x.producer
    if producer is not None and producer.prim == "rev":
        inner = tuple(d for d in producer.attrs["dims"] if x.shape[d] > 1)
        remaining = tuple(sorted(set(dims) ^ set(inner)))
        source = producer.operands[0]
        return b.rev(source, dims=remaining) if remaining else source
    if not dims:
        return x
    if dims != op.attrs["dims"]:
        return b.rev(x, dims=dims)
    return _splat_through(b, op, x)


def pad_rule(b: Builder, op: Op, operands: list[Value]) -> Value | None:
    (x,) = operands
    return x if x.shape == op.result.shape else None


def concatenate_rule(b: Builder, op: Op, operands: list[Value]) -> Value | None:
    return operands[0] if len(operands) == 1 else None


# --------------------------------------------------------------------------------------
# reductions of broadcasts


def _exact_count(count: int, dtype: DType) -> bool:
    """Whether the integer `count` is exactly representable in `dtype`."""
    limits = {DType.f32: 2 ** 24, DType.f64: 2 ** 53, DType.i32: 2 ** 31 - 1,
              DType.i64: 2 ** 63 - 1}
    return count <= limits.get(dtype, 0)


def _new_axes_reduction(op: Op, x: Value) -> tuple[Value, int, tuple, tuple] | None:
    """For a reduction of broadcast_in_dim(source) over axes the broadcast created:
    (source, number of reduced elements per result element, result shape, result
    dims of the source's axes). None when the reduction touches an original axis."""
    if _producer_prim(x) != "broadcast_in_dim":
        return None
    broadcast = x.producer
    dims, axes = broadcast.attrs["dims"], op.attrs["axes"]
    if any(a in dims for a in axes):
        return None
    count = 1
    for a in axes:
        count *= x.shape[a]
    new_dims = tuple(d - sum(1 for a in axes if a < d) for d in dims)
    return broadcast.operands[0], count, op.result.shape, new_dims


def _broadcast_to_result(b: Builder, source: Value, shape: tuple, dims: tuple) -> Value:
    if source.shape == shape and list(dims) == list(range(len(dims))):
        return source
    return b.broadcast_in_dim(source, shape=shape, dims=dims)


def reduce_sum_rule(b: Builder, op: Op, operands: list[Value]) -> Value | None:
    """Integer sums over no axes or over broadcast copies fold; float sums do not:
    a float sum starts from +0.0 (so it turns -0.0 into +0.0), which x and x * n
    would not reproduce."""
    (x,) = operands
    if not op.attrs["axes"]:
        return None if x.dtype.is_float else x
    found = _new_axes_reduction(op, x)
    if found is None:
        return None
    source, count, shape, dims = found
    if count == 0:
        return b.zeros(op.result.type)
    if x.dtype.is_float:
        return None
    if not _exact_count(count, source.dtype):
        return None
    if count != 1:
        source = b.mul(source, b.full(source.shape, count, source.dtype))
    return _broadcast_to_result(b, source, shape, dims)


def reduce_extremum_rule(b: Builder, op: Op, operands: list[Value]) -> Value | None:
    """max/min of copies of one value is that value (over a non-empty axis)."""
    (x,) = operands
    if not op.attrs["axes"]:
        return x
    found = _new_axes_reduction(op, x)
    if found is None or found[1] == 0:
        return None
    source, _, shape, dims = found
    return _broadcast_to_result(b, source, shape, dims)


ALGEBRA_RULES: Registry = Registry("algebra rule")     # name -> Rule
ALGEBRA_RULES.update({
    "add": add_rule,
    "sub": sub_rule,
    "mul": mul_rule,
    "div": div_rule,
    "neg": neg_rule,
    "select": select_rule,
    "convert": convert_rule,
    "transpose": transpose_rule,
    "reshape": reshape_rule,
    "broadcast_in_dim": broadcast_in_dim_rule,
    "slice": slice_rule,
    "rev": rev_rule,
    "pad": pad_rule,
    "concatenate": concatenate_rule,
    "reduce_sum": reduce_sum_rule,
    "reduce_max": reduce_extremum_rule,
    "reduce_min": reduce_extremum_rule,
})


def _apply_rule(b: Builder, op: Op, operands: list[Value]) -> Value | None:
    rule = ALGEBRA_RULES.get(op.prim)
    return rule(b, op, operands) if rule is not None else None


def rewrite_algebra(graph: Graph) -> Graph:
    """A new graph with every algebraic rule applied once per op, in op order."""
    return rebuild(graph, _apply_rule)
