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

from .dot import lower_dot
from .elementwise import EMITTERS
from .errors import CodegenError, lowering_op
from .expr import NeedsMaterialize, constant_source, iota_source, splat_value
from .fusion import plan_fusion
from .kernels import (lower_concatenate, lower_copy, lower_map, lower_pad, lower_reduce_max,
                      lower_reduce_min, lower_reduce_sum)
from .entry import emit_entry_points
from .llvmtypes import I8, PTR, index
from .memplan import ALIGN, Lifetime, MemoryPlan, assign_offsets
from .registry import LOWERINGS, Lowering, lowering_of
from .steps import WORKSPACE, KernelEnv, KernelPlan
from .views import VIEWS


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
    LOWERINGS["pad"] = Lowering("kernel", lower_pad)
    LOWERINGS["concatenate"] = Lowering("kernel", lower_concatenate)
    LOWERINGS["dot"] = Lowering("kernel", lower_dot, view_operands=True)


_register_all()


@dataclass(frozen=True)
class Workspace:
    """Key of the temporary scratch a kernel asks for (e.g. packed matmul panels)."""

    kernel: int


@dataclass(frozen=True)
class OutputSlot:
    """Key of graph output position `position` when it is filled by a copy."""

    position: int


@dataclass
class LoweredGraph:
    """A graph lowered into a module: its name, entry symbol and buffer plan."""

    graph: Graph
    name: str
    symbol: str
    memory: MemoryPlan
    kernel_count: int


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


def lower_graph(graph: Graph, module: lir.Module, name: str) -> LoweredGraph:
    """Add the entry function `propc.<name>` computing `graph` to `module`."""
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
    homes = _homes(graph, kernels, materialized)
    memory, offsets = _memory_plan(graph, kernels, homes)
    _emit_entry(module, symbol, graph, kernels, homes, offsets)
    return LoweredGraph(graph, name, symbol, memory, len(kernels))


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


def _memory_plan(graph: Graph, kernels: list[KernelPlan], homes: dict
                 ) -> tuple[MemoryPlan, dict[object, int]]:
    first: dict[object, int] = {}
    last: dict[object, int] = {}
    for position, kernel in enumerate(kernels):
        first.setdefault(kernel.dest, position)
        last[kernel.dest] = max(last.get(kernel.dest, position), position)
        for value in kernel.reads():
            last[value] = max(last.get(value, position), position)
    numbers = graph.value_numbers()
    lifetimes = [Lifetime(key, key.type.nbytes, first[key], last[key],
                          f"%{numbers[key]} {key.producer.prim} {key.type}")
                 for key, home in homes.items() if home.kind == "scratch"]
    lifetimes += [Lifetime(Workspace(position), kernel.workspace, position, position,
                           f"workspace of kernel {position}")
                  for position, kernel in enumerate(kernels) if kernel.workspace]
    offsets, peak = assign_offsets(lifetimes)
    residual_in = sum(v.type.nbytes for v in graph.inputs[:graph.residual_inputs])
    residual_out = sum(v.type.nbytes for v in graph.outputs[len(graph.outputs)
                                                             - graph.residual_outputs:])
    slots = [(life.label, life.nbytes, offsets[life.key], life.first, life.last)
             for life in sorted(lifetimes, key=lambda l: l.first)]
    memory = MemoryPlan(inputs=sum(v.type.nbytes for v in graph.inputs),
                        outputs=sum(v.type.nbytes for v in graph.outputs),
                        peak_scratch=peak, residuals=residual_in + residual_out, slots=slots)
    return memory, offsets


def _emit_entry(module: lir.Module, symbol: str, graph: Graph, kernels: list[KernelPlan],
                homes: dict, offsets: dict) -> None:
    n_in, n_out = len(graph.inputs), len(graph.outputs)
    run, builder, arrays, arena = emit_entry_points(module, symbol, n_in + n_out)
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
    numbers = graph.value_numbers()
    for position, kernel in enumerate(kernels):
        origin = kernel.dest.producer if isinstance(kernel.dest, Value) else None
        with lowering_op(origin) if origin is not None else contextlib.nullcontext():
            fn = _emit_kernel(module, f"{symbol}.k{position}", kernel, homes, numbers)
        args = [pointers[key] for key in [kernel.dest] + _sorted_reads(kernel, numbers)]
        if kernel.workspace:
            args.append(builder.gep(arena, [index(offsets[Workspace(position)])],
                                    inbounds=True, source_etype=I8))
        builder.call(fn, args)
    builder.ret_void()


def _sorted_reads(kernel: KernelPlan, numbers: dict) -> list:
    return sorted(kernel.reads(), key=lambda v: numbers.get(v, -1))


def _emit_kernel(module: lir.Module, name: str, kernel: KernelPlan, homes: dict,
                 numbers: dict) -> lir.Function:
    keys = [kernel.dest] + _sorted_reads(kernel, numbers)
    if kernel.workspace:
        keys.append(WORKSPACE)
    fn = lir.Function(module, lir.FunctionType(lir.VoidType(), [PTR] * len(keys)), name)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    for key, arg in zip(keys, fn.args):
        arg.add_attribute("noalias")
        if key is WORKSPACE or homes[key].kind == "scratch":
            arg.attributes.align = ALIGN
    builder = lir.IRBuilder(fn.append_basic_block("entry"))
    env = KernelEnv(builder, dict(zip(keys, fn.args)))
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
