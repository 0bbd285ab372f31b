"""Turning LLVM modules into callable code: the JIT (jit.py), the disk cache
(cache.py), the Executable that calls compiled graphs (executable.py) and ahead-of-
time export to object files and shared libraries (export*.py).
"""
