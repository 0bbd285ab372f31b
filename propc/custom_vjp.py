"""`pc.custom_vjp`: a function with its own reverse-mode rule (JAX's meaning).

    @pc.custom_vjp
    def clip_gradient(x):
        return x

    def fwd(x):
        return x, ()                       # (output, residuals)

    def bwd(residuals, g):
        return (pc.maximum(pc.minimum(g, 1.0), -1.0),)   # one entry per argument

    clip_gradient.defvjp(fwd, bwd)

A call inside a trace traces `fwd` into the graph (its outputs are the call's
result) and `bwd` into a separate graph, and annotates the region of `fwd`'s ops
with an `ir.CustomVJP` (ir/graph.py): autodiff runs `bwd`'s graph there instead
of differentiating `fwd`'s ops, so `fwd`'s residuals become residuals of the
forward pass. `fn` itself is not traced: `fwd` must compute the same outputs.
`bwd(residuals, cotangents)` gets the cotangents with the outputs' structure and
returns a tuple with one entry per positional argument: its cotangent (the
argument's structure) or None (no gradient). A rule applies to one reverse-mode
differentiation; differentiating again (grad of grad) differentiates `fwd` and
`bwd` as ordinary code. Differentiating with respect to a traced value that `fwd`
closes over (rather than takes as an argument) is an error.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import ir

from . import tracing
from .errors import TraceTypeError, user_location
from .numpy_api import broadcast_to
from .pytree import tree_flatten, tree_unflatten
from .signature import ShapeDtype


class custom_vjp:  # noqa: N801  (lower case like the decorator it is, as in JAX)
    """A function whose gradient is given by `defvjp(fwd, bwd)`."""

    def __init__(self, fn: Callable):
        if not callable(fn):
            raise TypeError(f"pc.custom_vjp expects a function, got {type(fn).__name__}")
        self.fn = fn
        self.fwd: Callable | None = None
        self.bwd: Callable | None = None
        functools.update_wrapper(self, fn, updated=())

    def defvjp(self, fwd: Callable, bwd: Callable) -> "custom_vjp":
        """Set the rule: `fwd(*args) -> (out, residuals)`, `bwd(residuals, ct) -> tuple`."""
        if not callable(fwd) or not callable(bwd):
            raise TypeError("defvjp(fwd, bwd): both must be functions")
        self.fwd, self.bwd = fwd, bwd
        return self

    def __call__(self, *args: Any) -> Any:
        if self.fwd is None:
            raise TypeError(f"custom_vjp function {self.__name__!r} has no rule yet: call "
                            f".defvjp(fwd, bwd) first")
        if tracing.current_trace() is None:
            from .api import interpret
            return interpret(self)(*args)
        return _call(self, args)


def _fwd_outputs(name: str, traced: tracing.Traced) -> int:
    """fwd must return a pair (out, residuals); the number of output leaves."""
    tree = traced.out_tree
    if tree.kind not in ("tuple", "list") or len(tree.children) != 2:
        raise TraceTypeError("custom_vjp", f"fwd of {name!r} must return a pair (output, "
                             f"residuals), got structure {tree}")
    return tree.children[0].num_leaves


def _call(rule: custom_vjp, args: tuple) -> Any:
    name = tracing.function_name(rule.fn) or "fn"
    context = tracing.current_trace()
    leaves = tree_flatten(args)[0]
    fwd = tracing.trace_to_graph(rule.fwd, args, name=f"{name}_fwd")
    n_out = _fwd_outputs(name, fwd)
    inputs = [tracing.to_tensor(leaf, "custom_vjp", formal.type.dtype)
              for leaf, formal in zip(leaves, fwd.graph.inputs)]
    closed = [tracing.adopt(t, context, "custom_vjp") for t in fwd.captured]
    results = tracing.bind(fwd.graph, inputs + closed, fwd.out_weak)
    outputs, residuals = fresh(results[:n_out]), results[n_out:]
    out_tree, res_tree = fwd.out_tree.children
    cotangent = tree_unflatten(out_tree, [ShapeDtype(t.shape, t.dtype) for t in outputs])
    backward = tracing.trace_to_graph(
        functools.partial(_checked_bwd, rule.bwd, name, args, fwd.in_leaves),
        (tree_unflatten(res_tree, residuals), cotangent), name=f"{name}_bwd")
    bwd_closed = [tracing.adopt(t, context, "custom_vjp") for t in backward.captured]
    graph = backward.graph
    n_res = len(residuals)
    n_cts = len(outputs)       # inputs: residuals, bwd's closures, then cotangents
    reordered = ir.Graph(graph.name, graph.inputs[:n_res] + graph.inputs[n_res + n_cts:] +
                         graph.inputs[n_res:n_res + n_cts], graph.ops, graph.outputs,
                         custom_vjps=graph.custom_vjps)
    add_region(name, inputs, closed, outputs, residuals + bwd_closed, reordered)
    return tree_unflatten(out_tree, outputs)


def fresh(tensors: list[tracing.Tensor]) -> list[tracing.Tensor]:
    """New values equal to `tensors` (an identity convert each), so that a region has
    an op of its own for every output, even one that is an argument or a residual."""
    return [tracing.apply("convert", t, weak=t.weak, dtype=t.type.dtype) for t in tensors]


def add_region(name: str, inputs: list[tracing.Tensor], closed: list[tracing.Tensor],
               outputs: list[tracing.Tensor], residuals: list[tracing.Tensor],
               backward: ir.Graph) -> None:
    """Annotate the current trace's graph with a custom-VJP region (ir.CustomVJP)."""
    def values(tensors):
        return tuple(t.value for t in tensors)
    tracing.current_trace().graph.custom_vjps.append(ir.CustomVJP(
        name, values(inputs), values(closed), values(outputs), values(residuals), backward,
        user_location()))


def _checked_bwd(bwd: Callable, name: str, args: tuple, specs: list, residuals: Any,
                 cotangent: Any) -> list:
    """bwd's result as one cotangent per argument leaf (zeros for None and for
    integer leaves), checked against the arguments' structures and shapes."""
    result = bwd(residuals, cotangent)
    if not isinstance(result, (tuple, list)) or len(result) != len(args):
        raise TraceTypeError("custom_vjp", f"bwd of {name!r} must return a tuple with one "
                             f"entry per argument ({len(args)}), got {type(result).__name__}")
    leaves = []
    spec_iter = iter(specs)
    for index, (arg, entry) in enumerate(zip(args, result)):
        arg_tree = tree_flatten(arg)[1]
        arg_specs = [next(spec_iter) for _ in range(arg_tree.num_leaves)]
        if entry is None:
            entries = [None] * len(arg_specs)
        else:
            entries, entry_tree = tree_flatten(entry)
            if entry_tree != arg_tree:
                raise TraceTypeError("custom_vjp", f"bwd of {name!r}: the cotangent of "
                                     f"argument {index} has structure {entry_tree}, the "
                                     f"argument has {arg_tree}")
        leaves.extend(_cotangent_leaf(ct, spec, name, index) for ct, spec in
                      zip(entries, arg_specs))
    return leaves


def _cotangent_leaf(ct: Any, spec, name: str, index: int) -> tracing.Tensor:
    if ct is None or not spec.dtype.is_float:
        return tracing.full(spec.shape, 0, spec.dtype)
    t = tracing.to_tensor(ct, "custom_vjp", spec.dtype)
    if t.shape != spec.shape:
        if t.ndim > len(spec.shape) or any(a not in (1, b) for a, b in
                                            zip(t.shape[::-1], spec.shape[::-1])):
            raise TraceTypeError("custom_vjp", f"bwd of {name!r}: the cotangent of argument "
                                 f"{index} is {t.type}, the argument is {spec.type}")
        t = broadcast_to(t, spec.shape)
    return tracing.cast(t, spec.dtype)
