"""The NumPy interpreter: the reference semantics of every primitive.

`IMPLS` maps each primitive name to `impl(attrs, *operands) -> ndarray`. Results keep
the graph's dtypes exactly (float32 stays float32): every implementation casts its
result to the op's result dtype, and 0-d results are arrays, not NumPy scalars.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .errors import InterpretError
from .graph import Graph, Op, Value
from .registry import Registry
from .types import DType

Impl = Callable[..., np.ndarray]
IMPLS: Registry = Registry("interpreter")              # name -> Impl

register = IMPLS.register
"""Decorator: register one implementation for one or more primitives."""


def _unary(np_fn):
    return lambda attrs, x: np_fn(x)


def _binary(np_fn):
    return lambda attrs, x, y: np_fn(x, y)


for _name, _fn in {"exp": np.exp, "log": np.log, "tanh": np.tanh, "sqrt": np.sqrt,
                   "sin": np.sin, "cos": np.cos, "neg": np.negative, "abs": np.abs}.items():
    register(_name)(_unary(_fn))

for _name, _fn in {"add": np.add, "sub": np.subtract, "mul": np.multiply,
                   "max": np.maximum, "min": np.minimum, "pow": np.power,
                   "lt": np.less, "le": np.less_equal, "gt": np.greater,
                   "ge": np.greater_equal, "eq": np.equal, "ne": np.not_equal}.items():
    register(_name)(_binary(_fn))


@register("stop_gradient")
def _identity(attrs, x):
    return x.copy()


@register("div")
def _div(attrs, x, y):
    if x.dtype.kind == "f":
        return np.true_divide(x, y)
    safe = np.where(y == 0, 1, y)
    return np.where(y == 0, 0, np.floor_divide(x, safe))


@register("select")
def _select(attrs, pred, on_true, on_false):
    return np.where(pred, on_true, on_false)


@register("convert")
def _convert(attrs, x):
    return x.astype(attrs["dtype"].numpy)


@register("broadcast_in_dim")
def _broadcast_in_dim(attrs, x):
    shape, dims = attrs["shape"], attrs["dims"]
    expanded = [1] * len(shape)
    for i, d in enumerate(dims):
        expanded[d] = x.shape[i]
    return np.broadcast_to(x.reshape(expanded), shape).copy()


@register("reshape")
def _reshape(attrs, x):
    return x.reshape(attrs["shape"])


@register("transpose")
def _transpose(attrs, x):
    return np.transpose(x, attrs["perm"])


@register("slice")
def _slice(attrs, x):
    index = tuple(slice(lo, hi, st) for lo, hi, st in
                  zip(attrs["start"], attrs["stop"], attrs["stride"]))
    return x[index]


@register("rev")
def _rev(attrs, x):
    return np.flip(x, axis=attrs["dims"]).copy()


@register("pad")
def _pad(attrs, x):
    low, high, interior = attrs["low"], attrs["high"], attrs["interior"]
    shape = [lo + hi + d + max(d - 1, 0) * it for lo, hi, it, d in zip(low, high, interior, x.shape)]
    out = np.zeros(shape, dtype=x.dtype)
    index = tuple(slice(lo, lo + (d - 1) * (it + 1) + 1 if d else lo, it + 1)
                  for lo, it, d in zip(low, interior, x.shape))
    out[index] = x
    return out


@register("concatenate")
def _concatenate(attrs, *xs):
    return np.concatenate(xs, axis=attrs["axis"])


@register("reduce_sum")
def _reduce_sum(attrs, x):
    return np.sum(x, axis=attrs["axes"], dtype=x.dtype)


def _lowest(dtype: np.dtype):
    if dtype.kind == "f":
        return -np.inf
    if dtype.kind == "b":
        return False
    return np.iinfo(dtype).min


def _highest(dtype: np.dtype):
    if dtype.kind == "f":
        return np.inf
    if dtype.kind == "b":
        return True
    return np.iinfo(dtype).max


def _order_zeros(result: np.ndarray, x: np.ndarray, axes: tuple[int, ...],
                 negative_wins: bool) -> np.ndarray:
    """Settle a -0.0/+0.0 tie of a float max/min reduction the IEEE 754-2019 way
    (-0.0 < +0.0): a zero max is +0.0 if any reduced element is +0.0, a zero min is
    -0.0 if any is -0.0. np.max's own answer there depends on the order it visits
    elements in; this rule does not, and it is what the compiled code gives."""
    if x.dtype.kind != "f":
        return result
    wanted = (x == 0) & (np.signbit(x) == negative_wins)
    found = np.any(wanted, axis=axes)
    sign = -1.0 if negative_wins else 1.0
    zero = np.where(found, sign * 0.0, -sign * 0.0).astype(x.dtype)
    return np.where(result == 0, zero, result)


@register("reduce_max")
def _reduce_max(attrs, x):
    result = np.max(x, axis=attrs["axes"], initial=_lowest(x.dtype))
    return _order_zeros(result, x, attrs["axes"], negative_wins=False)


@register("reduce_min")
def _reduce_min(attrs, x):
    result = np.min(x, axis=attrs["axes"], initial=_highest(x.dtype))
    return _order_zeros(result, x, attrs["axes"], negative_wins=True)


@register("logsumexp")
def _logsumexp(attrs, x):
    """m + log(sum(exp(x - m))), m the max (0 where infinite; nothing to shift in an
    empty reduction, whose result is log(0) = -inf)."""
    axes = attrs["axes"]
    top = np.max(x, axis=axes, keepdims=True, initial=-np.inf)
    shift = np.where(np.isinf(top), x.dtype.type(0), top)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        total = np.sum(np.exp(x - shift), axis=axes, keepdims=True, dtype=x.dtype)
        result = np.log(total) + shift
    return np.squeeze(result, axis=axes).astype(x.dtype, copy=False)


@register("dot")
def _dot(attrs, lhs, rhs):
    """Move axes to (batch, free, contract) / (batch, contract, free) and use matmul."""
    lb, rb = list(attrs["lhs_batch"]), list(attrs["rhs_batch"])
    lc, rc = list(attrs["lhs_contract"]), list(attrs["rhs_contract"])
    lf = [i for i in range(lhs.ndim) if i not in lb + lc]
    rf = [i for i in range(rhs.ndim) if i not in rb + rc]
    batch = [lhs.shape[i] for i in lb]
    m = int(np.prod([lhs.shape[i] for i in lf], dtype=np.int64))
    n = int(np.prod([rhs.shape[i] for i in rf], dtype=np.int64))
    k = int(np.prod([lhs.shape[i] for i in lc], dtype=np.int64))
    a = np.transpose(lhs, lb + lf + lc).reshape(batch + [m, k])
    b = np.transpose(rhs, rb + rc + rf).reshape(batch + [k, n])
    out = np.matmul(a, b)
    return out.reshape(batch + [lhs.shape[i] for i in lf] + [rhs.shape[i] for i in rf])


@register("constant")
def _constant(attrs):
    return attrs["value"].copy()


@register("iota")
def _iota(attrs):
    shape, dim = attrs["shape"], attrs["dimension"]
    line = np.arange(shape[dim], dtype=attrs["dtype"].numpy)
    expanded = [1] * len(shape)
    expanded[dim] = shape[dim]
    return np.broadcast_to(line.reshape(expanded), shape).copy()


def run_op(prim: str, attrs: dict[str, Any], operands: list[np.ndarray],
           result_dtype: DType) -> np.ndarray:
    """Apply one primitive to arrays; the result has exactly `result_dtype` (for a
    control-flow op, which has several results, this is its first result)."""
    impl = IMPLS.get(prim)
    if impl is None:
        raise InterpretError(f"no interpreter rule for primitive {prim!r}")
    with np.errstate(all="ignore"):
        result = impl(attrs, *operands)
    if isinstance(result, list):
        result = result[0]
    return np.asarray(result, dtype=result_dtype.numpy)


def run_multi(op: Op, operands: list[np.ndarray]) -> list[np.ndarray]:
    """Apply a control-flow op (several results); each result gets its exact type."""
    impl = IMPLS.get(op.prim)
    if impl is None:
        raise InterpretError(f"no interpreter rule for primitive {op.prim!r}")
    with np.errstate(all="ignore"):
        arrays = impl(op.attrs, *operands)
    return [np.asarray(a, dtype=v.dtype.numpy).reshape(v.shape)
            for a, v in zip(arrays, op.results)]


def _check_input(graph: Graph, index: int, value: Value, array: Any) -> np.ndarray:
    array = np.asarray(array)
    expected = value.type
    if array.shape != expected.shape or array.dtype != expected.dtype.numpy:
        raise InterpretError(
            f"graph @{graph.name} input {index}: expected {expected}, got "
            f"{array.dtype.name}{list(array.shape)}")
    return array


def interpret(graph: Graph, *arrays: Any) -> list[np.ndarray]:
    """Run `graph` on its flat inputs; returns one fresh array per graph output."""
    env = interpret_values(graph, *arrays)
    try:
        return [np.array(env[v], copy=True) for v in graph.outputs]
    except KeyError:
        raise InterpretError(f"graph @{graph.name}: an output is never defined") from None


def interpret_values(graph: Graph, *arrays: Any) -> dict[Value, np.ndarray]:
    """Run `graph` on its flat inputs; returns the array of every input and op result
    (tools that look inside a computation, such as the fuzzers' oracles, read it)."""
    if len(arrays) != len(graph.inputs):
        raise InterpretError(
            f"graph @{graph.name} takes {len(graph.inputs)} inputs, got {len(arrays)}")
    env: dict[Value, np.ndarray] = {}
    for i, (value, array) in enumerate(zip(graph.inputs, arrays)):
        env[value] = _check_input(graph, i, value, array)
    for op in graph.ops:
        try:
            operands = [env[v] for v in op.operands]
        except KeyError:
            raise InterpretError(f"{op.prim}: operand used before it is defined") from None
        if op.regions():
            env.update(zip(op.results, run_multi(op, operands)))
        else:
            env[op.result] = run_op(op.prim, op.attrs, operands, op.result.dtype)
    return env
