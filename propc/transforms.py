"""Reverse-mode transforms: `grad`, `value_and_grad`, `vjp`.

Each transform traces the function into its own graph (a nested trace), derives the
joint reverse-mode graph with `ir.passes.autodiff.vjp_graph`, and splits it into the
forward and backward passes with `ir.passes.partition.partition`:

- inside an enclosing trace (under `pc.compile`, `pc.interpret`, or another
  transform), the derived graph is inlined into the enclosing graph, so transforms
  compose (`grad(grad(f))`, the gradient of a `value_and_grad` function); the
  (forward, backward) pair is recorded on the enclosing trace for inspection
  (`Lowered.forward_graph`, `.backward_graph`);
- outside any trace, the transformed function runs through the interpreter
  (`pc.interpret`), cached per input signature; `pc.vjp` of a `pc.compile`d
  function runs its forward and backward passes as two native functions.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

import ir
from ir.passes.autodiff import vjp_graph
from ir.passes.partition import partition

from . import tracing
from .checkpoint import check_policy
from .errors import api_boundary
from .pytree import TreeDef, tree_flatten, tree_paths, tree_unflatten


def _argnums_tuple(argnums: int | Sequence[int], nargs: int, who: str) -> tuple[int, ...]:
    numbers = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for n in numbers:
        if not isinstance(n, int) or not -nargs <= n < nargs:
            raise TypeError(f"{who}: argnums {argnums!r} out of range for {nargs} positional "
                            "argument(s)")
    return tuple(n % nargs for n in numbers)


def _leaf_ranges(args: tuple) -> list[range]:
    """For each positional argument, the range of its leaves in the flat leaf list."""
    ranges, start = [], 0
    for arg in args:
        count = len(tree_flatten(arg)[0])
        ranges.append(range(start, start + count))
        start += count
    return ranges


def _eager(transformed: Callable, name: str) -> Callable:
    """Outside any trace, run `transformed` through the interpreter."""
    from .api import interpret
    runner = interpret(transformed)

    @functools.wraps(transformed)
    def call(*args):
        if tracing.current_trace() is not None:
            return transformed(*args)
        return runner(*args)

    call.__name__ = name
    return call


@dataclass
class _Derived:
    """A function traced and differentiated: what grad/vjp inline or run."""

    traced: Any              # tracing.Traced
    vjp: Any                 # ir.passes.autodiff.VJPGraph
    forward: ir.Graph
    backward: ir.Graph


def _differentiate(traced, wrt: list[int], outputs: list[int] | None = None,
                   policy: str = "save") -> _Derived:
    """Reverse-mode graphs of a traced function.

    wrt: flat argument-leaf indices to differentiate with respect to.
    outputs: the flat output indices to differentiate (None: all outputs).
    policy: what the forward pass saves for the backward (ir/passes/partition.py).
    """
    graph = traced.graph
    if outputs is not None:
        graph = ir.Graph(graph.name, list(graph.inputs), list(graph.ops),
                         [graph.outputs[i] for i in outputs], custom_vjps=graph.custom_vjps)
    vjp = vjp_graph(graph, wrt)
    forward, backward = partition(vjp, policy)
    return _Derived(traced, vjp, forward, backward)


def _record(derived: _Derived) -> None:
    context = tracing.current_trace()
    if context is not None:
        context.reverse_passes.append((derived.forward, derived.backward))


def _check_differentiable(traced, wrt: list[int], paths: list[str], who: str) -> None:
    for i in wrt:
        leaf = traced.in_leaves[i]
        if not leaf.dtype.is_float:
            raise TypeError(f"{who}: argument {paths[i]} has dtype {leaf.dtype.numpy.name}; "
                            "only float arguments can be differentiated (argnums)")


def value_and_grad(fn: Callable, argnums: int | Sequence[int] = 0,
                   has_aux: bool = False, policy: str = "save") -> Callable:
    """`(value, grads)` of a function returning a float scalar (or `((value, aux), grads)`).

    policy: what the forward pass saves for the backward: "save",
    "recompute_elementwise" or "save_inputs" (ir/passes/partition.py; README).
    """
    who = "value_and_grad"
    check_policy(policy, who)

    def transformed(*args):
        numbers = _argnums_tuple(argnums, len(args), who)
        ranges = _leaf_ranges(args)
        wrt = [i for n in numbers for i in ranges[n]]
        traced = tracing.trace_to_graph(fn, args, name=getattr(fn, "__name__", None))
        aux_tree = _check_scalar_output(traced, has_aux, who)
        _check_differentiable(traced, wrt, _arg_paths(args), who)
        derived = _differentiate(traced, wrt, outputs=[0], policy=policy)
        _record(derived)
        inputs = _flat_inputs(traced, args)
        one = tracing.full((), 1.0, traced.graph.outputs[0].dtype)
        value, *grads = tracing.bind(derived.vjp.graph, inputs + [one])
        per_arg, start = [], 0
        for n in numbers:
            count = len(ranges[n])
            per_arg.append(tree_unflatten(tree_flatten(args[n])[1], grads[start:start + count]))
            start += count
        grads_out = per_arg[0] if isinstance(argnums, int) else tuple(per_arg)
        if has_aux:
            aux_leaves = tracing.bind(traced.graph, inputs)[1:]
            return (value, tree_unflatten(aux_tree, aux_leaves)), grads_out
        return value, grads_out

    transformed.__name__ = f"value_and_grad_{getattr(fn, '__name__', 'fn')}"
    return _eager(transformed, transformed.__name__)


def grad(fn: Callable, argnums: int | Sequence[int] = 0, has_aux: bool = False,
         policy: str = "save") -> Callable:
    """Gradient of a float-scalar function with respect to argument(s) `argnums`."""
    both = value_and_grad(fn, argnums, has_aux, policy)

    def transformed(*args):
        (value, grads) = both(*args)
        if has_aux:
            return grads, value[1]
        return grads

    transformed.__name__ = f"grad_{getattr(fn, '__name__', 'fn')}"
    return _eager(transformed, transformed.__name__)


def _arg_paths(args: tuple) -> list[str]:
    from .pytree import tree_paths
    return tree_paths(tuple(args), "args")


def _flat_inputs(traced, args: tuple) -> list:
    leaves = tree_flatten(tuple(args))[0]
    return list(leaves) + list(traced.captured)


def _check_scalar_output(traced, has_aux: bool, who: str) -> TreeDef | None:
    """The differentiated output must be the first leaf, a float scalar; returns
    the aux structure (with has_aux)."""
    out_tree = traced.out_tree
    if has_aux:
        if out_tree.kind not in ("tuple", "list") or len(out_tree.children) != 2:
            raise TypeError(f"{who}(has_aux=True): the function must return a pair "
                            f"(value, aux), got structure {out_tree}")
        value_tree, aux_tree = out_tree.children
    else:
        value_tree, aux_tree = out_tree, None
    if value_tree.kind != "leaf":
        raise TypeError(f"{who}: the function must return a float scalar, got structure "
                        f"{value_tree}")
    out = traced.graph.outputs[0]
    if out.type.shape != () or not out.dtype.is_float:
        raise TypeError(f"{who}: the function must return a float scalar (shape ()), got "
                        f"{out.type}; reduce it first, e.g. with .sum() or .mean()")
    return aux_tree


class Pullback:
    """The backward pass of one `vjp` call, owning the forward pass's residuals."""

    def __init__(self, derived: _Derived, residuals: list, arg_trees: list[TreeDef],
                 arg_float: list[list[bool]], run_backward: Callable,
                 llvm_ir: str | None = None):
        self.derived = derived
        self.residuals = residuals
        self._arg_trees = arg_trees
        self._arg_float = arg_float
        self._run_backward = run_backward
        self.llvm_ir = llvm_ir
        """The LLVM module of the two native passes (a `pc.compile`d function), else None."""

    @property
    def forward_graph(self) -> ir.Graph:
        return self.derived.forward

    @property
    def backward_graph(self) -> ir.Graph:
        return self.derived.backward

    @api_boundary
    def __call__(self, cotangents: Any) -> tuple:
        traced = self.derived.traced
        leaves, tree = tree_flatten(cotangents)
        if tree != traced.out_tree:
            raise TypeError(f"pullback: cotangents must have the outputs' structure "
                            f"{traced.out_tree}, got {tree}")
        outputs = traced.graph.outputs
        wanted = [i for i, v in enumerate(outputs) if v.dtype.is_float]
        paths = tree_paths(tree_unflatten(tree, leaves), "cotangents")
        cts = [_cotangent_leaf(leaves[i], outputs[i].type, paths[i]) for i in wanted]
        grads = list(self._run_backward(self.residuals + cts))
        result = []
        for tree, floats in zip(self._arg_trees, self._arg_float):
            per_leaf = [grads.pop(0) if is_float else None for is_float in floats]
            result.append(tree_unflatten(tree, per_leaf))
        return tuple(result)


def _cotangent_leaf(ct: Any, out_type: ir.TensorType, path: str):
    """A cotangent leaf checked against its output's type: same shape, and a dtype
    that converts to the output's without changing kind (floats and Python numbers)."""
    expected = f"expected {out_type}"
    if isinstance(ct, tracing.Tensor):
        if ct.shape != out_type.shape or not ct.type.dtype.is_float:
            raise ValueError(f"pullback: {path}: {expected}, got {ct.type}")
        return tracing.cast(ct, out_type.dtype)
    if not isinstance(ct, (np.ndarray, np.generic, float, int)) or isinstance(ct, bool):
        raise TypeError(f"pullback: {path}: {expected}, got {type(ct).__name__}")
    array = np.asarray(ct)
    if not np.can_cast(array.dtype, out_type.dtype.numpy, casting="same_kind"):
        raise TypeError(f"pullback: {path}: {expected}, got dtype {array.dtype}")
    if array.shape != out_type.shape:
        raise ValueError(f"pullback: {path}: {expected}, got shape {array.shape}")
    return np.require(array, dtype=out_type.dtype.numpy, requirements="C")


@api_boundary
def vjp(fn: Callable, *args: Any, policy: str = "save") -> tuple[Any, Pullback]:
    """Run the forward pass now; return `(outputs, pullback)`.

    `pullback(cotangents)` returns one cotangent per positional argument (a tuple,
    each with its argument's structure; integer and bool leaves get None). `policy`
    chooses what the forward pass keeps for the pullback (see `value_and_grad`).
    """
    check_policy(policy, "vjp")
    from .compile import Compiled
    compiled = fn if isinstance(fn, Compiled) else None
    target = compiled.fn if compiled is not None else fn
    leaves = tree_flatten(tuple(args))[0]
    ranges = _leaf_ranges(args)
    if compiled is not None and tracing.current_trace() is None:
        traced, derived, runners = compiled.cached_vjp(
            args, policy, lambda: _native_vjp(target, args, policy))
    else:
        traced, derived = _vjp_derived(target, args, policy)
    forward, backward = derived.forward, derived.backward
    arg_trees = [tree_flatten(a)[1] for a in args]
    arg_float = [[traced.in_leaves[i].dtype.is_float for i in r] for r in ranges]
    inputs = list(leaves) + list(traced.captured)
    n_out = len(forward.outputs) - forward.residual_outputs
    llvm_ir = None
    if tracing.current_trace() is not None:
        _record(derived)
        results = tracing.bind(forward, inputs)
        run_backward = functools.partial(tracing.bind, backward)
    else:
        if compiled is None:
            from .compile import pass_runners
            runners = pass_runners(forward, backward, False, traced)
        results = runners.forward(inputs)
        run_backward, llvm_ir = runners.backward, runners.llvm_ir
    outputs = tree_unflatten(traced.out_tree, results[:n_out])
    return outputs, Pullback(derived, list(results[n_out:]), arg_trees, arg_float, run_backward,
                             llvm_ir)


def _vjp_derived(fn: Callable, args: tuple, policy: str) -> tuple:
    """(traced, derived) of `fn` on `args`, differentiated w.r.t. every float leaf."""
    traced = tracing.trace_to_graph(fn, args, name=getattr(fn, "__name__", None))
    wrt = [i for i, leaf in enumerate(traced.in_leaves) if leaf.dtype.is_float]
    return traced, _differentiate(traced, wrt, policy=policy)


def _native_vjp(fn: Callable, args: tuple, policy: str) -> tuple:
    """(traced, derived, pass runners) of a compiled function's vjp on one signature:
    what `Compiled.cached_vjp` keeps, so later calls only run the native passes."""
    from .compile import pass_runners
    traced, derived = _vjp_derived(fn, args, policy)
    return traced, derived, pass_runners(derived.forward, derived.backward, True, traced)
