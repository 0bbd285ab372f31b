"""codegen/mathlib.py: accuracy in ulp over the whole float range, NumPy's special
values exactly, vectorisation of the emitted loops, and speed (printed only).

The oracle is independent of the code under test: float32 results are compared with
NumPy in float64 and float64 results with NumPy in long double (x87, 64-bit
mantissa); errors are measured in ulp of the result type.  Special values are
compared with NumPy's own result in the same dtype, bit for bit (NaN positions equal,
zero signs equal).  A tiny MCJIT harness lives here so these tests do not depend on
the rest of the backend.
"""
from __future__ import annotations

import ctypes
import functools
import time
import zlib
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

import llvmlite.binding as llvm
import llvmlite.ir as lir
import numpy as np
import pytest

from codegen.kernels.mathlib import MATH_FUNCTIONS, ULP_BOUNDS

UNARY = ["exp", "log", "tanh", "sin", "cos"]
NUMPY = {"exp": np.exp, "log": np.log, "tanh": np.tanh, "sin": np.sin, "cos": np.cos,
         "pow": np.power, "sqrt": np.sqrt}
DTYPES = {"f32": np.float32, "f64": np.float64}
REFERENCE_DTYPE = {"f32": np.float64, "f64": np.longdouble}
PI_LONG = np.longdouble("3.14159265358979323846264338327950288")


# --------------------------------------------------------------------------------------
# harness: void f(T* x, [T* y,] T* out, i64 n) compiled with MCJIT for this CPU


class Kernel:
    """A compiled elementwise loop around one mathlib emitter."""

    def __init__(self, name: str, dtype: str, vector_width: int | None = None):
        llvm.initialize_native_target()
        llvm.initialize_native_asmprinter()
        self.dtype = DTYPES[dtype]
        self.arity = 2 if name == "pow" else 1
        self.vector_width = vector_width
        module = _build_module(name, dtype, self.arity, vector_width)
        machine = _target_machine()
        module.triple = machine.triple
        module.data_layout = str(machine.target_data)
        parsed = llvm.parse_assembly(str(module))
        parsed.verify()
        tuning = llvm.create_pipeline_tuning_options(speed_level=2)
        tuning.loop_vectorization = True
        tuning.slp_vectorization = True
        pass_builder = llvm.create_pass_builder(machine, tuning)
        pass_builder.getModulePassManager().run(parsed, pass_builder)
        self.optimised_ir = str(parsed)
        self.engine = llvm.create_mcjit_compiler(parsed, _target_machine())
        self.engine.finalize_object()
        pointers = [ctypes.c_void_p] * (self.arity + 1)
        prototype = ctypes.CFUNCTYPE(None, *pointers, ctypes.c_int64)
        self.function = prototype(self.engine.get_function_address("f"))

    def __call__(self, *args: np.ndarray) -> np.ndarray:
        arrays = [np.ascontiguousarray(a, dtype=self.dtype) for a in args]
        out = np.empty_like(arrays[0])
        if self.vector_width is not None:
            assert out.size % self.vector_width == 0
        self.function(*[a.ctypes.data for a in arrays], out.ctypes.data, out.size)
        return out


def _target_machine():
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(cpu=llvm.get_host_cpu_name(),
                                        features=llvm.get_host_cpu_features().flatten(),
                                        opt=3, codemodel="jitdefault")


def _build_module(name: str, dtype: str, arity: int, vector_width: int | None) -> lir.Module:
    """The loop `for i < n: out[i] = F(x[i], ...)`; with vector_width, F gets
    <W x T> values and i steps by W (tests that emitters are generic over vectors)."""
    scalar = lir.FloatType() if dtype == "f32" else lir.DoubleType()
    value_type = scalar if vector_width is None else lir.VectorType(scalar, vector_width)
    step = 1 if vector_width is None else vector_width
    alignment = 4 if dtype == "f32" else 8  # NumPy guarantees element alignment only
    i64 = lir.IntType(64)
    pointer = lir.PointerType()
    module = lir.Module(name=f"test_{name}")
    signature = lir.FunctionType(lir.VoidType(), [pointer] * (arity + 1) + [i64])
    function = lir.Function(module, signature, "f")
    for argument in function.args[:-1]:
        argument.add_attribute("noalias")
    entry = function.append_basic_block("entry")
    loop = function.append_basic_block("loop")
    done = function.append_basic_block("done")
    builder = lir.IRBuilder(entry)
    count = function.args[-1]
    builder.cbranch(builder.icmp_signed(">", count, lir.Constant(i64, 0)), loop, done)
    builder.position_at_end(loop)
    index = builder.phi(i64)
    index.add_incoming(lir.Constant(i64, 0), entry)
    operands = []
    for argument in function.args[:arity]:
        address = builder.gep(argument, [index], source_etype=scalar)
        operands.append(builder.load(address, typ=value_type, align=alignment))
    result = MATH_FUNCTIONS[name](builder, *operands)
    builder.store(result, builder.gep(function.args[arity], [index], source_etype=scalar),
                  align=alignment)
    following = builder.add(index, lir.Constant(i64, step))
    index.add_incoming(following, loop)
    builder.cbranch(builder.icmp_signed("<", following, count), loop, done)
    builder.position_at_end(done)
    builder.ret_void()
    return module


@functools.lru_cache(maxsize=None)
def kernel(name: str, dtype: str, vector_width: int | None = None) -> Kernel:
    return Kernel(name, dtype, vector_width)


# --------------------------------------------------------------------------------------
# ulp errors against a higher-precision reference


def ulp_errors(got: np.ndarray, reference: np.ndarray, dtype) -> np.ndarray:
    """|got - reference| in ulp of `dtype` at the reference; inf counts as the value one
    ulp past the largest finite number.  NaN references give 0 (checked separately)."""
    info = np.finfo(dtype)
    wide = reference.dtype
    beyond = np.ldexp(wide.type(1), info.maxexp)  # 2^128 or 2^1024
    reference = np.clip(reference, -beyond, beyond)
    with np.errstate(invalid="ignore"):  # signalling NaNs from the bit sweep
        got = got.astype(wide)
    got = np.where(np.isinf(got), np.copysign(beyond, got), got)
    _, exponent = np.frexp(np.abs(reference))
    exponent = np.where(reference == 0, info.minexp + 1, exponent)
    exponent = np.clip(exponent, info.minexp + 1, info.maxexp)
    ulp = np.ldexp(wide.type(1), (exponent - 1 - info.nmant).astype(np.int32))
    errors = np.abs(got - reference) / ulp
    return np.where(np.isnan(reference), 0, errors).astype(np.float64)


def reference(name: str, dtype: str, *args: np.ndarray) -> np.ndarray:
    wide = REFERENCE_DTYPE[dtype]
    with np.errstate(all="ignore"):
        return NUMPY[name](*[a.astype(wide) for a in args])


def check_accuracy(name: str, dtype: str, *args: np.ndarray) -> float:
    """Assert NaN positions equal NumPy's and max ulp error within the documented
    bound; returns the max error."""
    got = kernel(name, dtype)(*args)
    with np.errstate(all="ignore"):
        expected = NUMPY[name](*args)
    nan_mismatch = np.isnan(got) != np.isnan(expected)
    assert not nan_mismatch.any(), (
        f"{name} {dtype}: NaN differs from NumPy at inputs {[a[nan_mismatch][:5] for a in args]}")
    errors = ulp_errors(got, reference(name, dtype, *args), DTYPES[dtype])
    worst = int(np.argmax(errors))
    bound = ULP_BOUNDS[dtype][name]
    assert errors[worst] <= bound, (
        f"{name} {dtype}: {errors[worst]:.2f} ulp > {bound} at {[a[worst] for a in args]}: "
        f"got {got[worst]!r}, reference {reference(name, dtype, *[a[worst:worst + 1] for a in args])}")
    return float(errors.max())


def assert_identical(got: np.ndarray, expected: np.ndarray, label: str) -> None:
    """Bitwise-level equality: same values, same NaN positions, same zero signs."""
    same = (got == expected) | (np.isnan(got) & np.isnan(expected))
    same &= (np.signbit(got) == np.signbit(expected)) | np.isnan(expected)
    assert same.all(), f"{label}: got {got[~same]} expected {expected[~same]}"


# --------------------------------------------------------------------------------------
# inputs


def bit_sweep(dtype: str, count: int) -> np.ndarray:
    """`count` bit patterns evenly spread over all 2^32 / 2^64 (both signs, every
    exponent, denormals, inf and NaN)."""
    if dtype == "f32":
        bits = np.arange(count, dtype=np.uint64) * np.uint64((1 << 32) // count)
        return (bits + np.uint64(12345)).astype(np.uint32).view(np.float32)
    bits = np.arange(count, dtype=np.uint64) * np.uint64((1 << 64) // count)
    return (bits + np.uint64(987654321)).view(np.float64)


def edges(dtype: str) -> np.ndarray:
    """Special values and thresholds: zeros, denormals, extremes, inf, NaN."""
    info = np.finfo(DTYPES[dtype])
    values = [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 1.0, -1.0, info.max, -info.max,
              info.smallest_normal, -info.smallest_normal, info.smallest_subnormal,
              -info.smallest_subnormal, info.smallest_normal / 3, info.eps, info.tiny * 7]
    return np.array(values, dtype=DTYPES[dtype])


def neighbours(values, dtype: str, spread: int = 3) -> np.ndarray:
    """Each value rounded to dtype and its `spread` neighbours on either side."""
    base = np.asarray(values, dtype=DTYPES[dtype])
    steps = [base]
    up = down = base
    for _ in range(spread):
        up = np.nextafter(up, DTYPES[dtype](np.inf))
        down = np.nextafter(down, DTYPES[dtype](-np.inf))
        steps += [up, down]
    return np.concatenate(steps)


def domain(name: str, dtype: str, count: int) -> np.ndarray:
    """Dense random samples where the function is interesting, plus thresholds."""
    rng = np.random.default_rng(zlib.crc32(f"{name} {dtype}".encode()))
    t = DTYPES[dtype]
    info = np.finfo(t)
    log_max = float(np.log(info.max))
    log_tiny = float(np.log(info.smallest_subnormal))
    small = rng.choice([-1, 1], count) * 2.0 ** rng.uniform(info.minexp - info.nmant, 2, count)
    if name == "exp":
        wide = rng.uniform(log_tiny - 2, log_max + 2, count)
        thresholds = neighbours([log_max, log_tiny, np.log(info.smallest_normal)], dtype, 50)
    elif name == "log":
        wide = 2.0 ** rng.uniform(info.minexp - info.nmant, info.maxexp, count)
        near_one = 1 + rng.uniform(-0.3, 0.42, count)
        thresholds = np.concatenate([near_one, neighbours([1.0, np.sqrt(0.5), np.sqrt(2.0)], dtype, 50)])
    elif name == "tanh":
        wide = rng.uniform(-25, 25, count)
        thresholds = neighbours([0.3, 0.55, 9.0, 9.01, 19.06, 0.5 * np.log(2.0)], dtype, 20)
    else:  # sin, cos: moderate x, huge x over every binade, near n*pi/2, path switch
        limit = 1e5
        huge = np.ldexp(rng.uniform(1, 2, count), rng.integers(10, info.maxexp, count))
        wide = np.concatenate([rng.uniform(-limit, limit, count), rng.choice([-1, 1], count) * huge])
        k = np.arange(1, int(limit / 1.6), max(1, int(limit / 1.6) // 20000)).astype(np.longdouble)
        multiples = (k * PI_LONG / 2).astype(t)  # near n*pi/2: hard reduction
        switch = [2.0 ** 14, 2.0 ** 30] + [2.0 ** e for e in range(14, info.maxexp, 16)]
        thresholds = np.concatenate([neighbours(multiples, dtype, 1), rng.uniform(-10, 10, count),
                                     neighbours(switch, dtype, 20)])
    return np.concatenate([wide, small, thresholds]).astype(t)


# --------------------------------------------------------------------------------------
# tests: unary functions

SWEEP_COUNT = {"f32": 4_000_000, "f64": 1_000_000}
DOMAIN_COUNT = {"f32": 500_000, "f64": 300_000}


@pytest.mark.parametrize("dtype", ["f32", "f64"])
@pytest.mark.parametrize("name", UNARY)
def test_unary_accuracy(name: str, dtype: str) -> None:
    x = np.concatenate([bit_sweep(dtype, SWEEP_COUNT[dtype]), edges(dtype),
                        domain(name, dtype, DOMAIN_COUNT[dtype])])
    worst = check_accuracy(name, dtype, x)
    print(f"\n{name} {dtype}: max error {worst:.3f} ulp over {x.size} inputs")


def _pi_by_gauss_legendre(digits: int) -> Decimal:
    """pi by the Gauss-Legendre AGM (not the Machin formula codegen uses)."""
    with localcontext() as ctx:
        ctx.prec = digits + 10
        a, b, t, p = Decimal(1), 1 / Decimal(2).sqrt(), Decimal(1) / 4, Decimal(1)
        for _ in range(int(np.log2(digits)) + 2):
            a, b, t, p = (a + b) / 2, (a * b).sqrt(), t - p * ((a - b) / 2) ** 2, 2 * p
        return (a + b) ** 2 / (4 * t)


def exact_sin_cos(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sin and cos of each float in long double, from an exact reduction in 420-digit
    decimal arithmetic: r = x - n*pi/2 and the quadrant n mod 4."""
    sines, cosines = [], []
    with localcontext() as ctx:
        ctx.prec = 420
        half_pi = _pi_by_gauss_legendre(420) / 2
        for value in x.astype(np.float64):
            exact = Decimal(float(value))
            n = (exact / half_pi).to_integral_value(rounding=ROUND_HALF_EVEN)
            r = exact - n * half_pi
            high = float(r)
            r_long = np.longdouble(high) + np.longdouble(float(r - Decimal(high)))
            s, c = np.sin(r_long), np.cos(r_long)
            quadrant = int(n) % 4
            sines.append([s, c, -s, -c][quadrant])
            cosines.append([c, -s, -c, s][quadrant])
    return np.array(sines, dtype=np.longdouble), np.array(cosines, dtype=np.longdouble)


# x closest to a multiple of pi/2 among all doubles (6381956970095103 * 2^797: the
# reduced argument is ~4.7e-19), a few neighbours of it, and powers of two
HARD_TRIG = {"f64": [6381956970095103 * 2.0 ** 797, 2.0 ** 1023, 2.0 ** 30, 2.0 ** 60],
             "f32": [2.0 ** 127, 2.0 ** 14, 2.0 ** 30, 3.4e38]}


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_sin_cos_of_huge_arguments_against_exact_reduction(dtype: str) -> None:
    """Huge |x| over every binade (and the hardest double) vs an exact reduction done
    here in decimal arithmetic (independent of the long double / float64 libm)."""
    t = DTYPES[dtype]
    info = np.finfo(t)
    rng = np.random.default_rng(11)
    magnitude = np.ldexp(rng.uniform(1, 2, 2000), rng.integers(14, info.maxexp, 2000))
    x = np.concatenate([rng.choice([-1, 1], 2000) * magnitude,
                        neighbours(HARD_TRIG[dtype], dtype, 2)]).astype(t)
    x = np.concatenate([x, -x])
    expected = dict(zip(("sin", "cos"), exact_sin_cos(x)))
    for name in ("sin", "cos"):
        errors = ulp_errors(kernel(name, dtype)(x), expected[name], t)
        worst = int(np.argmax(errors))
        assert errors[worst] <= ULP_BOUNDS[dtype][name], (
            f"{name} {dtype}: {errors[worst]:.2f} ulp at {x[worst]!r}")


@pytest.mark.parametrize("dtype", ["f32", "f64"])
@pytest.mark.parametrize("name", UNARY + ["sqrt"])
def test_special_values_match_numpy_exactly(name: str, dtype: str) -> None:
    t = DTYPES[dtype]
    x = np.concatenate([edges(dtype), np.array([-2.5, -1e30, 1e-30, 0.5, 2.0, 1e30], dtype=t)])
    if name == "exp":  # far past the thresholds: exactly inf / 0
        x = np.concatenate([x, np.array([1000.0, -1000.0, 200.0, -200.0, 1e-30, -1e-30], dtype=t)])
    if name == "tanh":  # exactly +-1 from 10 (f32) / 20 (f64) on, tiny x -> x
        x = np.concatenate([x, np.array([10.0, -25.0, 100.0, 1e-20, -1e-30], dtype=t)])
    got = kernel(name, dtype)(x)
    with np.errstate(all="ignore"):
        expected = NUMPY[name](x)
    special = ~np.isfinite(expected) | (expected == 0) | (np.abs(expected) == 1)
    special |= (np.abs(x) < 1e-20) & (name in ("sin", "tanh"))
    assert special.sum() >= 8
    assert_identical(got[special], expected[special], f"{name} {dtype} special values")


def test_denormal_results_of_exp_are_rounded_not_flushed() -> None:
    for dtype in ("f32", "f64"):
        info = np.finfo(DTYPES[dtype])
        x = np.log(np.array([info.smallest_normal / 2, info.smallest_subnormal * 3,
                             info.smallest_normal * 0.999], dtype=DTYPES[dtype]))
        got = kernel("exp", dtype)(x)
        assert (got > 0).all() and (got < info.smallest_normal).all()
        assert ulp_errors(got, reference("exp", dtype, x), DTYPES[dtype]).max() <= 1


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_tanh_small_arguments_have_small_relative_error(dtype: str) -> None:
    x = (2.0 ** -np.arange(1, 60, 0.25)).astype(DTYPES[dtype])
    x = np.concatenate([x, -x])
    got = kernel("tanh", dtype)(x)
    relative = np.abs(got.astype(np.longdouble) - np.tanh(x.astype(np.longdouble)))
    relative /= np.abs(np.tanh(x.astype(np.longdouble)))
    assert relative.max() <= 3 * np.finfo(DTYPES[dtype]).eps


# --------------------------------------------------------------------------------------
# tests: pow

POW_SPECIALS = [0.0, -0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, 3.0, -3.0, 1.5, -1.5, 0.25,
                np.inf, -np.inf, np.nan, 1e-40, -1e-40, 1e30, -1e30, 7.0, 3e38]


def pow_inputs(dtype: str, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Random |x| over many binades and y chosen so y*log|x| spans the whole range of
    exp; negative bases with integer exponents; small integer powers."""
    rng = np.random.default_rng(7 if dtype == "f32" else 8)
    t = DTYPES[dtype]
    info = np.finfo(t)
    magnitude = 2.0 ** rng.uniform(info.minexp - info.nmant, info.maxexp, count)
    target = rng.uniform(np.log(info.smallest_subnormal), np.log(info.max) + 1, count)
    x_wide = magnitude.astype(t)
    y_wide = (target / np.log(x_wide.astype(np.float64))).astype(t)
    x_near_one = (1 + rng.uniform(-0.5, 0.5, count)).astype(t)
    y_large = rng.uniform(-3000, 3000, count).astype(t)
    x_negative = -(2.0 ** rng.uniform(-20, 20, count)).astype(t)
    y_integer = rng.integers(-40, 41, count).astype(t)
    x_any = (rng.choice([-1, 1], count) * 2.0 ** rng.uniform(-30, 30, count)).astype(t)
    y_small = rng.choice([-2.0, -1.0, 0.5, 1.0, 2.0, 3.0, -0.5], count).astype(t)
    x = np.concatenate([x_wide, x_near_one, x_negative, x_any, x_negative])
    y = np.concatenate([y_wide, y_large, y_integer, y_small, rng.uniform(-5, 5, count).astype(t)])
    return x, y


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_pow_accuracy(dtype: str) -> None:
    x, y = pow_inputs(dtype, 150_000)
    worst = check_accuracy("pow", dtype, x, y)
    print(f"\npow {dtype}: max error {worst:.3f} ulp over {x.size} inputs")


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_pow_special_cases_match_numpy_exactly(dtype: str) -> None:
    t = DTYPES[dtype]
    values = np.array(POW_SPECIALS, dtype=t)
    x, y = (grid.ravel() for grid in np.meshgrid(values, values))
    got = kernel("pow", dtype)(x, y)
    with np.errstate(all="ignore"):
        expected = np.power(x, y)
    special = ~np.isfinite(expected) | (expected == 0) | (np.abs(expected) == 1)
    assert special.sum() > 200
    assert_identical(got[special], expected[special], f"pow {dtype} special cases")
    # the rest (e.g. 2**1.5, (-3)**3) is accurate, not necessarily exact
    errors = ulp_errors(got[~special], reference("pow", dtype, x[~special], y[~special]), t)
    assert errors.max() <= ULP_BOUNDS[dtype]["pow"]


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_pow_small_integer_powers_are_exact_like_numpy(dtype: str) -> None:
    """x**2, x**1, x**-1 are correctly rounded, as NumPy's scalar-exponent fast paths
    (x*x, x, 1/x) give them.  (NumPy's array-exponent float32 power calls powf,
    which is off by one ulp for some x**2.)"""
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.standard_normal(10_000), [0.0, -0.0, np.inf, -np.inf, np.nan]])
    x = x.astype(DTYPES[dtype])
    with np.errstate(all="ignore"):
        for exponent, plain in ((2.0, x * x), (1.0, x), (-1.0, 1 / x)):
            got = kernel("pow", dtype)(x, np.full_like(x, exponent))
            assert_identical(got, plain, f"pow x**{exponent}")
            assert_identical(got, np.power(x, exponent), f"pow x**{exponent} vs np.power")


# --------------------------------------------------------------------------------------
# tests: code shape and speed


def _vector_width(dtype: str) -> int:
    """Lanes of one native vector register: AVX-512 16 floats, AVX2 8 floats."""
    wide = "+avx512f" in llvm.get_host_cpu_features().flatten()
    lanes = 16 if wide else 8
    return lanes if dtype == "f32" else lanes // 2


@pytest.mark.parametrize("dtype", ["f32", "f64"])
@pytest.mark.parametrize("name", UNARY + ["pow", "sqrt"])
def test_loop_vectorises_to_full_width_and_calls_no_library(name: str, dtype: str) -> None:
    text = kernel(name, dtype).optimised_ir
    expected = f"<{_vector_width(dtype)} x {'float' if dtype == 'f32' else 'double'}>"
    assert expected in text, f"{name} {dtype} not vectorised"
    declared = [line for line in text.splitlines() if line.startswith("declare")]
    allowed = ("@llvm.fma.", "@llvm.floor.", "@llvm.fabs.", "@llvm.minnum.", "@llvm.maxnum.",
               "@llvm.sqrt.", "@llvm.copysign.", "@llvm.masked.", "@llvm.vector.",
               # integer min/max/saturation: single vector instructions, no library
               "@llvm.usub.sat.", "@llvm.umax.", "@llvm.umin.", "@llvm.smax.", "@llvm.smin.")
    foreign = [line for line in declared if not any(a in line for a in allowed)]
    assert not foreign, f"{name} {dtype} calls {foreign}"


@pytest.mark.parametrize("dtype", ["f32", "f64"])
@pytest.mark.parametrize("name", UNARY + ["pow"])
def test_vector_typed_operands_give_the_same_bits(name: str, dtype: str) -> None:
    x = np.concatenate([edges(dtype), domain(name if name != "pow" else "log", dtype, 1000)])
    x = x[: x.size // 8 * 8]
    operands = (x, x[::-1].copy()) if name == "pow" else (x,)
    scalar = kernel(name, dtype)(*operands)
    vector = kernel(name, dtype, vector_width=8)(*operands)
    assert_identical(vector, scalar, f"{name} {dtype} on <8 x T>")


def _ns_per_element(functions, arrays, repeats: int = 9) -> list[float]:
    """Median ns/element of each function, calls interleaved so that load from other
    processes hits all of them alike."""
    times = [[] for _ in functions]
    for _ in range(repeats):
        for slot, function in enumerate(functions):
            start = time.perf_counter()
            function(*arrays)
            times[slot].append(time.perf_counter() - start)
    return [float(np.median(t)) / arrays[0].size * 1e9 for t in times]


def test_speed_against_numpy_printed() -> None:
    """Prints ns/element of the compiled loops and of NumPy (not asserted: shared CPU)."""
    rng = np.random.default_rng(0)
    lines = []
    for dtype in ("f32", "f64"):
        x = rng.uniform(0.1, 10, 1 << 18).astype(DTYPES[dtype])
        y = rng.uniform(-3, 3, x.size).astype(DTYPES[dtype])
        for name in UNARY + ["pow", "sqrt"]:
            arrays = (x, y) if name == "pow" else (x,)
            ours, theirs = _ns_per_element([kernel(name, dtype), NUMPY[name]], arrays)
            lines.append(f"{name:5s} {dtype}: {ours:6.3f} ns/element, NumPy {theirs:6.3f} "
                         f"({theirs / ours:4.1f}x)")
    print("\n" + "\n".join(lines))


def test_non_float_operands_are_a_clear_type_error() -> None:
    builder = lir.IRBuilder(lir.Function(lir.Module(), lir.FunctionType(
        lir.VoidType(), [lir.IntType(32)]), "g").append_basic_block())
    with pytest.raises(TypeError, match="expected float/double"):
        MATH_FUNCTIONS["exp"](builder, builder.function.args[0])
