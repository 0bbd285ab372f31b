"""Tracing entry points: `trace_to_graph` (for transforms), `bind`, `pc.trace`,
`pc.interpret`, and `pc.ShapeDtype`.

A function's arguments are a pytree. Each leaf — an array, a `ShapeDtype`, a Python
number, or a Tensor of an enclosing trace — becomes one graph input of the same
shape and dtype; Python ints/floats are weak 0-d int32/float32 inputs. Outputs are
flattened the same way, and rebuilt from the output TreeDef after running.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

import ir
from ir import DType, TensorType

from .errors import TraceError, TraceTypeError, api_boundary
from .promotion import SUPPORTED, python_scalar_type
from .pytree import TreeDef, tree_flatten, tree_paths, tree_unflatten
from .tracing import (Tensor, TraceContext, adopt, current_trace, describe, new_trace,
                      scalar_array, to_tensor)


class ShapeDtype:
    """Stands for an argument by shape and dtype alone (tracing and lowering only)."""

    def __init__(self, shape: Sequence[int] | int, dtype: Any = np.float32):
        dims = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
        if any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 0 for d in dims):
            raise ValueError(f"ShapeDtype: shape must be non-negative ints, got {shape!r}")
        self.shape = tuple(int(d) for d in dims)
        self.dtype = DType.from_numpy(dtype).numpy

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"ShapeDtype({self.shape}, {self.dtype.name})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ShapeDtype):
            return NotImplemented
        return self.shape == other.shape and self.dtype == other.dtype

    def __hash__(self) -> int:
        return hash((self.shape, self.dtype))


@dataclass(frozen=True)
class LeafSpec:
    """Shape, dtype and weakness of one argument leaf (part of a signature)."""

    shape: tuple[int, ...]
    dtype: DType
    weak: bool = False

    @property
    def type(self) -> TensorType:
        return TensorType(self.shape, self.dtype)

    def __str__(self) -> str:
        return f"{self.type}{' (weak)' if self.weak else ''}"


def _unsupported_leaf(path: str, leaf: Any) -> TraceTypeError:
    return TraceTypeError("argument", f"{path}: expected an array ({SUPPORTED}) or a Python "
                          f"number, got {describe(leaf)}")


def leaf_spec(leaf: Any, path: str) -> LeafSpec:
    """The LeafSpec of an argument leaf; TypeError naming `path` if it is not one."""
    if isinstance(leaf, Tensor):
        return LeafSpec(leaf.shape, leaf.type.dtype, leaf.weak)
    if isinstance(leaf, ShapeDtype):
        return LeafSpec(leaf.shape, DType.from_numpy(leaf.dtype))
    scalar = python_scalar_type(leaf)
    if scalar is not None:
        return LeafSpec((), scalar[0], scalar[1])
    if isinstance(leaf, (np.ndarray, np.generic)):
        try:
            return LeafSpec(np.shape(leaf), DType.from_numpy(leaf.dtype))
        except TypeError:
            raise TraceTypeError("argument", f"{path}: unsupported dtype {leaf.dtype}; "
                                 f"expected one of {SUPPORTED}") from None
    raise _unsupported_leaf(path, leaf)


def runtime_array(leaf: Any, spec: LeafSpec, path: str) -> np.ndarray:
    """The array passed to a graph input for a concrete argument leaf."""
    if isinstance(leaf, ShapeDtype):
        raise TraceTypeError("argument", f"{path}: a ShapeDtype stands for an argument only "
                             "when tracing or lowering; pass an array to run the function")
    if python_scalar_type(leaf) is not None:
        try:
            return scalar_array(leaf, spec.dtype, "argument")
        except TraceError:
            raise TraceTypeError("argument", f"{path}: Python int {leaf} does not fit in int32",
                                 hint="pass an int64 array") from None
    return np.ascontiguousarray(leaf)


@dataclass
class Traced:
    """The result of tracing a function on a signature (see trace_to_graph)."""

    graph: ir.Graph
    in_tree: TreeDef
    out_tree: TreeDef
    in_leaves: list[LeafSpec]
    captured: list[Tensor]
    out_weak: list[bool]
    reverse_passes: list[tuple[ir.Graph, ir.Graph]] = field(default_factory=list)


def _function_name(fn: Callable) -> str | None:
    name = getattr(fn, "__name__", None)
    if name is None and isinstance(fn, functools.partial):
        name = getattr(fn.func, "__name__", None)
    return name


def _output_tensor(leaf: Any, path: str, context: TraceContext) -> Tensor:
    if isinstance(leaf, Tensor):
        return adopt(leaf, context, "output")
    if python_scalar_type(leaf) is None and not isinstance(leaf, (np.ndarray, np.generic)):
        raise TraceTypeError("output", f"{path}: a traced function must return arrays, "
                             f"Python numbers or pytrees of them, got {describe(leaf)}")
    return to_tensor(leaf, "output")


def trace_to_graph(fn: Callable, args: tuple, *, name: str | None = None) -> Traced:
    """Trace `fn(*args)` in a new nested context and return its graph and pytree info.

    Graph inputs: the argument leaves in order, then the captured outer values;
    graph outputs: the result leaves in order (non-Tensor results become constants).
    """
    args = tuple(args)
    leaves, in_tree = tree_flatten(args)
    paths = tree_paths(args, "args")
    specs = [leaf_spec(leaf, path) for leaf, path in zip(leaves, paths)]
    with new_trace(name or _function_name(fn)) as context:
        inputs = [context.new_input(spec.type, spec.weak) for spec in specs]
        result = fn(*tree_unflatten(in_tree, inputs))
        out_leaves, out_tree = tree_flatten(result)
        out_paths = tree_paths(result, "output")
        outputs = [_output_tensor(leaf, path, context) for leaf, path in zip(out_leaves, out_paths)]
        context.builder.output(*(t.value for t in outputs))
    return Traced(context.graph, in_tree, out_tree, specs, list(context.captured),
                  [t.weak for t in outputs], list(context.reverse_passes))


def bind(graph: ir.Graph, inputs: Sequence[Any], weak: Sequence[bool] | None = None) -> list[Tensor]:
    """Inline `graph` into the current trace with `inputs` (Tensors, arrays, numbers)
    bound to its inputs; returns its outputs as Tensors (weak per `weak`)."""
    context = current_trace()
    if context is None:
        raise TraceError("bind", "called outside a trace")
    if len(inputs) != len(graph.inputs):
        raise TraceError("bind", f"graph @{graph.name} takes {len(graph.inputs)} inputs, "
                         f"got {len(inputs)}")
    values = []
    for i, (formal, actual) in enumerate(zip(graph.inputs, inputs)):
        t = to_tensor(actual, "bind", formal.type.dtype)
        if t.type != formal.type:
            raise TraceTypeError("bind", f"graph @{graph.name} input {i} is {formal.type}, "
                                 f"got {t.type}")
        values.append(t.value)
    results = context.builder.inline(graph, values)
    flags = list(weak) if weak is not None else [False] * len(results)
    return [Tensor(v, context, w) for v, w in zip(results, flags)]


@api_boundary
def trace(fn: Callable, *args: Any) -> ir.Graph:
    """The unoptimised IR graph of fn(*args); args may be arrays, ShapeDtypes, numbers."""
    return trace_to_graph(fn, args).graph


class Interpreted:
    """`pc.interpret(fn)`: traces once per input signature, runs the IR with NumPy."""

    def __init__(self, fn: Callable):
        self.fn = fn
        self.cache: dict[tuple, Traced] = {}
        functools.update_wrapper(self, fn, updated=())

    @property
    def trace_count(self) -> int:
        """How many signatures have been traced (for tests and diagnostics)."""
        return len(self.cache)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _run_interpreted(self, args, kwargs)


@api_boundary
def _run_interpreted(interpreted: Interpreted, args: tuple, kwargs: dict) -> Any:
    if kwargs:
        raise TraceTypeError("interpret", f"keyword arguments {sorted(kwargs)} are not "
                             "supported; pass arguments positionally")
    leaves, in_tree = tree_flatten(args)
    if any(isinstance(leaf, Tensor) for leaf in leaves):
        traced = trace_to_graph(interpreted.fn, args)
        outputs = bind(traced.graph, leaves + traced.captured, traced.out_weak)
        return tree_unflatten(traced.out_tree, outputs)
    paths = tree_paths(args, "args")
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
