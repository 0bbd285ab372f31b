"""The simplification pipeline run after autodiff: constant folding, algebraic
rewrites, common subexpression elimination and dead code elimination, repeated until
the graph stops changing.

Each step is a pure graph -> graph function in its own module:
- `fold_constants` (ir/passes/fold.py): evaluate ops on constants with the
  interpreter, never materialising more than FOLD_LIMIT elements;
- `rewrite_algebra` (ir/passes/algebra.py): the `ALGEBRA_RULES` table (x*1, neg(neg x),
  transpose of transpose, identity shape ops, ...);
- `cse` (ir/passes/cse.py) and `dce` (ir/passes/dce.py).
The input graph is never changed; the result keeps the graph's name, inputs,
outputs and residual counts, and each op's source location.
"""
from __future__ import annotations

from ..graph import Graph
from ..verify import verify as verify_graph
from .algebra import ALGEBRA_RULES, rewrite_algebra
from .cse import cse
from .dce import dce
from .fold import FOLD_LIMIT, fold_constants
from .regions import simplify_regions

__all__ = ["ALGEBRA_RULES", "FOLD_LIMIT", "cse", "dce", "fold_constants",
           "rewrite_algebra", "simplify", "simplify_once"]

MAX_ROUNDS = 32
"""Upper bound on rounds; every rule shrinks or canonicalises the graph, so real
graphs reach the fixpoint in a handful."""


def simplify_once(graph: Graph) -> Graph:
    """One round: fold, rewrite, merge duplicates, drop dead ops (regions included)."""
    return dce(cse(rewrite_algebra(fold_constants(simplify_regions(graph, simplify)))))


def simplify(graph: Graph, verify: bool = False, max_rounds: int = MAX_ROUNDS) -> Graph:
    """A simplified copy of `graph`, computing the same outputs.

    Rounds repeat until one changes nothing (so `simplify` is idempotent) or
    `max_rounds` is reached. With `verify=True` the result is checked by
    `ir.verify`, a debugging aid.
    """
    current = dce(graph)
    for _ in range(max_rounds):
        following = simplify_once(current)
        if following == current:
            break
        current = following
    if verify:
        verify_graph(current)
    return current
