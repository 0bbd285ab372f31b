"""propc's public namespace (the API the README describes): what `import propc as pc` offers.

propc/__init__.py loads this module on the first use of any of these names, so a
process that only loads exported libraries (`propc.load_exported`) never imports
`ir`, `codegen` or llvmlite. A new public name goes here and in `__all__`.
"""
import numpy as _np

from . import nn, optim
from .api import ShapeDtype, interpret, trace
from .errors import ConcretizationError, ShapeError, TraceError
from .numpy_api import (abs, broadcast_to, concatenate, cos, exp, log, matmul, max, maximum, mean,
                        min, minimum, ones_like, reshape, sin, sqrt, stop_gradient, sum, tanh,
                        transpose, where, zeros_like)
from .einsum import einsum
from .numpy_math import argmax, argmin, clip, erf, expm1, floor_divide, log1p, mod, std, var
from .numpy_shape import arange, expand_dims, full, ones, pad, squeeze, stack, zeros
from .take import take, take_along_axis
from .recompiles import PrecisionWarning, RecompileWarning
from .tracing import Tensor

# dtypes, so `pc.float32` works where NumPy's would
float32 = _np.float32
float64 = _np.float64
int32 = _np.int32
int64 = _np.int64
bool_ = _np.bool_

from .transforms import grad, value_and_grad, vjp  # noqa: E402
from .vmap import vmap  # noqa: E402
from .custom_vjp import custom_vjp  # noqa: E402
from .checkpoint import checkpoint  # noqa: E402
from .jvp import jvp  # noqa: E402
from .compile import Compiled, Lowered, compile  # noqa: E402
from .checks import check_grad, compare  # noqa: E402
from .aot_export import export  # noqa: E402
from .exported import load_exported  # noqa: E402
from .control_flow import cond, fori_loop, scan, while_loop  # noqa: E402

__all__ = [
    "Compiled", "Lowered", "check_grad", "compare", "compile", "export", "grad",
    "load_exported", "value_and_grad", "vjp", "vmap", "custom_vjp", "checkpoint", "jvp",
    "ConcretizationError", "PrecisionWarning", "RecompileWarning", "ShapeDtype", "ShapeError",
    "Tensor", "TraceError", "abs",
    "bool_", "broadcast_to", "concatenate", "cos", "exp", "float32", "float64", "int32",
    "int64", "interpret", "log", "matmul", "max", "maximum", "mean", "min", "minimum", "nn",
    "ones_like", "optim", "reshape", "sin", "sqrt", "stop_gradient", "sum", "tanh", "trace",
    "transpose", "where", "zeros_like",
    "arange", "argmax", "argmin", "clip", "einsum", "erf", "expand_dims", "expm1",
    "floor_divide", "full", "log1p", "mod", "ones", "pad", "squeeze", "stack", "std", "take",
    "take_along_axis", "var", "zeros",
    "cond", "fori_loop", "scan", "while_loop",
]
