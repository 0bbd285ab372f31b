"""A loop nest split over threads: the graph side of parallel regions.

`emit_parallel_nest` moves a kernel's loop nest into a region body and calls the
process-wide library's `parallel` (codegen/threads/) with it; which threads run
the chunks, and how they wait, is the threads package's business.
"""
from __future__ import annotations

from typing import Callable, Sequence

import llvmlite.ir as lir

from ..kernels.matmul_ir import I64, PTR, counted, i64
from ..threads.host import BODY_TYPE, CHUNKS_PER_THREAD, PARALLEL, split_range
from ..threads.library import shared_sgemm
from .loops import loop_nest


# body(builder, pointers, counters): one point of the nest, given where to emit and
# the buffer pointers by key (valid in the function being emitted)
PointBody = Callable[[lir.IRBuilder, dict, list], None]


def emit_parallel_nest(builder: lir.IRBuilder, pointers: dict, sizes: Sequence[int],
                       threads: int, body: PointBody, grain: int = 1) -> None:
    """The loop nest over `sizes` (outermost first, every size >= 1), its outermost
    loop split into CHUNKS_PER_THREAD chunks per thread (a multiple of `grain`
    each) that `threads` threads share.

    The nest moves into a region body that the shared library's `parallel` runs on
    each thread; the kernel passes its buffer pointers in an array. The body hands
    them to an always-inlined function as `noalias` arguments (distinct buffers, as
    in the kernel itself), so the loops vectorise without overlap checks.
    """
    module = builder.module
    distinct: list[lir.Value] = []
    for value in pointers.values():
        if all(value is not seen for seen in distinct):
            distinct.append(value)
    nest = _emit_nest_function(module, builder.function.name, pointers, distinct, sizes,
                               body, grain)
    region = _emit_region_body(module, nest, len(distinct))
    data = builder.alloca(lir.ArrayType(PTR, max(len(distinct), 1)))
    data.type = PTR
    for position, value in enumerate(distinct):
        builder.store(value, builder.gep(data, [i64(position)], source_etype=PTR))
    chunks = min(threads * CHUNKS_PER_THREAD, -(-sizes[0] // grain))
    builder.call(shared_sgemm(module, PARALLEL),
                 [builder.bitcast(region, PTR), data, i64(threads), i64(chunks)])


def emit_chunked_region(builder: lir.IRBuilder, values: Sequence[lir.Value], threads: int,
                        chunks: int, body: Callable[[lir.IRBuilder, list, lir.Value], None]
                        ) -> None:
    """Run `body(b, values, chunk)` for chunk in range(chunks), the chunks shared by
    `threads` threads (at most `threads` run at once): the body is emitted into a
    function of its own that gets the pointer `values` (passed through an array) and
    its chunk number."""
    module = builder.module
    name = module.get_unique_name(f"{builder.function.name}.chunk")
    fn = lir.Function(module, lir.FunctionType(lir.VoidType(), [PTR] * len(values)
                                               + [I64, I64]), name=name)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    b = lir.IRBuilder(fn.append_basic_block("entry"))
    body(b, list(fn.args[:len(values)]), fn.args[len(values)])
    b.ret_void()
    region = _emit_region_body(module, fn, len(values))
    data = builder.alloca(lir.ArrayType(PTR, max(len(values), 1)))
    data.type = PTR
    for position, value in enumerate(values):
        builder.store(value, builder.gep(data, [i64(position)], source_etype=PTR))
    builder.call(shared_sgemm(module, PARALLEL),
                 [builder.bitcast(region, PTR), data, i64(threads), i64(chunks)])


def _emit_nest_function(module, prefix: str, pointers: dict, distinct: list, sizes, body,
                        grain: int) -> lir.Function:
    """void nest(ptr buffers..., i64 chunk, i64 chunks): one chunk of the nest."""
    name = module.get_unique_name(f"{prefix}.nest")
    fn = lir.Function(module, lir.FunctionType(lir.VoidType(), [PTR] * len(distinct)
                                               + [I64, I64]), name=name)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    fn.attributes.add("alwaysinline")
    for arg in fn.args[:len(distinct)]:
        arg.add_attribute("noalias")
    rebound = {key: fn.args[next(i for i, seen in enumerate(distinct) if seen is value)]
               for key, value in pointers.items()}
    chunk, chunks = fn.args[len(distinct):]
    b = lir.IRBuilder(fn.append_basic_block("entry"))
    start, stop = split_range(b, i64(sizes[0]), chunk, chunks, grain)
    with counted(b, start, stop, i64(1), "share") as first:
        loop_nest(b, list(sizes[1:]), lambda counters, _: body(b, rebound, [first] + counters)
                  or [])
    b.ret_void()
    return fn


def _emit_region_body(module, nest: lir.Function, count: int) -> lir.Function:
    """void body(ptr data, i64 chunk, i64 chunks): unpack the pointers, run nest."""
    fn = lir.Function(module, BODY_TYPE, name=module.get_unique_name(f"{nest.name}.region"))
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    data, chunk, chunks = fn.args
    b = lir.IRBuilder(fn.append_basic_block("entry"))
    loaded = [b.load(b.gep(data, [i64(position)], source_etype=PTR), typ=PTR)
              for position in range(count)]
    b.call(nest, loaded + [chunk, chunks])
    b.ret_void()
    return fn



__all__ = ["PointBody", "emit_chunked_region", "emit_parallel_nest"]
