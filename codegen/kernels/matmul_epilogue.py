"""Matmul epilogues: the elementwise kernel that consumes a float32 dot (or conv),
run on each block of C right after the sgemm finishes it (while the block is in cache).

The fusion plan (codegen/plan/epilogues.py) picks the pairs: a dot D (one
non-batched sgemm writing a row-major [M, N] buffer) read only by one map kernel
E, at the element E writes. `lower_with_epilogue` builds their one kernel at E's
place: the sgemm writes into E's buffer, and E's expression, with D's loads
reading that buffer, is compiled into a small function the sgemm calls per
finished block (matmul.py's run-time epilogue).
"""
from __future__ import annotations

import llvmlite.ir as lir

from ir.graph import Op, Value

from ..plan.affine import LoopPlan
from ..registry import lowering_of
from ..emit.direct import digits
from ..emit.expr import Emitter, ExprBuilder, Node
from ..emit.kernels import lower_map
from ..emit.llvmtypes import PTR, index, store_element
from ..emit.loops import loop_nest
from .matmul import EPILOGUE_TYPE
from .matmul_ir import I64, counted, i64
from ..emit.steps import KernelEnv, KernelPlan

class TileEpilogue:
    """E's expression over the [M, N] space of the product, emitted per block.

    `product` is the dot value (D) whose loads read the destination buffer instead.
    """

    def __init__(self, exprs: ExprBuilder, node: Node, product: Value, dest: Value,
                 dest_offset, shape: tuple[int, ...], numbers: dict):
        self.exprs = exprs
        self.node = node
        self.product = product
        self.dest = dest
        self.dest_offset = dest_offset
        # E's loop space: the product's [M, N], or (a conv's consumer) its output
        # shape, whose leading axes flatten into M (a row: one output position) and
        # whose last axis is N (the features)
        self.shape = tuple(shape)
        self.plan = LoopPlan(self.shape, tuple((axis,) for axis in range(len(shape))),
                             len(shape))
        # the context's pointers, in a fixed order (generated code is deterministic)
        self.keys = sorted(self.reads(), key=lambda v: numbers.get(v, -1)) + [dest]

    def reads(self) -> set[Value]:
        """Buffers the epilogue loads (the product lives in dest, so not it)."""
        return {load.value for load in self.exprs.loads} - {self.product}

    def emit_callback(self, env: KernelEnv) -> list[lir.Value]:
        """In the kernel being emitted: the callback function and its context (an
        array of the buffer pointers it reads), as sgemm arguments."""
        b = env.builder
        keys = self.keys
        context = b.alloca(lir.ArrayType(PTR, len(keys)))
        context.type = PTR
        for position, key in enumerate(keys):
            b.store(env.pointers[key], b.gep(context, [index(position)], source_etype=PTR))
        name = b.module.get_unique_name(f"{b.function.name}.epilogue")
        callback = self._emit_function(b.module, name, keys, env.mathlib)
        return [b.bitcast(callback, PTR), context]

    def _emit_function(self, module: lir.Module, name: str, keys: list, mathlib: bool
                       ) -> lir.Function:
        """The callback: unpack the context, then call the block loops with the buffer
        pointers as `noalias` arguments (inlined; it spares the vectorised loops
        their run-time overlap checks)."""
        loops = self._emit_block_loops(module, f"{name}.loops", len(keys), mathlib)
        fn = lir.Function(module, EPILOGUE_TYPE, name=name)
        fn.linkage = "internal"
        fn.attributes.add("nounwind")
        context, *where = fn.args
        b = lir.IRBuilder(fn.append_basic_block("entry"))
        pointers = [b.load(b.gep(context, [index(position)], source_etype=PTR), typ=PTR)
                    for position in range(len(keys))]
        b.call(loops, pointers + list(where))
        b.ret_void()
        return fn

    def _emit_block_loops(self, module: lir.Module, name: str, count: int, mathlib: bool
                          ) -> lir.Function:
        fn = lir.Function(module, lir.FunctionType(lir.VoidType(), [PTR] * count + [I64] * 4),
                          name=name)
        fn.linkage = "internal"
        fn.attributes.add("nounwind")
        fn.attributes.add("alwaysinline")
        for arg in fn.args[:count]:
            arg.add_attribute("noalias")
        pointers = dict(zip(self.keys, fn.args[:count]))
        pointers[self.product] = pointers[self.dest]
        row0, col0, rows, cols = fn.args[count:]
        b = lir.IRBuilder(fn.append_basic_block("entry"))
        width = self.shape[-1]
        whole_rows = b.icmp_signed("==", cols, i64(width))
        with b.if_else(whole_rows) as (then, otherwise):
            with then:  # the usual block (N <= NC): rows of a constant width
                with counted(b, i64(0), rows, i64(1), "erow") as row:
                    loop_nest(b, [width], lambda counters, _: self._point(
                        b, pointers, row0, col0, [row] + counters, mathlib))
            with otherwise:
                with counted(b, i64(0), rows, i64(1), "erow") as row:
                    with counted(b, i64(0), cols, i64(1), "ecol") as col:
                        self._point(b, pointers, row0, col0, [row, col], mathlib)
        b.ret_void()
        return fn

    def _point(self, b: lir.IRBuilder, pointers: dict, row0, col0, counters, mathlib: bool
               ) -> list:
        row = b.add(row0, counters[0], flags=["nsw"])
        where = [row] if len(self.shape) == 2 else digits(b, row, self.shape[:-1])
        where = where + [b.add(col0, counters[1], flags=["nsw"])]
        point = Emitter(b, pointers, self.plan, where, mathlib)
        value = point.emit(self.node)
        store_element(b, pointers[self.dest], point.offset(self.dest_offset), self.dest.dtype,
                      value)
        return []


def lower_with_epilogue(op: Op, product: Value, materialized, numbers: dict) -> KernelPlan:
    """The kernel of the fusion plan's pair (consumer `op`, `product`): the map of
    `op` as a TileEpilogue of the product's kernel, which writes `op`'s buffer
    (codegen/plan/epilogues.py chose the pair; the product's EpilogueRule builds it)."""
    step = lower_map(op, materialized).steps[0]
    epilogue = TileEpilogue(step.exprs, step.node, product, op.result, step.dest_offset,
                            product.shape, numbers)
    return lowering_of(product.producer.prim).epilogue.lower(product.producer, materialized,
                                                             epilogue)


__all__ = ["TileEpilogue", "lower_with_epilogue"]
