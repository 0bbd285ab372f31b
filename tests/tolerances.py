"""The test suite's one tolerance table: (rtol, atol) per kind of comparison and dtype.

The table-driven comparisons take their tolerance from here: the op-case table's
interpreter, compiled, VJP, JVP and vmap tests, the NumPy front-end checks, the
gradient checks against differences and the fuzzers. So how close "close" is for
every primitive can be read (and argued about) in one place. A test of one
particular computation (a kernel path, a model, a bound derived for it, such as
tests/codegen/rounding_bounds.py) states its own bound next to its assertion. A check
passes when |actual - expected| <= atol + rtol * |expected|. Integer and bool results
must be equal: they have no rows, and `tolerance` gives them (0, 0).

Kinds, tightest first:
- "op": one primitive, interpreted or compiled, vs its independent NumPy reference
  (tests/op_cases.py) or a one-layer graph vs NumPy (tests/ir/test_interpret.py):
  only the summation order and a few-ulp transcendental differ.
- "numpy": a front-end function vs the same computation written in NumPy, and
  compiled vs interpreted across the C/ELF export; the values are `pc.compare`'s
  defaults (propc/reports.py).
- "backprop": reverse-mode gradients vs backpropagation written by hand in NumPy
  (tests/ir/test_autodiff.py): a longer chain of reordered sums.
- "graph": a random graph compiled vs interpreted (tests/fuzz): chains of
  transcendentals, reassociated sums and dots.
- "differences": reverse-mode gradients vs float64 central differences
  (tests/ir/fd.py): the truncation and rounding error of the differences.
- "differences_through_f32": the same, for a float64 function whose values pass
  through float32 (a convert round trip): differences need a larger step.
- "jvp_differences": forward-mode tangents of the op-case rows vs central
  differences of their NumPy references (tests/frontend/test_jvp.py); float32 rows
  (converts) take a larger step.
- "fuzz_differences": the gradient fuzzer's autodiff vs differences, on graphs
  widened to float64, relative to each input's largest gradient (tests/fuzz).
"""
from __future__ import annotations

from typing import Any

import numpy as np

TOLERANCES: dict[str, dict[str, tuple[float, float]]] = {
    "op": {"float32": (1e-5, 1e-6), "float64": (1e-12, 1e-12)},
    "numpy": {"float32": (2e-5, 1e-6), "float64": (1e-12, 1e-14)},
    "backprop": {"float32": (2e-4, 1e-6), "float64": (1e-10, 1e-12)},
    "graph": {"float32": (2e-4, 1e-5), "float64": (1e-9, 1e-12)},
    "differences": {"float32": (2e-4, 2e-5), "float64": (1e-6, 1e-8)},
    "differences_through_f32": {"float64": (1e-4, 1e-5)},
    "jvp_differences": {"float32": (1e-3, 1e-3), "float64": (1e-5, 1e-5)},
    "fuzz_differences": {"float64": (1e-4, 1e-6)},
}


# Compiled vs interpreted elementwise transcendentals: units in the last place of the
# interpreter's result (tests/codegen: the inline polynomials vs NumPy's libm).
ULPS: dict[str, int] = {prim: 4 for prim in ("exp", "log", "tanh", "sqrt", "sin", "cos", "pow")}


def _dtype_name(dtype: Any) -> str:
    """'float32'/'float64' for an ir.DType, a NumPy dtype or scalar type, or a name."""
    numpy = getattr(dtype, "numpy", None)          # ir.DType
    return np.dtype(numpy if numpy is not None else dtype).name


def tolerance(kind: str, dtype: Any) -> tuple[float, float]:
    """(rtol, atol) of comparisons of `kind` for results of `dtype`; (0, 0) for
    integer and bool results."""
    name = _dtype_name(dtype)
    if np.dtype(name).kind != "f":
        return (0.0, 0.0)
    return TOLERANCES[kind][name]


def tol(kind: str, dtype: Any) -> dict[str, float]:
    """The same as keyword arguments for np.testing.assert_allclose."""
    rtol, atol = tolerance(kind, dtype)
    return {"rtol": rtol, "atol": atol}
