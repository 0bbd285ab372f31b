"""Element types and tensor types: every IR value has a static shape and a dtype."""
from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np


class DType(enum.Enum):
    """The five element types propc supports. The value is the short IR name."""

    f32 = "f32"
    f64 = "f64"
    i32 = "i32"
    i64 = "i64"
    bool = "bool"

    @property
    def numpy(self) -> np.dtype:
        return _TO_NUMPY[self]

    @property
    def itemsize(self) -> int:
        return self.numpy.itemsize

    @property
    def is_float(self) -> bool:
        return self in (DType.f32, DType.f64)

    @property
    def is_int(self) -> bool:
        return self in (DType.i32, DType.i64)

    @property
    def is_bool(self) -> bool:
        return self is DType.bool

    @property
    def is_numeric(self) -> bool:
        return self is not DType.bool

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"DType.{self.value}"

    @staticmethod
    def from_numpy(dtype) -> "DType":
        """Map a NumPy dtype (or anything np.dtype accepts) to a DType.

        Raises TypeError for dtypes propc does not support (float16, uint8, complex...).
        """
        try:
            key = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"not a dtype: {dtype!r}") from None
        found = _FROM_NUMPY.get(key)
        if found is None:
            raise TypeError(
                f"unsupported dtype {key}; propc supports float32, float64, int32, int64, bool"
            )
        return found

    @staticmethod
    def from_name(name: str) -> "DType":
        """Map an IR name ('f32') to a DType; raises ValueError if unknown."""
        for d in DType:
            if d.value == name:
                return d
        raise ValueError(f"unknown dtype name {name!r}")


_TO_NUMPY = {
    DType.f32: np.dtype(np.float32),
    DType.f64: np.dtype(np.float64),
    DType.i32: np.dtype(np.int32),
    DType.i64: np.dtype(np.int64),
    DType.bool: np.dtype(np.bool_),
}
_FROM_NUMPY = {v: k for k, v in _TO_NUMPY.items()}


@dataclass(frozen=True)
class TensorType:
    """A static shape and an element type, printed like `f32[32,10]` (0-d: `f32[]`)."""

    shape: tuple[int, ...]
    dtype: DType

    def __post_init__(self):
        if not isinstance(self.dtype, DType):
            raise TypeError(f"TensorType dtype must be a DType, got {self.dtype!r}")
        shape = tuple(self.shape)
        for dim in shape:
            if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool) or dim < 0:
                raise ValueError(f"bad dimension {dim!r} in shape {shape}")
        object.__setattr__(self, "shape", tuple(int(d) for d in shape))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    def with_shape(self, shape) -> "TensorType":
        return TensorType(tuple(shape), self.dtype)

    def with_dtype(self, dtype: DType) -> "TensorType":
        return TensorType(self.shape, dtype)

    def __str__(self) -> str:
        return f"{self.dtype.value}[{','.join(str(d) for d in self.shape)}]"

    __repr__ = __str__


f32 = DType.f32
f64 = DType.f64
i32 = DType.i32
i64 = DType.i64
bool_ = DType.bool
