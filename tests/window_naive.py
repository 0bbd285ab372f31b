"""Naive loop references for conv and pooling, written from the textbook definitions
(dilate with zeros, pad or crop, slide the window) without any of propc's geometry
helpers; the tests of the window primitives compare against these."""
from __future__ import annotations

import numpy as np


def dilate_and_pad(x: np.ndarray, axes, dilation, low, high, fill) -> np.ndarray:
    """Insert dilation - 1 fill values between elements of `axes`, then pad (negative
    amounts crop) with fill."""
    for axis, d, lo, hi in zip(axes, dilation, low, high):
        size = x.shape[axis]
        shape = list(x.shape)
        shape[axis] = (size - 1) * d + 1 if size else 0
        spread = np.full(shape, fill, dtype=x.dtype)
        index = [slice(None)] * x.ndim
        index[axis] = slice(None, None, d)
        spread[tuple(index)] = x
        x = spread
        for amount, at_end in ((lo, False), (hi, True)):
            index = [slice(None)] * x.ndim
            if amount >= 0:
                widths = [(0, 0)] * x.ndim
                widths[axis] = (0, amount) if at_end else (amount, 0)
                x = np.pad(x, widths, constant_values=fill)
            else:
                index[axis] = slice(None, amount) if at_end else slice(-amount, None)
                x = x[tuple(index)]
    return x


def conv2d(x, w, stride=(1, 1), low=(0, 0), high=(0, 0), lhs_dilation=(1, 1),
           rhs_dilation=(1, 1), groups=1) -> np.ndarray:
    """x (N, H, W, C), w (KH, KW, C // groups, K): plain loops over every output
    element and every term of its sum."""
    xp = dilate_and_pad(x, (1, 2), lhs_dilation, low, high, 0)
    n, hp, wp, c = xp.shape
    kh, kw, cg, k = w.shape
    eh, ew = (kh - 1) * rhs_dilation[0] + 1, (kw - 1) * rhs_dilation[1] + 1
    oh, ow = (hp - eh) // stride[0] + 1, (wp - ew) // stride[1] + 1
    kg = k // groups
    out = np.zeros((n, oh, ow, k), dtype=np.float64)
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for f in range(k):
                    g = f // kg
                    total = 0.0
                    for a in range(kh):
                        for e in range(kw):
                            for ch in range(cg):
                                total += (float(xp[b, i * stride[0] + a * rhs_dilation[0],
                                                   j * stride[1] + e * rhs_dilation[1],
                                                   g * cg + ch]) * float(w[a, e, ch, f]))
                    out[b, i, j, f] = total
    return out.astype(x.dtype)


def pool(x, window, stride, low, high, kind: str) -> np.ndarray:
    """Max or sum over windows of any-rank x (padding: -inf / 0), by plain loops."""
    fill = -np.inf if kind == "max" else 0
    if x.dtype.kind == "i" and kind == "max":
        fill = np.iinfo(x.dtype).min
    xp = dilate_and_pad(x, range(x.ndim), (1,) * x.ndim, low, high, fill)
    out_shape = tuple((p - w) // s + 1 for p, w, s in zip(xp.shape, window, stride))
    out = np.zeros(out_shape, dtype=x.dtype)
    for position in np.ndindex(*out_shape):
        block = xp[tuple(slice(o * s, o * s + w) for o, s, w in zip(position, stride, window))]
        out[position] = block.max() if kind == "max" else block.sum()
    return out
