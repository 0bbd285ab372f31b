"""Convolution and pooling for `propc.nn`: `conv2d`, `max_pool2d`, `avg_pool2d`.

Activations are NHWC (batch, height, width, channels) and kernels HWIO (height,
width, input channels per group, output channels), as in SPEC.md. Each call resolves
its arguments (ints or pairs, "SAME"/"VALID"/explicit padding) into the explicit
attributes of one `conv` or `reduce_window_*` primitive (ir/ops_window.py).
"SAME" pads like jax.lax.conv_general_dilated: the output has ceil(size / stride)
positions and an odd total padding puts the extra element at the end.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ShapeError, TraceTypeError
from .promotion import result_type
from .tracing import Tensor, apply, cast, to_tensor, traceable, type_info


def _pair(value: Any, name: str, op: str) -> tuple[int, int]:
    """An int or a pair of ints, each >= 1."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or any(isinstance(v, (bool, np.bool_)) or
                              not isinstance(v, (int, np.integer)) or v < 1 for v in items):
        raise TraceTypeError(op, f"{name} must be an int >= 1 or a pair of them, got {value!r}")
    return int(items[0]), int(items[1])


def _same_padding(size: int, extent: int, stride: int) -> tuple[int, int]:
    """(low, high) giving ceil(size / stride) outputs; the odd element goes last."""
    out = -(-size // stride)
    total = max((out - 1) * stride + extent - size, 0)
    return total // 2, total - total // 2


def _padding(padding: Any, sizes, extents, strides, op: str) -> tuple[tuple[int, ...], ...]:
    """(low, high) per spatial axis from "SAME", "VALID", an int or ((t, b), (l, r))."""
    if isinstance(padding, str):
        mode = padding.upper()
        if mode == "VALID":
            return (0, 0), (0, 0)
        if mode == "SAME":
            return tuple(zip(*[_same_padding(s, e, st)
                               for s, e, st in zip(sizes, extents, strides)]))
    elif isinstance(padding, (int, np.integer)) and not isinstance(padding, bool) \
            and padding >= 0:
        return (int(padding),) * 2, (int(padding),) * 2
    elif isinstance(padding, (tuple, list)) and len(padding) == 2 and all(
            isinstance(p, (tuple, list)) and len(p) == 2 and all(
                isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0
                for v in p) for p in padding):
        (top, bottom), (left, right) = padding
        return (int(top), int(left)), (int(bottom), int(right))
    raise TraceTypeError(op, f"padding must be 'SAME', 'VALID', an int >= 0 or "
                         f"((top, bottom), (left, right)), got {padding!r}")


def _nhwc(x: Any, op: str, name: str = "x") -> Tensor:
    t = to_tensor(x, op)
    if t.ndim != 4:
        raise ShapeError(op, f"{name} {t.type} must be 4-d (N, H, W, C)")
    return t


@traceable
def conv2d(x: Any, w: Any, stride: Any = 1, padding: Any = "SAME", dilation: Any = 1,
           groups: int = 1) -> Tensor:
    """2-D convolution (cross-correlation, like every deep learning library): x of
    shape (N, H, W, C), w of (KH, KW, C // groups, K) -> (N, OH, OW, K). No bias."""
    infos = [type_info(v, "conv2d") for v in (x, w)]
    dtype, weak = result_type([(d, wk) for _, d, wk in infos])
    if not dtype.is_float:
        raise TraceTypeError("conv2d", f"needs float operands, got {infos[0][1]} and "
                             f"{infos[1][1]}", hint="convert with .astype(np.float32)")
    x, w = (cast(_nhwc(v, "conv2d", name), dtype) for v, name in ((x, "x"), (w, "w")))
    strides = _pair(stride, "stride", "conv2d")
    dilations = _pair(dilation, "dilation", "conv2d")
    if isinstance(groups, (bool, np.bool_)) or not isinstance(groups, (int, np.integer)) \
            or groups < 1:
        raise TraceTypeError("conv2d", f"groups must be an int >= 1, got {groups!r}")
    extents = [(k - 1) * d + 1 for k, d in zip(w.shape[:2], dilations)]
    low, high = _padding(padding, x.shape[1:3], extents, strides, "conv2d")
    return apply("conv", x, w, weak=weak, strides=strides, padding_low=low, padding_high=high,
                 lhs_dilation=(1, 1), rhs_dilation=dilations, feature_group_count=int(groups))


def _pool(kind: str, x: Any, window: Any, stride: Any, padding: Any, op: str) -> Tensor:
    x = _nhwc(x, op)
    windows = _pair(window, "window", op)
    strides = windows if stride is None else _pair(stride, "stride", op)
    low, high = _padding(padding, x.shape[1:3], windows, strides, op)
    return apply(f"reduce_window_{kind}", x, weak=x.weak, window=(1, *windows, 1),
                 strides=(1, *strides, 1), padding_low=(0, *low, 0),
                 padding_high=(0, *high, 0))


@traceable
def max_pool2d(x: Any, window: Any, stride: Any = None, padding: Any = "VALID") -> Tensor:
    """Max over window x window patches of NHWC x; stride defaults to the window;
    padding never wins (it reads -inf)."""
    return _pool("max", x, window, stride, padding, "max_pool2d")


@traceable
def avg_pool2d(x: Any, window: Any, stride: Any = None, padding: Any = "VALID") -> Tensor:
    """Mean over window patches of NHWC float x; with padding, the sum is still divided
    by the full window size."""
    t = _nhwc(x, "avg_pool2d")
    if not t.type.dtype.is_float:
        raise TraceTypeError("avg_pool2d", f"needs a float x, got {t.type}")
    total = _pool("sum", t, window, stride, padding, "avg_pool2d")
    height, width = _pair(window, "window", "avg_pool2d")
    return total / float(height * width)
