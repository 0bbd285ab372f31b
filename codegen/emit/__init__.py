"""LLVM IR emission: scalar expressions (expr.py, elementwise.py), loop nests
(loops.py, steps.py, kernels.py, direct.py, parallel_nest.py), bounds checks
(bounds.py), entry points (entry.py), kernel dedupe and the lowering driver
(lowering.py) that turns one graph into one LLVM module.
"""
