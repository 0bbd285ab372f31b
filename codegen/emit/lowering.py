"""Lowering a graph to one LLVM function: the LOWERINGS registry and the driver.

`lower_graph` makes the fusion plan (codegen/plan/fusion.py: buffers and
epilogues, one pass), plans one kernel per materialized value as it says (a loop
nest in its own internal function whose buffer arguments are `noalias`, inlined
later unless the graph has more than INLINED_KERNELS kernels), plans the scratch
arena, and emits the entry points `@propc.<name>` and `@propc.<name>.run`
(codegen/emit/entry.py), which load the buffer pointers once and call the kernels in
graph order (through group functions of INLINED_KERNELS calls each in big graphs).
The
`propc.` prefix keeps graph names out of the C namespace: a graph called `exp`
must not capture the libm calls that `llvm.exp` becomes.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass

import llvmlite.ir as lir

from ir.graph import Graph, Value

from ..kernels.conv import (conv_buffers_read, lower_conv, lower_reduce_window_max,
                            lower_reduce_window_sum, window_reads_buffer)
from ..kernels.conv_epilogue import CONV_EPILOGUE
from ..kernels.dot import DOT_EPILOGUE, lower_dot
from ..kernels.gather import lower_gather, lower_scatter_add
from .elementwise import EMITTERS
from ..errors import lowering_op
from .direct import reads_buffers
from .expr import constant_source, iota_source, splat_value
from ..plan.fusion import FusionPlan, global_constant, live_ops, plan_fusion
from ..plan.threads import SERIAL, ThreadPlan
from ..kernels.logsumexp import lower_logsumexp
from .kernels import (lower_concatenate, lower_copy, lower_map, lower_pad, lower_reduce_max,
                      lower_reduce_min, lower_reduce_sum)
from .entry import emit_entry_points, load_slot
from .kernel_dedupe import KernelTable
from .llvmtypes import I8, PTR, index
from ..kernels.matmul_epilogue import lower_with_epilogue
from .bounds import (ERROR_RECORD, BoundsChecker, CheckedBuilder, checked_buffers,
                     clear_record, describe_kernel, return_if_failed)
from ..options import DEFAULT_OPTIONS, CompileOptions
from ..plan.memplan import ALIGN, MemoryPlan, Workspace, plan_memory
from ..registry import Lowering, Registry, lowering_of
from .loops_scan import control_flow_lowerings
from .steps import WORKSPACE, KernelEnv, KernelPlan, plan_threads
from ..plan.views import VIEWS

# A graph of more kernels keeps each in its own function: inlined into one entry
# function, LLVM's passes took time quadratic in their number (a dict of 500 arrays
# in and out: 8 s of 10). Below it, inlining keeps small graphs one function.
INLINED_KERNELS = 64


def fill_lowerings(table: Registry, paths: Registry) -> None:
    """Enter the lowering of every primitive that is not elementwise into `table`
    (codegen.LOWERINGS: called once, by codegen/__init__.py): the views, the sources,
    the kernels and the control-flow ops (native loops calling their regions, planned
    and emitted by `plan_graph` / `emit_plan` below; codegen/emit/loops_scan.py).
    Elementwise primitives are emitted through EMITTERS alone. `paths`
    (codegen.LOWERING_PATHS) gets every primitive's one path; a primitive in both
    tables is refused there."""
    table.update({name: Lowering("view", fn) for name, fn in VIEWS.items()})
    table.update({
        "constant": Lowering("source", constant_source,
                             needs_buffer=lambda op: splat_value(op.attrs["value"]) is None),
        "iota": Lowering("source", iota_source),
        "reduce_sum": Lowering("kernel", lower_reduce_sum),
        "reduce_max": Lowering("kernel", lower_reduce_max),
        "reduce_min": Lowering("kernel", lower_reduce_min),
        "logsumexp": Lowering("kernel", lower_logsumexp),
        "pad": Lowering("kernel", lower_pad),
        "concatenate": Lowering("kernel", lower_concatenate),
        "dot": Lowering("kernel", lower_dot, view_operands=True, epilogue=DOT_EPILOGUE),
        "conv": Lowering("kernel", lower_conv, buffered_operands=reads_buffers,
                         buffers_read=conv_buffers_read, epilogue=CONV_EPILOGUE),
        "reduce_window_sum": Lowering("kernel", lower_reduce_window_sum,
                                      buffered_operands=window_reads_buffer),
        "reduce_window_max": Lowering("kernel", lower_reduce_window_max,
                                      buffered_operands=window_reads_buffer),
        "gather": Lowering("kernel", lower_gather, buffered_operands=reads_buffers),
        "scatter_add": Lowering("kernel", lower_scatter_add, buffered_operands=reads_buffers),
    })
    table.update(control_flow_lowerings(plan_graph, emit_plan))
    paths.update(dict.fromkeys(EMITTERS, "elementwise"))
    paths.update({name: lowering.kind for name, lowering in table.items()})



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


def lower_graph(graph: Graph, module: lir.Module, name: str, *, checks: bool = False,
                threads: ThreadPlan = SERIAL, options: CompileOptions = DEFAULT_OPTIONS
                ) -> LoweredGraph:
    """Add the entry function `propc.<name>` computing `graph` to `module`.

    `checks`: debug mode, a bounds check on every element access (codegen/emit/bounds.py);
    `threads`: the compile's ThreadPlan (made at the edge from its CompileOptions);
    `options`: the compile's CompileOptions (its kernel switches).
    """
    return emit_plan(module, name, plan_graph(graph, checks=checks, threads=threads,
                                              options=options))


@dataclass
class GraphPlan:
    """Everything decided about a graph before any LLVM IR is emitted (a loop body's
    plan is made while its loop is planned: its arena size is part of the loop's)."""

    graph: Graph
    kernels: list
    homes: dict
    memory: MemoryPlan
    offsets: dict
    in_place: dict
    threads: ThreadPlan = SERIAL
    options: CompileOptions = DEFAULT_OPTIONS
    kernels_function: lir.Function | None = None   # set once emitted

    @property
    def team(self) -> int:
        """Threads its parallel regions use (1: none; then no pool is taken)."""
        if not self.threads.pool:
            return 1
        return max((getattr(step, "threads", 1) for kernel in self.kernels
                    for step in kernel.steps), default=1)


def plan_graph(graph: Graph, *, checks: bool = False, threads: ThreadPlan = SERIAL,
               options: CompileOptions = DEFAULT_OPTIONS) -> GraphPlan:
    """Fusion (epilogues included), kernels, threads and the buffer plan of `graph`,
    each decided once: the kernels follow the fusion plan, the thread plan and the
    options' kernel switches."""
    # debug mode checks every access inside the kernel's own function: no epilogues
    fusion = plan_fusion(graph, epilogues=options.epilogues and not checks, threads=threads,
                         options=options)
    kernels = _plan_kernels(graph, fusion)
    if not checks:
        plan_threads(kernels, threads)
    homes = _homes(graph, kernels, fusion.materialized)
    memory, offsets, in_place = plan_memory(graph, kernels, homes, checks=checks)
    return GraphPlan(graph, kernels, homes, memory, offsets, in_place, threads, options)


def emit_plan(module: lir.Module, name: str, plan: GraphPlan) -> LoweredGraph:
    """Emit the entry points `propc.<name>` (and `.run`) of a planned graph."""
    symbol = f"propc.{name}"
    described = _emit_entry(module, symbol, plan)
    return LoweredGraph(plan.graph, name, symbol, plan.memory, len(plan.kernels), described)


def _output_homes(graph: Graph) -> dict[Value, int]:
    """Computed values written straight into their first output position."""
    homes: dict[Value, int] = {}
    for position, value in enumerate(graph.outputs):
        if value.producer is not None and value not in homes and not global_constant(
                value.producer):
            homes[value] = position
    return homes


def _plan_kernels(graph: Graph, fusion: FusionPlan) -> list[KernelPlan]:
    """One kernel per materialized live value, in graph order, as the fusion plan
    says (each kernel lowering gets the plan): a product with an epilogue is built
    at its consumer's place."""
    materialized, products = fusion.materialized, fusion.products
    numbers = graph.value_numbers() if fusion.epilogues else {}
    kernels = []
    for op in live_ops(graph):
        if op.result not in materialized or op.result in products or global_constant(op):
            continue
        with lowering_op(op):
            lowering = lowering_of(op.prim)
            if op.result in fusion.epilogues:
                kernels.append(lower_with_epilogue(op, fusion.epilogues[op.result],
                                                   fusion, numbers))
            elif lowering.kind == "kernel":
                kernels.append(lowering.fn(op, fusion))
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
        for value in kernel.also_writes:          # a loop's other results
            homes.setdefault(value, Home("scratch"))
        for value in kernel.reads():
            if value not in homes:
                homes[value] = Home("constant")
    return homes


def _emit_entry(module: lir.Module, symbol: str, plan: GraphPlan) -> list:
    """Emit the entry points calling every kernel; returns the kernels' descriptions."""
    graph, kernels, homes = plan.graph, plan.kernels, plan.homes
    offsets, in_place, error_slot = plan.offsets, plan.in_place, plan.memory.error_slot
    n_in, n_out = len(graph.inputs), len(graph.outputs)
    builder, arrays, arena = emit_entry_points(module, symbol, n_in + n_out, plan.team)
    plan.kernels_function = builder.function
    site = _CallSite(module, symbol, builder, arrays, arena, error_slot, homes, offsets, n_in)
    numbers = graph.value_numbers()
    described = []
    table = KernelTable(module)
    for position, kernel in enumerate(kernels):
        origin = kernel.dest.producer if isinstance(kernel.dest, Value) else None
        keys = _kernel_keys(kernel, numbers, in_place)
        described.append(describe_kernel(kernel, origin, keys, graph, homes, numbers))
        checked = None if error_slot is None else position
        # debug mode checks spans against the whole buffers: offsets stay inside
        hoisted = {} if error_slot is not None else {
            key: elements for key, elements in kernel.pointer_offsets().items()
            if key in keys and key is not in_place.get(kernel.dest)}
        mark = table.mark()
        with lowering_op(origin) if origin is not None else contextlib.nullcontext():
            fn = _emit_kernel(module, f"{symbol}.k{position}", kernel, keys, homes,
                              in_place.get(kernel.dest), checked, graph, frozenset(hoisted),
                              plan.options.mathlib)
        fn = table.intern(fn, mark)
        if len(kernels) > INLINED_KERNELS:
            fn.attributes.add("noinline")
            if position % INLINED_KERNELS == 0:
                site.open_group(f"{symbol}.g{position // INLINED_KERNELS}")
        site.call(fn, keys, hoisted, Workspace(position) if kernel.workspace else None)
    site.close_group()
    builder.ret_void()
    return described


class _CallSite:
    """Where the entry calls kernels: the entry function itself or, in a graph of
    more than INLINED_KERNELS kernels, a run of internal functions each calling up
    to that many (one basic block of thousands of calls and pointer loads took
    LLVM's instruction selection and scheduling time quadratic in its length).
    A group function loads the pointers it needs from the entry's buffer block."""

    def __init__(self, module: lir.Module, symbol: str, builder: lir.IRBuilder, arrays: list,
                 arena: lir.Value, error_slot: int | None, homes: dict, offsets: dict,
                 n_in: int):
        self.module, self.entry, self.homes, self.offsets = module, builder, homes, offsets
        self.n_in, self.n_arrays, self.error_slot = n_in, len(arrays), error_slot
        self.builder, self.arena, self.arrays = builder, arena, arrays
        self.record = self.entry_record = None
        if error_slot is not None:
            self.record = self.entry_record = self._at(error_slot)
            clear_record(builder, self.record)
        self.local: dict[object, lir.Value] = {}  # pointers made in the current function
        self.constants = {key: _constant_global(module, f"{symbol}.const", key)
                          for key, home in homes.items() if home.kind == "constant"}

    def open_group(self, name: str) -> None:
        """Send the following calls to a new group function, called from the entry."""
        self.close_group()
        fn = lir.Function(self.module, lir.FunctionType(lir.VoidType(), [PTR]), name)
        fn.linkage = "internal"
        fn.attributes.add("nounwind")
        fn.attributes.add("noinline")
        buffers = self.entry.function.args[0]
        self.entry.call(fn, [buffers])
        if self.entry_record is not None:
            return_if_failed(self.entry, self.entry_record)
        self.builder = lir.IRBuilder(fn.append_basic_block("entry"))
        self.arrays = [None] * self.n_arrays  # loaded from the block on first use
        self.arena = load_slot(self.builder, fn.args[0], self.n_arrays)
        self.local = {}
        if self.error_slot is not None:
            self.record = self._at(self.error_slot)

    def close_group(self) -> None:
        if self.builder is not self.entry:
            self.builder.ret_void()
            self.builder = self.entry

    def call(self, fn: lir.Function, keys: list, hoisted: dict, workspace) -> None:
        """Call kernel `fn` on the buffers of `keys`, each moved by its `hoisted`
        offset, then its workspace and error record when it has them."""
        args = [_moved(self.builder, self.pointer(key), key, hoisted.get(key, 0))
                for key in keys]
        if workspace is not None:
            args.append(self._at(self.offsets[workspace]))
        if self.record is not None:
            args.append(self.record)
        self.builder.call(fn, args)
        if self.record is not None:
            return_if_failed(self.builder, self.record)

    def pointer(self, key) -> lir.Value:
        """The buffer of `key` in the current function."""
        home = self.homes[key]
        if home.kind == "constant":
            return self.constants[key]
        found = self.local.get(key)
        if found is None:
            if home.kind == "scratch":
                found = self._at(self.offsets[key])
            else:
                found = self._array(home.position + (self.n_in if home.kind == "output" else 0))
            self.local[key] = found
        return found

    def _array(self, position: int) -> lir.Value:
        if self.arrays[position] is None:
            self.arrays[position] = load_slot(self.builder, self.builder.function.args[0],
                                              position)
        return self.arrays[position]

    def _at(self, offset: int) -> lir.Value:
        return self.builder.gep(self.arena, [index(offset)], inbounds=True, source_etype=I8)


def _kernel_keys(kernel: KernelPlan, numbers: dict, in_place: dict) -> list:
    """The buffer keys a kernel takes as arguments: its destination, then what it
    reads; an operand it overwrites in place shares the destination's argument."""
    shared = in_place.get(kernel.dest)
    reads = [key for key in _sorted_reads(kernel, numbers) if key is not shared]
    return [kernel.dest] + list(kernel.also_writes) + reads


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
                 hoisted: frozenset, mathlib: bool) -> lir.Function:
    """One internal function running the kernel's steps on its buffer arguments.

    `shared` is the operand overwritten in place (it uses the destination's
    argument); `checked` is the kernel's index in debug mode (bounds checks), else
    None; `hoisted` the buffers whose argument the caller already moved by the
    kernel's `pointer_offsets()`; `mathlib` the compile's choice of inline
    polynomial transcendentals (CompileOptions.mathlib).
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
    pointers = dict(zip(keys, fn.args))
    block = fn.append_basic_block("entry")
    if checked is None:
        builder = lir.IRBuilder(block)
    else:
        builder = CheckedBuilder(block, BoundsChecker(checked, pointers[ERROR_RECORD],
                                                      checked_buffers(keys, fn.args, graph)))
    env = KernelEnv(builder, pointers, mathlib, hoisted)
    if shared is not None:
        env.pointers[shared] = env.pointers[kernel.dest]
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

