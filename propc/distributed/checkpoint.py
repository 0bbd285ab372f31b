"""Checkpoints: parameters and optimizer state in a NumPy `.npz`, written atomically.

Rank 0 writes `ckpt-<step>.npz` in a directory: into a temporary file in the same
directory, flushed and fsynced, then renamed over the final name (rename is atomic
on POSIX), so a crash mid-write never leaves a half-written checkpoint under a real
name. The newest `keep` checkpoints (at least 2) are kept, so when the newest one
turns out damaged the one before it is still there. Every leaf carries a SHA-256
in the file's metadata; loading checks the zip, the metadata and every checksum,
and a damaged file is rejected with a `CheckpointError` naming the file and what is
wrong. The pytree structure is stored as JSON (`allow_pickle=False` throughout).

A checkpoint does not depend on the number of ranks: parameters and state are the
same on every rank, and the data order depends on the global step only
(sharding.py), so a restart may use any number of ranks.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..pytree import DICT, LEAF, LIST, NONE, TUPLE, TreeDef, tree_flatten, tree_unflatten
from .mpi import world

FORMAT = "propc-checkpoint-1"
NAME = re.compile(r"^ckpt-(\d{8})\.npz$")
META_KEY = "__meta__"


class CheckpointError(ValueError):
    """A checkpoint file is missing, damaged or not a propc checkpoint."""


@dataclass
class Checkpoint:
    """What a checkpoint holds: the step it was taken after, params, state, the
    rank count that wrote it (information only) and the caller's JSON `extra`."""

    step: int
    params: Any
    state: Any
    ranks: int = 1
    extra: dict = field(default_factory=dict)
    path: str = ""


def checkpoint_path(directory: str | os.PathLike, step: int) -> Path:
    return Path(directory) / f"ckpt-{step:08d}.npz"


# -- the tree structure as JSON ------------------------------------------------------------


def _encode_tree(treedef: TreeDef) -> Any:
    if treedef.kind in (LEAF, NONE):
        return treedef.kind
    children = [_encode_tree(child) for child in treedef.children]
    if treedef.kind == DICT:
        if not all(isinstance(key, str) for key in treedef.meta):
            raise TypeError(f"checkpoint: dict keys must be strings, got {list(treedef.meta)!r}")
        return {"dict": dict(zip(treedef.meta, children))}
    if treedef.kind == LIST:
        return {"list": children}
    return {"tuple": children}  # namedtuples are saved as plain tuples


def _decode_tree(data: Any) -> TreeDef:
    if data in (LEAF, NONE):
        return TreeDef(data)
    (kind, children), = data.items()
    if kind == "dict":
        keys = tuple(sorted(children))
        return TreeDef(DICT, keys, tuple(_decode_tree(children[k]) for k in keys))
    if kind not in ("list", "tuple"):
        raise ValueError(f"unknown tree node {kind!r}")
    return TreeDef(LIST if kind == "list" else TUPLE, None,
                   tuple(_decode_tree(child) for child in children))


def _digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


# -- writing ----------------------------------------------------------------------------------


def write_checkpoint(directory: str | os.PathLike, step: int, params: Any, state: Any,
                     ranks: int = 1, extra: dict | None = None, keep: int = 2) -> Path:
    """Write `ckpt-<step>.npz` atomically and keep the newest `keep` (>= 2) files.
    Call it on one process (rank 0); `save_checkpoint` does that for a job."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    leaves, treedef = tree_flatten((params, state))
    arrays = {f"leaf_{i:05d}": np.asarray(leaf) for i, leaf in enumerate(leaves)}
    meta = {"format": FORMAT, "step": int(step), "ranks": int(ranks), "extra": extra or {},
            "tree": _encode_tree(treedef),
            "leaves": [{"dtype": str(a.dtype), "shape": list(a.shape), "sha256": _digest(a)}
                       for a in arrays.values()]}
    arrays[META_KEY] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    final = checkpoint_path(directory, step)
    handle, temporary = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, **arrays)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, final)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(directory)
    _prune(directory, max(2, keep))
    return final


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (where the platform can open a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def list_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """The checkpoint files of `directory`, oldest step first."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(path for path in directory.iterdir() if NAME.match(path.name))


def _prune(directory: Path, keep: int) -> None:
    for path in list_checkpoints(directory)[:-keep]:
        path.unlink(missing_ok=True)


# -- reading ----------------------------------------------------------------------------------


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read and verify one checkpoint file; CheckpointError if it is damaged."""
    path = Path(path)
    try:
        data = path.read_bytes()
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            meta = json.loads(bytes(archive[META_KEY]).decode())
            if meta.get("format") != FORMAT:
                raise ValueError(f"format {meta.get('format')!r}, expected {FORMAT!r}")
            leaves = [_verified_leaf(archive, i, info) for i, info in enumerate(meta["leaves"])]
        params, state = tree_unflatten(_decode_tree(meta["tree"]), leaves)
    except CheckpointError:
        raise
    except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile,
            json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"checkpoint {path} is damaged or unreadable: "
                              f"{type(err).__name__}: {err}") from None
    return Checkpoint(int(meta["step"]), params, state, int(meta["ranks"]),
                      dict(meta["extra"]), str(path))


def _verified_leaf(archive: Any, index: int, info: dict) -> np.ndarray:
    array = archive[f"leaf_{index:05d}"]
    if str(array.dtype) != info["dtype"] or list(array.shape) != info["shape"]:
        raise ValueError(f"leaf {index} is {array.dtype}{list(array.shape)}, the metadata "
                         f"says {info['dtype']}{info['shape']}")
    if _digest(array) != info["sha256"]:
        raise ValueError(f"leaf {index} ({info['dtype']}{info['shape']}) fails its SHA-256 check")
    return array


def latest_checkpoint(directory: str | os.PathLike) -> Checkpoint | None:
    """The newest checkpoint of `directory` that verifies, or None if there is none.
    A damaged newer file is skipped with a warning naming it (and left in place)."""
    for path in reversed(list_checkpoints(directory)):
        try:
            return load_checkpoint(path)
        except CheckpointError as err:
            warnings.warn(f"{err}; trying the previous checkpoint", RuntimeWarning, stacklevel=2)
    return None


# -- for a job of several ranks ------------------------------------------------------------


def save_checkpoint(directory: str | os.PathLike, step: int, params: Any, state: Any,
                    comm: Any = None, extra: dict | None = None, keep: int = 2) -> Path | None:
    """Rank 0 writes the checkpoint (write_checkpoint); the other ranks do nothing
    and get None. Parameters and state are identical on all ranks, so one copy is
    the whole job's. Not collective."""
    comm = world(comm)
    if comm.Get_rank() != 0:
        return None
    return write_checkpoint(directory, step, params, state, comm.Get_size(), extra, keep)


def restore_checkpoint(directory: str | os.PathLike, comm: Any = None) -> Checkpoint | None:
    """The newest valid checkpoint of `directory`, read by rank 0 and sent to every
    rank (collective), or None on every rank when there is none."""
    comm = world(comm)
    found: Any = None
    if comm.Get_rank() == 0:
        try:
            found = latest_checkpoint(directory)
        except OSError as err:  # every rank raises, none waits in the bcast
            found = CheckpointError(f"cannot read checkpoints in {directory}: {err}")
    found = comm.bcast(found, root=0)
    if isinstance(found, CheckpointError):
        raise found
    return found


class SaveRequests:
    """Checkpoints on request: after `install()`, a signal (SIGUSR1 by default;
    `kill -USR1 <mpiexec's pid>`, which Hydra forwards to every rank) marks a save as
    wanted, and `take()` says once whether one was asked for since the last call.
    The handler only sets a flag, so the save happens between steps, never inside
    one. Install it from the main thread (Python's rule for signal handlers)."""

    def __init__(self) -> None:
        self._wanted = False

    def install(self, signum: int | None = None) -> "SaveRequests":
        import signal
        signal.signal(signal.SIGUSR1 if signum is None else signum, self._ask)
        return self

    def _ask(self, signum: int, frame: Any) -> None:
        self._wanted = True

    def take(self) -> bool:
        wanted, self._wanted = self._wanted, False
        return wanted
