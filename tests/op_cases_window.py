"""OP_CASES rows of the windowed and indexed primitives (conv, reduce_window_sum/max,
gather, scatter_add), appended to tests/op_cases.py's table.

References are independent of propc: conv and pooling are tests/window_naive.py's
plain loops over the textbook definition (dilate with zeros, pad or crop, slide);
gather and scatter_add loop over every index, clamping it to the axis, and
scatter_add accumulates duplicates one update at a time. Index operands repeat
values and come as int32 or int64.
"""
from __future__ import annotations

import numpy as np

from ir import DType
from window_naive import conv2d, pool

F32, F64, I32, I64, BOOL = DType.f32, DType.f64, DType.i32, DType.i64, DType.bool


def conv_attrs(strides, low, high, lhs_dilation=None, rhs_dilation=None, groups=1) -> dict:
    n = len(strides)
    return dict(strides=strides, padding_low=low, padding_high=high,
                lhs_dilation=lhs_dilation or (1,) * n, rhs_dilation=rhs_dilation or (1,) * n,
                feature_group_count=groups)


CONV_ROWS = [
    ("general", [(2, 5, 6, 3), (3, 3, 3, 4)], conv_attrs((1, 1), (1, 1), (1, 1))),
    ("strided", [(1, 7, 5, 4), (2, 3, 2, 6)],
     conv_attrs((2, 2), (0, 1), (1, 0), rhs_dilation=(2, 1), groups=2)),
    ("lhsdil", [(2, 4, 3, 2), (3, 2, 2, 3)],
     conv_attrs((1, 2), (2, -1), (1, 2), lhs_dilation=(2, 3))),
    ("1d", [(2, 9, 3), (3, 3, 5)], conv_attrs((2,), (1,), (2,))),
    ("empty", [(0, 4, 4, 2), (3, 3, 2, 2)], conv_attrs((1, 1), (1, 1), (1, 1))),
]


def window_attrs(window, strides, low, high) -> dict:
    return dict(window=window, strides=strides, padding_low=low, padding_high=high)


POOL_ROWS = [
    ("0d", [()], window_attrs((), (), (), ())),
    ("general", [(2, 5, 7)], window_attrs((1, 2, 3), (1, 2, 2), (0, 1, 1), (0, 0, 1))),
    ("nhwc", [(2, 4, 4, 3)], window_attrs((1, 2, 2, 1), (1, 2, 2, 1), (0,) * 4, (0,) * 4)),
    ("empty", [(0, 3)], window_attrs((1, 2), (1, 1), (0, 0), (0, 0))),
]

# (shape class, operand shape, index shape, axis, index dtype)
GATHER_ROWS = [
    ("general", (3, 5), (3, 4), 1, I64),
    ("axis0", (4, 3), (6, 3), 0, I32),
    ("empty", (3, 5), (3, 0), 1, I32),
]


def _conv_reference(attrs):
    """The naive 2-D loops; 1-D convs run as 2-D ones with height 1."""
    def reference(x, w):
        if x.ndim == 4:
            return conv2d(x, w, attrs["strides"], attrs["padding_low"], attrs["padding_high"],
                          attrs["lhs_dilation"], attrs["rhs_dilation"],
                          attrs["feature_group_count"])
        one = dict(stride=(1,) + attrs["strides"], low=(0,) + attrs["padding_low"],
                   high=(0,) + attrs["padding_high"], lhs_dilation=(1,) + attrs["lhs_dilation"],
                   rhs_dilation=(1,) + attrs["rhs_dilation"], groups=attrs["feature_group_count"])
        return conv2d(x[:, None], w[None], **one)[:, 0]
    return reference


def _pool_reference(attrs, kind):
    return lambda x: pool(x, attrs["window"], attrs["strides"], attrs["padding_low"],
                          attrs["padding_high"], kind)


def _clamped_position(position, index, axis, size):
    full = list(position)
    full[axis] = min(max(int(index), 0), size - 1)
    return tuple(full)


def gather_reference(axis):
    def reference(operand, indices):
        out = np.zeros(indices.shape, dtype=operand.dtype)
        for position in np.ndindex(*indices.shape):
            out[position] = operand[_clamped_position(position, indices[position], axis,
                                                      operand.shape[axis])]
        return out
    return reference


def scatter_add_reference(axis):
    def reference(operand, indices, updates):
        out = operand.copy()
        for position in np.ndindex(*indices.shape):
            target = _clamped_position(position, indices[position], axis, operand.shape[axis])
            out[target] = out[target] + updates[position]
        return out
    return reference


def index_fill(dtype: DType, axis: int, index_dtype: DType, random_array):
    """Operand (and updates) of dtype; indices in range, repeats included. (Out-of-range
    indices clamp, but debug builds, which run these rows too, stop on them: the
    clamping has its own tests, tests/codegen/test_gather_codegen.py and
    tests/frontend/test_numpy_extra.py.)"""
    def fill(rng, shapes):
        size = shapes[0][axis]
        arrays = [random_array(rng, shapes[0], dtype),
                  np.asarray(rng.integers(0, max(size, 1), size=shapes[1]),
                             dtype=index_dtype.numpy)]
        arrays += [random_array(rng, shape, dtype) for shape in shapes[2:]]
        return arrays
    return fill


def window_cases(OpCase, fill_with, random_array) -> list:
    """Every row of the five primitives (OpCase and the fill helpers come from
    tests/op_cases.py, which imports this module)."""
    rows = []
    for dtype in (F32, F64):
        for name, shapes, attrs in CONV_ROWS:
            rows.append(OpCase("conv", dtype, name, tuple(shapes), attrs, fill_with(dtype),
                               _conv_reference(attrs), exact=False))
    for prim in ("reduce_window_sum", "reduce_window_max"):
        kind = prim[14:]
        for dtype in (F32, F64, I32, I64):
            for name, shapes, attrs in POOL_ROWS:
                rows.append(OpCase(prim, dtype, name, tuple(shapes), attrs, fill_with(dtype),
                                   _pool_reference(attrs, kind),
                                   exact=not (dtype.is_float and kind == "sum")))
    for dtype in (F32, F64, I32, I64, BOOL):
        for name, operand, indices, axis, index_dtype in GATHER_ROWS:
            rows.append(OpCase("gather", dtype, name, (operand, indices), dict(axis=axis),
                               index_fill(dtype, axis, index_dtype, random_array),
                               gather_reference(axis), variant=index_dtype.value))
    for dtype in (F32, F64, I32, I64):
        for name, operand, indices, axis, index_dtype in GATHER_ROWS:
            rows.append(OpCase("scatter_add", dtype, name, (operand, indices, indices),
                               dict(axis=axis), index_fill(dtype, axis, index_dtype, random_array),
                               scatter_add_reference(axis), exact=not dtype.is_float,
                               variant=index_dtype.value))
    return rows
