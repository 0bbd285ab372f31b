"""The primitive table: one entry per primitive with its arity, attribute schema and
shape/dtype rule.

This is the first of the per-primitive tables (see docs/ARCHITECTURE.md). The
others — interpreter, VJP rule, cost formula, lowering — are separate registries keyed
by the same name, so each layer registers its part without touching this file.

Conventions every rule relies on:
- Elementwise primitives take operands of identical shape and dtype (select: the
  predicate is bool). Broadcasting and promotion are explicit ops inserted by the
  front end.
- Attribute kinds: "int", "float", "bool", "dtype", "ints" (tuple of ints), "array"
  (a NumPy array, only for `constant`).
"""
from __future__ import annotations

from typing import Callable

from .errors import TypeRuleError
from .primitive import (PRIMITIVES, Primitive, ShapeRule, check_arity, check_attrs, define,
                        get_primitive, normalize_attr, normalize_attrs)
from .types import DType, TensorType

__all__ = ["PRIMITIVES", "Primitive", "ShapeRule", "check_arity", "check_attrs", "define",
           "get_primitive", "normalize_attr", "normalize_attrs"]


# --------------------------------------------------------------------------------------
# helpers for rules


def _types(types: list[TensorType]) -> str:
    return ", ".join(str(t) for t in types)


def _same_types(name: str, types: list[TensorType]) -> TensorType:
    first = types[0]
    for t in types[1:]:
        if t != first:
            raise TypeRuleError(name, f"operands must have identical types, got {_types(types)}")
    return first


def _require(name: str, types: list[TensorType], ok: Callable[[DType], bool], what: str) -> None:
    for t in types:
        if not ok(t.dtype):
            raise TypeRuleError(name, f"needs {what} operands, got {_types(types)}")


def _axis_list(name: str, what: str, axes: tuple[int, ...], ndim: int) -> None:
    for a in axes:
        if not 0 <= a < ndim:
            raise TypeRuleError(name, f"{what} axis {a} out of range for rank {ndim}")
    if len(set(axes)) != len(axes):
        raise TypeRuleError(name, f"{what} axes {list(axes)} repeat an axis")


# --------------------------------------------------------------------------------------
# elementwise


def float_unary(name, types, attrs):
    _require(name, types, lambda d: d.is_float, "float")
    return types[0]


def numeric_unary(name, types, attrs):
    _require(name, types, lambda d: d.is_numeric, "numeric")
    return types[0]


def any_unary(name, types, attrs):
    return types[0]


def numeric_binary(name, types, attrs):
    t = _same_types(name, types)
    _require(name, types, lambda d: d.is_numeric, "numeric")
    return t


def float_binary(name, types, attrs):
    t = _same_types(name, types)
    _require(name, types, lambda d: d.is_float, "float")
    return t


def ordered_compare(name, types, attrs):
    t = _same_types(name, types)
    _require(name, types, lambda d: d.is_numeric, "numeric")
    return t.with_dtype(DType.bool)


def equality_compare(name, types, attrs):
    return _same_types(name, types).with_dtype(DType.bool)


def select_rule(name, types, attrs):
    pred, on_true, on_false = types
    if pred.dtype is not DType.bool:
        raise TypeRuleError(name, f"predicate must be bool, got {pred}")
    if on_true != on_false:
        raise TypeRuleError(name, f"branches must have identical types, got {on_true}, {on_false}")
    if pred.shape != on_true.shape:
        raise TypeRuleError(name, f"predicate shape {pred} differs from branches {on_true}")
    return on_true


def convert_rule(name, types, attrs):
    return types[0].with_dtype(attrs["dtype"])


for _name in ("exp", "log", "tanh", "sqrt", "sin", "cos"):
    define(_name, 1, float_unary, elementwise=True, doc=f"elementwise {_name} of a float array")
define("neg", 1, numeric_unary, elementwise=True, doc="elementwise negation")
define("abs", 1, numeric_unary, elementwise=True, doc="elementwise absolute value")
define("stop_gradient", 1, any_unary, elementwise=True, free_view=True,
       doc="identity whose cotangent is zero")
for _name in ("add", "sub", "mul", "max", "min"):
    define(_name, 2, numeric_binary, elementwise=True,
           doc=f"elementwise {_name}; max/min propagate NaN like np.maximum")
define("div", 2, numeric_binary, elementwise=True,
       doc="floats: IEEE division; integers: floor division, x // 0 == 0")
define("pow", 2, float_binary, elementwise=True, doc="elementwise x ** y for floats")
for _name in ("lt", "le", "gt", "ge"):
    define(_name, 2, ordered_compare, elementwise=True, doc=f"elementwise {_name}, bool result")
for _name in ("eq", "ne"):
    define(_name, 2, equality_compare, elementwise=True, doc=f"elementwise {_name}, bool result")
define("select", 3, select_rule, elementwise=True, doc="select(pred, on_true, on_false)")
define("convert", 1, convert_rule, attrs={"dtype": "dtype"}, elementwise=True,
       free_view=True, doc="dtype conversion like ndarray.astype (to bool: x != 0)")


# --------------------------------------------------------------------------------------
# shape manipulation


def broadcast_in_dim_rule(name, types, attrs):
    (t,) = types
    shape, dims = attrs["shape"], attrs["dims"]
    if any(d < 0 for d in shape):
        raise TypeRuleError(name, f"negative dimension in shape {list(shape)}")
    if len(dims) != t.ndim:
        raise TypeRuleError(name, f"dims {list(dims)} must have one entry per operand axis of {t}")
    _axis_list(name, "dims", dims, len(shape))
    if list(dims) != sorted(dims):
        raise TypeRuleError(name, f"dims {list(dims)} must be increasing")
    for i, d in enumerate(dims):
        if t.shape[i] not in (1, shape[d]):
            raise TypeRuleError(
                name, f"cannot broadcast {t} to {list(shape)}: axis {i} has size {t.shape[i]}, "
                f"target axis {d} has size {shape[d]}")
    return t.with_shape(shape)


def reshape_rule(name, types, attrs):
    (t,) = types
    shape = attrs["shape"]
    if any(d < 0 for d in shape):
        raise TypeRuleError(name, f"negative dimension in shape {list(shape)}")
    new = t.with_shape(shape)
    if new.size != t.size:
        raise TypeRuleError(name, f"cannot reshape {t} ({t.size} elements) to {list(shape)}")
    return new


def transpose_rule(name, types, attrs):
    (t,) = types
    perm = attrs["perm"]
    if sorted(perm) != list(range(t.ndim)):
        raise TypeRuleError(name, f"perm {list(perm)} is not a permutation of the axes of {t}")
    return t.with_shape(tuple(t.shape[p] for p in perm))


def slice_rule(name, types, attrs):
    (t,) = types
    start, stop, stride = attrs["start"], attrs["stop"], attrs["stride"]
    if not len(start) == len(stop) == len(stride) == t.ndim:
        raise TypeRuleError(name, f"start/stop/stride need one entry per axis of {t}")
    shape = []
    for axis, (lo, hi, st, dim) in enumerate(zip(start, stop, stride, t.shape)):
        if st < 1:
            raise TypeRuleError(name, f"stride {st} on axis {axis} must be >= 1")
        if not 0 <= lo <= hi <= dim:
            raise TypeRuleError(name, f"bounds {lo}:{hi} on axis {axis} do not fit {t}")
        shape.append((hi - lo + st - 1) // st)
    return t.with_shape(shape)


def rev_rule(name, types, attrs):
    (t,) = types
    _axis_list(name, "reversed", attrs["dims"], t.ndim)
    return t


def pad_rule(name, types, attrs):
    (t,) = types
    low, high, interior = attrs["low"], attrs["high"], attrs["interior"]
    if not len(low) == len(high) == len(interior) == t.ndim:
        raise TypeRuleError(name, f"low/high/interior need one entry per axis of {t}")
    if any(p < 0 for p in low + high + interior):
        raise TypeRuleError(name, "padding amounts must be >= 0")
    shape = [lo + hi + d + max(d - 1, 0) * it for lo, hi, it, d in zip(low, high, interior, t.shape)]
    return t.with_shape(shape)


def concatenate_rule(name, types, attrs):
    axis = attrs["axis"]
    first = types[0]
    if not 0 <= axis < first.ndim:
        raise TypeRuleError(name, f"axis {axis} out of range for {first}")
    total = 0
    for t in types:
        if t.dtype != first.dtype or t.ndim != first.ndim or any(
                a != b for i, (a, b) in enumerate(zip(t.shape, first.shape)) if i != axis):
            raise TypeRuleError(name, f"operands must agree except on axis {axis}: {_types(types)}")
        total += t.shape[axis]
    shape = list(first.shape)
    shape[axis] = total
    return first.with_shape(shape)


define("broadcast_in_dim", 1, broadcast_in_dim_rule, attrs={"shape": "ints", "dims": "ints"},
       free_view=True, splat_transparent=True,
       doc="operand axis i becomes result axis dims[i]; size-1 axes stretch")
define("reshape", 1, reshape_rule, attrs={"shape": "ints"}, free_view=True,
       splat_transparent=True, doc="row-major reshape")
define("transpose", 1, transpose_rule, attrs={"perm": "ints"}, free_view=True,
       splat_transparent=True, doc="result axis i is operand axis perm[i]")
define("slice", 1, slice_rule, attrs={"start": "ints", "stop": "ints", "stride": "ints"},
       copy=True, splat_transparent=True,
       doc="strided slice, start <= stop, stride >= 1 per axis")
define("rev", 1, rev_rule, attrs={"dims": "ints"}, free_view=True, splat_transparent=True,
       doc="reverse the order of elements along the listed axes")
define("pad", 1, pad_rule, attrs={"low": "ints", "high": "ints", "interior": "ints"}, copy=True,
       doc="pad with zeros: low/high at the ends, interior between elements")
define("concatenate", None, concatenate_rule, attrs={"axis": "int"}, copy=True,
       doc="join operands along axis")


# --------------------------------------------------------------------------------------
# reductions and contractions


def reduce_rule(name, types, attrs):
    (t,) = types
    axes = attrs["axes"]
    _axis_list(name, "reduction", axes, t.ndim)
    if name == "reduce_sum":
        _require(name, types, lambda d: d.is_numeric, "numeric")
    return t.with_shape(tuple(d for i, d in enumerate(t.shape) if i not in axes))


def dot_rule(name, types, attrs):
    lhs, rhs = types
    lb, rb = attrs["lhs_batch"], attrs["rhs_batch"]
    lc, rc = attrs["lhs_contract"], attrs["rhs_contract"]
    if lhs.dtype != rhs.dtype:
        raise TypeRuleError(name, f"operands must have the same dtype, got {lhs}, {rhs}")
    _require(name, types, lambda d: d.is_numeric, "numeric")
    _axis_list(name, "lhs", lb + lc, lhs.ndim)
    _axis_list(name, "rhs", rb + rc, rhs.ndim)
    if len(lb) != len(rb) or len(lc) != len(rc):
        raise TypeRuleError(name, "batch and contracting dimension lists must pair up")
    for a, b in list(zip(lb, rb)) + list(zip(lc, rc)):
        if lhs.shape[a] != rhs.shape[b]:
            raise TypeRuleError(
                name, f"{lhs} . {rhs}: lhs axis {a} (size {lhs.shape[a]}) != rhs axis {b} "
                f"(size {rhs.shape[b]})")
    batch = [lhs.shape[a] for a in lb]
    lhs_free = [d for i, d in enumerate(lhs.shape) if i not in lb + lc]
    rhs_free = [d for i, d in enumerate(rhs.shape) if i not in rb + rc]
    return lhs.with_shape(batch + lhs_free + rhs_free)


for _name in ("reduce_sum", "reduce_max", "reduce_min"):
    define(_name, 1, reduce_rule, attrs={"axes": "ints"},
           doc=f"{_name[7:]} over the listed axes, which are removed "
               "(max/min of an empty axis: the dtype's lowest/highest value; "
               "-0.0 < +0.0 and NaN wins, whatever the order)")
define("dot", 2, dot_rule,
       attrs={"lhs_batch": "ints", "rhs_batch": "ints", "lhs_contract": "ints",
              "rhs_contract": "ints"},
       doc="general contraction; result axes are batch, lhs free, rhs free")


def logsumexp_rule(name, types, attrs):
    _require(name, types, lambda d: d.is_float, "float")
    return reduce_rule(name, types, attrs)


define("logsumexp", 1, logsumexp_rule, attrs={"axes": "ints"},
       doc="log(sum(exp(x))) over axes, in the stable form m + log(sum(exp(x - m))) with m "
           "the max (0 where infinite); -inf where every element is -inf or there is none")


# --------------------------------------------------------------------------------------
# sources


def constant_rule(name, types, attrs):
    value = attrs["value"]
    return TensorType(value.shape, DType.from_numpy(value.dtype))


def iota_rule(name, types, attrs):
    shape, dtype, dimension = attrs["shape"], attrs["dtype"], attrs["dimension"]
    if not dtype.is_numeric:
        raise TypeRuleError(name, f"dtype must be numeric, got {dtype}")
    if any(d < 0 for d in shape):
        raise TypeRuleError(name, f"negative dimension in shape {list(shape)}")
    if not 0 <= dimension < len(shape):
        raise TypeRuleError(name, f"dimension {dimension} out of range for shape {list(shape)}")
    return TensorType(shape, dtype)


define("constant", 0, constant_rule, attrs={"value": "array"}, doc="a literal array")
define("iota", 0, iota_rule, attrs={"shape": "ints", "dtype": "dtype", "dimension": "int"},
       doc="0, 1, 2, ... along `dimension`, constant along the other axes")
from . import ops_window  # noqa: E402,F401  (conv, reduce_window, gather, scatter_add)
