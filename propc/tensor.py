"""`Tensor`, the tracer: a traced array whose shape and dtype are known while its
values are not.

Its operators and methods call the propc namespace (numpy_api, indexing), which
records ops in the trace the Tensor belongs to. Those modules import this one, so
they are reached through `_api()` / `_indexing()` at call time.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from ir import TensorType, Value

from .errors import ConcretizationError, TraceTypeError

if TYPE_CHECKING:
    from .tracing import TraceContext


def _api():
    """The numpy_api module (imported on first use: it imports this module)."""
    from . import numpy_api
    return numpy_api


def _math():
    """The numpy_math module (// and %; imported on first use: it imports this module)."""
    from . import numpy_math
    return numpy_math


def _indexing():
    from . import indexing
    return indexing


def _is_operand(x: Any) -> bool:
    return isinstance(x, (Tensor, np.ndarray, np.generic, bool, int, float, list, tuple))


def _binary(name: str, reflected: bool = False, module: Callable = _api) -> Callable:
    def method(self, other):
        if not _is_operand(other):
            return NotImplemented
        fn = getattr(module(), name)
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

    def __init__(self, value: Value, context: "TraceContext", weak: bool = False):
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
        return _api().transpose(self)

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
    __floordiv__ = _binary("floor_divide", module=_math)
    __rfloordiv__ = _binary("floor_divide", reflected=True, module=_math)
    __mod__ = _binary("mod", module=_math)
    __rmod__ = _binary("mod", reflected=True, module=_math)
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
        return _api().negative(self)

    def __pos__(self) -> "Tensor":
        return self

    def __abs__(self) -> "Tensor":
        return _api().abs(self)

    def __getitem__(self, key: Any) -> "Tensor":
        return _indexing().getitem(self, key)

    def __setitem__(self, key: Any, value: Any) -> None:
        raise TraceTypeError("setitem", f"tensors are immutable ({self.type})",
                             hint="build a new value with pc.where or pc.concatenate")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        """NumPy ufuncs on tracers (`np.exp(x)`, `array * x`) run the propc function."""
        fn = _api().UFUNCS.get(ufunc.__name__)
        if method != "__call__" or kwargs or fn is None:
            raise ConcretizationError(
                f"np.{ufunc.__name__}", f"NumPy cannot run on a traced value {self.type}",
                hint="use the propc function of the same name (pc.exp, pc.sum, ...)")
        return fn(*inputs)

    # -- methods -----------------------------------------------------------------------

    def reshape(self, *shape: Any) -> "Tensor":
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return _api().reshape(self, shape)

    def transpose(self, *axes: Any) -> "Tensor":
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))):
            axes = axes[0]
        return _api().transpose(self, axes if axes != () else None)

    # `dtype` and `out` are accepted so that np.sum(x) / np.max(x) on a tracer work:
    # NumPy calls these methods with them.

    def _reduction_input(self, dtype: Any, out: Any, op: str) -> "Tensor":
        if out is not None:
            raise TraceTypeError(op, f"out= is not supported for a traced {self.type}",
                                 hint="use the returned tensor")
        return self if dtype is None else self.astype(dtype)

    def sum(self, axis: Any = None, keepdims: bool = False, *, dtype: Any = None,
            out: Any = None) -> "Tensor":
        x = self._reduction_input(dtype, out, "sum")
        return _api().sum(x, axis=axis, keepdims=keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False, *, dtype: Any = None,
             out: Any = None) -> "Tensor":
        x = self._reduction_input(dtype, out, "mean")
        return _api().mean(x, axis=axis, keepdims=keepdims)

    def max(self, axis: Any = None, keepdims: bool = False, *, out: Any = None) -> "Tensor":
        self._reduction_input(None, out, "max")
        return _api().max(self, axis=axis, keepdims=keepdims)

    def min(self, axis: Any = None, keepdims: bool = False, *, out: Any = None) -> "Tensor":
        self._reduction_input(None, out, "min")
        return _api().min(self, axis=axis, keepdims=keepdims)

    def astype(self, dtype: Any) -> "Tensor":
        return _api().astype(self, dtype)

    def flatten(self) -> "Tensor":
        return _api().reshape(self, (-1,))

    # -- Python protocols that need a value ------------------------------------------

    def _concretization(self, what: str, hint: str) -> ConcretizationError:
        argument = self.context.arguments.get(self.value)
        if argument is not None:
            hint += (f"; or, if {argument} is a Python value (a flag, a size, a mode), make it "
                     "static: pc.compile(fn, static_argnums=...) or static_argnames=...")
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
