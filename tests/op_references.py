"""Independent NumPy references for every primitive, used by tests/op_cases.py.

Written without `ir.interpret`: elementwise ops loop over Python scalars (math.exp,
floor division with x // 0 == 0, NaN-propagating max/min), shape ops assign element
by element, reductions accumulate one element at a time starting from the identity
(the dtype's lowest value for max), and dot is np.einsum with a subscript string
built from its attributes.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ir import DType

BOOL = DType.bool



def _per_element(fn: Callable, out: np.dtype) -> Callable[..., np.ndarray]:
    """Apply a Python-scalar function element by element; cast once to `out`."""
    def reference(*arrays):
        values = [fn(*items) for items in zip(*(a.ravel().tolist() for a in arrays))]
        return np.array(values, dtype=out).reshape(arrays[0].shape)
    return reference


def _nan_max(a, b):
    if isinstance(a, float) and (math.isnan(a) or math.isnan(b)):
        return math.nan
    return a if a >= b else b


def _nan_min(a, b):
    if isinstance(a, float) and (math.isnan(a) or math.isnan(b)):
        return math.nan
    return a if a <= b else b


def _int_floor_div(a, b):
    return 0 if b == 0 else a // b


def _float_div(a, b):
    if b != 0:
        return a / b
    if a == 0 or math.isnan(a):
        return math.nan
    return math.copysign(math.inf, a) * math.copysign(1.0, b)


def _float_pow(a, b):
    """IEEE pow: 0**0 == 1, 0**negative == inf, negative**fraction == nan."""
    try:
        return math.pow(a, b)
    except ValueError:
        return math.inf if a == 0 else math.nan
    except OverflowError:
        return math.inf


SCALAR_FUNCTIONS: dict[str, Callable] = {
    "exp": math.exp, "log": math.log, "tanh": math.tanh, "sqrt": math.sqrt,
    "sin": math.sin, "cos": math.cos, "neg": lambda a: -a, "abs": lambda a: -a if a < 0 else a,
    "stop_gradient": lambda a: a, "add": lambda a, b: a + b, "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b, "max": _nan_max, "min": _nan_min,
    "pow": _float_pow,
    "lt": lambda a, b: a < b, "le": lambda a, b: a <= b, "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b, "eq": lambda a, b: a == b, "ne": lambda a, b: a != b,
    "select": lambda p, t, f: t if p else f,
}
COMPARISONS = ("lt", "le", "gt", "ge", "eq", "ne")
TRANSCENDENTAL = ("exp", "log", "tanh", "sqrt", "sin", "cos", "pow")


def _convert_scalar(target: DType) -> Callable:
    if target is BOOL:
        return lambda a: a != 0
    if target.is_int:
        return lambda a: int(a)          # truncates toward zero, like astype
    return lambda a: float(a)


def _lowest(dtype: np.dtype):
    """Start of a max over an empty axis: the dtype's lowest value."""
    if dtype.kind == "f":
        return -math.inf
    if dtype.kind == "b":
        return False
    return int(np.iinfo(dtype).min)


def _highest(dtype: np.dtype):
    """Start of a min over an empty axis: the dtype's highest value."""
    if dtype.kind == "f":
        return math.inf
    if dtype.kind == "b":
        return True
    return int(np.iinfo(dtype).max)


def _reduce_reference(attrs, combine: Callable, start: Callable):
    """Accumulate element by element into the kept-axes index (empty axes: `start`)."""
    axes = attrs["axes"]

    def reference(x):
        out_shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
        out = np.full(out_shape, start(x.dtype), dtype=x.dtype)
        for index in np.ndindex(*x.shape):
            kept = tuple(i for axis, i in enumerate(index) if axis not in axes)
            out[kept] = combine(out[kept].item(), x[index].item())
        return out
    return reference


def _logsumexp_reference(attrs):
    """Per kept index: the elements' values in float64, then max + log(fsum(exp(v - max)))
    (no elements or all -inf: -inf; any NaN: NaN; any +inf: inf)."""
    axes = attrs["axes"]

    def combine(values: list[float]) -> float:
        if any(math.isnan(v) for v in values):
            return math.nan
        if not values or all(v == -math.inf for v in values):
            return -math.inf
        top = max(values)
        if top == math.inf:
            return math.inf
        return top + math.log(math.fsum(math.exp(v - top) for v in values))

    def reference(x):
        out_shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
        groups: dict[tuple, list[float]] = {index: [] for index in np.ndindex(*out_shape)}
        for index in np.ndindex(*x.shape):
            groups[tuple(i for axis, i in enumerate(index) if axis not in axes)].append(
                float(x[index]))
        out = np.empty(out_shape, dtype=x.dtype)
        for kept, values in groups.items():
            out[kept] = combine(values)
        return out
    return reference


def _dot_reference(attrs):
    """np.einsum with letters: batch letters shared, contracted letters shared."""
    def reference(lhs, rhs):
        letters = iter("abcdefghijklmnopqrstuvwxyz")
        lhs_sub = [""] * lhs.ndim
        rhs_sub = [""] * rhs.ndim
        for l_axis, r_axis in zip(attrs["lhs_batch"] + attrs["lhs_contract"],
                                  attrs["rhs_batch"] + attrs["rhs_contract"]):
            lhs_sub[l_axis] = rhs_sub[r_axis] = next(letters)
        lhs_free = [i for i, s in enumerate(lhs_sub) if not s]
        rhs_free = [i for i, s in enumerate(rhs_sub) if not s]
        for i in lhs_free:
            lhs_sub[i] = next(letters)
        for i in rhs_free:
            rhs_sub[i] = next(letters)
        out = ("".join(lhs_sub[a] for a in attrs["lhs_batch"])
               + "".join(lhs_sub[i] for i in lhs_free) + "".join(rhs_sub[i] for i in rhs_free))
        spec = f"{''.join(lhs_sub)},{''.join(rhs_sub)}->{out}"
        return np.asarray(np.einsum(spec, lhs, rhs), dtype=lhs.dtype)
    return reference


def _broadcast_reference(attrs):
    def reference(x):
        new_axes = tuple(i for i in range(len(attrs["shape"])) if i not in attrs["dims"])
        return np.broadcast_to(np.expand_dims(x, new_axes), attrs["shape"]).copy()
    return reference


def _reshape_reference(attrs):
    def reference(x):
        out = np.empty(attrs["shape"], dtype=x.dtype)
        out.flat[:] = x.ravel().tolist()
        return out
    return reference


def _transpose_reference(attrs):
    perm = attrs["perm"]

    def reference(x):
        out = np.empty(tuple(x.shape[p] for p in perm), dtype=x.dtype)
        for index in np.ndindex(*out.shape):
            source = [0] * x.ndim
            for out_axis, p in enumerate(perm):
                source[p] = index[out_axis]
            out[index] = x[tuple(source)]
        return out
    return reference


def _slice_reference(attrs):
    start, stop, stride = attrs["start"], attrs["stop"], attrs["stride"]

    def reference(x):
        shape = tuple(len(range(lo, hi, st)) for lo, hi, st in zip(start, stop, stride))
        out = np.empty(shape, dtype=x.dtype)
        for index in np.ndindex(*shape):
            out[index] = x[tuple(lo + i * st for lo, i, st in zip(start, index, stride))]
        return out
    return reference


def _rev_reference(attrs):
    dims = attrs["dims"]

    def reference(x):
        out = np.empty_like(x)
        for index in np.ndindex(*x.shape):
            source = tuple(x.shape[a] - 1 - i if a in dims else i for a, i in enumerate(index))
            out[index] = x[source]
        return out
    return reference


def _pad_reference(attrs):
    low, high, interior = attrs["low"], attrs["high"], attrs["interior"]

    def reference(x):
        shape = tuple(lo + hi + (d + (d - 1) * it if d else 0)
                      for lo, hi, it, d in zip(low, high, interior, x.shape))
        out = np.zeros(shape, dtype=x.dtype)
        for index in np.ndindex(*x.shape):
            out[tuple(lo + i * (it + 1) for lo, i, it in zip(low, index, interior))] = x[index]
        return out
    return reference


def _concatenate_reference(attrs):
    axis = attrs["axis"]

    def reference(*xs):
        shape = list(xs[0].shape)
        shape[axis] = sum(x.shape[axis] for x in xs)
        out = np.empty(shape, dtype=xs[0].dtype)
        offset = 0
        for x in xs:
            for index in np.ndindex(*x.shape):
                target = list(index)
                target[axis] += offset
                out[tuple(target)] = x[index]
            offset += x.shape[axis]
        return out
    return reference


def reference_for(prim: str, attrs: dict[str, Any], dtype: DType) -> Callable[..., np.ndarray]:
    """The independent reference of `prim` with `attrs` for operands of `dtype`."""
    if prim in SCALAR_FUNCTIONS:
        out = BOOL if prim in COMPARISONS else dtype
        return _per_element(SCALAR_FUNCTIONS[prim], out.numpy)
    if prim == "div":
        return _per_element(_float_div if dtype.is_float else _int_floor_div, dtype.numpy)
    if prim == "convert":
        return _per_element(_convert_scalar(attrs["dtype"]), attrs["dtype"].numpy)
    builders = {
        "broadcast_in_dim": _broadcast_reference, "reshape": _reshape_reference,
        "transpose": _transpose_reference, "slice": _slice_reference, "rev": _rev_reference, "pad": _pad_reference,
        "concatenate": _concatenate_reference, "dot": _dot_reference,
        "reduce_sum": lambda a: _reduce_reference(a, lambda u, v: u + v, lambda d: 0),
        "reduce_max": lambda a: _reduce_reference(a, _nan_max, _lowest),
        "reduce_min": lambda a: _reduce_reference(a, _nan_min, _highest),
        "logsumexp": _logsumexp_reference,
        "constant": lambda a: (lambda: np.array(a["value"], copy=True)),
        "iota": lambda a: (lambda: np.indices(a["shape"], dtype=a["dtype"].numpy)[a["dimension"]]),
    }
    return builders[prim](attrs)
