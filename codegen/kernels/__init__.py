"""Hand-written kernels for particular primitives: the packed float32 sgemm
(matmul*.py, sgemm_step.py, dot.py), convolutions and windows (conv*.py), gather and
scatter-add (gather.py), logsumexp, and the polynomial math library (mathlib*.py).
"""
