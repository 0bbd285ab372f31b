"""Lowering a graph to one LLVM function: the LOWERINGS registry and the driver.

`lower_graph` decides fusion, plans one kernel per materialized value (a loop
nest in its own internal function whose buffer arguments are `noalias`, inlined
later), plans the scratch arena, and emits the entry points `@propc.<name>` and
`@propc.<name>.run` (codegen/entry.py), which load the buffer pointers once and
call the kernels in graph order. The
`propc.` prefix keeps graph names out of the C namespace: a graph called `exp`
must not capture the libm calls that `llvm.exp` becomes.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

import llvmlite.ir as lir

from ir.graph import Graph, Value

from ..kernels.conv import lower_conv, lower_reduce_window_max, lower_reduce_window_sum
from ..kernels.dot import lower_dot
from ..kernels.gather import lower_gather, lower_scatter_add
from .elementwise import EMITTERS
from ..errors import CodegenError, lowering_op
from .expr import NeedsMaterialize, constant_source, iota_source, splat_value
from ..plan.fusion import plan_fusion
from ..kernels.logsumexp import lower_logsumexp
from .kernels import (lower_concatenate, lower_copy, lower_map, lower_pad, lower_reduce_max,
                      lower_reduce_min, lower_reduce_sum)
from .entry import emit_entry_points
from .kernel_dedupe import KernelTable
from .llvmtypes import I8, PTR, index
from ..kernels.matmul_epilogue import fuse_epilogues
from .bounds import (ERROR_RECORD, BoundsChecker, checked_buffers, checking, clear_record,
                     describe_kernel, return_if_failed)
from ..plan.memplan import ALIGN, MemoryPlan, Workspace, plan_memory
from ..registry import LOWERINGS, Lowering, lowering_of
from ..threads.host import pool_in_use, thread_count
from .steps import WORKSPACE, KernelEnv, KernelPlan, plan_threads
from ..plan.views import VIEWS


def _register_all() -> None:
    for name, fn in EMITTERS.items():
        LOWERINGS[name] = Lowering("elementwise", fn)
    for name, fn in VIEWS.items():
        LOWERINGS[name] = Lowering("view", fn)
    LOWERINGS["constant"] = Lowering(
        "source", constant_source,
        needs_buffer=lambda op: splat_value(op.attrs["value"]) is None)
    LOWERINGS["iota"] = Lowering("source", iota_source)
    LOWERINGS["reduce_sum"] = Lowering("kernel", lower_reduce_sum)
    LOWERINGS["reduce_max"] = Lowering("kernel", lower_reduce_max)
    LOWERINGS["reduce_min"] = Lowering("kernel", lower_reduce_min)
    LOWERINGS["logsumexp"] = Lowering("kernel", lower_logsumexp)
    LOWERINGS["pad"] = Lowering("kernel", lower_pad)
    LOWERINGS["concatenate"] = Lowering("kernel", lower_concatenate)
    LOWERINGS["dot"] = Lowering("kernel", lower_dot, view_operands=True)
    LOWERINGS["conv"] = Lowering("kernel", lower_conv)
    LOWERINGS["reduce_window_sum"] = Lowering("kernel", lower_reduce_window_sum)
    LOWERINGS["reduce_window_max"] = Lowering("kernel", lower_reduce_window_max)
    LOWERINGS["gather"] = Lowering("kernel", lower_gather)
    LOWERINGS["scatter_add"] = Lowering("kernel", lower_scatter_add)


_register_all()


@dataclass(frozen=True)
class OutputSlot:
    """Key of graph output position `position` when it is filled by a copy."""

    position: int


@dataclass
class LoweredGraph:
    """A graph lowered into a module: its name, entry symbol and buffer plan.

    `kernels` describes each kernel (its op and buffers) for debug-mode messages.
    """

    graph: Graph
    name: str
    symbol: str
    memory: MemoryPlan
    kernel_count: int
    kernels: list


def unique_name(name: str, taken: set[str]) -> str:
    """An identifier-like name derived from a graph name, unique in `taken`."""
    base = re.sub(r"[^A-Za-z0-9_]", "_", name) or "graph"
    symbol = base
    counter = 1
    while symbol in taken:
        symbol = f"{base}_{counter}"
        counter += 1
    taken.add(symbol)
    return symbol


def lower_graph(graph: Graph, module: lir.Module, name: str, *, checks: bool = False
                ) -> LoweredGraph:
    """Add the entry function `propc.<name>` computing `graph` to `module`.

    `checks`: debug mode, a bounds check on every element access (codegen/bounds.py).
    """
    symbol = f"propc.{name}"
    materialized = plan_fusion(graph)
    while True:
        try:
            kernels = _plan_kernels(graph, materialized)
            break
        except NeedsMaterialize as need:
            if need.value in materialized:
                raise CodegenError("fusion could not place a value in a buffer") from None
            materialized.add(need.value)
    if not checks:  # debug mode checks every access inside the kernel's own function
        kernels = fuse_epilogues(graph, kernels)
        plan_threads(kernels, thread_count())
    homes = _homes(graph, kernels, materialized)
    memory, offsets, in_place = plan_memory(graph, kernels, homes, checks=checks)
    described = _emit_entry(module, symbol, graph, kernels, homes, offsets, in_place,
                            memory.error_slot)
    return LoweredGraph(graph, name, symbol, memory, len(kernels), described)


def _live_ops(graph: Graph) -> list:
    """Ops whose results the outputs depend on (dead ops are not compiled)."""
    needed: set[Value] = set(graph.outputs)
    for op in reversed(graph.ops):
        if op.result in needed:
            needed.update(op.operands)
    return [op for op in graph.ops if op.result in needed]


def _global_constant(op) -> bool:
    lowering = lowering_of(op.prim)
    return lowering.needs_buffer is not None and lowering.needs_buffer(op)


def _output_homes(graph: Graph) -> dict[Value, int]:
    """Computed values written straight into their first output position."""
    homes: dict[Value, int] = {}
    for position, value in enumerate(graph.outputs):
        if value.producer is not None and value not in homes and not _global_constant(
                value.producer):
            homes[value] = position
    return homes


def _plan_kernels(graph: Graph, materialized: set[Value]) -> list[KernelPlan]:
    kernels = []
    for op in _live_ops(graph):
        if op.result not in materialized or _global_constant(op):
            continue
        with lowering_op(op, passthrough=(NeedsMaterialize,)):
            lowering = lowering_of(op.prim)
            if lowering.kind == "kernel":
                kernels.append(lowering.fn(op, materialized))
            else:
                kernels.append(lower_map(op, materialized))
    output_homes = _output_homes(graph)
    for position, value in enumerate(graph.outputs):
        if output_homes.get(value) != position:
            kernels.append(lower_copy(value, OutputSlot(position), materialized))
    return kernels


@dataclass(frozen=True)
class Home:
    """Where a buffer lives: ("input", i), ("output", j), ("scratch", 0), ("constant", 0)."""

    kind: str
    position: int = 0


def _homes(graph: Graph, kernels: list[KernelPlan], materialized: set[Value]) -> dict:
    homes: dict[object, Home] = {}
    for position, value in enumerate(graph.inputs):
        homes[value] = Home("input", position)
    for value, position in _output_homes(graph).items():
        homes[value] = Home("output", position)
    for kernel in kernels:
        if isinstance(kernel.dest, OutputSlot):
            homes[kernel.dest] = Home("output", kernel.dest.position)
        elif kernel.dest not in homes:
            homes[kernel.dest] = Home("scratch")
        for value in kernel.reads():
            if value not in homes:
                homes[value] = Home("constant")
    return homes


def _emit_entry(module: lir.Module, symbol: str, graph: Graph, kernels: list[KernelPlan],
                homes: dict, offsets: dict, in_place: dict, error_slot: int | None) -> list:
    """Emit the entry points calling every kernel; returns the kernels' descriptions."""
    n_in, n_out = len(graph.inputs), len(graph.outputs)
    team = max((getattr(step, "threads", 1) for kernel in kernels for step in kernel.steps),
               default=1) if pool_in_use() else 1
    builder, arrays, arena = emit_entry_points(module, symbol, n_in + n_out, team)
    pointers: dict[object, lir.Value] = {}
    for key, home in homes.items():
        if home.kind == "input":
            pointers[key] = arrays[home.position]
        elif home.kind == "output":
            pointers[key] = arrays[n_in + home.position]
        elif home.kind == "scratch":
            pointers[key] = builder.gep(arena, [index(offsets[key])], inbounds=True,
                                        source_etype=I8)
        else:
            pointers[key] = _constant_global(module, f"{symbol}.const", key)
    record = None
    if error_slot is not None:
        record = builder.gep(arena, [index(error_slot)], inbounds=True, source_etype=I8)
        clear_record(builder, record)
    numbers = graph.value_numbers()
    described = []
    table = KernelTable(module)
    for position, kernel in enumerate(kernels):
        origin = kernel.dest.producer if isinstance(kernel.dest, Value) else None
        keys = _kernel_keys(kernel, numbers, in_place)
        described.append(describe_kernel(kernel, origin, keys, graph, homes, numbers))
        checked = None if record is None else position
        # debug mode checks spans against the whole buffers: offsets stay inside
        hoisted = {} if record is not None else {
            key: elements for key, elements in kernel.pointer_offsets().items()
            if key in keys and key is not in_place.get(kernel.dest)}
        mark = table.mark()
        with lowering_op(origin) if origin is not None else contextlib.nullcontext():
            fn = _emit_kernel(module, f"{symbol}.k{position}", kernel, keys, homes,
                              in_place.get(kernel.dest), checked, graph, frozenset(hoisted))
        fn = table.intern(fn, mark)
        args = [_moved(builder, pointers[key], key, hoisted.get(key, 0)) for key in keys]
        if kernel.workspace:
            args.append(builder.gep(arena, [index(offsets[Workspace(position)])],
                                    inbounds=True, source_etype=I8))
        if record is not None:
            args.append(record)
        builder.call(fn, args)
        if record is not None:
            return_if_failed(builder, record)
    builder.ret_void()
    return described


def _kernel_keys(kernel: KernelPlan, numbers: dict, in_place: dict) -> list:
    """The buffer keys a kernel takes as arguments: its destination, then what it
    reads; an operand it overwrites in place shares the destination's argument."""
    shared = in_place.get(kernel.dest)
    reads = [key for key in _sorted_reads(kernel, numbers) if key is not shared]
    return [kernel.dest] + reads


def _sorted_reads(kernel: KernelPlan, numbers: dict) -> list:
    return sorted(kernel.reads(), key=lambda v: numbers.get(v, -1))


def _moved(builder: lir.IRBuilder, pointer: lir.Value, value: Value, elements: int
           ) -> lir.Value:
    """`pointer` moved by `elements` of `value`'s dtype (a hoisted kernel offset)."""
    if elements == 0:
        return pointer
    return builder.gep(pointer, [index(elements * value.dtype.numpy.itemsize)], inbounds=True,
                       source_etype=I8)


def _emit_kernel(module: lir.Module, name: str, kernel: KernelPlan, keys: list, homes: dict,
                 shared, checked: int | None, graph: Graph,
                 hoisted: frozenset = frozenset()) -> lir.Function:
    """One internal function running the kernel's steps on its buffer arguments.

    `shared` is the operand overwritten in place (it uses the destination's
    argument); `checked` is the kernel's index in debug mode (bounds checks), else
    None; `hoisted` the buffers whose argument the caller already moved by the
    kernel's `pointer_offsets()`.
    """
    keys = list(keys)
    if kernel.workspace:
        keys.append(WORKSPACE)
    if checked is not None:
        keys.append(ERROR_RECORD)
    fn = lir.Function(module, lir.FunctionType(lir.VoidType(), [PTR] * len(keys)), name)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    for key, arg in zip(keys, fn.args):
        arg.add_attribute("noalias")
        internal = key is WORKSPACE or key is ERROR_RECORD
        if internal or (key not in hoisted and homes[key].kind == "scratch"):
            arg.attributes.align = ALIGN
    builder = lir.IRBuilder(fn.append_basic_block("entry"))
    env = KernelEnv(builder, dict(zip(keys, fn.args)), hoisted)
    if shared is not None:
        env.pointers[shared] = env.pointers[kernel.dest]
    bounds = None
    if checked is not None:
        bounds = BoundsChecker(checked, env.pointers[ERROR_RECORD],
                               checked_buffers(keys, fn.args, graph))
    with checking(bounds):
        for step in kernel.steps:
            step.emit(env)
    builder.ret_void()
    return fn


def _constant_global(module: lir.Module, prefix: str, value: Value) -> lir.Value:
    """A private global holding a constant's bytes (bools as 0/1 bytes)."""
    array = value.producer.attrs["value"]
    data = bytearray(array.astype(value.dtype.numpy).tobytes()) if array.size else bytearray()
    if not data:
        return lir.Constant(PTR, None)
    kind = lir.ArrayType(I8, len(data))
    name = module.get_unique_name(prefix)
    variable = lir.GlobalVariable(module, kind, name)
    variable.initializer = lir.Constant(kind, data)
    variable.global_constant = True
    variable.linkage = "private"
    variable.align = ALIGN
    return variable
