"""`pc.checkpoint` (remat): a function whose internals the backward pass recomputes.

    layer = pc.checkpoint(lambda W, b, x: pc.tanh(x @ W + b))

A call traces `fn`, derives its reverse-mode graph and splits it with the
partitioner (ir/passes/partition.py) under `policy`; the forward half is inlined
as the call's result and the backward half becomes the rule of a custom-VJP region
(the machinery of `pc.custom_vjp`, propc/custom_vjp.py). So the enclosing
differentiation saves only what the policy saves inside the call, and the
partitioner puts the recomputation in the backward pass. Values the function
closes over are inputs of the region like its arguments, so they may be
differentiated.

Policies (the partitioner's names):
- None or "save_inputs": save the call's inputs only, recompute everything inside
  (JAX's `nothing_saveable`);
- "recompute_elementwise": save what the backward reads, except elementwise values
  computable from other saved ones;
- "save": save what the backward reads (no recomputation beyond free views).
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import ir
from ir.passes.autodiff import VJPGraph, vjp_graph
from ir.passes.partition import POLICIES, partition

from . import tracing
from .custom_vjp import add_region, fresh
from .pytree import tree_flatten, tree_unflatten


def check_policy(policy: str, who: str) -> str:
    """`policy` if it names a partitioner policy, else a ValueError listing them."""
    if policy not in POLICIES:
        raise ValueError(f"{who}: unknown policy {policy!r}; choose one of "
                         f"{', '.join(repr(p) for p in POLICIES)}")
    return policy


def _region_backward(backward: ir.Graph, vjp: VJPGraph, residual_count: int) -> ir.Graph:
    """The partitioned backward pass with a region's interface: residuals, then one
    cotangent per output; one cotangent per input (zeros where there is none)."""
    graph = vjp.graph
    b = ir.Builder(backward.name)
    residuals = [b.input(v.type) for v in backward.inputs[:residual_count]]
    outputs = graph.outputs[:vjp.num_primal_outputs]
    cotangents = [b.input(v.type) for v in outputs]
    results = b.inline(backward, residuals + [cotangents[i] for i in vjp.cotangent_outputs])
    by_input = dict(zip(vjp.wrt, results))
    b.output(*[by_input[i] if i in by_input else b.zeros(v.type)
               for i, v in enumerate(graph.inputs[:vjp.num_primal_inputs])])
    return b.build()


def checkpoint(fn: Callable, policy: str | None = None) -> Callable:
    """`fn` whose internals are recomputed in the backward pass (module docstring)."""
    if not callable(fn):
        raise TypeError(f"pc.checkpoint expects a function, got {type(fn).__name__}")
    chosen = check_policy("save_inputs" if policy is None else policy, "pc.checkpoint")
    name = tracing.function_name(fn) or "fn"

    @functools.wraps(fn)
    def checkpointed(*args: Any) -> Any:
        context = tracing.current_trace()
        if context is None:
            from .api import interpret
            return interpret(checkpointed)(*args)
        leaves = tree_flatten(args)[0]
        traced = tracing.trace_to_graph(fn, args, name=f"checkpoint_{name}")
        vjp = vjp_graph(traced.graph)
        forward, backward = partition(vjp, chosen)
        inputs = [tracing.to_tensor(leaf, "checkpoint", formal.type.dtype)
                  for leaf, formal in zip(leaves, traced.graph.inputs)]
        inputs += [tracing.adopt(t, context, "checkpoint") for t in traced.captured]
        n_out = len(traced.graph.outputs)
        results = tracing.bind(forward, inputs, traced.out_weak +
                               [False] * forward.residual_outputs)
        outputs = fresh(results[:n_out])
        add_region(f"checkpoint_{name}", inputs, [], outputs, results[n_out:],
                   _region_backward(backward, vjp, forward.residual_outputs))
        return tree_unflatten(traced.out_tree, outputs)

    return checkpointed
