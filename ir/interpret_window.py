"""NumPy implementations of the windowed and indexed primitives (conv,
reduce_window_sum/max, gather, scatter_add), registered into ir/interpret.py's table.

Windows are evaluated tap by tap: for each window offset, every output position's
operand element is found with index arithmetic (ir/ops_window.py's geometry) and
read with fancy indexing from the operand padded by one identity element at the end
of every windowed axis, which stands in for every position outside the operand.
"""
from __future__ import annotations

import itertools

import numpy as np

from .interpret import _lowest, _reduce_max, register
from .ops_window import dilated


def _tap_index(out_size: int, size: int, stride: int, tap: int, low: int,
               lhs_dilation: int) -> np.ndarray:
    """Operand index read by each output position at window position `tap` (already
    scaled by the rhs dilation); `size` (the identity slot) where there is none."""
    position = np.arange(out_size) * stride + tap - low
    inside = (position >= 0) & (position % lhs_dilation == 0) & (
        position < dilated(size, lhs_dilation))
    return np.where(inside, position // lhs_dilation, size)


def _taps(x: np.ndarray, axes: list[int], out_sizes, windows, attrs: dict, fill):
    """Yield (window offset, values) for every window offset: values has x's shape with
    each axis in `axes` replaced by its output size."""
    pad = [(0, 1) if a in axes else (0, 0) for a in range(x.ndim)]
    padded = np.pad(x, pad, constant_values=fill) if x.ndim else x
    n = len(axes)
    lhs_dil = attrs.get("lhs_dilation", (1,) * n)
    rhs_dil = attrs.get("rhs_dilation", (1,) * n)
    for offset in itertools.product(*(range(w) for w in windows)):
        index = [slice(None)] * x.ndim
        for k, axis in enumerate(axes):
            line = _tap_index(out_sizes[k], x.shape[axis], attrs["strides"][k],
                              offset[k] * rhs_dil[k], attrs["padding_low"][k], lhs_dil[k])
            shape = [1] * n
            shape[k] = out_sizes[k]
            index[axis] = line.reshape(shape)
        # advanced indices on consecutive axes keep their place in the result
        yield offset, padded[tuple(index)]


@register("conv")
def _conv(attrs, lhs, rhs):
    spatial = lhs.ndim - 2
    groups = attrs["feature_group_count"]
    out_features = rhs.shape[-1]
    out_sizes = _out_sizes(attrs, lhs.shape[1:-1], rhs.shape[:spatial])
    batch = lhs.shape[0]
    result = np.zeros((batch, *out_sizes, groups, out_features // groups), dtype=lhs.dtype)
    for offset, values in _taps(lhs, list(range(1, spatial + 1)), out_sizes,
                                rhs.shape[:spatial], attrs, 0):
        patch = values.reshape(values.shape[:-1] + (groups, lhs.shape[-1] // groups))
        kernel = rhs[offset].reshape(rhs.shape[-2], groups, -1)
        result += np.einsum("...gc,cgk->...gk", patch, kernel)
    return result.reshape(batch, *out_sizes, out_features)


def _out_sizes(attrs: dict, sizes, windows) -> list[int]:
    from .ops_window import window_output_size
    n = len(sizes)
    lhs_dil = attrs.get("lhs_dilation", (1,) * n)
    rhs_dil = attrs.get("rhs_dilation", (1,) * n)
    return [window_output_size(size, window, attrs["strides"][k], attrs["padding_low"][k],
                               attrs["padding_high"][k], lhs_dil[k], rhs_dil[k])
            for k, (size, window) in enumerate(zip(sizes, windows))]


@register("reduce_window_sum")
def _reduce_window_sum(attrs, x):
    out_sizes = _out_sizes(attrs, x.shape, attrs["window"])
    total = np.zeros(out_sizes, dtype=x.dtype)
    for _, values in _taps(x, list(range(x.ndim)), out_sizes, attrs["window"], attrs, 0):
        total += values
    return total


@register("reduce_window_max")
def _reduce_window_max(attrs, x):
    """The taps stacked on a new last axis and reduced like reduce_max (NaN wins,
    -0.0 < +0.0)."""
    out_sizes = _out_sizes(attrs, x.shape, attrs["window"])
    taps = [values for _, values in _taps(x, list(range(x.ndim)), out_sizes, attrs["window"],
                                          attrs, _lowest(x.dtype))]
    stacked = np.stack(taps, axis=-1)
    return _reduce_max({"axes": (x.ndim,)}, stacked)


def _positions(indices: np.ndarray, size: int, axis: int) -> tuple:
    """The full index tuple of each element of `indices`, its axis clamped."""
    grid = list(np.indices(indices.shape, sparse=True))
    grid[axis] = np.clip(indices, 0, max(size - 1, 0))
    return tuple(grid)


@register("gather")
def _gather(attrs, operand, indices):
    if indices.size == 0:
        return np.zeros(indices.shape, dtype=operand.dtype)
    return operand[_positions(indices, operand.shape[attrs["axis"]], attrs["axis"])]


@register("scatter_add")
def _scatter_add(attrs, operand, indices, updates):
    result = operand.copy()
    if indices.size:
        np.add.at(result, _positions(indices, operand.shape[attrs["axis"]], attrs["axis"]),
                  updates)
    return result
