"""Inline, vectorisable exp/log/tanh/sin/cos/pow/sqrt for the llvmlite backend.

Why: an `llvm.exp` call (or any libm call) in an elementwise loop becomes one scalar
libm call per lane, 10-40x slower than NumPy (see PERF.md).  Every emitter here is
straight-line code built only from fadd/fmul/fdiv, `llvm.fma`, `llvm.floor`,
`llvm.fabs`, `llvm.minnum`, `llvm.maxnum`, integer bit tricks and `select`, so the
loop vectoriser widens the whole loop body to AVX2/AVX-512.  Special values
(inf, NaN, signed zeros, denormals, overflow, underflow) are fixed up with selects,
never branches, and follow NumPy exactly.

Each emitter takes an `llvmlite.ir.IRBuilder` and values whose type is `float`,
`double`, `<N x float>` or `<N x double>`; constants are splatted to match.

Methods (ideas from the classic literature, code and coefficients our own):
- exp: x = n*ln2 + r with a two-part ln2 (Cody-Waite), |r| <= ln2/2, Taylor series
  for expm1(r), then a scale by 2^n done in two halves so results in the denormal
  range are rounded once.
- log: x = 2^e * m with m in [sqrt(1/2), sqrt(2)), f = m - 1, s = f/(2+f) and
  log(1+f) = f - f^2/2 + s*(f^2/2 + R(s^2)) with R the atanh series (the fdlibm
  arrangement: the leading term f is exact).
- tanh: t = expm1(2|x|) / (expm1(2|x|) + 2) with the sign copied back; accurate
  near 0 because expm1 is, and saturates to exactly 1 past the rounding point.
- sin/cos (codegen/kernels/mathlib_trig.py): n = round(x*2/pi), r = x - n*pi/2 with a
  three-part pi/2 for moderate x, and for huge x (from 2^14 in f32, 2^30 in f64) a
  Payne-Hanek style reduction by the bits of 2/pi that line up with x's exponent;
  Taylor series of sin and cos on |r| <= pi/4 and a quadrant select.
- pow: exp(y*log|x|) with C99/NumPy special cases; log|x| and y*log|x| are carried
  as (high, low) pairs of the same format (double-double for f64, float-float for
  f32) so the exponent's absolute error stays well below 1 ulp of the result.
All series coefficients are exact rationals (1/k!, 2/(2k+1)) rounded at import;
ln2 comes from `decimal` arithmetic here and pi from integer arithmetic in
mathlib_trig.py, so no constant is copied.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Callable

import llvmlite.ir as lir
import numpy as np

from .mathlib_trig import sin_quadrant

__all__ = ["emit_exp", "emit_log", "emit_tanh", "emit_sin", "emit_cos", "emit_pow",
           "emit_sqrt", "MATH_FUNCTIONS", "ULP_BOUNDS"]

# Largest error measured by tests/codegen/test_mathlib.py (in ulp of the result
# type, against a float64 / long double reference), rounded up; the tests assert
# these bounds.  Measured: exp 0.96, log 0.83, tanh 2.26, pow 1.10 -- the same for
# f32 and f64; sin/cos 1.47 (f32) and 1.45 (f64) over every finite x up to 3.4e38 /
# 1.8e308 (also vs an exact decimal reduction, including the double closest to a
# multiple of pi/2).
ULP_BOUNDS: dict[str, dict[str, float]] = {
    "f32": {"exp": 1.0, "log": 1.0, "tanh": 2.5, "sin": 1.5, "cos": 1.5, "pow": 1.2},
    "f64": {"exp": 1.0, "log": 1.0, "tanh": 2.5, "sin": 1.5, "cos": 1.5, "pow": 1.2},
}


# --------------------------------------------------------------------------------------
# exact constants


with localcontext() as _ctx:
    _ctx.prec = 80
    _LN2 = Decimal(2).ln()
    _LOG2E = 1 / _LN2


@dataclass(frozen=True)
class _Format:
    """What the emitters need to know about one IEEE binary format."""

    numpy: type
    mantissa_bits: int
    exponent_bias: int
    int_bits: int
    exp_clamp: tuple[float, float]  # exp(x) is 0 below and inf above these
    tanh_clamp: float  # tanh(x) rounds to exactly 1 from here on
    expm1_degree: int  # Taylor degree of expm1(r) on |r| <= ln2/2
    atanh_terms: int  # terms of R(z) = 2z/3 + 2z^2/5 + ... in log
    sin_degree: int
    cos_degree: int

    def round(self, value) -> float:
        """`value` (float or Decimal) rounded to this format, as a Python float."""
        return float(self.numpy(float(value)))

    def split(self, value: Decimal, parts: int, keep_bits: int | None = None) -> list[float]:
        """`value` as a sum of `parts` floats; the first keeps `keep_bits` bits."""
        pieces = []
        rest = value
        for index in range(parts):
            piece = self.round(rest)
            if index == 0 and keep_bits is not None:
                mantissa, exponent = math.frexp(piece)
                piece = math.ldexp(math.trunc(mantissa * 2 ** keep_bits), exponent - keep_bits)
            pieces.append(piece)
            rest -= Decimal(piece)
        return pieces


# Series lengths: the first dropped term is below ~2^-26 (f32) / 2^-56 (f64) relative.
_F32 = _Format(numpy=np.float32, mantissa_bits=23, exponent_bias=127, int_bits=32,
               exp_clamp=(-104.0, 89.0), tanh_clamp=10.0, expm1_degree=8, atanh_terms=4,
               sin_degree=11, cos_degree=12)
_F64 = _Format(numpy=np.float64, mantissa_bits=52, exponent_bias=1023, int_bits=64,
               exp_clamp=(-746.0, 710.0), tanh_clamp=20.0, expm1_degree=14, atanh_terms=10,
               sin_degree=19, cos_degree=20)


# --------------------------------------------------------------------------------------
# a typed view of the builder


class _Math:
    """IRBuilder helpers for one float type (scalar or vector): splatted constants,
    intrinsics and bit casts, so the emitters below read like the formulas."""

    def __init__(self, builder: lir.IRBuilder, float_type: lir.Type):
        self.b = builder
        self.type = float_type
        is_vector = isinstance(float_type, lir.VectorType)
        element = float_type.element if is_vector else float_type
        if isinstance(element, lir.FloatType):
            self.fmt = _F32
        elif isinstance(element, lir.DoubleType):
            self.fmt = _F64
        else:
            raise TypeError(f"mathlib: expected float/double (or vectors of them), got {float_type}")
        int_element = lir.IntType(self.fmt.int_bits)
        self.count = float_type.count if is_vector else None
        self.int_type = lir.VectorType(int_element, self.count) if is_vector else int_element
        # short names for the builder's float instructions (no fast-math flags anywhere)
        self.add, self.sub, self.mul, self.div = builder.fadd, builder.fsub, builder.fmul, builder.fdiv
        self.neg, self.select = builder.fneg, builder.select
        self.less = functools.partial(builder.fcmp_ordered, "<")
        self.greater = functools.partial(builder.fcmp_ordered, ">")
        self.equal = functools.partial(builder.fcmp_ordered, "==")

    def _splat(self, scalar_type: lir.Type, value) -> lir.Constant:
        if self.count is None:
            return lir.Constant(scalar_type, value)
        return lir.Constant(lir.VectorType(scalar_type, self.count), [value] * self.count)

    def const(self, value) -> lir.Constant:
        """A float constant, rounded to the format, splatted for vectors."""
        element = self.type.element if self.count is not None else self.type
        return self._splat(element, self.fmt.round(value))

    def int_const(self, value: int) -> lir.Constant:
        """An integer constant of the matching int type (i32/i64, splatted)."""
        mask = (1 << self.fmt.int_bits) - 1
        return self._splat(lir.IntType(self.fmt.int_bits), int(value) & mask)

    def call(self, name: str, *args: lir.Value) -> lir.Value:
        """Call the overloaded intrinsic `llvm.<name>` at this type."""
        suffix = "f32" if self.fmt is _F32 else "f64"
        if self.count is not None:
            suffix = f"v{self.count}{suffix}"
        full = f"llvm.{name}.{suffix}"
        module = self.b.module
        function = module.globals.get(full)
        if function is None:
            signature = lir.FunctionType(self.type, [self.type] * len(args))
            function = lir.Function(module, signature, full)
        return self.b.call(function, list(args))

    def fma(self, a, b, c):
        return self.call("fma", a, b, c)

    def floor(self, a):
        return self.call("floor", a)

    def fabs(self, a):
        return self.call("fabs", a)

    def clamp(self, a, low: float, high: float):
        """min(max(a, low), high); NaN becomes `low` or `high` (callers select it back)."""
        return self.call("minnum", self.call("maxnum", a, self.const(low)), self.const(high))

    def is_nan(self, a):
        return self.b.fcmp_unordered("uno", a, a)

    def is_finite(self, a):
        return self.less(self.fabs(a), self.const(math.inf))

    def to_bits(self, a):
        return self.b.bitcast(a, self.int_type)

    def from_bits(self, a):
        return self.b.bitcast(a, self.type)

    def float_bits(self, value: float) -> lir.Constant:
        """The bit pattern of the float constant `value`, as an int constant."""
        pattern = np.array(self.fmt.round(value), dtype=self.fmt.numpy)
        return self.int_const(int(pattern.view(f"i{self.fmt.int_bits // 8}")))

    def to_int(self, a):
        """Float -> int for integer-valued |a| < 2^(mantissa_bits - 1), by adding the
        magic number 1.5 * 2^mantissa_bits (the integer lands in the low bits): AVX2
        has no vector f64 -> i64 conversion, so `fptosi` would go scalar."""
        magic = 1.5 * 2.0 ** self.fmt.mantissa_bits
        return self.b.sub(self.to_bits(self.add(a, self.const(magic))), self.float_bits(magic))

    def to_float(self, i):
        """Int -> float for |i| < 2^(mantissa_bits - 1); the inverse of `to_int`."""
        magic = 1.5 * 2.0 ** self.fmt.mantissa_bits
        return self.sub(self.from_bits(self.b.add(i, self.float_bits(magic))), self.const(magic))

    def sign_bit_set(self, a):
        """True where a's sign bit is set (also for -0.0 and negative NaNs)."""
        return self.b.icmp_signed("<", self.to_bits(a), self.int_const(0))

    def copy_sign(self, magnitude, sign_source):
        """|magnitude| with the sign bit of sign_source (bitwise, so -0.0 works)."""
        sign_mask = self.int_const(1 << (self.fmt.int_bits - 1))
        sign = self.b.and_(self.to_bits(sign_source), sign_mask)
        return self.from_bits(self.b.or_(self.to_bits(self.fabs(magnitude)), sign))

    def horner(self, z, coefficients: list[float]):
        """c[0]*z^(k-1) + ... + c[k-1], coefficients highest power first, with fma."""
        result = self.const(coefficients[0])
        for coefficient in coefficients[1:]:
            result = self.fma(result, z, self.const(coefficient))
        return result

    def power_of_two(self, exponent):
        """2^exponent for an int vector/scalar in the normal exponent range."""
        biased = self.b.add(exponent, self.int_const(self.fmt.exponent_bias))
        return self.from_bits(self.b.shl(biased, self.int_const(self.fmt.mantissa_bits)))


# --------------------------------------------------------------------------------------
# exp, expm1 and the scale by 2^n


def _expm1_coefficients(fmt: _Format) -> list[float]:
    """1/k! for k = degree..2: expm1(r) = r + r^2 * sum(r^(k-2)/k!)."""
    return [1.0 / math.factorial(k) for k in range(fmt.expm1_degree, 1, -1)]


def _reduce_ln2(m: _Math, x, x_low=None):
    """n = round(x/ln2) and r = x - n*ln2 (+ x_low), ln2 in two parts via fma."""
    ln2_high, ln2_low = m.fmt.split(_LN2, 2)
    n = m.floor(m.fma(x, m.const(_LOG2E), m.const(0.5)))
    minus_n = m.neg(n)
    r = m.fma(minus_n, m.const(ln2_high), x)
    r = m.fma(minus_n, m.const(ln2_low), r)
    if x_low is not None:
        r = m.add(r, x_low)
    return n, r


def _expm1_small(m: _Math, r):
    """expm1(r) for |r| <= ln2/2 (Taylor series; r^2 term and up in one fma)."""
    tail = m.horner(r, _expm1_coefficients(m.fmt))
    return m.fma(m.mul(r, r), tail, r)


def _scale(m: _Math, value, n):
    """value * 2^n for |n| up to twice the exponent range: two exact-range factors so
    a denormal result is rounded once, and overflow gives inf."""
    whole = m.to_int(n)
    first = m.b.ashr(whole, m.int_const(1))
    second = m.b.sub(whole, first)
    return m.mul(m.mul(value, m.power_of_two(first)), m.power_of_two(second))


def _exp_finite(m: _Math, x, x_low=None):
    """exp(x + x_low) for non-NaN x; +-inf and out-of-range x saturate to inf / 0."""
    low, high = m.fmt.exp_clamp
    clamped = m.clamp(x, low, high)
    if x_low is not None:
        x_low = m.select(m.equal(clamped, x), x_low, m.const(0.0))
    n, r = _reduce_ln2(m, clamped, x_low)
    return _scale(m, m.add(_expm1_small(m, r), m.const(1.0)), n)


def emit_exp(builder: lir.IRBuilder, x: lir.Value) -> lir.Value:
    """exp(x): inline, vectorisable, NumPy special values (inf->inf, -inf->0, NaN)."""
    m = _Math(builder, x.type)
    return m.select(m.is_nan(x), x, _exp_finite(m, x))


def emit_tanh(builder: lir.IRBuilder, x: lir.Value) -> lir.Value:
    """tanh(x) = sign(x) * e/(e+2), e = expm1(2|x|); exact +-1 at large |x|, -0.0 kept."""
    m = _Math(builder, x.type)
    magnitude = m.call("minnum", m.fabs(x), m.const(m.fmt.tanh_clamp))
    n, r = _reduce_ln2(m, m.add(magnitude, magnitude))
    scale = m.power_of_two(m.to_int(n))
    expm1 = m.fma(scale, _expm1_small(m, r), m.sub(scale, m.const(1.0)))
    result = m.div(expm1, m.add(expm1, m.const(2.0)))
    return m.select(m.is_nan(x), x, m.copy_sign(result, x))


# --------------------------------------------------------------------------------------
# log


def _decompose(m: _Math, x):
    """For positive finite x: (e, f) with x = 2^e * (1 + f), 1 + f in [sqrt(1/2), sqrt(2)).
    Denormals are scaled into the normal range first.  Other x give garbage (no poison)."""
    fmt = m.fmt
    shift = fmt.mantissa_bits + 2
    tiny = m.less(x, m.const(2.0 ** (1 - fmt.exponent_bias)))
    scaled = m.select(tiny, m.mul(x, m.const(2.0 ** shift)), x)
    bits = m.to_bits(scaled)
    exponent = m.b.ashr(m.b.sub(bits, m.float_bits(math.sqrt(0.5))), m.int_const(fmt.mantissa_bits))
    mantissa = m.from_bits(m.b.sub(bits, m.b.shl(exponent, m.int_const(fmt.mantissa_bits))))
    exponent = m.b.sub(exponent, m.b.select(tiny, m.int_const(shift), m.int_const(0)))
    return m.to_float(exponent), m.sub(mantissa, m.const(1.0))


def _atanh_tail(m: _Math, z):
    """R(z) = 2z/3 + 2z^2/5 + ...: 2*atanh(s) = 2s + s*R(s^2)."""
    coefficients = [2.0 / (2 * k + 1) for k in range(m.fmt.atanh_terms, 0, -1)]
    return m.mul(z, m.horner(z, coefficients))


def _log_positive(m: _Math, x):
    """log(x) for positive finite x (1 ulp): fdlibm's arrangement, own derivation."""
    e, f = _decompose(m, x)
    ln2_high, ln2_low = _ln2_parts(m.fmt)
    s = m.div(f, m.add(m.const(2.0), f))
    half_f2 = m.mul(m.const(0.5), m.mul(f, f))
    correction = m.fma(s, m.add(half_f2, _atanh_tail(m, m.mul(s, s))), m.mul(e, m.const(ln2_low)))
    log1p_f = m.sub(f, m.sub(half_f2, correction))
    return m.fma(e, m.const(ln2_high), log1p_f)


def _ln2_parts(fmt: _Format) -> list[float]:
    """ln2 = high + low with high short enough that e*high is exact for any exponent e."""
    return fmt.split(_LN2, 2, keep_bits=fmt.mantissa_bits - 11)


def emit_log(builder: lir.IRBuilder, x: lir.Value) -> lir.Value:
    """log(x): inline, vectorisable; log(+-0)=-inf, log(x<0)=NaN, log(inf)=inf."""
    m = _Math(builder, x.type)
    result = _log_positive(m, x)
    result = m.select(m.equal(x, m.const(math.inf)), x, result)
    result = m.select(m.equal(x, m.const(0.0)), m.const(-math.inf), result)
    result = m.select(m.less(x, m.const(0.0)), m.const(math.nan), result)
    return m.select(m.is_nan(x), x, result)


# --------------------------------------------------------------------------------------
# sin and cos


def _wide(m: _Math) -> _Math:
    """A view of doubles shaped like m's type (f32 sin/cos reduce huge x in double)."""
    if m.count is None:
        return _Math(m.b, lir.DoubleType())
    return _Math(m.b, lir.VectorType(lir.DoubleType(), m.count))


def emit_sin(builder: lir.IRBuilder, x: lir.Value) -> lir.Value:
    """sin(x): inline, vectorisable, ~1 ulp for every finite x (codegen/kernels/mathlib_trig.py);
    sin(+-0)=+-0, sin(+-inf)=NaN."""
    m = _Math(builder, x.type)
    result = sin_quadrant(m, _wide(m), x, 0)
    result = m.select(m.equal(x, m.const(0.0)), x, result)
    return m.select(m.is_nan(x), x, result)


def emit_cos(builder: lir.IRBuilder, x: lir.Value) -> lir.Value:
    """cos(x): inline, vectorisable, ~1 ulp for every finite x; cos(+-inf)=NaN."""
    m = _Math(builder, x.type)
    return m.select(m.is_nan(x), x, sin_quadrant(m, _wide(m), x, 1))


# --------------------------------------------------------------------------------------
# pow


def _two_product(m: _Math, a, b):
    """a*b as an unevaluated pair (high, low), exact via fma."""
    high = m.mul(a, b)
    return high, m.fma(a, b, m.neg(high))


def _log_double_double(m: _Math, x):
    """log(x) for positive finite x as (high, low) with ~2^-64 relative error.

    log(1+f) = 2s + s*U, s = f/(2+f), U = (2/3)s^2 + s^4*T(s^2): s and the (2/3)s^2
    term carry a low part; the rest is small enough for plain doubles."""
    e, f = _decompose(m, x)
    divisor = m.add(m.const(2.0), f)
    divisor_low = m.sub(f, m.sub(divisor, m.const(2.0)))
    s = m.div(f, divisor)
    residual = m.fma(m.neg(s), divisor_low, m.fma(m.neg(s), divisor, f))
    s_low = m.mul(residual, m.mul(m.const(0.5), m.sub(m.const(1.0), s)))  # 1/(2+f) = (1-s)/2
    z, z_low = _two_product(m, s, s)
    z_low = m.fma(m.add(s, s), s_low, z_low)
    two_thirds_high, two_thirds_low = m.fmt.split(Decimal(2) / 3, 2)
    u, u_low = _two_product(m, m.const(two_thirds_high), z)
    u_low = m.add(u_low, m.fma(m.const(two_thirds_high), z_low, m.mul(m.const(two_thirds_low), z)))
    # three more terms than plain log: the truncation must sit near 2^-66, not 2^-58
    tail_coefficients = [2.0 / (2 * k + 1) for k in range(m.fmt.atanh_terms + 3, 1, -1)]
    z_tail = m.mul(z, m.horner(z, tail_coefficients))
    tail = m.mul(z, z_tail)
    # z_low is a few ulp of z (s_low feeds it): first-order correction of z^2*T(z)
    u_low = m.fma(m.add(z_low, z_low), z_tail, u_low)
    u_sum = m.add(u, tail)
    u_low = m.add(m.add(m.sub(u, u_sum), tail), u_low)
    product, product_low = _two_product(m, s, u_sum)
    product_low = m.add(product_low, m.fma(s, u_low, m.mul(s_low, u_sum)))
    two_s = m.add(s, s)
    log1p_f = m.add(two_s, product)
    log1p_low = m.add(m.add(m.sub(two_s, log1p_f), product),
                      m.add(m.add(s_low, s_low), product_low))
    return _add_exponent_term(m, e, log1p_f, log1p_low)


def _add_exponent_term(m: _Math, e, value, value_low):
    """(high, low) of e*ln2 + value + value_low, with e*ln2_high exact."""
    ln2_high, ln2_low = _ln2_parts(m.fmt)
    e_high = m.mul(e, m.const(ln2_high))
    total = m.add(e_high, value)
    # two-sum: neither term is known to dominate
    e_back = m.sub(total, value)
    error = m.add(m.sub(e_high, e_back), m.sub(value, m.sub(total, e_back)))
    low = m.add(error, m.fma(e, m.const(ln2_low), value_low))
    high = m.add(total, low)
    return high, m.sub(low, m.sub(high, total))


def _pow_core(m: _Math, x, y):
    """|x|^y for finite nonzero x and finite y: exp(y*log|x|) with log|x| and the
    product carried as (high, low) pairs, so the exponent is good to well under 1 ulp
    even when |y*log|x|| is near the overflow threshold."""
    log_high, log_low = _log_double_double(m, x)
    exponent, exponent_low = _two_product(m, y, log_high)
    exponent_low = m.fma(y, log_low, exponent_low)
    return _exp_finite(m, exponent, exponent_low)


def _pow_edges(m: _Math, x, y, core):
    """Apply np.power's (C99 pow's) special cases around `core` = |x|^y."""
    magnitude = m.fabs(x)
    is_int = m.b.and_(m.equal(m.floor(y), y), m.is_finite(y))
    half_floor = m.floor(m.mul(y, m.const(0.5)))
    is_odd = m.b.and_(is_int, m.b.fcmp_ordered("!=", m.add(half_floor, half_floor), y))
    # x = +-0, x = +-inf or y = +-inf: the result is inf, 0, or 1 for |x| = 1
    edge = m.b.or_(m.b.not_(m.is_finite(y)), m.b.not_(m.is_finite(x)))
    edge = m.b.or_(edge, m.equal(magnitude, m.const(0.0)))
    grows = m.b.or_(m.b.and_(m.greater(magnitude, m.const(1.0)), m.greater(y, m.const(0.0))),
                    m.b.and_(m.less(magnitude, m.const(1.0)), m.less(y, m.const(0.0))))
    edge_value = m.select(m.equal(magnitude, m.const(1.0)), m.const(1.0), m.const(0.0))
    edge_value = m.select(grows, m.const(math.inf), edge_value)
    result = m.select(edge, edge_value, core)
    result = m.select(m.b.and_(m.sign_bit_set(x), is_odd), m.neg(result), result)
    # negative finite base with a finite non-integer exponent
    bad_base = m.b.and_(m.less(x, m.const(0.0)), m.is_finite(x))
    bad = m.b.and_(bad_base, m.b.and_(m.is_finite(y), m.b.not_(is_int)))
    bad = m.b.or_(bad, m.b.or_(m.is_nan(x), m.is_nan(y)))
    result = m.select(bad, m.const(math.nan), result)
    one = m.b.or_(m.equal(x, m.const(1.0)), m.equal(y, m.const(0.0)))
    return m.select(one, m.const(1.0), result)


def _small_integer_powers(m: _Math, x, y, result):
    """x**2, x**-1, x**1 correctly rounded (x*x, 1/x, x), as NumPy's scalar-exponent
    fast paths give them; these also get every special case right."""
    result = m.select(m.equal(y, m.const(2.0)), m.mul(x, x), result)
    result = m.select(m.equal(y, m.const(-1.0)), m.div(m.const(1.0), x), result)
    return m.select(m.equal(y, m.const(1.0)), x, result)


def _pow_in(m: _Math, x, y):
    """pow for values of m's type: the core on safe operands, then the edges."""
    magnitude = m.fabs(x)
    usable = m.b.and_(m.is_finite(x), m.b.fcmp_ordered("!=", magnitude, m.const(0.0)))
    safe_x = m.select(usable, magnitude, m.const(1.0))
    safe_y = m.select(m.is_finite(y), y, m.const(0.0))
    return _pow_edges(m, x, y, _pow_core(m, safe_x, safe_y))


def emit_pow(builder: lir.IRBuilder, x: lir.Value, y: lir.Value) -> lir.Value:
    """np.power(x, y) for floats: exp(y*log|x|) in extra precision plus NumPy's
    special cases (x**0 = 1 even for NaN, 1**y = 1, negative base needs integer y...)."""
    m = _Math(builder, x.type)
    return _small_integer_powers(m, x, y, _pow_in(m, x, y))


def emit_sqrt(builder: lir.IRBuilder, x: lir.Value) -> lir.Value:
    """sqrt(x) via llvm.sqrt: a single (vector) instruction, correctly rounded, IEEE
    special values (sqrt(-0) = -0, sqrt(x<0) = NaN)."""
    return _Math(builder, x.type).call("sqrt", x)


MathEmitter = Callable[..., lir.Value]
MATH_FUNCTIONS: dict[str, MathEmitter] = {
    "exp": emit_exp,
    "log": emit_log,
    "tanh": emit_tanh,
    "sin": emit_sin,
    "cos": emit_cos,
    "pow": emit_pow,
    "sqrt": emit_sqrt,
}
