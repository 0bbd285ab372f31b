"""Rank-aware batches: every rank's slice of the same global batch.

The order of the examples is a function of the seed and the global step only, not
of the number of ranks: step s uses global batch s of a seeded permutation per
epoch, and rank r of N takes its r-th contiguous 1/N of it. So N ranks together see
exactly the examples one process would see at batch size N * local batch, and a run
restarted from a checkpoint at step s on any number of ranks continues with the
same examples it would have had (what makes restarts reproducible).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np

from ..datasets import load_digits, train_test_split
from .mpi import world


@dataclass(frozen=True)
class Shards:
    """Global batches of `global_batch` rows of `arrays` (same length each), cut
    into `size` equal shards; this rank gets shard `rank`."""

    arrays: tuple[np.ndarray, ...]
    global_batch: int
    rank: int = 0
    size: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        rows = {len(array) for array in self.arrays}
        if len(rows) != 1:
            raise ValueError(f"Shards: arrays have different lengths {sorted(rows)}")
        if self.global_batch < self.size or self.global_batch % self.size:
            raise ValueError(f"Shards: global batch {self.global_batch} does not split "
                             f"evenly over {self.size} ranks; use a multiple of {self.size}")
        if self.global_batch > self.rows:
            raise ValueError(f"Shards: global batch {self.global_batch} is larger than the "
                             f"{self.rows} rows of the data")

    @property
    def rows(self) -> int:
        return len(self.arrays[0])

    @property
    def local_batch(self) -> int:
        return self.global_batch // self.size

    @property
    def steps_per_epoch(self) -> int:
        return self.rows // self.global_batch

    def global_indices(self, step: int) -> np.ndarray:
        """The rows of global batch `step` (0-based; epochs follow each other)."""
        epoch, position = divmod(step, self.steps_per_epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(self.rows)
        return order[position * self.global_batch:(position + 1) * self.global_batch]

    def local_indices(self, step: int) -> np.ndarray:
        """This rank's rows of global batch `step`."""
        start = self.rank * self.local_batch
        return self.global_indices(step)[start:start + self.local_batch]

    def batch(self, step: int) -> tuple[np.ndarray, ...]:
        """This rank's shard of global batch `step`, one array per data array."""
        rows = self.local_indices(step)
        return tuple(array[rows] for array in self.arrays)

    def batches(self, start: int, stop: int) -> Iterator[tuple[int, tuple[np.ndarray, ...]]]:
        """(step, shard) for steps start..stop-1."""
        for step in range(start, stop):
            yield step, self.batch(step)


def shard(arrays: Sequence[np.ndarray], global_batch: int, comm=None, seed: int = 0) -> Shards:
    """`Shards` of `arrays` for this rank of `comm` (MPI.COMM_WORLD when None)."""
    comm = world(comm)
    return Shards(tuple(arrays), global_batch, comm.Get_rank(), comm.Get_size(), seed)


def shard_digits(global_batch: int, comm=None, seed: int = 0, test_fraction: float = 0.2):
    """The bundled digits' training split as this rank's `Shards`, and the test
    split (x_test, y_test), the same on every rank."""
    x, y = load_digits()
    x_train, y_train, x_test, y_test = train_test_split(x, y, test_fraction, seed)
    return shard((x_train, y_train), global_batch, comm, seed), (x_test, y_test)
