"""VJP rules: the reverse-mode derivative of every primitive, one registry entry each.

`VJP_RULES[prim](b, g, op, operands)` is called by `ir.passes.autodiff` while it
walks a graph backwards:
- `b` is the Builder of the joint graph (its current location is the op's own, so
  everything a rule emits carries the source line of the op it differentiates);
- `g` is the cotangent of the op's result (same type as `op.result`, never zero);
- `op` is the op as it stands in the joint graph, so `op.result` may be read as a
  residual (tanh, exp and sqrt use their output) and `op.attrs` holds its attributes;
- `operands` are `op.operands`, already values of the joint graph.
A rule returns one entry per operand: the cotangent to add to that operand, or None
for "no gradient". The autodiff pass drops entries for integer/bool operands and
for operands that do not depend on the differentiated inputs, so rules need not
check that themselves.

Conventions chosen here (and relied on by the tests):
- Ties: `max`/`min` send half the cotangent to each operand where they are equal;
  `reduce_max`/`reduce_min` split it equally among all the elements equal to the
  result (k tied elements get g/k each). The gradient is then the average of the
  one-sided derivatives, and sums of tied gradients stay exact.
- `abs` has derivative 0 at 0 (the sign function).
- `select` and the tie rules route cotangents with `select`, never by multiplying
  with a 0/1 mask, so an infinite or NaN value in an untaken branch cannot leak
  (0 * inf is NaN).
- `pow`: the x-derivative is 0 where y == 0 and the y-derivative is 0 where x == 0,
  so x ** 0 and 0 ** y do not produce 0 * inf.
- Linear ops register through `deflinear`: their transpose sees only the cotangent,
  the attributes and the operand types, never operand values, so they never need
  residuals. Non-differentiable primitives register through `defnondiff`.
(Rule-table design after JAX's `deflinear2` / per-primitive transpose rules, written
from scratch.)
"""
from __future__ import annotations

import math
from typing import Any, Callable

from ..builder import Builder
from ..graph import Op, Value
from ..registry import Registry
from ..types import TensorType

Cotangents = list["Value | None"]
VJPRule = Callable[[Builder, Value, Op, list[Value]], Cotangents]
LinearTranspose = Callable[[Builder, Value, dict[str, Any], list[TensorType]], Cotangents]

VJP_RULES: Registry = Registry("VJP rule")             # name -> VJPRule

FORWARD_RULES: Registry = Registry("forward rule")
"""Ops whose VJP needs values computed inside their own regions (scan's per-iteration
residuals): `FORWARD_RULES[prim](b, op, operands, wrt_active)` emits the op's
primal copy in the joint graph, returning `(results, saved)`; the op's VJP rule then
gets `saved=` (ir/passes/vjp_control.py fills both tables for the control-flow ops,
whose rules take the list of result cotangents as `g`)."""


register = VJP_RULES.register
"""Decorator: register one VJP rule for one or more primitives."""


def deflinear(name: str, transpose: LinearTranspose) -> None:
    """Register a linear primitive by its transpose, which reads no operand values."""
    register(name)(lambda b, g, op, operands: transpose(b, g, op.attrs,
                                                        [v.type for v in operands]))


def _no_gradient(b: Builder, g: Value, op: Op, operands: list[Value]) -> Cotangents:
    return [None] * len(operands)


def defnondiff(*names: str) -> None:
    """Register primitives whose operands never receive a cotangent."""
    register(*names)(_no_gradient)


def _full(b: Builder, like: Value, value: float) -> Value:
    """A constant of `like`'s type filled with `value`."""
    return b.full(like.shape, value, like.dtype)


def _kept_axes(ndim: int, reduced: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(axis for axis in range(ndim) if axis not in reduced)


# --------------------------------------------------------------------------------------
# non-differentiable primitives

defnondiff("lt", "le", "gt", "ge", "eq", "ne", "stop_gradient", "constant", "iota")


# --------------------------------------------------------------------------------------
# elementwise


@register("exp")
def _exp(b, g, op, operands):
    return [b.mul(g, op.result)]


@register("log")
def _log(b, g, op, operands):
    return [b.div(g, operands[0])]


@register("tanh")
def _tanh(b, g, op, operands):
    y = op.result
    return [b.mul(g, b.sub(_full(b, y, 1.0), b.mul(y, y)))]


@register("sqrt")
def _sqrt(b, g, op, operands):
    return [b.div(b.mul(g, _full(b, g, 0.5)), op.result)]


@register("sin")
def _sin(b, g, op, operands):
    return [b.mul(g, b.cos(operands[0]))]


@register("cos")
def _cos(b, g, op, operands):
    return [b.neg(b.mul(g, b.sin(operands[0])))]


@register("abs")
def _abs(b, g, op, operands):
    (x,) = operands
    zero = b.zeros(x.type)
    negative_side = b.select(b.lt(x, zero), b.neg(g), zero)
    return [b.select(b.gt(x, zero), g, negative_side)]


@register("mul")
def _mul(b, g, op, operands):
    x, y = operands
    return [b.mul(g, y), b.mul(x, g)]


@register("div")
def _div(b, g, op, operands):
    x, y = operands
    ct_x = b.div(g, y)
    return [ct_x, b.neg(b.mul(ct_x, op.result))]   # d(x/y)/dy = -(x/y)/y


@register("pow")
def _pow(b, g, op, operands):
    x, y = operands
    zero = b.zeros(x.type)
    power_rule = b.mul(y, b.pow(x, b.sub(y, _full(b, y, 1.0))))
    d_x = b.select(b.eq(y, zero), zero, power_rule)
    d_y = b.select(b.eq(x, zero), zero, b.mul(b.log(x), op.result))
    return [b.mul(g, d_x), b.mul(g, d_y)]


@register("max", "min")
def _extremum(b, g, op, operands):
    """The operand equal to the result gets g; on a tie each gets g/2."""
    x, y = operands
    x_hit = b.eq(x, op.result)
    y_hit = b.eq(y, op.result)
    half = b.mul(g, _full(b, g, 0.5))
    zero = _full(b, g, 0.0)
    return [b.select(x_hit, b.select(y_hit, half, g), zero),
            b.select(y_hit, b.select(x_hit, half, g), zero)]


@register("select")
def _select(b, g, op, operands):
    pred = operands[0]
    zero = _full(b, g, 0.0)
    return [None, b.select(pred, g, zero), b.select(pred, zero, g)]


def _convert_transpose(b, g, attrs, types):
    (source,) = types
    if not (source.dtype.is_float and g.dtype.is_float):
        return [None]
    return [b.convert(g, dtype=source.dtype)]


deflinear("neg", lambda b, g, attrs, types: [b.neg(g)])
deflinear("add", lambda b, g, attrs, types: [g, g])
deflinear("sub", lambda b, g, attrs, types: [g, b.neg(g)])
deflinear("convert", _convert_transpose)


# --------------------------------------------------------------------------------------
# shape ops


def _broadcast_transpose(b, g, attrs, types):
    """Sum over the axes the broadcast created or stretched, then restore size-1 axes."""
    (source,) = types
    shape, dims = attrs["shape"], attrs["dims"]
    summed = [axis for axis in range(len(shape)) if axis not in dims]
    summed += [d for i, d in enumerate(dims) if source.shape[i] == 1 and shape[d] != 1]
    ct = b.reduce_sum(g, axes=tuple(sorted(summed))) if summed else g
    if ct.shape != source.shape:
        ct = b.reshape(ct, shape=source.shape)
    return [ct]


def _transpose_transpose(b, g, attrs, types):
    inverse = [0] * len(attrs["perm"])
    for position, axis in enumerate(attrs["perm"]):
        inverse[axis] = position
    return [b.transpose(g, perm=tuple(inverse))]


def _slice_transpose(b, g, attrs, types):
    """Scatter back with pad: `start` before, stride-1 zeros between, the rest after."""
    (source,) = types
    high = []
    for low, stride, size, full in zip(attrs["start"], attrs["stride"], g.shape, source.shape):
        covered = (size - 1) * stride + 1 if size else 0
        high.append(full - low - covered)
    interior = tuple(stride - 1 for stride in attrs["stride"])
    if not any(attrs["start"] + tuple(high) + interior):
        return [g]                                    # the slice took everything
    return [b.pad(g, low=attrs["start"], high=tuple(high), interior=interior)]


def _pad_transpose(b, g, attrs, types):
    """Pick the operand's elements back out of the padded cotangent."""
    (source,) = types
    low, interior = attrs["low"], attrs["interior"]
    if not any(low + attrs["high"] + interior):
        return [g]                                    # the pad added nothing
    stop = tuple(lo + (size - 1) * (gap + 1) + 1 if size else lo
                 for lo, gap, size in zip(low, interior, source.shape))
    stride = tuple(gap + 1 for gap in interior)
    return [b.slice(g, start=low, stop=stop, stride=stride)]


def _concatenate_transpose(b, g, attrs, types):
    axis = attrs["axis"]
    cotangents, offset = [], 0
    for source in types:
        start = [0] * g.ndim
        stop = list(g.shape)
        start[axis], stop[axis] = offset, offset + source.shape[axis]
        cotangents.append(b.slice(g, start=tuple(start), stop=tuple(stop),
                                  stride=(1,) * g.ndim))
        offset += source.shape[axis]
    return cotangents


deflinear("broadcast_in_dim", _broadcast_transpose)
deflinear("reshape", lambda b, g, attrs, types: [b.reshape(g, shape=types[0].shape)])
deflinear("transpose", _transpose_transpose)
deflinear("slice", _slice_transpose)
deflinear("pad", _pad_transpose)
deflinear("rev", lambda b, g, attrs, types: [b.rev(g, dims=attrs["dims"])])
deflinear("concatenate", _concatenate_transpose)


# --------------------------------------------------------------------------------------
# reductions


def _reduce_sum_transpose(b, g, attrs, types):
    (source,) = types
    kept = _kept_axes(source.ndim, attrs["axes"])
    return [b.broadcast_in_dim(g, shape=source.shape, dims=kept)]


deflinear("reduce_sum", _reduce_sum_transpose)


@register("reduce_max", "reduce_min")
def _reduce_extremum(b, g, op, operands):
    """Elements equal to the result share its cotangent equally. A slice without
    hits (empty, or a NaN result) divides by 1, not 0: it routes nothing either
    way, and the rule stays finite when transposed (forward mode, propc/jvp.py)."""
    (x,) = operands
    axes = op.attrs["axes"]
    kept = _kept_axes(x.ndim, axes)
    hits = b.eq(x, b.broadcast_in_dim(op.result, shape=x.shape, dims=kept))
    count = b.max(b.reduce_sum(b.convert(hits, dtype=x.dtype), axes=axes), _full(b, g, 1.0))
    share = b.broadcast_in_dim(b.div(g, count), shape=x.shape, dims=kept)
    return [b.select(hits, share, b.zeros(x.type))]


@register("logsumexp")
def _logsumexp(b, g, op, operands):
    """g times softmax(x) = exp(x - result). Rows whose result is -inf (every
    element -inf) shift by 0 instead, giving exp(-inf) = 0, not exp(-inf + inf)."""
    (x,) = operands
    kept = _kept_axes(x.ndim, op.attrs["axes"])
    result = op.result
    empty = b.eq(result, _full(b, result, -math.inf))
    shift = b.select(empty, b.zeros(result.type), result)
    probabilities = b.exp(b.sub(x, b.broadcast_in_dim(shift, shape=x.shape, dims=kept)))
    return [b.mul(b.broadcast_in_dim(g, shape=x.shape, dims=kept), probabilities)]


# --------------------------------------------------------------------------------------
# dot


def _free_axes(ndim: int, batch: tuple[int, ...], contract: tuple[int, ...]) -> list[int]:
    return [axis for axis in range(ndim) if axis not in batch + contract]


def _dot_back(b: Builder, g: Value, other: Value, spec: dict[str, Any]) -> Value:
    """One dot of the result cotangent with the other operand, in the target's axis order.

    spec: g_batch/other_batch and g_contract/other_contract pair up axes;
    batch_target, g_free_target, other_free_target name the target axis each output
    axis of the dot becomes. Of the two operand orders, one that needs no transpose
    is used when there is one; otherwise the result is transposed.
    """
    batch = list(spec["batch_target"])
    orders = [
        ((g, other), (spec["g_batch"], spec["other_batch"]),
         (spec["g_contract"], spec["other_contract"]),
         batch + spec["g_free_target"] + spec["other_free_target"]),
        ((other, g), (spec["other_batch"], spec["g_batch"]),
         (spec["other_contract"], spec["g_contract"]),
         batch + spec["other_free_target"] + spec["g_free_target"]),
    ]
    identity = list(range(len(batch) + len(spec["g_free_target"])
                          + len(spec["other_free_target"])))
    chosen = next((order for order in orders if order[3] == identity), orders[0])
    (lhs, rhs), (lhs_batch, rhs_batch), (lhs_contract, rhs_contract), axes = chosen
    result = b.dot(lhs, rhs, lhs_batch=tuple(lhs_batch), rhs_batch=tuple(rhs_batch),
                   lhs_contract=tuple(lhs_contract), rhs_contract=tuple(rhs_contract))
    if axes == identity:
        return result
    return b.transpose(result, perm=tuple(axes.index(axis) for axis in identity))


@register("dot")
def _dot(b, g, op, operands):
    lhs, rhs = operands
    lb, rb = op.attrs["lhs_batch"], op.attrs["rhs_batch"]
    lc, rc = op.attrs["lhs_contract"], op.attrs["rhs_contract"]
    lf, rf = _free_axes(lhs.ndim, lb, lc), _free_axes(rhs.ndim, rb, rc)
    g_batch = list(range(len(lb)))
    g_lhs_free = list(range(len(lb), len(lb) + len(lf)))
    g_rhs_free = list(range(len(lb) + len(lf), g.ndim))
    ct_lhs = _dot_back(b, g, rhs, dict(
        g_batch=g_batch, other_batch=list(rb), g_contract=g_rhs_free, other_contract=rf,
        batch_target=lb, g_free_target=lf,
        other_free_target=[lc[rc.index(axis)] for axis in sorted(rc)]))
    ct_rhs = _dot_back(b, g, lhs, dict(
        g_batch=g_batch, other_batch=list(lb), g_contract=g_lhs_free, other_contract=lf,
        batch_target=rb, g_free_target=rf,
        other_free_target=[rc[lc.index(axis)] for axis in sorted(lc)]))
    return [ct_lhs, ct_rhs]
