"""VJP rules of the windowed and indexed primitives, registered into
ir/passes/vjp_rules.py's table.

- `conv`: both cotangents are convs again (the design of JAX's conv transposes,
  derived here for the fixed (N, *spatial, C) x (*window, C/groups, K) layout), so
  grad of grad works. The input cotangent convolves the cotangent, dilated by the
  strides, with the spatially reversed kernel whose in/out features are swapped per
  group. The kernel cotangent convolves the input, channels taken as the batch, with
  the cotangent as the kernel (batch as its input features). With groups > 1 that
  conv pairs every channel with every feature and the rule keeps the pairs of the
  same group (a select with a block-diagonal mask): G times the work of the
  grouped product, which stays correct and keeps every rule a plain conv.
- `reduce_window_sum` is linear: its transpose is a reduce_window_sum of the
  cotangent dilated by the strides.
- `reduce_window_max`: positions equal to their window's max share its cotangent
  equally (reduce_max's tie rule). Windows that tile the operand (stride = window,
  no padding) do it with reshapes and broadcasts that fuse into one loop; other
  windows go per window offset, routed back with the transposes of pad and slice.
- `gather` / `scatter_add`: each other's transposes; duplicate indices accumulate.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..ops_window import dilated
from ..types import DType
from .vjp_rules import _full, _pad_transpose, _slice_transpose, register


def _zero_sized(*values) -> bool:
    return any(v.type.size == 0 for v in values)


def _conv_lhs_cotangent(b, g, x_type, w, attrs):
    """Cotangent of the conv input: a conv of g with the reversed, regrouped kernel."""
    n = len(attrs["strides"])
    groups = attrs["feature_group_count"]
    window = w.shape[:n]
    per_group, features = w.shape[n], w.shape[n + 1]
    kernel = b.rev(w, dims=tuple(range(n)))
    kernel = b.reshape(kernel, shape=(*window, per_group, groups, features // groups))
    kernel = b.transpose(kernel, perm=(*range(n), n + 2, n + 1, n))
    kernel = b.reshape(kernel, shape=(*window, features // groups, per_group * groups))
    low, high = [], []
    for k in range(n):
        extent = dilated(window[k], attrs["rhs_dilation"][k])
        before = extent - 1 - attrs["padding_low"][k]
        size = x_type.shape[1 + k]
        low.append(before)
        high.append((size - 1) * attrs["lhs_dilation"][k] + extent - before
                    - dilated(g.shape[1 + k], attrs["strides"][k]))
    return b.conv(g, kernel, strides=attrs["lhs_dilation"], padding_low=tuple(low),
                  padding_high=tuple(high), lhs_dilation=attrs["strides"],
                  rhs_dilation=attrs["rhs_dilation"], feature_group_count=groups)


def _conv_rhs_cotangent(b, g, x, w_type, attrs):
    """Cotangent of the kernel: channels of x as the batch, g as the kernel."""
    n = len(attrs["strides"])
    groups = attrs["feature_group_count"]
    window = w_type.shape[:n]
    lhs = b.transpose(x, perm=(n + 1, *range(1, n + 1), 0))
    rhs = b.transpose(g, perm=(*range(1, n + 1), 0, n + 1))
    high = tuple((window[k] - 1) * attrs["rhs_dilation"][k]
                 + dilated(g.shape[1 + k], attrs["strides"][k]) - attrs["padding_low"][k]
                 - dilated(x.shape[1 + k], attrs["lhs_dilation"][k]) for k in range(n))
    pairs = b.conv(lhs, rhs, strides=attrs["rhs_dilation"], padding_low=attrs["padding_low"],
                   padding_high=high, lhs_dilation=attrs["lhs_dilation"],
                   rhs_dilation=attrs["strides"], feature_group_count=1)
    channels, features = x.shape[-1], w_type.shape[-1]
    if groups > 1:   # keep the (channel, feature) pairs of one group
        split = (groups, channels // groups, *window, groups, features // groups)
        pairs = b.reshape(pairs, shape=split)
        same = b.emit("constant", value=np.eye(groups, dtype=bool))
        mask = b.broadcast_in_dim(same, shape=split, dims=(0, n + 2))
        pairs = b.reduce_sum(b.select(mask, pairs, b.zeros(pairs.type)), axes=(0,))
        pairs = b.reshape(pairs, shape=(channels // groups, *window, features))
    return b.transpose(pairs, perm=(*range(1, n + 1), 0, n + 1))


@register("conv")
def _conv_vjp(b, g, op, operands):
    x, w = operands
    if _zero_sized(x, w, g):
        return [b.zeros(x.type), b.zeros(w.type)]
    return [_conv_lhs_cotangent(b, g, x.type, w, op.attrs),
            _conv_rhs_cotangent(b, g, x, w.type, op.attrs)]


@register("reduce_window_sum")
def _reduce_window_sum_vjp(b, g, op, operands):
    """Each operand element collects the cotangents of the windows that cover it."""
    (x,) = operands
    attrs = op.attrs
    if _zero_sized(x, g):
        return [b.zeros(x.type)]
    strides = attrs["strides"]
    if any(s > 1 for s in strides):
        g = b.pad(g, low=(0,) * g.ndim, high=(0,) * g.ndim,
                  interior=tuple(s - 1 for s in strides))
    low = tuple(w - 1 - p for w, p in zip(attrs["window"], attrs["padding_low"]))
    high = tuple(size + p - spread for size, p, spread
                 in zip(x.shape, attrs["padding_low"], g.shape))
    return [b.reduce_window_sum(g, window=attrs["window"], strides=(1,) * x.ndim,
                                padding_low=low, padding_high=high)]


def _tiles(x, attrs) -> bool:
    """Windows that tile the operand exactly: stride = window, no padding, every
    size a multiple of its window (a pool's usual case)."""
    return (attrs["window"] == attrs["strides"] and not any(attrs["padding_low"])
            and not any(attrs["padding_high"])
            and all(size % w == 0 for size, w in zip(x.shape, attrs["window"])))


def _tiled_max_vjp(b, g, op, x):
    """The tiling case with views only: x as (out, window) pairs per axis, the max and
    its cotangent broadcast over each window, ties sharing equally."""
    window = op.attrs["window"]
    split = tuple(d for out, w in zip(g.shape, window) for d in (out, w))
    outer = tuple(range(0, 2 * x.ndim, 2))
    inner = tuple(range(1, 2 * x.ndim, 2))
    blocks = b.reshape(x, shape=split)
    hit = b.eq(blocks, b.broadcast_in_dim(op.result, shape=split, dims=outer))
    count = b.reduce_sum(b.convert(hit, dtype=g.dtype), axes=inner)
    share = b.broadcast_in_dim(b.div(g, count), shape=split, dims=outer)
    routed = b.select(hit, share, b.zeros(share.type))
    return [b.reshape(routed, shape=x.shape)]


@register("reduce_window_max")
def _reduce_window_max_vjp(b, g, op, operands):
    """Positions equal to their window's max share its cotangent equally."""
    (x,) = operands
    attrs = op.attrs
    if _zero_sized(x, g):
        return [b.zeros(x.type)]
    if _tiles(x, attrs):
        return _tiled_max_vjp(b, g, op, x)
    rank = x.ndim
    pad = dict(low=attrs["padding_low"], high=attrs["padding_high"], interior=(0,) * rank)
    padded = b.pad(x, **pad)
    valid = b.pad(b.full(x.shape, True, DType.bool), **pad)
    stride = attrs["strides"]
    taps = []
    for offset in itertools.product(*(range(w) for w in attrs["window"])):
        window = dict(start=offset, stride=stride, stop=tuple(
            o + (n - 1) * s + 1 for o, n, s in zip(offset, g.shape, stride)))
        hit = b.select(b.slice(valid, **window), b.eq(b.slice(padded, **window), op.result),
                       b.slice(valid, **window))
        taps.append((window, hit))
    count = None
    for _, hit in taps:
        one = b.convert(hit, dtype=g.dtype)
        count = one if count is None else b.add(count, one)
    share = b.div(g, count)
    zero = _full(b, g, 0.0)
    total = None
    for window, hit in taps:
        (part,) = _slice_transpose(b, b.select(hit, share, zero), window, [padded.type])
        total = part if total is None else b.add(total, part)
    return _pad_transpose(b, total, pad, [x.type])


@register("gather")
def _gather_vjp(b, g, op, operands):
    operand, indices = operands
    return [b.scatter_add(b.zeros(operand.type), indices, g, axis=op.attrs["axis"]), None]


@register("scatter_add")
def _scatter_add_vjp(b, g, op, operands):
    _, indices, _ = operands
    return [g, None, b.gather(g, indices, axis=op.attrs["axis"])]
