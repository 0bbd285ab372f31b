"""How IR dtypes look in LLVM: register types, memory types, constants, loads/stores.

Bools live in registers as `i1` and in memory as one byte holding 0 or 1, exactly
like NumPy's bool arrays; `load_element`/`store_element` convert between the two.
"""
from __future__ import annotations

import llvmlite.ir as lir
import numpy as np

from ir.types import DType

from .bounds import check_access

PTR = lir.PointerType()
I1 = lir.IntType(1)
I8 = lir.IntType(8)
I32 = lir.IntType(32)
I64 = lir.IntType(64)
F32 = lir.FloatType()
F64 = lir.DoubleType()

_REGISTER = {DType.f32: F32, DType.f64: F64, DType.i32: I32, DType.i64: I64, DType.bool: I1}
_MEMORY = {DType.f32: F32, DType.f64: F64, DType.i32: I32, DType.i64: I64, DType.bool: I8}


def register_type(dtype: DType) -> lir.Type:
    """The LLVM type a value of `dtype` has while being computed on."""
    return _REGISTER[dtype]


def memory_type(dtype: DType) -> lir.Type:
    """The LLVM type one element of `dtype` has in a buffer."""
    return _MEMORY[dtype]


def index(value: int) -> lir.Constant:
    """An i64 constant (all loop counters and offsets are i64)."""
    return lir.Constant(I64, int(value))


def scalar_constant(value, dtype: DType) -> lir.Constant:
    """A register constant of `dtype` holding the Python/NumPy scalar `value`."""
    if dtype is DType.bool:
        return lir.Constant(I1, int(bool(value)))
    if dtype.is_int:
        bits = 32 if dtype is DType.i32 else 64
        wrapped = int(np.asarray(value).astype(dtype.numpy))
        return lir.Constant(lir.IntType(bits), wrapped & ((1 << bits) - 1))
    # float(np.float32(x)) is exact, so the f32 constant rounds to the same value.
    return lir.Constant(register_type(dtype), float(np.asarray(value).astype(dtype.numpy)))


def lowest(dtype: DType):
    """The identity of max: -inf, the smallest integer, or False."""
    if dtype.is_float:
        return -np.inf
    if dtype is DType.bool:
        return False
    return int(np.iinfo(dtype.numpy).min)


def highest(dtype: DType):
    """The identity of min: +inf, the largest integer, or True."""
    if dtype.is_float:
        return np.inf
    if dtype is DType.bool:
        return True
    return int(np.iinfo(dtype.numpy).max)


def element_pointer(builder: lir.IRBuilder, base: lir.Value, offset: lir.Value,
                    dtype: DType) -> lir.Value:
    """Address of element `offset` (an i64) of a buffer of `dtype`."""
    return builder.gep(base, [offset], inbounds=True, source_etype=memory_type(dtype))


def load_element(builder: lir.IRBuilder, base: lir.Value, offset: lir.Value,
                 dtype: DType) -> lir.Value:
    """Load element `offset` of a buffer as a register value (bool bytes → i1)."""
    check_access(builder, base, offset, "load")  # debug mode only (codegen/emit/bounds.py)
    address = element_pointer(builder, base, offset, dtype)
    loaded = builder.load(address, typ=memory_type(dtype), align=dtype.itemsize)
    if dtype is DType.bool:
        return builder.icmp_unsigned("!=", loaded, lir.Constant(I8, 0))
    return loaded


def store_element(builder: lir.IRBuilder, base: lir.Value, offset: lir.Value,
                  dtype: DType, value: lir.Value) -> None:
    """Store a register value into element `offset` of a buffer (i1 → 0/1 byte)."""
    check_access(builder, base, offset, "store")  # debug mode only (codegen/emit/bounds.py)
    address = element_pointer(builder, base, offset, dtype)
    if dtype is DType.bool:
        value = builder.zext(value, I8)
    builder.store(value, address, align=dtype.itemsize)
