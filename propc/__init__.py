"""propc: trace NumPy-style model code, differentiate it, compile both passes.

    import propc as pc
    f = pc.interpret(lambda x, W: pc.nn.relu(x @ W).sum())
    f(np.ones((4, 3), np.float32), np.ones((3, 2), np.float32))

The public names below are SPEC.md's contract.
"""
import numpy as _np

from . import nn, optim
from .api import ShapeDtype, interpret, trace
from .errors import ConcretizationError, ShapeError, TraceError
from .numpy_api import (abs, broadcast_to, concatenate, cos, exp, log, matmul, max, maximum, mean,
                        min, minimum, ones_like, reshape, sin, sqrt, stop_gradient, sum, tanh,
                        transpose, where, zeros_like)
from .tracing import Tensor

# dtypes, so `pc.float32` works where NumPy's would
float32 = _np.float32
float64 = _np.float64
int32 = _np.int32
int64 = _np.int64
bool_ = _np.bool_

from .transforms import grad, value_and_grad, vjp  # noqa: E402
from .compile import Compiled, Lowered, compile  # noqa: E402
from .checks import check_grad, compare  # noqa: E402
from .control_flow import cond, fori_loop, scan, while_loop  # noqa: E402

__all__ = [
    "Compiled", "Lowered", "check_grad", "compare", "compile", "grad", "value_and_grad", "vjp",
    "ConcretizationError", "ShapeDtype", "ShapeError", "Tensor", "TraceError", "abs",
    "bool_", "broadcast_to", "concatenate", "cos", "exp", "float32", "float64", "int32",
    "int64", "interpret", "log", "matmul", "max", "maximum", "mean", "min", "minimum", "nn",
    "ones_like", "optim", "reshape", "sin", "sqrt", "stop_gradient", "sum", "tanh", "trace",
    "transpose", "where", "zeros_like",
    "cond", "fori_loop", "scan", "while_loop",
]
