"""The per-primitive lowering registry: how the backend handles each primitive.

Every primitive has exactly one lowering path (tests/test_registry.py checks it):
- "elementwise": an entry of the scalar emitters, `EMITTERS`
  (codegen/emit/elementwise.py: the code for one element and its cost), fused
  into whatever loop reads it; `lowering_of` answers `ELEMENTWISE` for them;
- an entry of `LOWERINGS` (a `Lowering`) for the rest:
  * "view": `fn(op, access, rank) -> access | None` maps indices
    (codegen/plan/views.py); fused, costs nothing;
  * "source": `fn(op, access, rank) -> Node` (constant, iota;
    codegen/plan/expr_tree.py);
  * "kernel": `fn(op, plan) -> KernelPlan`, the loop nests that write the op's
    buffer (reductions, dot, pad, concatenate, conv, control flow; codegen/emit/
    kernels.py, codegen/kernels/), following the graph's FusionPlan `plan`
    (codegen/plan/fusion.py: `value in plan` when it has a buffer; `plan.threads`),
    with the planning queries the fusion planner asks beforehand.

`LOWERINGS` is filled explicitly, once, by `codegen.emit.lowering.fill_lowerings`
(called by codegen/__init__.py), which also records every primitive's path in
`LOWERING_PATHS` (refusing a primitive with two). Every per-primitive table of
codegen (these, the scalar emitters, the index maps of codegen/plan/views.py) is a
`Registry`, which refuses a second entry for a name.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ir.ops import PRIMITIVES
from ir.registry import Registry  # the one per-primitive table type (ir/registry.py)

from .errors import CodegenError

KINDS = ("elementwise", "view", "source", "kernel")


@dataclass(frozen=True)
class EpilogueRule:
    """How a kernel primitive (a product: dot; conv can plug in the same way) runs
    the elementwise kernel that alone reads its result as an epilogue on each
    finished block (codegen/plan/epilogues.py decides, the kernel follows):

    - `accepts(op, materialized, options) -> bool`: a pure planning query, whether
      the op's kernel, as the compile's CompileOptions choose it, writes its result
      in blocks an epilogue can take (for dot: one non-batched row-major sgemm);
    - `lower(op, plan, epilogue) -> KernelPlan`: the op's kernel writing
      the consumer's buffer, with `epilogue` (codegen/kernels/matmul_epilogue.py's
      TileEpilogue) run per block.
    """

    accepts: Callable
    lower: Callable


@dataclass(frozen=True)
class Lowering:
    """One primitive's lowering: its kind, the function implementing it, and the
    planning queries the fusion planner (codegen/plan/fusion.py) asks of it:

    - `view_operands`: a kernel that indexes its operands freely (dot) wants them
      as views of buffers, not as fused computations it would redo per use;
    - `needs_buffer(op) -> bool`: a source or view whose result always has a
      buffer (a non-uniform constant);
    - `buffered_operands(op) -> bool`: a kernel that reads its operands from
      buffers (hand-written loop nests: conv, gather, windows with padding);
    - `buffers_read(op, threads, options) -> list[Value]`: which buffers such a
      kernel reads under the compile's ThreadPlan and CompileOptions, when not
      its operands' own (a conv reading an operand through its transpose reads
      the transpose's operand's buffer); None: the operands';
    - `epilogue`: the product's EpilogueRule, None when it takes no epilogue.
    """

    kind: str
    fn: Callable
    view_operands: bool = False
    needs_buffer: Callable | None = None
    buffered_operands: Callable | None = None
    buffers_read: Callable | None = None
    epilogue: EpilogueRule | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown lowering kind {self.kind!r}")


LOWERINGS: Registry = Registry("lowering")
# primitive -> its one lowering path ("elementwise", "view", "source", "kernel")
LOWERING_PATHS: Registry = Registry("lowering path")
# What `lowering_of` answers for an elementwise primitive without a LOWERINGS entry:
# it is emitted per element by its scalar emitter (codegen/emit/elementwise.EMITTERS).
ELEMENTWISE = Lowering("elementwise", None)


def lowering_of(prim: str) -> Lowering:
    """The lowering of `prim`; CodegenError (not KeyError) when there is none."""
    found = LOWERINGS.get(prim)
    if found is not None:
        return found
    primitive = PRIMITIVES.get(prim)
    if primitive is not None and primitive.elementwise:
        return ELEMENTWISE
    raise CodegenError(f"the llvm backend has no lowering for primitive {prim!r}")


__all__ = ["ELEMENTWISE", "EpilogueRule", "KINDS", "LOWERINGS", "LOWERING_PATHS", "Lowering",
           "Registry", "lowering_of"]
