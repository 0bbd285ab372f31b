"""Trace contexts and the `Tensor` tracer.

A trace context owns an `ir.Builder`. Contexts form a stack (per thread): the top one
records every op. Transforms open a nested context inside an outer one; when an op
of the inner context meets a Tensor of an outer context (a closure capture), the
inner context *lifts* it: it becomes a fresh input of the inner graph, once per
outer value, and the pair is remembered in `captured` so whoever inlines the inner
graph can pass the outer value for it.

Concrete operands (NumPy arrays, Python scalars) become `constant` ops. Python
scalars are weakly typed (see promotion.py) and are materialised directly in the
dtype an operation needs.
"""
from __future__ import annotations

import contextlib
import functools
import re
import threading
from typing import Any, Callable, Iterator, Sequence

import numpy as np

import ir
from ir import DType, TensorType, TypeRuleError, Value

from .errors import (ConcretizationError, ShapeError, TraceError, TraceTypeError, api_boundary,
                     user_location)
from .promotion import SUPPORTED, python_scalar_type
from .pytree import tree_flatten, tree_unflatten


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
            raise TraceTypeError(op, f"Python int {value} does not fit in {dtype}",
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
# the tracer


def _binary(name: str, reflected: bool = False) -> Callable:
    def method(self, other):
        if not is_operand(other) and not isinstance(other, (list, tuple)):
            return NotImplemented
        fn = getattr(numpy_api, name)
        return fn(other, self) if reflected else fn(self, other)
    method.__name__ = f"__{'r' if reflected else ''}{name}__"
    return method


class Tensor:
    """A traced array: shape and dtype are known, values are not (yet).

    Arithmetic, comparisons, methods and indexing record IR ops in the trace the
    Tensor belongs to. Using its value as a Python value (`if`, float(), np.asarray)
    raises ConcretizationError.
    """

    __slots__ = ("value", "context", "weak")
    __array_priority__ = 1000

    def __init__(self, value: Value, context: TraceContext, weak: bool = False):
        self.value = value
        self.context = context
        self.weak = weak

    # -- static information ------------------------------------------------------------

    @property
    def type(self) -> TensorType:
        return self.value.type

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.type.shape

    @property
    def ndim(self) -> int:
        return self.value.type.ndim

    @property
    def size(self) -> int:
        return self.value.type.size

    @property
    def dtype(self) -> np.dtype:
        return self.value.type.dtype.numpy

    @property
    def T(self) -> "Tensor":
        return numpy_api.transpose(self)

    def __repr__(self) -> str:
        weak = ", weak" if self.weak else ""
        return f"Tensor({self.type}{weak}, traced in @{self.context.graph.name})"

    # -- operators ---------------------------------------------------------------------

    __add__ = _binary("add")
    __radd__ = _binary("add", reflected=True)
    __sub__ = _binary("subtract")
    __rsub__ = _binary("subtract", reflected=True)
    __mul__ = _binary("multiply")
    __rmul__ = _binary("multiply", reflected=True)
    __truediv__ = _binary("divide")
    __rtruediv__ = _binary("divide", reflected=True)
    __pow__ = _binary("power")
    __rpow__ = _binary("power", reflected=True)
    __matmul__ = _binary("matmul")
    __rmatmul__ = _binary("matmul", reflected=True)
    __lt__ = _binary("less")
    __le__ = _binary("less_equal")
    __gt__ = _binary("greater")
    __ge__ = _binary("greater_equal")
    __eq__ = _binary("equal")  # type: ignore[assignment]
    __ne__ = _binary("not_equal")  # type: ignore[assignment]
    __hash__ = object.__hash__

    def __neg__(self) -> "Tensor":
        return numpy_api.negative(self)

    def __pos__(self) -> "Tensor":
        return self

    def __abs__(self) -> "Tensor":
        return numpy_api.abs(self)

    def __getitem__(self, key: Any) -> "Tensor":
        return indexing.getitem(self, key)

    def __setitem__(self, key: Any, value: Any) -> None:
        raise TraceTypeError("setitem", f"tensors are immutable ({self.type})",
                             hint="build a new value with pc.where or pc.concatenate")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """NumPy ufuncs on tracers (`np.exp(x)`, `array * x`) run the propc function."""
        fn = numpy_api.UFUNCS.get(ufunc.__name__)
        if method != "__call__" or kwargs or fn is None:
            raise ConcretizationError(
                f"np.{ufunc.__name__}", f"NumPy cannot run on a traced value {self.type}",
                hint="use the propc function of the same name (pc.exp, pc.sum, ...)")
        return fn(*inputs)

    # -- methods -----------------------------------------------------------------------

    def reshape(self, *shape: Any) -> "Tensor":
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return numpy_api.reshape(self, shape)

    def transpose(self, *axes: Any) -> "Tensor":
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return numpy_api.transpose(self, axes if axes != () else None)

    def sum(self, axis: Any = None, keepdims: bool = False) -> "Tensor":
        return numpy_api.sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> "Tensor":
        return numpy_api.mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> "Tensor":
        return numpy_api.max(self, axis=axis, keepdims=keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> "Tensor":
        return numpy_api.min(self, axis=axis, keepdims=keepdims)

    def astype(self, dtype: Any) -> "Tensor":
        return numpy_api.astype(self, dtype)

    def flatten(self) -> "Tensor":
        return numpy_api.reshape(self, (-1,))

    # -- Python protocols that need a value ------------------------------------------

    def _concretization(self, what: str, hint: str) -> ConcretizationError:
        return ConcretizationError(
            what, f"needs the value of a traced {self.type}, which is unknown while tracing",
            hint=hint)

    def __bool__(self) -> bool:
        raise self._concretization(
            "bool() (an `if`, `while`, `and`/`or` on a tensor)",
            "branch on values with `pc.where(cond, a, b)`, not `if`")

    def __float__(self) -> float:
        raise self._concretization("float()", "return the tensor as an output and convert the "
                                   "result array outside the traced function")

    def __int__(self) -> int:
        raise self._concretization("int()", "shapes are static: use x.shape for sizes")

    def __index__(self) -> int:
        raise self._concretization("index with a traced value",
                                   "use static Python ints, or pc.one_hot / pc.where to select")

    def __complex__(self) -> complex:
        raise self._concretization("complex()", "complex numbers are not supported")

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise self._concretization("np.asarray()", "use propc functions (pc.exp, pc.sum, ...) "
                                   "on tensors, or return the tensor as an output")

    def item(self) -> Any:
        raise self._concretization(".item()", "return the tensor as an output instead")

    def tolist(self) -> Any:
        raise self._concretization(".tolist()", "return the tensor as an output instead")

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TraceTypeError("len()", f"a 0-d tensor {self.type} has no length")
        return self.shape[0]

    def __iter__(self) -> Iterator["Tensor"]:
        if self.ndim == 0:
            raise TraceTypeError("iter()", f"cannot iterate over a 0-d tensor {self.type}")
        return (self[i] for i in range(self.shape[0]))


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


from . import indexing, numpy_api  # noqa: E402  (the Tensor methods call into these)
