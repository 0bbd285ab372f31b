"""sin and cos for codegen/kernels/mathlib.py: straight-line, vectorisable, accurate to ~1 ulp
over the WHOLE float range (|x| up to 3.4e38 in f32, 1.8e308 in f64).

Why: argument reduction x = n*pi/2 + r is the hard part of sin/cos.  A three-part
pi/2 (Cody-Waite) is cheap and good while n*pi/2 has few bits (|x| < 2^14 in f32,
2^30 in f64, far below where it breaks down); beyond that the reduction needs the
bits of 2/pi that line up with x's mantissa, which is what the "huge" path does.
Both paths are always computed and a `select` picks one per lane: no branches and no
library calls, so the elementwise loop still vectorises.

Huge path (Payne-Hanek idea; tables and code our own).  Write |x| = M * 2^q with M
the integer significand.  x*2/pi mod 4 (the quadrant and the fraction) only needs
G(q) = (2^q * 2/pi) mod 4, because the bits of 2/pi worth 4*2^-q or more contribute
whole multiples of 4.  G(q) depends only on the exponent, so a constant table holds
it per exponent field as a sum of doubles (rounded pieces, each the rest of the last),
loaded per lane (a gather).  Then x*2/pi = M*G mod 4 is formed with exact products
(fma) and exact sums, the nearest integer n is split off, and the fraction f (which
can be as small as ~2^-61 in f64 when x is close to a multiple of pi/2) is kept as a
(high, low) pair until it is multiplied by pi/2.
- f32: M has 24 bits, so two doubles of G and double arithmetic leave an absolute
  error near 2^-78 in f, far below what an f32 result needs.
- f64: four doubles of G (~210 bits); the products' low parts and the rounding errors
  of every sum are carried in a second tier of exact two-sums, so f is good to about
  2^-150 absolute.
The bits of pi come from Machin's formula in Python integers at import time, 2/pi by
integer division; no table is copied from anywhere.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from decimal import Decimal, localcontext

import llvmlite.ir as lir

__all__ = ["sin_quadrant", "HUGE_FROM"]

# fixed-point bits of pi and 2/pi: f64's largest exponent (2^971 * an integer
# significand) needs 2/pi from 2^-973 down another ~210 bits, plus guard bits
_FRACTION_BITS = 1400


def _arctan_inverse_fixed(k: int, bits: int) -> int:
    """atan(1/k) * 2^bits (Taylor series in integers, truncation error < #terms)."""
    total = 0
    power = (1 << bits) // k
    index = 0
    while power:
        term = power // (2 * index + 1)
        total += -term if index % 2 else term
        power //= k * k
        index += 1
    return total


def _pi_fixed(bits: int) -> int:
    """floor-ish(pi * 2^bits) by Machin's formula pi = 16 atan(1/5) - 4 atan(1/239)."""
    guard = 32
    scaled = 16 * _arctan_inverse_fixed(5, bits + guard) - 4 * _arctan_inverse_fixed(239, bits + guard)
    return scaled >> guard


_PI_FIXED = _pi_fixed(_FRACTION_BITS)
_TWO_OVER_PI_FIXED = (1 << (2 * _FRACTION_BITS + 1)) // _PI_FIXED  # 2/pi * 2^B
with localcontext() as _ctx:
    _ctx.prec = 80
    _HALF_PI = Decimal(_PI_FIXED) / Decimal(2 ** (_FRACTION_BITS + 1))


@dataclass(frozen=True)
class _HugePlan:
    """How one input format reduces huge arguments."""

    name: str
    mantissa_bits: int
    exponent_bias: int
    field_limit: int  # largest exponent field (inf/NaN)
    huge_exponent: int  # |x| >= 2^huge_exponent takes the huge path
    chunks: int  # doubles per table row

    @property
    def first_field(self) -> int:
        return self.exponent_bias + self.huge_exponent


# Where the huge path takes over: the Cody-Waite path is measured accurate far beyond
# (1e6 in f32, 1e15 in f64); switching early keeps its n*pi/2 products short.
_PLANS = {
    "f32": _HugePlan("f32", 23, 127, 255, huge_exponent=14, chunks=0),  # bands, no table
    "f64": _HugePlan("f64", 52, 1023, 2047, huge_exponent=30, chunks=4),
}
HUGE_FROM = {name: 2.0 ** plan.huge_exponent for name, plan in _PLANS.items()}


def _g_pieces(q: int, chunks: int) -> list[float]:
    """G(q) = (2^q * 2/pi) mod 4 as `chunks` doubles, each the rounded rest of the
    ones before (so their sum has ~54*chunks bits)."""
    modulus = 4 << _FRACTION_BITS
    shifted = _TWO_OVER_PI_FIXED << q if q >= 0 else _TWO_OVER_PI_FIXED >> -q
    rest = shifted % modulus  # G(q) * 2^B
    pieces = []
    for _ in range(chunks):
        piece = rest / (1 << _FRACTION_BITS)  # int / int: correctly rounded
        numerator, denominator = piece.as_integer_ratio()
        rest -= numerator * ((1 << _FRACTION_BITS) // denominator)
        pieces.append(piece)
    return pieces


@functools.lru_cache(maxsize=None)
def _table(plan: _HugePlan) -> tuple[float, ...]:
    """Row per exponent field from plan.first_field to the inf/NaN field: G(q) with q
    the exponent of x's last mantissa bit, as plan.chunks doubles."""
    values = []
    for field in range(plan.first_field, plan.field_limit + 1):
        values += _g_pieces(field - plan.exponent_bias - plan.mantissa_bits, plan.chunks)
    return tuple(values)


def _table_global(module: lir.Module, plan: _HugePlan) -> lir.GlobalVariable:
    """The plan's table as a private constant global of `module` (made once)."""
    name = f"propc.two_over_pi.{plan.name}"
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    values = _table(plan)
    array_type = lir.ArrayType(lir.DoubleType(), len(values))
    table = lir.GlobalVariable(module, array_type, name)
    table.global_constant = True
    table.linkage = "private"
    table.unnamed_addr = True
    table.initializer = lir.Constant(array_type, list(values))
    return table


# --------------------------------------------------------------------------------------
# small exact-arithmetic helpers (m is mathlib's _Math view of one float type)


def _two_sum(m, a, b):
    """(s, e) with s = fl(a + b) and s + e = a + b exactly (Knuth; no ordering needed)."""
    total = m.add(a, b)
    b_part = m.sub(total, a)
    a_part = m.sub(total, b_part)
    return total, m.add(m.sub(a, a_part), m.sub(b, b_part))


def _two_product(m, a, b):
    """(p, e) with p = fl(a * b) and p + e = a * b exactly (fma)."""
    product = m.mul(a, b)
    return product, m.fma(a, b, m.neg(product))


def _nearest(m, a):
    """An integer within 1/2 (+ rounding of a + 1/2) of a: floor(a + 1/2)."""
    return m.floor(m.add(a, m.const(0.5)))


def _minus_multiple_of_four(m, a):
    """a - 4*k for an integer k near a/4: in [-4, 2] and exact (Sterbenz)."""
    return m.sub(a, m.mul(m.const(4.0), _nearest(m, m.mul(a, m.const(0.25)))))


# --------------------------------------------------------------------------------------
# huge arguments


def _significand_and_field(m, x):
    """(M, field): |x| = M * 2^(field - bias - mantissa_bits) for normal x, M the
    integer significand as a float with x's sign; field the biased exponent bits."""
    fmt = m.fmt
    bits = m.to_bits(m.fabs(x))
    field = m.b.lshr(bits, m.int_const(fmt.mantissa_bits))
    significand = m.b.and_(bits, m.int_const((1 << fmt.mantissa_bits) - 1))
    scaled = m.from_bits(m.b.or_(significand, m.float_bits(2.0 ** fmt.mantissa_bits)))
    return m.copy_sign(scaled, x), field


def _load_row(m, wide, field, plan: _HugePlan) -> list:
    """The table row for each lane's exponent field (fields below the table's first
    read its first row; those lanes take the other path), as `wide` values."""
    builder = m.b
    first = m.int_const(plan.first_field)
    clamped = builder.select(builder.icmp_signed("<", field, first), first, field)
    base = builder.mul(builder.sub(clamped, first), m.int_const(plan.chunks))
    table = _table_global(builder.module, plan)
    return [_gather(builder, table, builder.add(base, m.int_const(j)), wide.count)
            for j in range(plan.chunks)]


def _gather(builder: lir.IRBuilder, table: lir.GlobalVariable, slots, count: int | None):
    """table[slots] for a scalar slot (the loop vectoriser makes it a gather) or per
    lane of a vector of slots."""
    zero = lir.Constant(lir.IntType(32), 0)
    if count is None:
        address = builder.gep(table, [zero, slots], inbounds=True, source_etype=table.value_type)
        return builder.load(address, typ=lir.DoubleType())
    result = lir.Constant(lir.VectorType(lir.DoubleType(), count), lir.Undefined)
    for lane in range(count):
        index = lir.Constant(lir.IntType(32), lane)
        slot = builder.extract_element(slots, index)
        address = builder.gep(table, [zero, slot], inbounds=True, source_etype=table.value_type)
        result = builder.insert_element(result, builder.load(address, typ=lir.DoubleType()), index)
    return result


# f32: bands of 16 binades share one G; the lane's M' = x * 2^-q_band (< 2^40) is
# exact, and selects (cheap, vectorise at full width) replace table loads
_F32_BANDS = tuple(range(14, 128, 16))  # lowest binade of each band


def _huge_f32(m, wide, x):
    """(r, n) for f32 x with |x| >= 2^14: x = n*pi/2 + r, computed in double."""
    magnitude = m.fabs(x)
    scale = None
    pieces = None
    for binade in _F32_BANDS:
        q = binade - 23  # exponent of the last mantissa bit of the band's smallest x
        band_scale = m.const(2.0 ** -q)
        band_pieces = [wide.const(piece) for piece in _g_pieces(q, 2)]
        if scale is None:
            scale, pieces = band_scale, band_pieces
            continue
        above = m.b.fcmp_ordered(">=", magnitude, m.const(2.0 ** binade))
        scale = m.select(above, band_scale, scale)
        pieces = [wide.select(above, new, old) for new, old in zip(band_pieces, pieces)]
    significand = m.b.fpext(m.mul(x, scale), wide.type)  # integer-valued, < 2^40
    head, head_low = _two_product(wide, significand, pieces[0])
    head = _minus_multiple_of_four(wide, head)
    n = _nearest(wide, head)
    # the rest is below 2^-9: its rounding errors (~2^-62) cannot matter, and the
    # final sum's rounding is relative to the (possibly tiny) fraction itself
    fraction = wide.add(wide.sub(head, n), wide.add(head_low, wide.mul(significand, pieces[1])))
    reduced = wide.mul(fraction, wide.const(_HALF_PI))
    return m.b.fptrunc(reduced, m.type), m.b.fptrunc(n, m.type)


def _huge_f64(m, x):
    """(r, n) for f64 x with |x| >= 2^30: x = n*pi/2 + r.  Three tiers: the products'
    high parts (reduced mod 4, nearest integer split off), a tier of size ~2^-50
    summed with exact two-sums, and a ~2^-100 tier summed plainly."""
    significand, field = _significand_and_field(m, x)
    g = _load_row(m, m, field, _PLANS["f64"])
    high0, low0 = _two_product(m, significand, g[0])
    high1, low1 = _two_product(m, significand, g[1])
    high2, low2 = _two_product(m, significand, g[2])
    high3 = m.mul(significand, g[3])
    a, a_error = _two_sum(m, low0, high1)
    b, b_error = _two_sum(m, _minus_multiple_of_four(m, high0), a)
    n = _nearest(m, b)
    c, c_error = _two_sum(m, a_error, b_error)
    d, d_error = _two_sum(m, c, low1)
    tail, tail_error = _two_sum(m, d, high2)
    smallest = m.add(m.add(m.add(c_error, d_error), tail_error), m.add(low2, high3))
    fraction, fraction_error = _two_sum(m, m.sub(b, n), tail)
    fraction_low = m.add(fraction_error, smallest)
    half_pi_high, half_pi_low = m.fmt.split(_HALF_PI, 2)
    reduced, reduced_low = _two_product(m, fraction, m.const(half_pi_high))
    correction = m.fma(fraction, m.const(half_pi_low), m.mul(fraction_low, m.const(half_pi_high)))
    return m.add(reduced, m.add(reduced_low, correction)), n


# --------------------------------------------------------------------------------------
# moderate arguments and the polynomials


def _reduce_moderate(m, x):
    """(r, n): x = n*pi/2 + r with |r| <= ~pi/4, for |x| below the huge path.

    Three-part pi/2 (Cody-Waite); each part a full float, and with fma the first step
    x - n*C1 is exact, so r stays accurate while x*2/pi rounds to within one of the
    true n.  Non-finite x is replaced by 0."""
    safe = m.select(m.is_finite(x), x, m.const(0.0))
    n = m.floor(m.fma(safe, m.const(1 / _HALF_PI), m.const(0.5)))
    minus_n = m.neg(n)
    r = safe
    for part in m.fmt.split(_HALF_PI, 3):
        r = m.fma(minus_n, m.const(part), r)
    return r, n


def _reduce(m, wide, x):
    """(r, quadrant): x = quadrant*pi/2 + r (mod 2pi), quadrant an int in [0, 4)."""
    r, n = _reduce_moderate(m, x)
    if m.fmt.mantissa_bits == 23:
        huge_r, huge_n = _huge_f32(m, wide, x)
        limit = HUGE_FROM["f32"]
    else:
        huge_r, huge_n = _huge_f64(m, x)
        limit = HUGE_FROM["f64"]
    huge = m.b.fcmp_ordered(">=", m.fabs(x), m.const(limit))
    r = m.select(huge, huge_r, r)
    n = m.select(huge, huge_n, n)
    quadrant = m.sub(n, m.mul(m.const(4.0), m.floor(m.mul(n, m.const(0.25)))))
    return r, m.to_int(quadrant)


def _sin_small(m, r):
    """sin(r) on |r| <= pi/4: r + r^3 * S(r^2), Taylor coefficients."""
    degree = m.fmt.sin_degree
    coefficients = [(-1) ** (k // 2) / math.factorial(k) for k in range(degree, 2, -2)]
    z = m.mul(r, r)
    return m.fma(m.mul(r, z), m.horner(z, coefficients), r)


def _cos_small(m, r):
    """cos(r) on |r| <= pi/4: 1 + r^2 * C(r^2), Taylor coefficients, one final fma."""
    degree = m.fmt.cos_degree
    coefficients = [(-1) ** (k // 2) / math.factorial(k) for k in range(degree, 1, -2)]
    z = m.mul(r, r)
    return m.fma(z, m.horner(z, coefficients), m.const(1.0))


def sin_quadrant(m, wide, x, quadrant_shift: int):
    """sin(x + quadrant_shift*pi/2), NaN for NaN/inf x, clamped to [-1, 1].

    `m` is mathlib's builder view for x's type; `wide` the same for doubles of x's
    shape (the f32 huge path computes in double)."""
    r, quadrant = _reduce(m, wide, x)
    quadrant = m.b.add(quadrant, m.int_const(quadrant_shift))
    odd = m.b.icmp_signed("!=", m.b.and_(quadrant, m.int_const(1)), m.int_const(0))
    upper = m.b.icmp_signed("!=", m.b.and_(quadrant, m.int_const(2)), m.int_const(0))
    value = m.select(odd, _cos_small(m, r), _sin_small(m, r))
    value = m.select(upper, m.neg(value), value)
    value = m.clamp(value, -1.0, 1.0)
    return m.select(m.is_finite(x), value, m.const(math.nan))
