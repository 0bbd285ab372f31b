"""User entry points for tracing: `pc.trace` and `pc.interpret` (`pc.ShapeDtype` is
re-exported from signature.py).

A function's arguments are a pytree. Each leaf — an array, a `ShapeDtype`, a Python
number, or a Tensor of an enclosing trace — becomes one graph input of the same
shape and dtype; Python ints/floats are weak 0-d int32/float32 inputs. Outputs are
flattened the same way, and rebuilt from the output TreeDef after running.
"""
from __future__ import annotations

import functools
from typing import Any, Callable

import ir

from .arguments import ArgumentSplitter, CallKey, argument_paths
from .errors import api_boundary
from .pytree import tree_flatten, tree_unflatten
from .signature import ShapeDtype, leaf_spec, runtime_array
from .tracing import Tensor, Traced, bind, trace_to_graph

__all__ = ["Interpreted", "ShapeDtype", "interpret", "trace"]


@api_boundary
def trace(fn: Callable, *args: Any) -> ir.Graph:
    """The unoptimised IR graph of fn(*args); args may be arrays, ShapeDtypes, numbers."""
    return trace_to_graph(fn, args).graph


class Interpreted:
    """`pc.interpret(fn)`: traces once per input signature, runs the IR with NumPy.

    Keyword arguments are pytrees like positional ones: each set of keyword names
    gets its own `Interpreted` taking them positionally (propc/arguments.py).
    """

    def __init__(self, fn: Callable):
        self.fn = fn
        self.cache: dict[tuple, Traced] = {}
        self._splitter = ArgumentSplitter(fn, who="pc.interpret")
        self._specialised: dict[CallKey, Interpreted] = {}
        functools.update_wrapper(self, fn, updated=())

    @property
    def trace_count(self) -> int:
        """How many signatures have been traced (for tests and diagnostics)."""
        return len(self.cache) + sum(s.trace_count for s in self._specialised.values())

    @api_boundary
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if kwargs:
            key, dynamic = self._splitter.split(args, kwargs)
            specialised = self._specialised.get(key)
            if specialised is None:
                specialised = Interpreted(self._splitter.specialise(key))
                self._specialised[key] = specialised
            return specialised(*dynamic)
        return _run_interpreted(self, args)


def _run_interpreted(interpreted: Interpreted, args: tuple) -> Any:
    leaves, in_tree = tree_flatten(args)
    if any(isinstance(leaf, Tensor) for leaf in leaves):
        traced = trace_to_graph(interpreted.fn, args)
        outputs = bind(traced.graph, leaves + traced.captured, traced.out_weak)
        return tree_unflatten(traced.out_tree, outputs)
    paths = argument_paths(interpreted.fn, args)
    specs = [leaf_spec(leaf, path) for leaf, path in zip(leaves, paths)]
    arrays = [runtime_array(leaf, spec, path) for leaf, spec, path in zip(leaves, specs, paths)]
    key = (in_tree, tuple(specs))
    traced = interpreted.cache.get(key)
    if traced is None:
        traced = trace_to_graph(interpreted.fn, args)
        interpreted.cache[key] = traced
    outputs = ir.interpret(traced.graph, *arrays)
    return tree_unflatten(traced.out_tree, outputs)


def interpret(fn: Callable) -> Interpreted:
    """A callable like `fn` whose traced IR is executed by the NumPy interpreter."""
    if not callable(fn):
        raise TypeError(f"pc.interpret expects a function, got {type(fn).__name__}")
    return Interpreted(fn)
