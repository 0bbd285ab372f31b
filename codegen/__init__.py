"""llvmlite backend: lowering of IR graphs to native code, JIT runtime.

    exe = compile_graph(graph)          # one LLVM module, JIT-compiled for this CPU
    outputs = exe(*input_arrays)        # one native call, fresh output arrays
    exe.llvm_ir, exe.asm, exe.memory    # what it became

`compile_graphs([fwd, bwd])` puts several graphs in one module; `compile_traced`
keys the disk cache on the text a graph is derived from (pc.compile's traced graph).
Compiled code is cached in memory by the caller and on disk here (codegen/cache.py:
PROPC_CACHE_DIR, PROPC_CACHE=0); PROPC_DEBUG=1 compiles bounds checks into every
memory access (codegen/bounds.py). `LOWERINGS` is the
per-primitive lowering registry (codegen/registry.py, filled by codegen/lowering.py).

Pipeline: fusion (codegen/fusion.py) decides which values get buffers; each buffer
is written by one kernel, a loop nest over affine indices (affine.py, views.py,
expr.py, steps.py, kernels.py, dot.py); the buffer plan (memplan.py) places
intermediates in one aligned scratch arena; jit.py optimises and JITs the module;
runtime.py calls it. Threads: products and loops with enough work run as libgomp
regions of the shared library (parallel.py, parallel_region.py, matmul_parallel.py),
PROPC_NUM_THREADS of them (default: the usable cores), idle threads sleeping
(OMP_WAIT_POLICY=PASSIVE unless the user set a policy). Three one-line switches:
`elementwise.USE_MATHLIB` (inline polynomial transcendentals of mathlib.py vs LLVM
intrinsics), `dot.USE_SGEMM` (packed float32 sgemm of matmul.py vs generic loop
nests) and `matmul_epilogue.USE_EPILOGUES` (bias/activation fused into the sgemm's
tile store vs separate kernels).
"""
from .emit.bounds import BoundsCheckError
from .errors import CodegenError
from .plan.memplan import MemoryPlan
from .registry import LOWERINGS, Lowering, Registry
from .runtime.executable import Executable, compile_graph, compile_graphs, compile_traced
from .emit.lowering import fill_lowerings

fill_lowerings(LOWERINGS)  # the lowering table, filled once, here

__all__ = ["BoundsCheckError", "CodegenError", "Executable", "LOWERINGS", "Lowering", "Registry",
           "MemoryPlan", "compile_graph", "compile_graphs", "compile_traced"]
