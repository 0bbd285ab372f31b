"""llvmlite backend: lowering of IR graphs to native code, JIT runtime, cache."""
