"""llvmlite backend: lowering of IR graphs to native code, JIT runtime.

    exe = compile_graph(graph)          # one LLVM module, JIT-compiled for this CPU
    outputs = exe(*input_arrays)        # one native call, fresh output arrays
    exe.llvm_ir, exe.asm, exe.memory    # what it became

`compile_graphs([fwd, bwd])` puts several graphs in one module; `compile_traced`
keys the disk cache on the text a graph is derived from (pc.compile's traced graph).
Compiled code is cached in memory by the caller and on disk here
(codegen/runtime/cache.py: PROPC_CACHE_DIR, PROPC_CACHE=0); PROPC_DEBUG=1 compiles
bounds checks into every memory access (codegen/emit/bounds.py). Every environment
setting is read by codegen/options.py only (`CompileOptions`). `LOWERINGS` is the
per-primitive lowering registry of the primitives that are not elementwise
(codegen/registry.py; elementwise ones are emitted by codegen/emit/elementwise.py's
EMITTERS alone), filled here, once, by `fill_lowerings` (codegen/emit/lowering.py).

Layout, one subpackage per stage (which may import which: tests/test_layering.py):
- plan/ (pure Python, no LLVM): the fusion plan, made in one pass (which values get
  buffers, which elementwise kernels run as a product's epilogue), expression
  trees, the sgemm layout query, the ThreadPlan; affine index maps and views; the
  buffer plan places intermediates in one scratch arena;
- emit/: each buffer is written by one kernel, a loop nest over affine indices
  (expr, steps, kernels, loops, parallel_nest); entry points; the lowering driver;
- kernels/: primitive-specific kernels (packed float32 sgemm, conv, gather,
  logsumexp, the polynomial math library);
- threads/: thread count and libgomp (host), the process-wide library (library), the
  threaded sgemm (sgemm); regions and the pool of a compiled call are internal;
- runtime/: the JIT, the disk cache, the Executable that calls compiled code, export.
The kernel switches (inline polynomial transcendentals vs LLVM intrinsics, packed
sgemm vs generic loop nests for dots and convs, epilogues fused into the sgemm's
tile store, the thread pool) are fields of the compile's frozen `CompileOptions`
(codegen/options.py), passed down like every other setting: codegen keeps no
module-level switch.
"""
from .emit.bounds import BoundsCheckError
from .errors import CodegenError
from .plan.memplan import MemoryPlan
from .registry import LOWERING_PATHS, LOWERINGS, Lowering, Registry
from .runtime.executable import Executable, compile_graph, compile_graphs, compile_traced
from .emit.lowering import fill_lowerings

fill_lowerings(LOWERINGS, LOWERING_PATHS)  # the lowering table, filled once, here

__all__ = ["BoundsCheckError", "CodegenError", "Executable", "LOWERINGS", "LOWERING_PATHS",
           "Lowering", "Registry",
           "MemoryPlan", "compile_graph", "compile_graphs", "compile_traced"]
