"""The per-primitive lowering registry: how the backend handles each primitive.

`LOWERINGS[prim]` says which of four kinds a primitive is, with the function that
implements it:
- "elementwise": `fn(builder, args, Scalar) -> value` computes one element
  (codegen/emit/elementwise.py); fused into whatever loop reads it;
- "view": `fn(op, access, rank) -> access | None` maps indices (codegen/plan/views.py);
  fused, costs nothing;
- "source": `fn(op, access, rank) -> Node` (constant, iota; codegen/emit/expr.py);
- "kernel": `fn(kernel_context, op)` emits a loop nest that writes the op's
  buffer (reductions, dot, pad, concatenate; codegen/emit/kernels.py, codegen/kernels/dot.py).

The table is filled explicitly, once, by `codegen.emit.lowering.fill_lowerings` (called
by codegen/__init__.py); `tests/test_registry.py` checks that every primitive of
`ir.ops.PRIMITIVES` has an entry. Every per-primitive table of codegen (this one, the
scalar emitters of codegen/emit/elementwise.py, the index maps of
codegen/plan/views.py) is a `Registry`, which refuses a second entry for a name.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ir.registry import Registry  # the one per-primitive table type (ir/registry.py)

from .errors import CodegenError

KINDS = ("elementwise", "view", "source", "kernel")


@dataclass(frozen=True)
class Lowering:
    """One primitive's lowering: its kind and the function implementing it.

    `view_operands`: a kernel that indexes its operands freely (dot) wants them as
    views of buffers, not as fused computations it would redo per use.
    """

    kind: str
    fn: Callable
    view_operands: bool = False
    needs_buffer: Callable | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown lowering kind {self.kind!r}")


LOWERINGS: Registry = Registry("lowering")


def lowering_of(prim: str) -> Lowering:
    """The lowering of `prim`; CodegenError (not KeyError) when there is none."""
    found = LOWERINGS.get(prim)
    if found is None:
        raise CodegenError(f"the llvm backend has no lowering for primitive {prim!r}")
    return found


__all__ = ["KINDS", "LOWERINGS", "Lowering", "Registry", "lowering_of"]
