"""Argument signatures: `pc.ShapeDtype`, and the LeafSpec (shape, dtype, weak) of each
argument leaf that traces are keyed on.

A leaf may be a NumPy array or scalar of a supported dtype, a Python number (bool:
a bool; int: a weak int32; float: a weak float32), a `ShapeDtype` (tracing and
lowering only), or a Tensor of an enclosing trace. Anything else is a TypeError
naming the leaf's path (`args[0]['W']`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ir import DType, TensorType

from .errors import TraceTypeError
from .promotion import SUPPORTED, python_scalar_type
from .tensor import Tensor


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


def _describe(leaf: Any) -> str:
    if isinstance(leaf, (np.ndarray, np.generic)):
        return f"{leaf.dtype.name} array"
    return type(leaf).__name__


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
        try:  # byte order is a storage detail: '>f4' is float32, converted when run
            return LeafSpec(np.shape(leaf), DType.from_numpy(leaf.dtype.newbyteorder("=")))
        except TypeError:
            raise TraceTypeError("argument", f"{path}: unsupported dtype {leaf.dtype}; "
                                 f"expected one of {SUPPORTED}") from None
    raise TraceTypeError("argument", f"{path}: expected an array ({SUPPORTED}) or a Python "
                         f"number, got {_describe(leaf)}")


def runtime_array(leaf: Any, spec: LeafSpec, path: str) -> np.ndarray:
    """The contiguous array passed to a graph input for a concrete argument leaf."""
    if isinstance(leaf, ShapeDtype):
        raise TraceTypeError("argument", f"{path}: a ShapeDtype stands for an argument only "
                             "when tracing or lowering; pass an array to run the function")
    if python_scalar_type(leaf) is not None:
        if spec.dtype.is_int and not np.iinfo(np.int32).min <= leaf <= np.iinfo(np.int32).max:
            raise TraceTypeError("argument", f"{path}: Python int {leaf} does not fit in int32",
                                 hint="pass an int64 array")
        return np.asarray(leaf, dtype=spec.dtype.numpy)
    # C-contiguous and aligned: the native code reads raw pointers (views, Fortran
    # order and unaligned buffers are copied).
    return np.require(leaf, dtype=spec.dtype.numpy, requirements=("C_CONTIGUOUS", "ALIGNED"))
