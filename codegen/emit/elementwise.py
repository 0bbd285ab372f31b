"""Scalar code for every elementwise primitive.

Each emitter computes one element from register values of its operands; the loop
vectoriser widens the loops they sit in. Semantics follow `ir/interpret.py` exactly:
- max/min propagate NaN like np.maximum: `isnan(a) or a > b ? a : b` (so ±0 ties
  and NaN payloads pick the same operand NumPy does);
- integer div is floor division with x // 0 == 0 and INT_MIN // -1 == INT_MIN
  (wrapping like NumPy, never trapping);
- integer add/sub/mul/neg/abs wrap (no `nsw`);
- float → int convert: NaN, ±inf and out-of-range give INT_MIN — what NumPy's
  x86 casts (cvttss2si, the "integer indefinite") return — instead of LLVM's
  poison from a bare `fptosi`;
- convert to bool is `x != 0` (NaN → True).
No fast-math flags anywhere here: NaN behaviour matters for every op.

Transcendentals go through `math_function`, the one place that chooses between
helper F's inline polynomials (codegen/kernels/mathlib.py) and LLVM intrinsics.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import llvmlite.ir as lir

from ir.types import DType

from .llvmtypes import register_type, scalar_constant

from ..kernels.mathlib import MATH_FUNCTIONS
from ..registry import Registry

@dataclass(frozen=True)
class Scalar:
    """What an emitter needs besides its operand values; `mathlib`: the compile's
    choice of inline polynomial transcendentals (CompileOptions.mathlib)."""

    attrs: dict[str, Any]
    operand_dtypes: tuple[DType, ...]
    result_dtype: DType
    mathlib: bool


Emitter = Callable[[lir.IRBuilder, list, Scalar], lir.Value]


@dataclass(frozen=True)
class ScalarOp:
    """One elementwise primitive's entry: `emit` computes one element; `cost` is its
    price per element in simple operations (~0.1 ns each: the inline polynomial
    transcendentals cost about ten), what thread planning weighs a loop's work by
    (codegen/emit/steps.py)."""

    emit: Emitter
    cost: int = 1


# The one table of elementwise primitives (tests/test_registry.py: every primitive
# is here or in codegen.LOWERINGS, never both).
EMITTERS: Registry = Registry("scalar emitter")


def emitter(*names: str, cost: int = 1) -> Callable[[Emitter], Emitter]:
    """Decorator: register `fn` as the scalar emitter of each of `names`, costing
    `cost` simple operations per element."""
    def wrap(fn: Emitter) -> Emitter:
        for name in names:
            EMITTERS.add(name, ScalarOp(fn, cost))
        return fn
    return wrap


def element_cost(prim: str) -> int:
    """Simple operations per element of elementwise `prim` (1 when it has no emitter:
    emitting it then fails, naming the op)."""
    found = EMITTERS.get(prim)
    return 1 if found is None else found.cost


def intrinsic(builder: lir.IRBuilder, name: str, args: list, ret: lir.Type | None = None
              ) -> lir.Value:
    """Call an overloaded LLVM intrinsic `name` (e.g. 'llvm.fabs') on `args`."""
    arg_type = args[0].type
    ret = ret if ret is not None else arg_type
    full = f"{name}.{_type_suffix(arg_type)}"
    module = builder.module
    fn = module.globals.get(full)
    if fn is None:
        fn = lir.Function(module, lir.FunctionType(ret, [a.type for a in args]), full)
    return builder.call(fn, args)


def _type_suffix(t: lir.Type) -> str:
    if isinstance(t, lir.VectorType):
        return f"v{t.count}{_type_suffix(t.element)}"
    if isinstance(t, lir.FloatType):
        return "f32"
    if isinstance(t, lir.DoubleType):
        return "f64"
    return f"i{t.width}"


def math_function(name: str, mathlib: bool) -> Callable[..., lir.Value]:
    """emit(builder, *args) for a transcendental: helper F's polynomial if present and
    `mathlib` (the compile's choice), else the LLVM intrinsic."""
    if mathlib and name in MATH_FUNCTIONS:
        return MATH_FUNCTIONS[name]
    return lambda builder, *args: intrinsic(builder, f"llvm.{name}", list(args))


# --------------------------------------------------------------------------------------
# float unary

# (name, operations per element): the polynomials of codegen/kernels/mathlib.py
for _name, _cost in (("exp", 10), ("log", 10), ("tanh", 10), ("sqrt", 3), ("sin", 12),
                     ("cos", 12)):
    def _make(name: str) -> Emitter:
        return lambda b, args, s: math_function(name, s.mathlib)(b, args[0])
    emitter(_name, cost=_cost)(_make(_name))


@emitter("neg")
def _neg(b, args, s):
    if s.result_dtype.is_float:
        return b.fneg(args[0])
    return b.sub(lir.Constant(args[0].type, 0), args[0])


@emitter("abs")
def _abs(b, args, s):
    (x,) = args
    if s.result_dtype.is_float:
        return intrinsic(b, "llvm.fabs", [x])
    negative = b.icmp_signed("<", x, lir.Constant(x.type, 0))
    return b.select(negative, b.sub(lir.Constant(x.type, 0), x), x)


# --------------------------------------------------------------------------------------
# binary arithmetic


@emitter("add")
def _add(b, args, s):
    return b.fadd(*args) if s.result_dtype.is_float else b.add(*args)


@emitter("sub")
def _sub(b, args, s):
    return b.fsub(*args) if s.result_dtype.is_float else b.sub(*args)


@emitter("mul")
def _mul(b, args, s):
    return b.fmul(*args) if s.result_dtype.is_float else b.mul(*args)


def emit_max(b: lir.IRBuilder, x: lir.Value, y: lir.Value, dtype: DType) -> lir.Value:
    """np.maximum: x if x is NaN or x > y, else y (so a NaN y comes through too)."""
    return _pick(b, x, y, dtype, ">")


def emit_min(b: lir.IRBuilder, x: lir.Value, y: lir.Value, dtype: DType) -> lir.Value:
    """np.minimum: x if x is NaN or x < y, else y."""
    return _pick(b, x, y, dtype, "<")


def _pick(b, x, y, dtype: DType, relation: str) -> lir.Value:
    if dtype.is_float:
        better = b.fcmp_ordered(relation, x, y)
        x_nan = b.fcmp_unordered("uno", x, x)
        return b.select(b.or_(better, x_nan), x, y)
    if dtype is DType.bool:
        return b.select(b.icmp_unsigned(relation, x, y), x, y)
    return b.select(b.icmp_signed(relation, x, y), x, y)


@emitter("max")
def _max(b, args, s):
    return emit_max(b, args[0], args[1], s.result_dtype)


@emitter("min")
def _min(b, args, s):
    return emit_min(b, args[0], args[1], s.result_dtype)


@emitter("div", cost=3)
def _div(b, args, s):
    x, y = args
    if s.result_dtype.is_float:
        return b.fdiv(x, y)
    return emit_floor_div(b, x, y)


def emit_floor_div(b: lir.IRBuilder, x: lir.Value, y: lir.Value) -> lir.Value:
    """Integer floor division; x // 0 == 0 and INT_MIN // -1 wraps to INT_MIN."""
    zero = lir.Constant(x.type, 0)
    one = lir.Constant(x.type, 1)
    minus_one = lir.Constant(x.type, -1)
    y_zero = b.icmp_signed("==", y, zero)
    y_minus_one = b.icmp_signed("==", y, minus_one)
    safe = b.select(b.or_(y_zero, y_minus_one), one, y)
    quotient = b.sdiv(x, safe)
    remainder = b.srem(x, safe)
    signs_differ = b.icmp_signed("<", b.xor(remainder, safe), zero)
    inexact = b.icmp_signed("!=", remainder, zero)
    floored = b.sub(quotient, b.zext(b.and_(inexact, signs_differ), x.type))
    negated = b.sub(zero, x)
    result = b.select(y_minus_one, negated, floored)
    return b.select(y_zero, zero, result)


@emitter("pow", cost=20)
def _pow(b, args, s):
    return math_function("pow", s.mathlib)(b, args[0], args[1])


# --------------------------------------------------------------------------------------
# comparisons and select

_FLOAT_COMPARE = {"lt": ("<", True), "le": ("<=", True), "gt": (">", True),
                  "ge": (">=", True), "eq": ("==", True), "ne": ("!=", False)}
_INT_COMPARE = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}

for _name in _FLOAT_COMPARE:
    def _make_compare(name: str) -> Emitter:
        def emit(b, args, s):
            dtype = s.operand_dtypes[0]
            if dtype.is_float:
                relation, ordered = _FLOAT_COMPARE[name]
                compare = b.fcmp_ordered if ordered else b.fcmp_unordered
                return compare(relation, args[0], args[1])
            if dtype is DType.bool:
                return b.icmp_unsigned(_INT_COMPARE[name], args[0], args[1])
            return b.icmp_signed(_INT_COMPARE[name], args[0], args[1])
        return emit
    emitter(_name)(_make_compare(_name))


@emitter("select")
def _select(b, args, s):
    return b.select(*args)


# --------------------------------------------------------------------------------------
# convert


@emitter("convert")
def _convert(b, args, s):
    return emit_convert(b, args[0], s.operand_dtypes[0], s.result_dtype)


def emit_convert(b: lir.IRBuilder, x: lir.Value, source: DType, target: DType) -> lir.Value:
    """`x.astype(target)` for one element, NumPy semantics (see module docstring)."""
    to_type = register_type(target)
    if source is target:
        return x
    if target is DType.bool:
        if source.is_float:
            return b.fcmp_unordered("!=", x, lir.Constant(x.type, 0.0))
        return b.icmp_unsigned("!=", x, lir.Constant(x.type, 0))
    if source is DType.bool:
        return b.uitofp(x, to_type) if target.is_float else b.zext(x, to_type)
    if source.is_float and target.is_float:
        return b.fptrunc(x, to_type) if target.itemsize < source.itemsize else b.fpext(x, to_type)
    if source.is_int and target.is_float:
        return b.sitofp(x, to_type)
    if source.is_int and target.is_int:
        return b.trunc(x, to_type) if target.itemsize < source.itemsize else b.sext(x, to_type)
    return _float_to_int(b, x, target)


def _float_to_int(b: lir.IRBuilder, x: lir.Value, target: DType) -> lir.Value:
    """Truncating float → int; NaN/inf/out of range give INT_MIN like NumPy on x86.

    Values in (INT_MIN - 1, INT_MIN) truncate to INT_MIN anyway, so one range test
    `INT_MIN <= x < -INT_MIN` (false for NaN) covers every case; `fptosi` of an
    out-of-range x is poison, which `select` discards.
    """
    bits = target.itemsize * 8
    int_min = -(1 << (bits - 1))
    low_ok = b.fcmp_ordered(">=", x, lir.Constant(x.type, float(int_min)))
    high_ok = b.fcmp_ordered("<", x, lir.Constant(x.type, float(-int_min)))
    truncated = b.fptosi(x, register_type(target))
    return b.select(b.and_(low_ok, high_ok), truncated, scalar_constant(int_min, target))


def emit_elementwise(b: lir.IRBuilder, prim: str, args: list, scalar: Scalar) -> lir.Value:
    """Emit primitive `prim` on register operands; KeyError-free lookup."""
    found = EMITTERS.get(prim)
    if found is None:
        raise NotImplementedError(f"no scalar emitter for primitive {prim!r}")
    return found.emit(b, args, scalar)


__all__ = ["EMITTERS", "Scalar", "ScalarOp", "element_cost", "emit_convert", "emit_elementwise",
           "emit_floor_div",
           "emit_max", "emit_min", "intrinsic", "math_function"]
