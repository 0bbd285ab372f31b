"""One flat buffer per dtype for the gradients (and the loss) of a train step.

The compiled backward pass writes every gradient leaf into one contiguous buffer
per float dtype, with the loss as the last element of its dtype's buffer, so a
step needs one Allreduce per buffer (per bucket of a large buffer) instead of one
per leaf; the compiled update reads the averaged gradients back out of it. Packing
and unpacking are traced into the two compiled functions (a concatenate and
slices), so no Python loop copies leaves between them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..numpy_api import astype
from ..pytree import tree_flatten, tree_paths, tree_unflatten
from ..shape_ops import concatenate, reshape
from .mpi import DistributedError

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@dataclass(frozen=True)
class Slot:
    """Where one leaf lives: which buffer, from which element, its shape."""

    buffer: int
    offset: int
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))


@dataclass(frozen=True)
class FlatLayout:
    """The buffers (one per dtype present, float32 first) and every leaf's slot;
    `loss_slot` is the loss's element at the end of its dtype's buffer."""

    dtypes: tuple[np.dtype, ...]
    sizes: tuple[int, ...]
    slots: tuple[Slot, ...]
    loss_slot: Slot

    @property
    def nbytes(self) -> int:
        return sum(size * dtype.itemsize for size, dtype in zip(self.sizes, self.dtypes))


def layout_for(params: Any) -> FlatLayout:
    """The flat layout of gradients shaped like `params` (float leaves only). The
    loss goes at the end of the first buffer (float32 when there is one)."""
    leaves, _ = tree_flatten(params)
    paths = tree_paths(params, "params")
    dtypes = [np.asarray(leaf).dtype for leaf in leaves]
    for path, dtype in zip(paths, dtypes):
        if dtype not in FLOAT_DTYPES:
            raise DistributedError(f"data_parallel: {path} is {dtype}: only float32/float64 "
                                   "parameters are trained and averaged")
    order = [dtype for dtype in FLOAT_DTYPES if dtype in dtypes]
    if not order:
        raise DistributedError("data_parallel: params have no leaves to train")
    used = [0] * len(order)
    slots = []
    for leaf, dtype in zip(leaves, dtypes):
        buffer = order.index(dtype)
        shape = tuple(np.shape(leaf))
        slot = Slot(buffer, used[buffer], shape)
        used[buffer] += slot.size
        slots.append(slot)
    loss_slot = Slot(0, used[0], ())
    used[0] += 1
    return FlatLayout(tuple(order), tuple(used), tuple(slots), loss_slot)


def pack(layout: FlatLayout, loss: Any, grads: Any) -> tuple:
    """Inside a trace: the gradient leaves and the loss as the layout's flat buffers."""
    leaves, _ = tree_flatten(grads)
    parts: list[list] = [[] for _ in layout.dtypes]
    for leaf, slot in zip(leaves, layout.slots):
        parts[slot.buffer].append(reshape(leaf, (slot.size,)))
    loss = astype(loss, layout.dtypes[layout.loss_slot.buffer])
    parts[layout.loss_slot.buffer].append(reshape(loss, (1,)))
    return tuple(concatenate(group) if len(group) > 1 else group[0] for group in parts)


def unpack(layout: FlatLayout, buffers: Sequence[Any], treedef_of: Any, ranks: int) -> Any:
    """Inside a trace: the gradients (structure of `treedef_of`) read out of the
    flat buffers, each divided by `ranks` (the sum over ranks becomes a mean)."""
    _, treedef = tree_flatten(treedef_of)
    leaves = []
    for slot in layout.slots:
        flat = buffers[slot.buffer][slot.offset:slot.offset + slot.size]
        leaves.append(reshape(flat, slot.shape) / ranks)
    return tree_unflatten(treedef, leaves)


def loss_of(layout: FlatLayout, buffers: Sequence[np.ndarray]) -> np.ndarray:
    """The loss element of the (reduced) buffers."""
    return buffers[layout.loss_slot.buffer][layout.loss_slot.offset]


def buckets(size: int, itemsize: int, bucket_bytes: int) -> list[tuple[int, int]]:
    """[start, stop) element ranges of at most `bucket_bytes` covering range(size)."""
    per_bucket = max(1, bucket_bytes // itemsize)
    return [(start, min(start + per_bucket, size)) for start in range(0, size, per_bucket)]
