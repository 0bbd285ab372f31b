"""Comparison reports: compiled vs interpreted (`pc.compare`) and analytic vs
finite-difference gradients (`pc.check_grad`).

Both are a list of per-leaf rows with the largest absolute and relative error and a
pass/fail verdict; `.ok` is True when every row passes and `str()` is a table.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ir.table import render

# Default tolerances of compiled-vs-interpreted comparisons, by result dtype. Float
# results may differ by a few ulp (inline polynomial transcendentals, reassociated
# reductions and dots); integer and bool results must be identical.
COMPARE_TOLERANCES: dict[str, tuple[float, float]] = {
    "float32": (2e-5, 1e-6),
    "float64": (1e-12, 1e-14),
    "int32": (0.0, 0.0),
    "int64": (0.0, 0.0),
    "bool": (0.0, 0.0),
}


@dataclass
class LeafComparison:
    """One output leaf: where it is, its type, the largest errors and the verdict."""

    path: str
    type: str
    max_abs: float
    max_rel: float
    rtol: float
    atol: float
    ok: bool
    note: str = ""


def compare_arrays(path: str, actual: np.ndarray, expected: np.ndarray,
                   rtol: float, atol: float) -> LeafComparison:
    """Compare one leaf: NaNs must sit at the same places, infinities must match."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    type_text = f"{expected.dtype.name}{list(expected.shape)}"
    if actual.shape != expected.shape or actual.dtype != expected.dtype:
        return LeafComparison(path, type_text, np.inf, np.inf, rtol, atol, False,
                              f"got {actual.dtype.name}{list(actual.shape)}")
    if expected.size == 0:
        return LeafComparison(path, type_text, 0.0, 0.0, rtol, atol, True)
    a = actual.astype(np.float64)
    e = expected.astype(np.float64)
    same_nan = np.array_equal(np.isnan(a), np.isnan(e))
    finite = np.isfinite(a) & np.isfinite(e)
    same_inf = np.array_equal(np.where(finite | np.isnan(e), 0.0, a),
                              np.where(finite | np.isnan(e), 0.0, e))
    diff = np.where(finite, np.abs(a - e), 0.0)
    rel = np.where(finite, diff / np.maximum(np.abs(e), np.finfo(np.float64).tiny), 0.0)
    within = bool(np.all(diff <= atol + rtol * np.abs(np.where(finite, e, 0.0))))
    note = "" if same_nan else "NaN positions differ"
    if not same_inf:
        note = (note + "; " if note else "") + "infinities differ"
    ok = same_nan and same_inf and within
    return LeafComparison(path, type_text, float(diff.max()), float(rel.max()), rtol, atol, ok, note)


@dataclass
class ComparisonReport:
    """Per-leaf agreement of two evaluations of the same function."""

    title: str
    leaves: list[LeafComparison] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(leaf.ok for leaf in self.leaves)

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        headers = ["leaf", "type", "max abs err", "max rel err", "rtol", "atol", "result"]
        rows = [[leaf.path, leaf.type, f"{leaf.max_abs:.3g}", f"{leaf.max_rel:.3g}",
                 f"{leaf.rtol:g}", f"{leaf.atol:g}",
                 ("ok" if leaf.ok else "FAIL") + (f" ({leaf.note})" if leaf.note else "")]
                for leaf in self.leaves]
        verdict = "all leaves agree" if self.ok else \
            f"{sum(not leaf.ok for leaf in self.leaves)} of {len(self.leaves)} leaves differ"
        table = render(headers, rows, left=range(len(headers)), rule=True)
        return "\n".join([self.title, *table, verdict])

    __repr__ = __str__
