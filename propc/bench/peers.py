"""Optional peer rows of `propc bench`: the same MLP step in JAX and in PyTorch.

Neither is a dependency: each is imported lazily inside the worker and silently
skipped when it is not installed. A peer is given the case's NumPy inputs and
returns `(run, to_numpy)`: `run()` does one step and waits for its result;
`to_numpy(result)` turns that result into the reference's structure for the check.
"""
from __future__ import annotations

import importlib.util
from typing import Any, Callable

from .common import LEARNING_RATE

Prepared = tuple[Callable[[], Any], Callable[[Any], Any]]


def available_peers() -> list[str]:
    """The peer frameworks importable in this Python, without importing them."""
    return [name for name in ("jax", "torch") if importlib.util.find_spec(name) is not None]


def peer_environment(threads: int, environ: dict[str, str]) -> dict[str, str]:
    """Environment variables that pin a peer's own thread pool (XLA reads its flags
    at import, so the parent sets them for the worker); PyTorch is pinned in-process."""
    if threads != 1:
        return {}
    flags = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    existing = environ.get("XLA_FLAGS", "")
    return {"XLA_FLAGS": f"{existing} {flags}".strip()}


def prepare_peers(args: tuple, train: bool, threads: int,
                  builders: tuple | None = None) -> list[tuple[str, Prepared]]:
    """(name, prepared step) for every importable peer; a peer that fails to set up
    is skipped silently, like an absent one. `builders`: (name, build) pairs, by
    default the MLP's (the CNN rows pass their own)."""
    prepared = []
    for name, build in builders or (("jax", _prepare_jax), ("torch", _prepare_torch)):
        if importlib.util.find_spec(name) is None:
            continue
        try:
            prepared.append((name, build(args, train, threads)))
        except Exception:  # a broken optional install is treated as absent
            continue
    return prepared


# -- JAX ------------------------------------------------------------------------------


def _prepare_jax(args: tuple, train: bool, threads: int) -> Prepared:
    import jax
    import jax.numpy as jnp
    import numpy as np

    def predict(params, x):
        h = x
        for w, b in params[:-1]:
            h = jnp.tanh(h @ w + b)
        w, b = params[-1]
        return h @ w + b

    def loss(params, x, labels):
        log_probs = jax.nn.log_softmax(predict(params, x), axis=-1)
        return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=-1))

    def step(params, x, labels):
        value, grads = jax.value_and_grad(loss)(params, x, labels)
        new = [(w - LEARNING_RATE * gw, b - LEARNING_RATE * gb)
               for (w, b), (gw, gb) in zip(params, grads)]
        return new, value

    device_args = jax.device_put(args)
    program = jax.jit(step if train else predict)

    def run():
        return jax.block_until_ready(program(*device_args))

    def to_numpy(result):
        if train:
            new, value = result
            return [(np.asarray(w), np.asarray(b)) for w, b in new], np.asarray(value)
        return np.asarray(result)

    return run, to_numpy


# -- PyTorch --------------------------------------------------------------------------


def _prepare_torch(args: tuple, train: bool, threads: int) -> Prepared:
    import torch

    torch.set_num_threads(threads)
    params = [(torch.from_numpy(w.copy()), torch.from_numpy(b.copy())) for w, b in args[0]]
    x = torch.from_numpy(args[1])

    def predict(ps):
        h = x
        for w, b in ps[:-1]:
            h = torch.tanh(h @ w + b)
        w, b = ps[-1]
        return h @ w + b

    return torch_prepared(predict, params, args, train)


def torch_prepared(predict: Callable, params: list, args: tuple, train: bool) -> Prepared:
    """(run, to_numpy) of a PyTorch model `predict(params)`: inference, or one SGD step
    on mean cross-entropy with the labels args[2] (shared by the MLP and CNN peers)."""
    import torch
    if not train:
        def infer():
            with torch.no_grad():
                return predict(params)
        return infer, lambda result: result.numpy()

    labels = torch.from_numpy(args[2].astype("int64"))

    def step():
        leaves = [(w.detach().requires_grad_(), b.detach().requires_grad_()) for w, b in params]
        value = torch.nn.functional.cross_entropy(predict(leaves), labels)
        grads = torch.autograd.grad(value, [t for pair in leaves for t in pair])
        with torch.no_grad():
            new = [(w - LEARNING_RATE * grads[2 * i], b - LEARNING_RATE * grads[2 * i + 1])
                   for i, (w, b) in enumerate(params)]
        return new, value.detach()

    def to_numpy(result):
        new, value = result
        return [(w.numpy(), b.numpy()) for w, b in new], value.numpy()

    return step, to_numpy
