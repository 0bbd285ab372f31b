"""Trace contexts, operand conversion, and tracing a function into a graph.

A trace context owns an `ir.Builder`. Contexts form a stack (per thread): the top one
records every op. Transforms open a nested context inside an outer one; when an op
of the inner context meets a Tensor of an outer context (a closure capture), the
inner context *lifts* it: it becomes a fresh input of the inner graph, once per
outer value, and the pair is remembered in `captured` so whoever inlines the inner
graph can pass the outer value for it.

Concrete operands (NumPy arrays, Python scalars) become `constant` ops. Python
scalars are weakly typed (see promotion.py) and are materialised directly in the
dtype an operation needs.

Internal API used by the transforms: `trace_to_graph(fn, args)` -> `Traced`,
`current_trace()`, `bind(graph, inputs)`, and each context's `reverse_passes`.
"""
from __future__ import annotations

import contextlib
import functools
import re
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np

import ir
from ir import DType, TensorType, TypeRuleError, Value

from .arguments import argument_paths
from .errors import ShapeError, TraceError, TraceTypeError, api_boundary, user_location
from .promotion import SUPPORTED, python_scalar_type
from .pytree import TreeDef, tree_flatten, tree_paths, tree_unflatten
from .signature import LeafSpec, ShapeDtype, leaf_spec
from .tensor import Tensor


class TraceContext:
    """One trace being recorded: its builder, captured outer values, derived passes.

    reverse_passes: (forward_graph, backward_graph) pairs appended by transforms that
      derive a reverse-mode pass while this context is recording. When the context
      closes they are also appended to the parent context.
    """

    def __init__(self, name: str, parent: "TraceContext | None"):
        self.builder = ir.Builder(name)
        self.parent = parent
        self.captured: list[Tensor] = []
        self.reverse_passes: list[tuple[ir.Graph, ir.Graph]] = []
        self.active = True
        self._lifted: dict[Value, Tensor] = {}
        self.arguments: dict[Value, str] = {}   # argument inputs -> their paths (args[1])

    @property
    def graph(self) -> ir.Graph:
        return self.builder.graph

    def emit(self, prim: str, *operands: Value, **attrs: Any) -> Value:
        """Record one primitive, stamped with the user's source line."""
        loc = user_location()
        try:
            return self.builder.emit(prim, *operands, loc=loc, **attrs)
        except TypeRuleError as err:
            raise ShapeError(prim, err.detail, loc=loc) from None

    def new_input(self, type: TensorType, weak: bool = False) -> "Tensor":
        return Tensor(self.builder.input(type), self, weak)

    def lift(self, outer: "Tensor") -> "Tensor":
        """This context's stand-in for a Tensor of an enclosing context."""
        inner = self._lifted.get(outer.value)
        if inner is None:
            inner = self.new_input(outer.type, outer.weak)
            self._lifted[outer.value] = inner
            self.captured.append(outer)
        return inner


_state = threading.local()


def _stack() -> list[TraceContext]:
    stack = getattr(_state, "stack", None)
    if stack is None:
        stack = _state.stack = []
    return stack


def current_trace() -> TraceContext | None:
    """The context now recording ops, or None outside any trace."""
    stack = _stack()
    return stack[-1] if stack else None


def graph_name(name: str | None) -> str:
    """A function name usable as a graph name: `<lambda>` -> `lambda`."""
    cleaned = re.sub(r"[^A-Za-z0-9_]+", "_", name or "").strip("_")
    return cleaned or "main"


@contextlib.contextmanager
def new_trace(name: str | None = None) -> Iterator[TraceContext]:
    """Open a nested trace context for the duration of the block."""
    stack = _stack()
    context = TraceContext(graph_name(name), stack[-1] if stack else None)
    stack.append(context)
    try:
        yield context
    finally:
        stack.pop()
        context.active = False
        if context.parent is not None:
            context.parent.reverse_passes.extend(context.reverse_passes)


def _require_trace(op: str) -> TraceContext:
    context = current_trace()
    if context is None:
        raise TraceError(op, "called outside a traced function",
                         hint="call it inside a function run by pc.interpret/pc.compile/pc.trace")
    return context


# --------------------------------------------------------------------------------------
# turning operands into Tensors of the current context


def describe(x: Any) -> str:
    """Short type text for messages: `f32[3,4]`, `python float`."""
    if isinstance(x, Tensor):
        return str(x.type)
    if python_scalar_type(x) is not None:
        return f"python {type(x).__name__}"
    if isinstance(x, (np.ndarray, np.generic)):
        return f"{x.dtype.name} array{list(np.shape(x))}"
    return type(x).__name__


def is_operand(x: Any) -> bool:
    """Things ops accept: Tensors, NumPy arrays and scalars, Python numbers."""
    return isinstance(x, (Tensor, np.ndarray, np.generic, bool, int, float))


def array_dtype(array: np.ndarray, op: str) -> DType:
    try:
        return DType.from_numpy(array.dtype)
    except TypeError:
        raise TraceTypeError(op, f"unsupported dtype {array.dtype} ({describe(array)})",
                             hint=f"propc supports {SUPPORTED}; convert with .astype") from None


def type_info(x: Any, op: str) -> tuple[tuple[int, ...], DType, bool]:
    """(shape, dtype, weak) of an operand without recording anything."""
    if isinstance(x, Tensor):
        return x.shape, x.type.dtype, x.weak
    scalar = python_scalar_type(x)
    if scalar is not None:
        return (), scalar[0], scalar[1]
    array = _as_array(x, op)
    return array.shape, array_dtype(array, op), False


def _as_array(x: Any, op: str) -> np.ndarray:
    if isinstance(x, (np.ndarray, np.generic)):
        return np.asarray(x)
    if isinstance(x, (list, tuple)):
        if any(isinstance(leaf, Tensor) for leaf in tree_flatten(x)[0]):
            raise TraceTypeError(op, "a list/tuple containing traced values is not an array",
                                 hint="join tensors with pc.concatenate")
        return np.asarray(x)
    raise TraceTypeError(op, f"expected an array, a Tensor or a Python number, got {describe(x)}")


def scalar_array(value: Any, dtype: DType, op: str) -> np.ndarray:
    """A Python number as a 0-d array of `dtype`; ints must fit the integer type."""
    if dtype.is_int and not isinstance(value, float):
        info = np.iinfo(dtype.numpy)
        if not info.min <= int(value) <= info.max:
            raise TraceTypeError(op, f"Python int {value} does not fit in {dtype.numpy.name}",
                                 hint="use an int64 array or a float")
    return np.asarray(value, dtype=dtype.numpy)


def to_tensor(x: Any, op: str, dtype: DType | None = None) -> "Tensor":
    """`x` as a Tensor of the current context.

    Tensors of outer contexts are lifted; NumPy arrays become strong constants;
    Python numbers become weak constants of `dtype` (default: their own weak type).
    """
    context = _require_trace(op)
    if isinstance(x, Tensor):
        return adopt(x, context, op)
    scalar = python_scalar_type(x)
    if scalar is not None:
        array = scalar_array(x, dtype or scalar[0], op)
        return Tensor(context.emit("constant", value=array), context, scalar[1])
    array = _as_array(x, op)
    array_dtype(array, op)
    return Tensor(context.emit("constant", value=np.array(array, copy=True)), context, False)


def adopt(t: "Tensor", context: TraceContext, op: str) -> "Tensor":
    """`t` itself if it belongs to `context`, else its lifted stand-in."""
    if t.context is context:
        return t
    if not t.context.active:
        raise TraceError(op, f"a traced value {t.type} escaped from the trace that made it "
                         "(stored in a global or returned through a side channel?)",
                         hint="pass it in as an argument or return it as an output")
    return context.lift(t)


def apply(prim: str, *operands: "Tensor", weak: bool = False, **attrs: Any) -> "Tensor":
    """Record `prim` on Tensors of the current context; the result is a new Tensor."""
    context = current_trace() if not operands else operands[0].context
    return Tensor(context.emit(prim, *(t.value for t in operands), **attrs), context, weak)


def cast(t: "Tensor", dtype: DType) -> "Tensor":
    """`t` converted to `dtype` (no op when it already is)."""
    if t.type.dtype is dtype:
        return t
    return apply("convert", t, weak=t.weak, dtype=dtype)


def full(shape: Sequence[int], value: Any, dtype: DType, weak: bool = False) -> "Tensor":
    """A constant array of `shape` filled with `value` (a 0-d constant broadcast)."""
    context = _require_trace("full")
    scalar = Tensor(context.emit("constant", value=np.asarray(value, dtype=dtype.numpy)),
                    context, weak)
    if len(shape) == 0:
        return scalar
    return apply("broadcast_in_dim", scalar, weak=weak, shape=tuple(shape), dims=())


# --------------------------------------------------------------------------------------
# eager use of propc functions outside any trace


def traceable(fn: Callable) -> Callable:
    """Make a propc function work outside a trace too: there it records a throwaway
    graph on its concrete arguments and runs it with the interpreter, returning
    NumPy arrays. Inside a trace it just records ops."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if current_trace() is not None:
            return fn(*args, **kwargs)
        return run_eagerly(fn, args, kwargs)

    return wrapper


@api_boundary
def run_eagerly(fn: Callable, args: tuple, kwargs: dict) -> Any:
    with new_trace(getattr(fn, "__name__", None)) as context:
        result = fn(*args, **kwargs)
        leaves, treedef = tree_flatten(result)
        positions = [i for i, leaf in enumerate(leaves) if isinstance(leaf, Tensor)]
        outputs = [adopt(leaves[i], context, getattr(fn, "__name__", "op")) for i in positions]
        context.builder.output(*(t.value for t in outputs))
    arrays = ir.interpret(context.graph)
    for i, array in zip(positions, arrays):
        leaves[i] = array
    return tree_unflatten(treedef, leaves)



# --------------------------------------------------------------------------------------
# tracing a function into a graph, and inlining a graph into the current trace


@dataclass
class Traced:
    """A function traced on one signature.

    graph: inputs are the argument leaves in order, then the captured outer values;
      outputs are the result leaves in order.
    in_tree, out_tree: the argument tuple's and the result's pytree structures.
    in_leaves: the LeafSpec of each argument leaf.
    captured: Tensors of enclosing traces lifted as the trailing graph inputs.
    out_weak: whether each output leaf is weakly typed.
    reverse_passes: (forward, backward) graph pairs derived while tracing.
    """

    graph: ir.Graph
    in_tree: TreeDef
    out_tree: TreeDef
    in_leaves: list[LeafSpec]
    captured: list[Tensor]
    out_weak: list[bool]
    reverse_passes: list[tuple[ir.Graph, ir.Graph]] = field(default_factory=list)


def function_name(fn: Callable) -> str | None:
    """fn's __name__ (looking through functools.partial), or None."""
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

    args: a tuple whose leaves are arrays, ShapeDtypes, Python numbers or Tensors of
    an enclosing trace; each leaf becomes one graph input. Non-Tensor results
    become constants.
    """
    args = tuple(args)
    leaves, in_tree = tree_flatten(args)
    paths = argument_paths(fn, args)
    specs = [leaf_spec(leaf, path) for leaf, path in zip(leaves, paths)]
    with new_trace(name or function_name(fn)) as context:
        inputs = [context.new_input(spec.type, spec.weak) for spec in specs]
        context.arguments.update((t.value, path) for t, path in zip(inputs, paths))
        result = fn(*tree_unflatten(in_tree, inputs))
        out_leaves, out_tree = tree_flatten(result)
        out_paths = tree_paths(result, "output")
        outputs = [_output_tensor(leaf, path, context) for leaf, path in zip(out_leaves, out_paths)]
        context.builder.output(*(t.value for t in outputs))
    return Traced(context.graph, in_tree, out_tree, specs, list(context.captured),
                  [t.weak for t in outputs], list(context.reverse_passes))


def bind(graph: ir.Graph, inputs: Sequence[Any], weak: Sequence[bool] | None = None) -> list[Tensor]:
    """Inline `graph` into the current trace with `inputs` (Tensors of this or an outer
    trace, arrays, numbers) bound to its inputs; returns its outputs as Tensors,
    weakly typed where `weak` says so."""
    context = _require_trace("bind")
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


__all__ = [
    "LeafSpec", "ShapeDtype", "Tensor", "TraceContext", "Traced", "adopt", "apply", "bind",
    "cast", "current_trace", "full", "new_trace", "to_tensor", "trace_to_graph", "traceable",
]
