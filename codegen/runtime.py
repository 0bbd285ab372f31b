"""Compiled graphs you can call: `compile_graph`, `compile_graphs`, `Executable`.

An `Executable` calls its native entry point once per invocation through a
`ctypes.CFUNCTYPE` (which releases the GIL), passing one pointer to a block holding
the input arrays and the freshly allocated output arrays (as array objects: the
entry reads their data pointers, see codegen/entry.py) and the scratch arena. The
block and the arena are per thread, so several Python threads may call one
Executable at the same time.
"""
from __future__ import annotations

import ctypes
import threading

import llvmlite.ir as lir
import numpy as np

from ir.graph import Graph
from ir.verify import verify

from .jit import JitModule
from .lowering import LoweredGraph, lower_graph, unique_name
from .memplan import ALIGN, MemoryPlan

_ENTRY_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)


class Executable:
    """A graph compiled to native code; call it with the graph's input arrays.

    `.llvm_ir` and `.asm` are the text of the whole optimised module (shared by the
    graphs compiled together), `.memory` the buffer plan, `.unoptimised_ir` the
    module before optimisation (only with debug=True, else None).
    """

    def __init__(self, lowered: LoweredGraph, jit: JitModule):
        self.graph = lowered.graph
        self.name = lowered.name
        self.memory: MemoryPlan = lowered.memory
        self.kernel_count = lowered.kernel_count
        self._jit = jit
        self._entry = _ENTRY_TYPE(jit.address(lowered.symbol))
        self._inputs = [(v.type.shape, v.type.dtype.numpy, str(v.type)) for v in self.graph.inputs]
        self._outputs = [(v.type.shape, v.type.dtype.numpy) for v in self.graph.outputs]
        self._local = threading.local()

    @property
    def llvm_ir(self) -> str:
        return self._jit.llvm_ir

    @property
    def asm(self) -> str:
        return self._jit.asm

    @property
    def unoptimised_ir(self) -> str | None:
        return self._jit.unoptimised_ir

    def __repr__(self) -> str:
        return (f"<Executable @{self.name}: {len(self._inputs)} inputs, "
                f"{len(self._outputs)} outputs, {self.kernel_count} kernels>")

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        """Run on C-contiguous arrays of exactly the input types; fresh outputs."""
        if len(arrays) != len(self._inputs):
            raise ValueError(f"@{self.name} takes {len(self._inputs)} input arrays, "
                             f"got {len(arrays)}")
        block, address, arena = self._thread_state()
        for position, array in enumerate(arrays):
            self._check(position, array)
            block[position] = id(array)
        outputs = [np.empty(shape, dtype) for shape, dtype in self._outputs]
        base = len(self._inputs)
        for position, array in enumerate(outputs):
            block[base + position] = id(array)
        # `arrays` and `outputs` keep every object in the block alive during the call
        self._entry(address, arena)
        return outputs

    def _check(self, position: int, array) -> None:
        shape, dtype, text = self._inputs[position]
        if not isinstance(array, np.ndarray):
            raise ValueError(f"@{self.name} input {position}: expected a NumPy array {text}, "
                             f"got {type(array).__name__}")
        if array.dtype != dtype or array.shape != shape:
            raise ValueError(f"@{self.name} input {position}: expected {text}, got "
                             f"{array.dtype.name}{list(array.shape)}")
        flags = array.flags
        if not (flags.c_contiguous and flags.aligned):
            raise ValueError(f"@{self.name} input {position}: array must be C-contiguous "
                             "and aligned (use np.ascontiguousarray)")

    def _thread_state(self) -> tuple:
        """This thread's object block, its address, and the 64-byte aligned arena."""
        found = getattr(self._local, "state", None)
        if found is None:
            block = (ctypes.c_void_p * len(self._inputs + self._outputs))()
            arena = np.empty(self.memory.peak_scratch + ALIGN, dtype=np.uint8)
            address = arena.ctypes.data
            aligned = address + (-address) % ALIGN
            self._local.state = found = (block, ctypes.addressof(block), aligned)
            self._local.arena = arena
        return found


def compile_graph(graph: Graph, *, name: str | None = None, debug: bool = False
                  ) -> Executable:
    """Compile one graph to native code (one LLVM module, one JIT)."""
    return _compile([graph], [name], debug)[0]


def compile_graphs(graphs: list[Graph], *, debug: bool = False) -> list[Executable]:
    """Compile several graphs into ONE LLVM module and one JIT (e.g. forward and
    backward pass); returns one Executable per graph, in order."""
    return _compile(list(graphs), [None] * len(graphs), debug)


def _compile(graphs: list[Graph], names: list, debug: bool) -> list[Executable]:
    if not graphs:
        raise ValueError("compile_graphs needs at least one graph")
    module = lir.Module(name="propc")
    taken: set[str] = set()
    lowered = []
    for graph, name in zip(graphs, names):
        if not isinstance(graph, Graph):
            raise TypeError(f"expected an ir.Graph, got {type(graph).__name__}")
        if debug:
            verify(graph)
        lowered.append(lower_graph(graph, module, unique_name(name or graph.name, taken)))
    jit = JitModule(module, debug=debug)
    return [Executable(item, jit) for item in lowered]
