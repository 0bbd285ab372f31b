"""llvmlite backend: lowering of IR graphs to native code, JIT runtime.

    exe = compile_graph(graph)          # one LLVM module, JIT-compiled for this CPU
    outputs = exe(*input_arrays)        # one native call, fresh output arrays
    exe.llvm_ir, exe.asm, exe.memory    # what it became

`compile_graphs([fwd, bwd])` puts several graphs in one module. `LOWERINGS` is the
per-primitive lowering registry.
"""
from .errors import CodegenError
from .memplan import MemoryPlan
from .registry import LOWERINGS, Lowering
from .runtime import Executable, compile_graph, compile_graphs

__all__ = ["CodegenError", "Executable", "LOWERINGS", "Lowering", "MemoryPlan",
           "compile_graph", "compile_graphs"]
