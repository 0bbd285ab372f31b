"""`matmul` with np.matmul's rules, lowered to one `dot` primitive.

- 1-D operands: a vector on the left loses its row axis, on the right its column
  axis (1-D @ 1-D is a 0-d dot product);
- N-D operands: the last two axes are matrices, the leading axes are batch axes
  that broadcast against each other.
When the right operand is a plain matrix (the common `x @ W`), the left operand's
leading axes are simply free axes of the dot, so nothing is broadcast.
"""
from __future__ import annotations

from typing import Any

from ir import DType

from .errors import ShapeError
from .promotion import result_type
from .shape_ops import broadcast
from .tracing import Tensor, apply, cast, describe, to_tensor, traceable, type_info


def _batch_shape(a: Tensor, b: Tensor) -> tuple[int, ...]:
    """Broadcast the leading (batch) axes of two N-D matmul operands."""
    sa, sb = a.shape[:-2], b.shape[:-2]
    ndim = len(sa) if len(sa) > len(sb) else len(sb)
    sa = (1,) * (ndim - len(sa)) + sa
    sb = (1,) * (ndim - len(sb)) + sb
    batch = []
    for da, db in zip(sa, sb):
        if da != db and 1 not in (da, db):
            raise ShapeError("matmul", f"{a.type} @ {b.type}: batch axes {list(a.shape[:-2])} "
                             f"and {list(b.shape[:-2])} cannot be broadcast together")
        batch.append(db if da == 1 else da)
    return tuple(batch)


def _dot(a: Tensor, b: Tensor, weak: bool) -> Tensor:
    if b.ndim == 1 or a.ndim == 1 or b.ndim == 2:
        rhs_contract = 0 if b.ndim == 1 else b.ndim - 2
        return apply("dot", a, b, weak=weak, lhs_batch=(), rhs_batch=(),
                     lhs_contract=(a.ndim - 1,), rhs_contract=(rhs_contract,))
    batch = _batch_shape(a, b)
    a = broadcast(a, batch + a.shape[-2:])
    b = broadcast(b, batch + b.shape[-2:])
    n = len(batch)
    return apply("dot", a, b, weak=weak, lhs_batch=tuple(range(n)), rhs_batch=tuple(range(n)),
                 lhs_contract=(n + 1,), rhs_contract=(n,))


@traceable
def matmul(a: Any, b: Any) -> Tensor:
    """np.matmul (the `@` operator)."""
    infos = [type_info(x, "matmul") for x in (a, b)]
    for shape, _, _ in infos:
        if len(shape) == 0:
            raise ShapeError("matmul", f"{describe(a)} @ {describe(b)}: operands must have "
                             "at least one dimension", hint="use * for scalars")
    dtype, weak = result_type([(d, w) for _, d, w in infos])
    a = cast(to_tensor(a, "matmul", dtype), dtype)
    b = cast(to_tensor(b, "matmul", dtype), dtype)
    inner_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if a.shape[-1] != inner_b:
        raise ShapeError("matmul", f"{a.type} @ {b.type}: inner dims {a.shape[-1]} != {inner_b}")
    if dtype.is_bool:
        product = _dot(cast(a, DType.i32), cast(b, DType.i32), weak)
        return cast(product, DType.bool)
    return _dot(a, b, weak)
