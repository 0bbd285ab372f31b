"""Optimisers as pure functions over parameter pytrees.

Each takes the parameters, their gradients (same structure; a None gradient, as
`vjp` gives integer leaves, leaves that parameter and its state unchanged) and
returns new values. They record ops inside a traced training step, or run eagerly on
NumPy arrays outside one.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .numpy_api import add, astype, sqrt, zeros_like
from .pytree import tree_map
from .tracing import Tensor, is_operand, traceable, type_info


def _check_leaf(name: str, leaf: Any) -> None:
    if leaf is not None and not is_operand(leaf):
        raise ValueError(f"{name}: structure differs from params: found a "
                         f"{type(leaf).__name__} where params have an array")


def _map(fn, params: Any, *trees: tuple[str, Any]) -> Any:
    """tree_map over params with named companion trees whose leaves are checked."""
    def apply_leaf(p: Any, *others: Any) -> Any:
        for (name, _), other in zip(trees, others):
            _check_leaf(name, other)
        return fn(p, *others)
    return tree_map(apply_leaf, params, *(tree for _, tree in trees))


@traceable
def sgd(params: Any, grads: Any, lr: Any) -> Any:
    """p - lr * g for every parameter."""
    return _map(lambda p, g: p if g is None else p - lr * g, params, ("grads", grads))


@traceable
def momentum(params: Any, grads: Any, velocity: Any, lr: Any, beta: Any) -> tuple[Any, Any]:
    """Heavy-ball momentum: v = beta * v + g; p = p - lr * v. Returns (params, velocity)."""
    new_velocity = _map(lambda p, g, v: v if g is None else beta * v + g,
                        params, ("grads", grads), ("velocity", velocity))
    new_params = _map(lambda p, g, v: p if g is None else p - lr * v,
                      params, ("grads", grads), ("velocity", new_velocity))
    return new_params, new_velocity


def _zeros_for(leaf: Any) -> Any:
    if isinstance(leaf, Tensor):
        return zeros_like(leaf)
    shape, dtype, _ = type_info(leaf, "adam_init")
    return np.zeros(shape, dtype=dtype.numpy)


def adam_init(params: Any) -> dict:
    """Adam's state for `params`: {'m': zeros, 'step': int32 0, 'v': zeros}."""
    return {
        "m": tree_map(_zeros_for, params),
        "step": np.zeros((), dtype=np.int32),
        "v": tree_map(_zeros_for, params),
    }


@traceable
def adam(params: Any, grads: Any, state: dict, lr: Any, b1: float = 0.9, b2: float = 0.999,
         eps: float = 1e-8) -> tuple[Any, dict]:
    """One Adam step with bias correction (Kingma & Ba). Returns (params, state).

    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  t = step + 1
    p = p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
    """
    if not isinstance(state, dict) or set(state) != {"m", "step", "v"}:
        raise ValueError("adam: state must be the dict made by adam_init "
                         "(keys 'm', 'step', 'v')")
    step = add(state["step"], 1)
    t = astype(step, np.float32)
    correction1 = 1.0 - b1 ** t
    correction2 = 1.0 - b2 ** t
    m = _map(lambda p, g, m: m if g is None else b1 * m + (1.0 - b1) * g,
             params, ("grads", grads), ("state['m']", state["m"]))
    v = _map(lambda p, g, v: v if g is None else b2 * v + (1.0 - b2) * (g * g),
             params, ("grads", grads), ("state['v']", state["v"]))

    def update(p: Any, g: Any, m: Any, v: Any) -> Any:
        if g is None:
            return p
        return p - lr * (m / correction1) / (sqrt(v / correction2) + eps)

    new_params = _map(update, params, ("grads", grads), ("m", m), ("v", v))
    return new_params, {"m": m, "step": step, "v": v}
