"""Batching rules: how every primitive runs on a batch of examples, one entry each.

`BATCH_RULES[prim](b, op, operands, batched, size)` is called by
`ir.passes.batching` for an op with at least one batched operand:
- `b` is the Builder of the batched graph (located at the op's source line);
- `op` is the original op (its attributes in `op.attrs`, its per-example result type
  in `op.result.type`);
- `operands` are the op's operands in the batched graph; operand i carries a leading
  batch axis of length `size` when `batched[i]` is true, else it is the per-example
  value shared by every example;
- the rule returns the batched result: the per-example result with a leading batch
  axis of length `size`.
The batch axis is always axis 0 inside the pass; the front end (`pc.vmap`) moves
user axes to and from it.

Helpers keep most rules one line:
- `defelementwise(*names)`: broadcast unbatched operands, then the same op;
- `defshifted(name, shift)`: one-operand ops whose attributes name axes; `shift`
  maps (attrs, size) to the attributes of the batched op, usually by moving every
  axis number up by one (`_up`);
- `defsource(*names)`: ops without operands, which are never batched;
- `defunrolled(*names)`: the fallback for an op without a clever rule yet: one copy
  of the op per example, joined along the batch axis. Correct for any primitive,
  but the graph then grows with the batch size, so prefer a real rule.
(One rule per primitive, as in JAX's `primitive_batchers`, written from scratch.)
"""
from __future__ import annotations

from typing import Any, Callable

from ..builder import Builder
from ..graph import Op, Value
from ..registry import Registry

BatchRule = Callable[[Builder, Op, list[Value], list[bool], int], Value]

BATCH_RULES: Registry = Registry("batching rule")     # name -> BatchRule

register = BATCH_RULES.register
"""Decorator: register one batching rule for one or more primitives."""


def materialize(b: Builder, value: Value, size: int) -> Value:
    """`value` repeated along a new leading batch axis of length `size`."""
    dims = tuple(range(1, value.ndim + 1))
    return b.broadcast_in_dim(value, shape=(size,) + value.shape, dims=dims)


def all_batched(b: Builder, operands: list[Value], batched: list[bool], size: int) -> list[Value]:
    """Every operand with the batch axis (unbatched ones are materialized)."""
    return [v if is_batched else materialize(b, v, size)
            for v, is_batched in zip(operands, batched)]


def _up(axes: tuple[int, ...]) -> tuple[int, ...]:
    """Axis numbers of the per-example value as axis numbers of the batched one."""
    return tuple(a + 1 for a in axes)


def _elementwise(b, op, operands, batched, size):
    return b.emit(op.prim, *all_batched(b, operands, batched, size), **op.attrs)


def defelementwise(*names: str) -> None:
    """Register elementwise primitives: every operand gets the batch axis."""
    register(*names)(_elementwise)


def defshifted(name: str, shift: Callable[[dict[str, Any], int], dict[str, Any]]) -> None:
    """Register a one-operand primitive whose batched form is the same op with the
    attributes `shift(op.attrs, size)` (the operand is always batched here)."""
    register(name)(lambda b, op, operands, batched, size:
                   b.emit(name, operands[0], **shift(op.attrs, size)))


def _never_batched(b, op, operands, batched, size):
    raise AssertionError(f"internal: {op.prim} has no operands and is never batched")


def defsource(*names: str) -> None:
    """Register primitives without operands (the pass copies them unchanged)."""
    register(*names)(_never_batched)


def _example(b: Builder, value: Value, index: int) -> Value:
    """Example `index` of a batched value (the batch axis dropped)."""
    start = (index,) + (0,) * (value.ndim - 1)
    stop = (index + 1,) + value.shape[1:]
    one = b.slice(value, start=start, stop=stop, stride=(1,) * value.ndim)
    return b.reshape(one, shape=value.shape[1:])


def _unrolled(b, op, operands, batched, size):
    shape = (size,) + op.result.shape
    if size == 0:
        return b.full(shape, 0, op.result.dtype)
    results = []
    for index in range(size):
        per_example = [_example(b, v, index) if is_batched else v
                       for v, is_batched in zip(operands, batched)]
        result = b.emit(op.prim, *per_example, **op.attrs)
        results.append(b.reshape(result, shape=(1,) + result.shape))
    return results[0] if size == 1 else b.concatenate(*results, axis=0)


def defunrolled(*names: str) -> None:
    """Register primitives batched by one op per example (see the module docstring)."""
    register(*names)(_unrolled)


def _unrolled_results(b, op, operands, batched, size):
    """`_unrolled` for an op with several results (control flow): one op per example,
    each result joined along the batch axis; returns the tuple of batched results."""
    if size == 0:
        return tuple(b.full((0,) + v.shape, 0, v.dtype) for v in op.results)
    per_result = [[] for _ in op.results]
    for index in range(size):
        per_example = [_example(b, v, index) if is_batched else v
                       for v, is_batched in zip(operands, batched)]
        for joined, result in zip(per_result, b.emit(op.prim, *per_example, **op.attrs)):
            joined.append(b.reshape(result, shape=(1,) + result.shape))
    return tuple(parts[0] if size == 1 else b.concatenate(*parts, axis=0)
                 for parts in per_result)


# while_loop (ir/control_flow.py): one loop per example, since examples may stop after
# different trip counts; scan and cond batch their regions (ir/passes/batch_control.py).
register("while_loop")(_unrolled_results)


# --------------------------------------------------------------------------------------
# the table

defsource("constant", "iota")
defelementwise("exp", "log", "tanh", "sqrt", "sin", "cos", "neg", "abs", "stop_gradient",
               "add", "sub", "mul", "div", "max", "min", "pow", "lt", "le", "gt", "ge",
               "eq", "ne", "select", "convert")

defshifted("broadcast_in_dim", lambda attrs, size: dict(
    shape=(size,) + attrs["shape"], dims=(0,) + _up(attrs["dims"])))
defshifted("reshape", lambda attrs, size: dict(shape=(size,) + attrs["shape"]))
defshifted("transpose", lambda attrs, size: dict(perm=(0,) + _up(attrs["perm"])))
defshifted("slice", lambda attrs, size: dict(start=(0,) + attrs["start"],
                                             stop=(size,) + attrs["stop"],
                                             stride=(1,) + attrs["stride"]))
defshifted("rev", lambda attrs, size: dict(dims=_up(attrs["dims"])))
defshifted("pad", lambda attrs, size: dict(low=(0,) + attrs["low"], high=(0,) + attrs["high"],
                                           interior=(0,) + attrs["interior"]))
for _name in ("reduce_sum", "reduce_max", "reduce_min", "logsumexp"):
    defshifted(_name, lambda attrs, size: dict(axes=_up(attrs["axes"])))


@register("concatenate")
def _concatenate(b, op, operands, batched, size):
    return b.concatenate(*all_batched(b, operands, batched, size), axis=op.attrs["axis"] + 1)


@register("dot")
def _dot(b, op, operands, batched, size):
    """Both batched: the batch axis becomes a new leading batch dimension of the
    contraction. One batched: its batch axis is a free dimension (one large product,
    not one per example), moved to the front of the result afterwards."""
    lhs, rhs = operands
    attrs = op.attrs
    lhs_batch, rhs_batch = attrs["lhs_batch"], attrs["rhs_batch"]
    lhs_contract, rhs_contract = attrs["lhs_contract"], attrs["rhs_contract"]
    if batched[0] and batched[1]:
        return b.dot(lhs, rhs, lhs_batch=(0,) + _up(lhs_batch), rhs_batch=(0,) + _up(rhs_batch),
                     lhs_contract=_up(lhs_contract), rhs_contract=_up(rhs_contract))
    if batched[0]:
        lhs_batch, lhs_contract = _up(lhs_batch), _up(lhs_contract)
        position = len(lhs_batch)                       # the first lhs free axis
    else:
        rhs_batch, rhs_contract = _up(rhs_batch), _up(rhs_contract)
        lhs_free = lhs.ndim - len(lhs_batch) - len(lhs_contract)
        position = len(lhs_batch) + lhs_free            # the first rhs free axis
    result = b.dot(lhs, rhs, lhs_batch=lhs_batch, rhs_batch=rhs_batch,
                   lhs_contract=lhs_contract, rhs_contract=rhs_contract)
    return move_to_front(b, result, position)


def move_to_front(b: Builder, value: Value, axis: int) -> Value:
    """`value` with axis `axis` moved to position 0 (no op when it is already there)."""
    if axis == 0:
        return value
    perm = (axis,) + tuple(a for a in range(value.ndim) if a != axis)
    return b.transpose(value, perm=perm)


# -- windows and indexing (ir/ops_window.py) --------------------------------------------

for _name in ("reduce_window_sum", "reduce_window_max"):
    defshifted(_name, lambda attrs, size: dict(
        window=(1,) + attrs["window"], strides=(1,) + attrs["strides"],
        padding_low=(0,) + attrs["padding_low"], padding_high=(0,) + attrs["padding_high"]))


@register("gather", "scatter_add")
def _indexed(b, op, operands, batched, size):
    """Every operand batched: the indexed axis moves up by one."""
    return b.emit(op.prim, *all_batched(b, operands, batched, size), axis=op.attrs["axis"] + 1)


@register("conv")
def _conv(b, op, operands, batched, size):
    """A shared kernel: the examples' images are one bigger batch of images. Batched
    kernels: the examples become feature groups (example e's channels and features
    form groups e*G .. e*G+G-1), one grouped conv instead of one conv per example."""
    lhs, rhs = operands
    out = op.result.shape                                  # (N, *spatial_out, K)
    if not batched[1]:
        images = b.reshape(lhs, shape=(size * lhs.shape[1],) + lhs.shape[2:])
        result = b.emit("conv", images, rhs, **op.attrs)
        return b.reshape(result, shape=(size,) + out)
    if not batched[0]:
        lhs = materialize(b, lhs, size)
    rank = lhs.ndim - 1                                    # per-example rank: N, spatial, C
    # lhs (B, N, *sp, C) -> (N, *sp, B, C) -> (N, *sp, B*C)
    lhs = b.transpose(lhs, perm=tuple(range(1, rank)) + (0, rank))
    lhs = b.reshape(lhs, shape=lhs.shape[:-2] + (size * lhs.shape[-1],))
    # rhs (B, *window, C/G, K) -> (*window, C/G, B, K) -> (*window, C/G, B*K)
    window_rank = rhs.ndim - 3
    rhs = b.transpose(rhs, perm=tuple(range(1, window_rank + 2)) + (0, window_rank + 2))
    rhs = b.reshape(rhs, shape=rhs.shape[:-2] + (size * rhs.shape[-1],))
    attrs = dict(op.attrs, feature_group_count=op.attrs["feature_group_count"] * size)
    result = b.emit("conv", lhs, rhs, **attrs)             # (N, *out_sp, B*K)
    result = b.reshape(result, shape=out[:-1] + (size, out[-1]))
    return move_to_front(b, result, len(out) - 1)
