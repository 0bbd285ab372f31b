"""Keeping ranks identical: a structure check, broadcast_params, a hash check.

Data-parallel training is only correct while every rank holds the same parameters
and optimizer state. `check_same_structure` compares the pytree structure, shapes
and dtypes of every rank before the first step (a mismatch would otherwise surface
as a garbled Allreduce); `broadcast_params` copies rank 0's values to all;
`check_identical` hashes the values on each rank and compares the hashes with one
small Allreduce (MAX of [h, -h] gives the largest and the smallest hash at once).
"""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from ..pytree import tree_flatten, tree_paths, tree_unflatten
from .mpi import DistributedError, mpi_module, world

# hashes are cut to 62 bits so that -h never overflows an int64
_HASH_MASK = (1 << 62) - 1


def describe(tree: Any, name: str = "params") -> str:
    """The structure, shapes and dtypes of a pytree as one line of text."""
    leaves, treedef = tree_flatten(tree)
    paths = tree_paths(tree, name)
    shapes = [f"{path}: {np.asarray(leaf).dtype}{list(np.shape(leaf))}"
              for path, leaf in zip(paths, leaves)]
    return f"{treedef} with " + ", ".join(shapes)


def _hash_text(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(),
                          "little") & _HASH_MASK


def hash_values(tree: Any) -> int:
    """A 62-bit hash of every leaf's dtype, shape and bytes, in leaf order."""
    digest = hashlib.blake2b(digest_size=8)
    for leaf in tree_flatten(tree)[0]:
        array = np.ascontiguousarray(leaf)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return int.from_bytes(digest.digest(), "little") & _HASH_MASK


def _hashes_agree(value: int, comm: Any) -> bool:
    """Whether `value` is the same on every rank: one Allreduce(MAX) of [h, -h]."""
    MPI = mpi_module()
    local = np.array([value, -value], dtype=np.int64)
    reduced = np.empty_like(local)
    comm.Allreduce(local, reduced, op=MPI.MAX)
    return int(reduced[0]) == -int(reduced[1])


def _disagreement(items: list[str], what: str) -> str:
    """Which ranks differ from rank 0 (from an allgather of `what` per rank)."""
    lines = [f"  rank {rank}: {item}" for rank, item in enumerate(items) if item != items[0]]
    return (f"{what} differ across ranks; rank 0 has\n  rank 0: {items[0]}\n"
            + "\n".join(lines))


def check_same_structure(tree: Any, comm: Any = None, name: str = "params") -> None:
    """Raise DistributedError on every rank unless all ranks' `tree`s have the same
    structure, shapes and dtypes (collective: every rank must call it)."""
    comm = world(comm)
    text = describe(tree, name)
    if _hashes_agree(_hash_text(text), comm):
        return
    items = comm.allgather(text)
    raise DistributedError(_disagreement(items, f"{name} structure, shapes or dtypes"))


def broadcast_params(tree: Any, comm: Any = None, root: int = 0) -> Any:
    """`tree` with every leaf replaced by rank `root`'s values (fresh arrays).

    The structure is checked first (check_same_structure); the values travel as
    one flat buffer per dtype in one Bcast each, not one call per leaf."""
    comm = world(comm)
    check_same_structure(tree, comm)
    leaves, treedef = tree_flatten(tree)
    arrays = [np.ascontiguousarray(leaf) for leaf in leaves]
    out: list[Any] = [None] * len(arrays)
    for dtype in sorted({a.dtype for a in arrays}, key=str):
        members = [i for i, a in enumerate(arrays) if a.dtype == dtype]
        flat = np.concatenate([arrays[i].reshape(-1) for i in members])
        comm.Bcast(flat, root=root)
        offset = 0
        for i in members:
            size = arrays[i].size
            out[i] = flat[offset:offset + size].reshape(arrays[i].shape).copy()
            offset += size
    return tree_unflatten(treedef, out)


def check_identical(tree: Any, comm: Any = None, name: str = "params", step: int | None = None) -> None:
    """Raise DistributedError on every rank unless `tree`'s values are bit-identical
    on all ranks (one Allreduce of a hash; an allgather names the ranks on failure)."""
    comm = world(comm)
    value = hash_values(tree)
    if _hashes_agree(value, comm):
        return
    items = [f"hash {h:016x}" for h in comm.allgather(value)]
    when = f" after step {step}" if step is not None else ""
    raise DistributedError(_disagreement(items, f"{name} values{when}"))
