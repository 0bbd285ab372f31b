"""Float64 central finite differences: the independent oracle for gradients.

The one implementation of the check that reverse mode is measured against:
`pc.check_grad` (propc/checks.py) runs it on the user's function interpreted in
float64, and the tests of ir's autodiff (tests/ir/fd.py) on `sum(out * cotangent)`
of an interpreted graph. It only evaluates the function it is given, so it knows
nothing of graphs or tracing.

    d/dx f ~ (f(x + h*v) - f(x - h*v)) / (2h)

with an error of O(h^2) from truncation and O(eps * |f| / h) from rounding; the
default step h = 1e-6 * max(1, max|x|) balances the two for float64 at unit scale
and follows x's magnitude.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

RELATIVE_STEP = 1e-6


def default_step(x: np.ndarray) -> float:
    """1e-6 * max(1, max|x|): a step that scales with the point, never below 1e-6."""
    largest = float(np.max(np.abs(x))) if x.size else 1.0
    return RELATIVE_STEP * max(1.0, largest)


def directional_difference(f: Callable[[np.ndarray], object], x: np.ndarray,
                           direction: np.ndarray, step: float) -> np.ndarray:
    """(f(x + step*direction) - f(x - step*direction)) / (2*step), in float64; `f`
    may return a scalar or an array."""
    plus = np.asarray(f(x + step * direction), dtype=np.float64)
    minus = np.asarray(f(x - step * direction), dtype=np.float64)
    return (plus - minus) / (2 * step)


def central_differences(f: Callable[[np.ndarray], float], x: np.ndarray,
                        step: float | None = None,
                        directions: Sequence[np.ndarray] | None = None) -> np.ndarray:
    """The derivative of the scalar function `f` at `x` (made float64).

    Without `directions`: the gradient, one central difference per element of `x`
    (2 * x.size calls of `f`), shaped like `x`. With `directions`: one directional
    derivative per direction (a 1-d array), i.e. gradient . direction, for arrays too
    large to do element by element. `step` defaults to `default_step(x)`.
    """
    x = np.asarray(x, dtype=np.float64)
    h = default_step(x) if step is None else step
    if directions is not None:
        return np.array([float(directional_difference(f, x, np.asarray(d, np.float64), h))
                         for d in directions], dtype=np.float64)
    gradient = np.empty(x.shape, dtype=np.float64)
    for index in np.ndindex(x.shape):
        values = []
        for signed in (h, -h):
            moved = x.copy()
            moved[index] += signed
            values.append(float(f(moved)))
        gradient[index] = (values[0] - values[1]) / (2 * h)
    return gradient


__all__ = ["RELATIVE_STEP", "central_differences", "default_step", "directional_difference"]
