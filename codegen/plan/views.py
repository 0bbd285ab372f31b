"""View primitives as index maps: given how a kernel indexes a view's result, say how
it indexes the operand. Nothing is copied; these cost no instructions of their own.

Every function takes the op and the result's `Access` (one `Affine` per result axis)
and returns the operand's `Access`, or None when the map is not affine (a reshape
that merges axes): then the operand has to be read as a flat buffer.
"""
from __future__ import annotations

from typing import Callable

from ir.graph import Op

from ..registry import Registry
from .affine import Access, Affine

ViewFn = Callable[[Op, Access, int], "Access | None"]
VIEWS: Registry = Registry("view")
# Decorator: register the index map of view primitive `name`
view = VIEWS.register


@view("broadcast_in_dim")
def broadcast_access(op: Op, access: Access, rank: int) -> Access:
    """Operand axis i follows result axis dims[i], or stays at 0 where it stretches."""
    operand_shape = op.operands[0].shape
    result_shape = op.result.shape
    out = []
    for axis, target in enumerate(op.attrs["dims"]):
        if operand_shape[axis] == result_shape[target] and operand_shape[axis] != 1:
            out.append(access[target])
        else:
            out.append(Affine.constant(0, rank))
    return tuple(out)


@view("transpose")
def transpose_access(op: Op, access: Access, rank: int) -> Access:
    """Result axis i is operand axis perm[i]."""
    perm = op.attrs["perm"]
    out: list[Affine] = [Affine.constant(0, rank)] * len(perm)
    for result_axis, operand_axis in enumerate(perm):
        out[operand_axis] = access[result_axis]
    return tuple(out)


@view("slice")
def slice_access(op: Op, access: Access, rank: int) -> Access:
    """Operand index = start + stride * result index, per axis."""
    starts, strides = op.attrs["start"], op.attrs["stride"]
    return tuple(index.scale(stride).shift(start)
                 for index, start, stride in zip(access, starts, strides))


@view("rev")
def rev_access(op: Op, access: Access, rank: int) -> Access:
    """Operand index = size - 1 - result index on the reversed axes."""
    shape, dims = op.operands[0].shape, op.attrs["dims"]
    return tuple(index.scale(-1).shift(shape[axis] - 1) if axis in dims else index
                 for axis, index in enumerate(access))


@view("reshape")
def reshape_access(op: Op, access: Access, rank: int) -> "Access | None":
    """Affine when every operand axis is a run of whole result axes (a split).

    Size-1 axes carry no index and are skipped on both sides. A reshape that merges
    axes returns None (reading it needs the operand's flat buffer).
    """
    operand_shape = op.operands[0].shape
    result_shape = op.result.shape
    if 0 in operand_shape:
        return tuple(Affine.constant(0, rank) for _ in operand_shape)
    result_axes = [k for k, size in enumerate(result_shape) if size != 1]
    out = []
    position = 0
    for size in operand_shape:
        if size == 1:
            out.append(Affine.constant(0, rank))
            continue
        run = []
        product = 1
        while product < size and position < len(result_axes):
            run.append(result_axes[position])
            product *= result_shape[result_axes[position]]
            position += 1
        if product != size:
            return None
        out.append(_run_index(run, result_shape, access, rank))
    return tuple(out)


def _run_index(run: list[int], shape, access: Access, rank: int) -> Affine:
    """Row-major combination of the result axes in `run` into one operand index."""
    total = Affine.constant(0, rank)
    step = 1
    for axis in reversed(run):
        total = total + access[axis].scale(step)
        step *= shape[axis]
    return total


@view("stop_gradient")
def identity_access(op: Op, access: Access, rank: int) -> Access:
    """stop_gradient is the identity for the backend."""
    return access
