"""Shape rules of the windowed and indexed primitives: `conv`, `reduce_window_sum`,
`reduce_window_max`, `gather` and `scatter_add` (one `define` each, like ir/ops.py,
which imports this module so the primitive table stays one table).

Window geometry shared by the conv and reduce_window rules, interpreters and
lowerings, per spatial axis:
- the operand (size I) is dilated by `lhs_dilation` d (d - 1 zeros between
  elements: size (I - 1) * d + 1), then padded by `padding_low`/`padding_high`
  (negative amounts crop); positions outside the operand read the identity
  (0 for conv and sums, the lowest value for max);
- the window (size W) is dilated by `rhs_dilation` r (size (W - 1) * r + 1) and
  steps by `strides` s; output position o, tap j reads padded position
  o * s + j * r, which is operand element ((o * s + j * r - low) / d) when that
  is a whole number in range;
- output size: (padded - dilated window) // s + 1; a window larger than the padded
  operand is an error (an empty operand axis then gives an empty output axis).
"""
from __future__ import annotations

from .errors import TypeRuleError
from .primitive import define
from .types import DType


def dilated(size: int, dilation: int) -> int:
    """Size of an axis of `size` elements with dilation - 1 zeros between them."""
    return (size - 1) * dilation + 1 if size > 0 else 0


def window_output_size(size: int, window: int, stride: int, low: int, high: int,
                       lhs_dilation: int = 1, rhs_dilation: int = 1) -> int | None:
    """Output positions of one windowed axis, None when the window does not fit
    (an empty axis that padding does not fill gives no output positions)."""
    padded = low + dilated(size, lhs_dilation) + high
    extent = dilated(window, rhs_dilation)
    if padded < extent:
        return 0 if size == 0 else None
    return (padded - extent) // stride + 1


def _per_axis(name: str, attrs: dict, keys: tuple[str, ...], count: int) -> None:
    for key in keys:
        if len(attrs[key]) != count:
            raise TypeRuleError(name, f"{key} {list(attrs[key])} needs {count} entries "
                                "(one per windowed axis)")


def _at_least_one(name: str, attrs: dict, keys: tuple[str, ...]) -> None:
    for key in keys:
        if any(v < 1 for v in attrs[key]):
            raise TypeRuleError(name, f"{key} {list(attrs[key])} must be >= 1")


def _output_sizes(name: str, sizes, windows, attrs: dict, what: str) -> list[int]:
    lhs_dil = attrs.get("lhs_dilation", (1,) * len(sizes))
    rhs_dil = attrs.get("rhs_dilation", (1,) * len(sizes))
    out = []
    for axis, (size, window) in enumerate(zip(sizes, windows)):
        found = window_output_size(size, window, attrs["strides"][axis],
                                   attrs["padding_low"][axis], attrs["padding_high"][axis],
                                   lhs_dil[axis], rhs_dil[axis])
        if found is None:
            raise TypeRuleError(
                name, f"{what} axis {axis}: window {window} (dilation {rhs_dil[axis]}) is "
                f"bigger than the padded input of size {size} (padding "
                f"{attrs['padding_low'][axis]}, {attrs['padding_high'][axis]})")
        out.append(found)
    return out


def conv_rule(name, types, attrs):
    """lhs (N, *spatial, C), rhs (*window, C // groups, K) -> (N, *out, K)."""
    lhs, rhs = types
    groups = attrs["feature_group_count"]
    if lhs.dtype != rhs.dtype or not lhs.dtype.is_float:
        raise TypeRuleError(name, f"needs float operands of one dtype, got {lhs}, {rhs}")
    spatial = lhs.ndim - 2
    if spatial < 0 or rhs.ndim != lhs.ndim:
        raise TypeRuleError(name, f"lhs {lhs} must be (N, *spatial, C) and rhs {rhs} "
                            "(*window, C // groups, K) of the same rank")
    _per_axis(name, attrs, ("strides", "padding_low", "padding_high", "lhs_dilation",
                            "rhs_dilation"), spatial)
    _at_least_one(name, attrs, ("strides", "lhs_dilation", "rhs_dilation"))
    if any(w < 1 for w in rhs.shape[:spatial]):
        raise TypeRuleError(name, f"kernel {rhs} has an empty window axis")
    channels, features = lhs.shape[-1], rhs.shape[-1]
    if groups < 1 or channels % groups or features % groups:
        raise TypeRuleError(name, f"feature_group_count {groups} must divide the input "
                            f"channels {channels} and the output features {features}")
    if rhs.shape[-2] != channels // groups:
        raise TypeRuleError(name, f"kernel {rhs} expects {rhs.shape[-2]} input channels per "
                            f"group, but input {lhs} has {channels} channels in {groups} "
                            f"group(s) ({channels // groups} per group)")
    out = _output_sizes(name, lhs.shape[1:-1], rhs.shape[:spatial], attrs, "spatial")
    return lhs.with_shape((lhs.shape[0], *out, features))


def reduce_window_rule(name, types, attrs):
    (t,) = types
    if not t.dtype.is_numeric:
        raise TypeRuleError(name, f"needs a numeric operand, got {t}")
    _per_axis(name, attrs, ("window", "strides", "padding_low", "padding_high"), t.ndim)
    _at_least_one(name, attrs, ("window", "strides"))
    if name == "reduce_window_max" and any(p < 0 for p in attrs["padding_low"]
                                           + attrs["padding_high"]):
        raise TypeRuleError(name, "padding must be >= 0")
    return t.with_shape(_output_sizes(name, t.shape, attrs["window"], attrs, "operand"))


def _index_operand(name: str, operand, indices, axis: int, what: str) -> None:
    if indices.dtype not in (DType.i32, DType.i64):
        raise TypeRuleError(name, f"indices must be int32 or int64, got {indices}")
    if not 0 <= axis < operand.ndim:
        raise TypeRuleError(name, f"axis {axis} out of range for {operand}")
    if indices.ndim != operand.ndim or any(
            a != b for i, (a, b) in enumerate(zip(indices.shape, operand.shape)) if i != axis):
        raise TypeRuleError(name, f"indices {indices} must match {what} {operand} on every "
                            f"axis but {axis}")
    if operand.shape[axis] == 0 and indices.size > 0:
        raise TypeRuleError(name, f"cannot index axis {axis} of size 0 of {operand}")


def gather_rule(name, types, attrs):
    operand, indices = types
    _index_operand(name, operand, indices, attrs["axis"], "operand")
    return operand.with_shape(indices.shape)


def scatter_add_rule(name, types, attrs):
    operand, indices, updates = types
    if not operand.dtype.is_numeric or updates.dtype != operand.dtype:
        raise TypeRuleError(name, f"operand {operand} and updates {updates} must be numeric "
                            "of one dtype")
    if updates.shape != indices.shape:
        raise TypeRuleError(name, f"updates {updates} must have the shape of indices {indices}")
    _index_operand(name, operand, indices, attrs["axis"], "operand")
    return operand


_WINDOW = {"strides": "ints", "padding_low": "ints", "padding_high": "ints"}

define("conv", 2, conv_rule,
       attrs={**_WINDOW, "lhs_dilation": "ints", "rhs_dilation": "ints",
              "feature_group_count": "int"},
       doc="convolution (cross-correlation), lhs (N, *spatial, C), rhs (*window, C/groups, "
           "K) -> (N, *out, K); channels split into feature_group_count groups")
for _name in ("reduce_window_sum", "reduce_window_max"):
    define(_name, 1, reduce_window_rule, attrs={"window": "ints", **_WINDOW},
           doc=f"{_name[14:]} over a window sliding along every axis; padding reads the "
               "identity (max: padding >= 0)")
define("gather", 2, gather_rule, attrs={"axis": "int"},
       doc="result[p] = operand[p with axis replaced by clamp(indices[p], 0, n - 1)] "
           "(take_along_axis; out-of-range indices clamp)")
define("scatter_add", 3, scatter_add_rule, attrs={"axis": "int"},
       doc="operand with updates[p] added at [p with axis replaced by clamp(indices[p])]; "
           "duplicates accumulate")
