"""Matmul epilogues: the elementwise kernel that consumes a float32 dot, run on each
block of C right after the sgemm finishes it (while the block is in cache).

`fuse_epilogues` rewrites a graph's kernel list: a dot kernel D (one non-batched
sgemm writing a row-major [M, N] buffer) whose result is read by exactly one map
kernel E (one loop over the same [M, N] space, reading D only at the element it
writes) becomes one kernel at E's place: the sgemm writes into E's buffer, and
E's expression, with D's loads reading that buffer, is compiled into a small
function the sgemm calls per finished block (matmul.py's run-time epilogue). So
`tanh(x @ W + b)`, the tanh derivative `(dz @ W.T) * (1 - h*h)` and the SGD update
`W - lr * (x.T @ dz)` each run in one pass, and the dot's own buffer disappears.
Moving the sgemm later, to E's place, is always legal: only E reads D, and the
buffer plan computes lifetimes from the rewritten list.
"""
from __future__ import annotations

import llvmlite.ir as lir

from ir.graph import Value
from ir.types import DType

from ..plan.affine import LoopPlan, flat_offset, identity_access
from ..emit.expr import Emitter, ExprBuilder, Node
from ..emit.llvmtypes import PTR, index, store_element
from ..emit.loops import loop_nest
from .matmul import EPILOGUE_TYPE
from .matmul_ir import I64, counted, i64
from ..emit.steps import KernelEnv, KernelPlan, MapStep

# The one switch for epilogue fusion (off: every dot writes its own buffer).
USE_EPILOGUES = True


class TileEpilogue:
    """E's expression over the [M, N] space of the product, emitted per block.

    `product` is the dot value (D) whose loads read the destination buffer instead.
    """

    def __init__(self, exprs: ExprBuilder, node: Node, product: Value, dest: Value,
                 dest_offset, shape: tuple[int, int], numbers: dict,
                 plan: LoopPlan | None = None):
        self.exprs = exprs
        self.node = node
        self.product = product
        self.dest = dest
        self.dest_offset = dest_offset
        self.shape = shape
        # E's loop space as the [M, N] product: its two axes, or (a conv's consumer,
        # codegen/kernels/conv_epilogue.py) the leading axes merged into M
        self.plan = plan or LoopPlan(tuple(shape), ((0,), (1,)), 2)
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
        callback = self._emit_function(b.module, name, keys)
        return [b.bitcast(callback, PTR), context]

    def _emit_function(self, module: lir.Module, name: str, keys: list) -> lir.Function:
        """The callback: unpack the context, then call the block loops with the buffer
        pointers as `noalias` arguments (inlined; it spares the vectorised loops
        their run-time overlap checks)."""
        loops = self._emit_block_loops(module, f"{name}.loops", len(keys))
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

    def _emit_block_loops(self, module: lir.Module, name: str, count: int) -> lir.Function:
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
        width = self.shape[1]
        whole_rows = b.icmp_signed("==", cols, i64(width))
        with b.if_else(whole_rows) as (then, otherwise):
            with then:  # the usual block (N <= NC): rows of a constant width
                with counted(b, i64(0), rows, i64(1), "erow") as row:
                    loop_nest(b, [width], lambda counters, _: self._point(
                        b, pointers, row0, col0, [row] + counters))
            with otherwise:
                with counted(b, i64(0), rows, i64(1), "erow") as row:
                    with counted(b, i64(0), cols, i64(1), "ecol") as col:
                        self._point(b, pointers, row0, col0, [row, col])
        b.ret_void()
        return fn

    def _point(self, b: lir.IRBuilder, pointers: dict, row0, col0, counters) -> list:
        where = [b.add(row0, counters[0], flags=["nsw"]), b.add(col0, counters[1], flags=["nsw"])]
        point = Emitter(b, pointers, self.plan, where)
        value = point.emit(self.node)
        store_element(b, pointers[self.dest], point.offset(self.dest_offset), self.dest.dtype,
                      value)
        return []


def fuse_epilogues(graph, kernels: list[KernelPlan]) -> list[KernelPlan]:
    """The kernel list with each fusable (dot, consumer map) pair merged."""
    from .sgemm_step import SgemmStep
    if not USE_EPILOGUES:
        return kernels
    readers: dict[Value, list[int]] = {}
    for position, kernel in enumerate(kernels):
        for value in kernel.reads():
            readers.setdefault(value, []).append(position)
    producer = {kernel.dest: position for position, kernel in enumerate(kernels)}
    outputs = set(graph.outputs)
    numbers = graph.value_numbers()
    merged = list(kernels)
    removed: set[int] = set()
    for position, kernel in enumerate(kernels):
        step = _map_step(kernel)
        if step is None:
            continue
        for product in _candidates(step):
            source = producer.get(product)
            if (source is None or source in removed or product in outputs
                    or readers.get(product) != [position]):
                continue
            sgemm = _plain_sgemm(kernels[source], SgemmStep)
            if sgemm is None or not _fits(step, sgemm, product):
                continue
            epilogue = TileEpilogue(step.exprs, step.node, product, kernel.dest,
                                    step.dest_offset, product.shape, numbers)
            fused = SgemmStep(sgemm.exprs, sgemm.lhs, sgemm.rhs, kernel.dest, sgemm.shape,
                              sgemm.threads, epilogue)
            merged[position] = KernelPlan(kernel.dest, [fused], kernels[source].workspace)
            removed.add(source)
            break
    return [kernel for position, kernel in enumerate(merged) if position not in removed]


def _map_step(kernel: KernelPlan) -> MapStep | None:
    """The kernel's one map step when it writes a float32 [M, N] value row-major."""
    if len(kernel.steps) != 1 or not isinstance(kernel.steps[0], MapStep):
        return None
    step = kernel.steps[0]
    dest = kernel.dest
    if (not isinstance(dest, Value) or step.dest is not dest or dest.dtype is not DType.f32
            or len(dest.shape) != 2 or step.empty):
        return None
    if step.dest_offset != flat_offset(identity_access(2), dest.shape, 2):
        return None
    return step


def _candidates(step: MapStep) -> list[Value]:
    """Values the map loads only at the element it writes, with its own shape."""
    found = []
    for load in step.exprs.loads:
        value = load.value
        if value in found or value.shape != step.dest.shape or value.dtype is not DType.f32:
            continue
        if all(other.offset == step.dest_offset for other in step.exprs.loads
               if other.value is value):
            found.append(value)
    return found


def _plain_sgemm(kernel: KernelPlan, sgemm_step: type):
    """The kernel's sgemm step when it is one product without an epilogue yet."""
    if len(kernel.steps) != 1 or not isinstance(kernel.steps[0], sgemm_step):
        return None
    step = kernel.steps[0]
    return step if step.epilogue is None and step.shape.batch == 1 else None


def _fits(step: MapStep, sgemm, product: Value) -> bool:
    """The product is C[M, N] stored row-major from offset 0, matching the map."""
    s = sgemm.shape
    rows, columns = product.shape
    return (s.m == rows and s.n == columns and s.c.get("const", 0) == 0
            and s.c.get("m", columns) == columns and rows > 0 and columns > 0)


__all__ = ["TileEpilogue", "fuse_epilogues"]
