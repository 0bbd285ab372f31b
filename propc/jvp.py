"""`pc.jvp`: forward mode, as the transpose of the reverse mode.

    outputs, output_tangents = pc.jvp(f, (x, W), (dx, dW))

Forward mode is derived, not given a second rule table: the pullback of `f` at the
primals, `u -> J(x)ᵀ u`, is linear in `u`, and the pullback of *that* function
(at any `u`, here 0) maps `t` to `J(x) t`, the forward-mode tangent. Both are
plain reverse-mode derivations (`pc.vjp` twice), which the IR autodiff already
supports to any order. (The "linear transpose" route to JVPs; JAX goes the other
way, deriving VJPs by transposing JVPs.)

Why this and not a JVP rule table: every primitive already has a VJP rule (checked
by tests/test_registry.py), and every VJP rule is linear in its cotangent, so
forward mode needs no new per-primitive table, and any primitive added later gets
forward mode with its VJP rule. The cost: the traced graph holds the forward pass,
the pullback and its transpose; simplification and dead-code removal drop the
unused pullback outputs, leaving roughly the forward pass plus one tangent sweep.
Forward-over-reverse Hessian-vector products are `pc.jvp(pc.grad(f), (x,), (v,))`.
Integer and bool leaves take no tangent (theirs are ignored) and give zero
tangents.
"""
from __future__ import annotations

from typing import Any, Callable

from . import tracing
from .pytree import tree_flatten, tree_paths, tree_unflatten
from .transforms import _eager, vjp


def _check_tangents(primals: tuple, tangents: tuple) -> None:
    p_leaves, p_tree = tree_flatten(primals)
    t_leaves, t_tree = tree_flatten(tangents)
    if p_tree != t_tree:
        raise TypeError(f"jvp: tangents must have the primals' structure {p_tree}, got {t_tree}")
    for primal, tangent, path in zip(p_leaves, t_leaves, tree_paths(tangents, "tangents")):
        p_shape, p_dtype, _ = tracing.type_info(primal, "jvp")
        t_shape, t_dtype, weak = tracing.type_info(tangent, "jvp")
        if p_dtype.is_float and (t_shape != p_shape or not (t_dtype.is_float or weak)):
            raise ValueError(f"jvp: {path}: expected a float tangent of shape {p_shape}, got "
                             f"{tracing.describe(tangent)}")


def _cotangent_of_pullback(primals: tuple, tangents: tuple) -> tuple:
    """The tangents arranged like the pullback's result: None at non-float leaves."""
    arranged = []
    for primal, tangent in zip(primals, tangents):
        p_leaves, tree = tree_flatten(primal)
        t_leaves = tree_flatten(tangent)[0]
        kept = [t if tracing.type_info(p, "jvp")[1].is_float else None
                for p, t in zip(p_leaves, t_leaves)]
        arranged.append(tree_unflatten(tree, kept))
    return tuple(arranged)


def _pushforward(fn: Callable, primals: tuple, tangents: tuple) -> tuple[Any, Any]:
    outputs, pullback = vjp(fn, *primals)
    out_leaves, out_tree = tree_flatten(outputs)
    zeros = [tracing.full(t.shape, 0, t.type.dtype) for t in out_leaves]
    _, transpose = vjp(lambda u: pullback(u), tree_unflatten(out_tree, zeros))
    (tangent_out,) = transpose(_cotangent_of_pullback(primals, tangents))
    leaves = tree_flatten(tangent_out)[0] if tangent_out is not None else []
    if len(leaves) != len(out_leaves):     # non-float outputs got None: zero tangents
        floats = iter(leaves)
        leaves = [next(floats) if t.type.dtype.is_float else zero
                  for t, zero in zip(out_leaves, zeros)]
    return outputs, tree_unflatten(out_tree, leaves)


def jvp(fn: Callable, primals: Any, tangents: Any) -> tuple[Any, Any]:
    """`(outputs, output_tangents)` of `fn` at `primals` along `tangents` (tuples,
    one entry per positional argument; see the module docstring)."""
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError("jvp: primals and tangents must be tuples (one entry per positional "
                        f"argument), got {type(primals).__name__} and {type(tangents).__name__}")
    primals, tangents = tuple(primals), tuple(tangents)
    _check_tangents(primals, tangents)

    def pushforward(primals, tangents):
        return _pushforward(fn, primals, tangents)

    pushforward.__name__ = f"jvp_{tracing.function_name(fn) or 'fn'}"
    return _eager(pushforward, pushforward.__name__)(primals, tangents)
