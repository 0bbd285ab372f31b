"""Constant folding, and the helpers every simplification uses to read constants.

Two forms of constant exist in a graph:
- a *splat*: every element has the same value. Its canonical form is a 0-d
  `constant` broadcast with `broadcast_in_dim` (what `Builder.full` emits), which
  stays small in the text whatever the shape;
- a *dense* constant: a `constant` op holding a whole array.

Folding evaluates ops with the interpreter's `run_op`, so folded values are exactly
what the oracle computes:
- an elementwise op whose operands are all splats is evaluated once on 0-d arrays and
  becomes a splat of any size (nothing big is materialised);
- any other op whose operands are all constants (splats, dense constants, small iotas)
  is evaluated when its result and every operand have at most FOLD_LIMIT elements.
  Bigger results are never folded: a folded array is stored in, and printed with, the
  graph.
`constant` and `iota` themselves, and the canonical splat, are left alone.
"""
from __future__ import annotations

import numpy as np

from ..builder import Builder
from ..graph import Graph, Op, Value
from ..interpret import run_op
from ..ops import get_primitive
from .rebuild import rebuild

FOLD_LIMIT = 4096
"""Largest number of elements a folded (materialised) constant may have."""


def _splat_transparent(op: Op) -> bool:
    """Applied to a splat, `op` gives a splat of the same value (it only moves
    elements; the `splat_transparent` flag in ir/ops.py)."""
    return get_primitive(op.prim).splat_transparent


def _is_source(op: Op) -> bool:
    """A primitive with no operands (constant, iota): already as folded as it can be."""
    return get_primitive(op.prim).arity == 0


def _uniform_scalar(array: np.ndarray) -> np.ndarray | None:
    """The common element of `array` as a 0-d array, compared bit for bit (so NaNs
    match and 0.0 differs from -0.0); None if elements differ or there are none."""
    if array.size == 0:
        return None
    flat = np.ascontiguousarray(array).reshape(-1)
    rows = flat.view(np.uint8).reshape(flat.size, flat.itemsize)
    if not (rows == rows[0]).all():
        return None
    return flat[0:1].reshape(()).copy()


def splat_scalar(value: Value) -> np.ndarray | None:
    """If every element of `value` is one known constant, that constant (0-d array of
    the value's dtype); otherwise None."""
    while value.producer is not None and _splat_transparent(value.producer):
        value = value.producer.operands[0]
    producer = value.producer
    if producer is None or producer.prim != "constant":
        return None
    return _uniform_scalar(producer.attrs["value"])


def splat_equals(value: Value, number: float) -> bool:
    """True if `value` is a splat equal to `number` (0.0 and -0.0 both equal 0)."""
    scalar = splat_scalar(value)
    return scalar is not None and bool(scalar == number)


def constant_array(value: Value, limit: int = FOLD_LIMIT) -> np.ndarray | None:
    """The array `value` always holds, if it is a constant of at most `limit`
    elements (a dense constant, a splat or an iota); otherwise None."""
    producer = value.producer
    if producer is not None and producer.prim == "constant":
        return producer.attrs["value"]
    if value.type.size > limit:
        return None
    scalar = splat_scalar(value)
    if scalar is not None:
        return np.full(value.shape, scalar, dtype=value.dtype.numpy)
    if producer is not None and producer.prim == "iota":
        return run_op("iota", producer.attrs, [], value.dtype)
    return None


def emit_constant(builder: Builder, array: np.ndarray) -> Value:
    """Emit `array` as a splat when all its (two or more) elements are equal, else
    as a dense constant."""
    if array.size > 1:
        scalar = _uniform_scalar(array)
        if scalar is not None:
            return emit_splat(builder, array.shape, scalar)
    return builder.emit("constant", value=np.array(array, copy=True))


def emit_splat(builder: Builder, shape: tuple[int, ...], scalar: np.ndarray) -> Value:
    """A 0-d constant holding `scalar`, broadcast to `shape` when it is not 0-d."""
    constant = builder.emit("constant", value=np.array(scalar, copy=True))
    if len(shape) == 0:
        return constant
    return builder.emit("broadcast_in_dim", constant, shape=tuple(shape), dims=())


def _is_canonical_splat(prim: str, operands: list[Value]) -> bool:
    """A broadcast of a 0-d constant: the form a splat is folded into."""
    if prim != "broadcast_in_dim":
        return False
    source = operands[0].producer
    return source is not None and source.prim == "constant" and operands[0].ndim == 0


def fold_op(builder: Builder, op: Op, operands: list[Value]) -> Value | None:
    """The folded replacement of `op` on its new `operands`, or None if it stays."""
    if _is_source(op) or _is_canonical_splat(op.prim, operands) or op.regions():
        return None                       # control flow is simplified inside, not folded
    if get_primitive(op.prim).elementwise:
        scalars = [splat_scalar(v) for v in operands]
        if all(s is not None for s in scalars):
            folded = run_op(op.prim, op.attrs, scalars, op.result.dtype)
            return emit_splat(builder, op.result.shape, folded)
    if op.result.type.size > FOLD_LIMIT:
        return None
    arrays = [constant_array(v) for v in operands]
    if any(a is None for a in arrays):
        return None
    return emit_constant(builder, run_op(op.prim, op.attrs, arrays, op.result.dtype))


def fold_constants(graph: Graph) -> Graph:
    """A new graph in which every foldable op is replaced by its constant value.

    The folded ops stay in the graph until dead code elimination removes them.
    """
    return rebuild(graph, fold_op)
