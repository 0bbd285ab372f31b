"""`pc.compare` (compiled vs interpreted) and `pc.check_grad` (analytic gradient vs
float64 central finite differences)."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from ir.differences import central_differences

from .errors import api_boundary
from .pytree import tree_flatten, tree_paths
from .reports import COMPARE_TOLERANCES, ComparisonReport, LeafComparison, compare_arrays

# Leaves with more elements than this are checked along random directions instead of
# element by element (each element costs two evaluations of the function).
FULL_CHECK_LIMIT = 512
RANDOM_DIRECTIONS = 16


@api_boundary
def compare(fn: Callable, *args: Any, rtol: float | None = None,
            atol: float | None = None) -> ComparisonReport:
    """Run `fn` compiled and interpreted on the same arguments; compare every output leaf.

    Default tolerances depend on each leaf's dtype (reports.COMPARE_TOLERANCES):
    integer and bool results must be identical.
    """
    from .api import interpret
    from .compile import Compiled, compile as compile_fn

    compiled = (fn if isinstance(fn, Compiled) else compile_fn(fn))(*args)
    interpreted = interpret(getattr(fn, "fn", fn))(*args)
    actual, _ = tree_flatten(compiled)
    expected, _ = tree_flatten(interpreted)
    paths = tree_paths(interpreted, "out")
    report = ComparisonReport(f"compiled vs interpreted: {getattr(fn, '__name__', 'fn')}")
    for path, a, e in zip(paths, actual, expected):
        e = np.asarray(e)
        default_rtol, default_atol = COMPARE_TOLERANCES.get(e.dtype.name, (0.0, 0.0))
        report.leaves.append(compare_arrays(
            path, a, e, default_rtol if rtol is None else rtol,
            default_atol if atol is None else atol))
    return report


def _float64_args(args: tuple) -> tuple:
    """A copy of args with every float leaf in float64 (Python floats too)."""
    def widen(leaf):
        if isinstance(leaf, float):
            return np.float64(leaf)
        if isinstance(leaf, (np.ndarray, np.generic)) and leaf.dtype.kind == "f":
            return np.asarray(leaf, dtype=np.float64)
        return leaf
    from .pytree import tree_map
    return tree_map(widen, tuple(args))


def _with_leaf(args64: tuple, leaf_index: int, value: np.ndarray) -> tuple:
    from .pytree import tree_unflatten
    leaves, tree = tree_flatten(args64)
    leaves = list(leaves)
    leaves[leaf_index] = value
    return tree_unflatten(tree, leaves)


def _numeric_grad(f64: Callable, args64: tuple, leaf_index: int, analytic: np.ndarray,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(numeric, analytic-projected) pairs for one leaf: per element when small, along
    random directions when large (ir/differences.py computes the differences)."""
    x = np.asarray(tree_flatten(args64)[0][leaf_index], dtype=np.float64)

    def at(value: np.ndarray) -> float:
        return float(f64(*_with_leaf(args64, leaf_index, value)))

    if x.size <= FULL_CHECK_LIMIT:
        return central_differences(at, x), analytic.astype(np.float64)
    directions = [rng.standard_normal(x.shape) for _ in range(RANDOM_DIRECTIONS)]
    numeric = central_differences(at, x, directions=directions)
    projected = np.array([float(np.sum(analytic.astype(np.float64) * d)) for d in directions])
    return numeric, projected


@api_boundary
def check_grad(fn: Callable, *args: Any, argnums: int | Sequence[int] = 0,
               rtol: float = 1e-3, atol: float = 1e-5, seed: int = 0) -> ComparisonReport:
    """Compare `pc.grad(fn, argnums)` at `args` with float64 central differences.

    Each float leaf of the chosen arguments gets a row. Leaves with more than
    FULL_CHECK_LIMIT elements are checked along RANDOM_DIRECTIONS random directions.
    """
    from .api import interpret
    from .transforms import grad

    numbers = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    analytic = grad(fn, argnums)(*args)
    analytic_per_arg = (analytic,) if isinstance(argnums, int) else tuple(analytic)
    args64 = _float64_args(args)
    f64 = interpret(fn)
    rng = np.random.default_rng(seed)
    report = ComparisonReport(f"gradient vs float64 central differences: "
                              f"{getattr(fn, '__name__', 'fn')}")
    offsets = np.cumsum([0] + [len(tree_flatten(a)[0]) for a in args])
    for n, grads in zip(numbers, analytic_per_arg):
        paths = tree_paths(args[n], f"args[{n}]")
        for k, (path, g) in enumerate(zip(paths, tree_flatten(grads)[0])):
            if g is None:
                continue
            numeric, projected = _numeric_grad(f64, args64, int(offsets[n]) + k,
                                               np.asarray(g), rng)
            row = compare_arrays(path, projected, numeric, rtol, atol)
            row.type = f"{np.asarray(g).dtype.name}{list(np.shape(g))}"
            report.leaves.append(row)
    return report


__all__ = ["LeafComparison", "check_grad", "compare"]
