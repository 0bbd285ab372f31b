"""Debug mode's bounds checks: every element load and store of a kernel checks its
index against the size of the buffer it touches.

How it works: a kernel is emitted in debug mode with a `CheckedBuilder`, an
IRBuilder that carries the kernel's `BoundsChecker`; `llvmtypes.load_element` and
`store_element` call `check_access` with the builder they emit with before
computing an element's address (a plain IRBuilder: no check). The
check is `offset <u elements` (a negative offset fails too); on failure the kernel
writes an error record into the arena and returns at once, and the entry function
(`return_if_failed` after every kernel call) returns too. The Python runtime
then reads the record and raises `BoundsCheckError` naming the kernel's op, its
types and source line, the buffer, the element and the buffer's size.

Record layout (int64 words, `ERROR_WORDS` of them, in a 64-byte slot of the arena
placed by the buffer plan): kernel index + 1 (0 = no failure), buffer position in
the kernel's argument list, element offset, buffer size in elements, access kind.
"""
from __future__ import annotations

import llvmlite.ir as lir

from ir.graph import Value

from ..errors import describe

_I64 = lir.IntType(64)
ERROR_WORDS = 5
_KINDS = {"load": 1, "store": 2}
_KIND_NAMES = {code: name for name, code in _KINDS.items()}

# Key of the error record in a kernel's argument list (next to steps.WORKSPACE).
ERROR_RECORD = "error record"


class BoundsCheckError(RuntimeError):
    """A debug-mode (PROPC_DEBUG=1) bounds check failed: the compiled code for the
    named op read or wrote outside a buffer. This is a bug in propc's backend."""


class BoundsChecker:
    """The checks of one kernel: its index, error record and buffers' sizes.

    `buffers` maps id() of each buffer argument of the kernel function to (the
    argument, its position in the argument list, its size in elements); pointers
    not in it are not checked.
    """

    def __init__(self, kernel: int, record: lir.Value,
                 buffers: dict[int, tuple[lir.Value, int, int]]):
        self.kernel = kernel
        self.record = record
        self.buffers = buffers

    def check(self, builder: lir.IRBuilder, base: lir.Value, offset: lir.Value, kind: str
              ) -> None:
        """Branch to a block recording the failure and returning from the kernel
        unless 0 <= offset < size; later code is emitted in the passing branch."""
        found = self.buffers.get(id(base))
        if found is None:
            return
        _, position, elements = found
        inside = builder.icmp_unsigned("<", offset, lir.Constant(_I64, elements))
        function = builder.function
        failed = function.append_basic_block("bounds.fail")
        passed = function.append_basic_block("bounds.ok")
        builder.cbranch(inside, passed, failed)
        builder.position_at_end(failed)
        words = [self.kernel + 1, position, offset, elements, _KINDS[kind]]
        for slot, word in enumerate(words):
            value = word if isinstance(word, lir.Value) else lir.Constant(_I64, word)
            address = builder.gep(self.record, [lir.Constant(_I64, slot)], inbounds=True,
                                  source_etype=_I64)
            builder.store(value, address, align=8)
        builder.ret_void()
        builder.position_at_end(passed)


class CheckedBuilder(lir.IRBuilder):
    """The IRBuilder of a debug-mode kernel: the element accesses emitted with it
    are checked by `checker` (codegen/emit/lowering.py makes one per checked kernel;
    the checks travel with the builder, which every emitter is given)."""

    def __init__(self, block: lir.Block, checker: BoundsChecker):
        super().__init__(block)
        self.checker = checker


def checks_active(builder: lir.IRBuilder) -> bool:
    """Whether the kernel `builder` emits is checked (debug mode): code that would
    move accesses into a function of its own keeps them in the kernel then."""
    return isinstance(builder, CheckedBuilder)


def check_access(builder: lir.IRBuilder, base: lir.Value, offset: lir.Value, kind: str) -> None:
    """Emit the bounds check of one element access when `builder` checks (debug mode)."""
    if isinstance(builder, CheckedBuilder):
        builder.checker.check(builder, base, offset, kind)


def check_span(builder: lir.IRBuilder, base: lir.Value, first: int, last: int, kind: str
               ) -> None:
    """Check a block of accesses made elsewhere (a call into the shared sgemm) by its
    lowest and highest element offsets, when `builder` checks (debug mode)."""
    for offset in (first, last):
        check_access(builder, base, lir.Constant(_I64, offset), kind)


def clear_record(builder: lir.IRBuilder, record: lir.Value) -> None:
    """At the start of a call: no failure yet."""
    builder.store(lir.Constant(_I64, 0), record, align=8)


def return_if_failed(builder: lir.IRBuilder, record: lir.Value) -> None:
    """After a kernel call: return from the entry function if the kernel failed."""
    failed_flag = builder.load(record, typ=_I64, align=8)
    failed = builder.icmp_unsigned("!=", failed_flag, lir.Constant(_I64, 0))
    function = builder.function
    stop = function.append_basic_block("bounds.stop")
    go_on = function.append_basic_block("bounds.continue")
    builder.cbranch(failed, stop, go_on)
    builder.position_at_end(stop)
    builder.ret_void()
    builder.position_at_end(go_on)


def describe_failure(graph_name: str, record: list[int], kernels: list[dict]) -> str:
    """The message of a failed check, from the error record and kernel descriptions."""
    kernel_number, position, offset, elements, kind = record[:ERROR_WORDS]
    index = kernel_number - 1
    kernel = kernels[index] if 0 <= index < len(kernels) else {"op": "?", "buffers": []}
    buffers = kernel.get("buffers", [])
    buffer = buffers[position] if 0 <= position < len(buffers) else f"argument {position}"
    return (f"PROPC_DEBUG bounds check failed in @{graph_name}, kernel {index} computing "
            f"{kernel.get('op', '?')}: {_KIND_NAMES.get(kind, 'access')} of element {offset} "
            f"of {buffer}, which has {elements} elements")


def checked_buffers(keys: list, args, graph) -> dict:
    """id(argument) -> (argument, position, size in elements) for each buffer argument
    of a kernel (keys: Values, or output-slot keys with a `.position`)."""
    found = {}
    for position, (key, arg) in enumerate(zip(keys, args)):
        if isinstance(key, Value):
            found[id(arg)] = (arg, position, key.type.size)
        elif hasattr(key, "position"):
            found[id(arg)] = (arg, position, graph.outputs[key.position].type.size)
    return found


def describe_kernel(kernel, origin, keys: list, graph, homes: dict, numbers: dict) -> dict:
    """What a kernel computes and its buffer arguments, in words (for the messages)."""
    if origin is not None:
        op = f"%{numbers[kernel.dest]} = {describe(origin)}"
    else:
        op = f"a copy into output {kernel.dest.position}"
    buffers = []
    for key in keys:
        if isinstance(key, Value):
            buffers.append(f"{homes[key].kind} %{numbers.get(key, '?')} ({key.type})")
        else:
            buffers.append(f"output {key.position} ({graph.outputs[key.position].type})")
    return {"op": op, "buffers": buffers}
