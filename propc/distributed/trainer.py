"""`data_parallel`: one compiled train step on every rank, gradients averaged by MPI.

Why two functions (a loss and an update) rather than one compiled train step: a
step compiled whole is one native call from the forward pass to the optimizer
update, with no point in between where a collective could run. Split at the only
place that needs the other ranks, each half is still one native call:

    1. grad (compiled): forward + backward pass on this rank's shard, writing the
       gradients and the loss into one flat buffer per float dtype (flat.py);
    2. Allreduce(SUM) of each buffer, in buckets of at most `bucket_bytes`;
    3. update (compiled): gradients read back from the buffers and divided by the
       rank count, then `update(params, grads, state)` (an optimizer from
       propc.optim), the same on every rank, so parameters stay identical.

The loss travels in the same buffer, so the returned loss is the global batch's
mean for free. `check_every=k` hashes parameters and state every k steps
(consistency.check_identical) and raises on every rank if any differs.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..compile import compile as compile_native
from ..pytree import tree_flatten
from ..transforms import value_and_grad
from . import consistency, flat
from .mpi import mpi_module, world

DEFAULT_BUCKET_BYTES = 16 << 20


@dataclass
class CommStats:
    """What the steps so far cost: compute (both native calls) and allreduce time,
    bytes reduced per rank, steps and Allreduce calls."""

    steps: int = 0
    allreduce_calls: int = 0
    bytes: int = 0
    compute_seconds: float = 0.0
    allreduce_seconds: float = 0.0

    def reset(self) -> None:
        self.__init__()


class DataParallel:
    """A data-parallel train step; build it with `data_parallel`."""

    def __init__(self, loss_fn: Callable, update: Callable, comm: Any = None,
                 bucket_bytes: int = DEFAULT_BUCKET_BYTES, check_every: int = 0):
        if bucket_bytes < 8:
            raise ValueError(f"data_parallel: bucket_bytes must be at least 8, got {bucket_bytes}")
        if check_every < 0:
            raise ValueError(f"data_parallel: check_every must be >= 0, got {check_every}")
        self.comm = world(comm)
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.loss_fn, self.update = loss_fn, update
        self.bucket_bytes, self.check_every = bucket_bytes, check_every
        self.stats = CommStats()
        self._layout: flat.FlatLayout | None = None
        self.grad = compile_native(self._grad_program())
        self.apply = compile_native(self._update_program())

    # -- the two traced halves ------------------------------------------------------

    def _grad_program(self) -> Callable:
        def grad_step(params, *batch):
            loss, grads = value_and_grad(self.loss_fn)(params, *batch)
            return flat.pack(self._layout, loss, grads)

        grad_step.__name__ = f"{getattr(self.loss_fn, '__name__', 'loss')}_grad_flat"
        return grad_step

    def _update_program(self) -> Callable:
        def update_step(params, state, buffers):
            grads = flat.unpack(self._layout, buffers, params, self.size)
            return self.update(params, grads, state)

        update_step.__name__ = f"{getattr(self.update, '__name__', 'update')}_from_flat"
        return update_step

    # -- running --------------------------------------------------------------------

    def start(self, params: Any, state: Any) -> tuple[Any, Any]:
        """Check that every rank has the same structure and shapes, then give every
        rank rank 0's parameters and optimizer state (collective). The parameters'
        structure and shapes are fixed from here on (they define the flat buffers)."""
        params = consistency.broadcast_params(params, self.comm)
        self._layout = flat.layout_for(params)
        if tree_flatten(state)[0]:
            consistency.check_same_structure(state, self.comm, "state")
            state = consistency.broadcast_params(state, self.comm)
        return params, state

    def step(self, params: Any, state: Any, *batch: Any) -> tuple[Any, Any, np.ndarray]:
        """One step on this rank's shard `batch`: (params, state, global mean loss)."""
        if self._layout is None:
            self._layout = flat.layout_for(params)
        started = time.perf_counter()
        buffers = self.grad(params, *batch)
        computed = time.perf_counter()
        self._allreduce(buffers)
        reduced = time.perf_counter()
        params, state = self.apply(params, state, buffers)
        done = time.perf_counter()
        self.stats.steps += 1
        self.stats.compute_seconds += (computed - started) + (done - reduced)
        self.stats.allreduce_seconds += reduced - computed
        if self.check_every and self.stats.steps % self.check_every == 0:
            self.check(params, state)
        return params, state, flat.loss_of(self._layout, buffers) / self.size

    def _allreduce(self, buffers: tuple[np.ndarray, ...]) -> None:
        """In-place SUM of every buffer over the ranks, bucket by bucket."""
        MPI = mpi_module()
        for buffer in buffers:
            for start, stop in flat.buckets(buffer.size, buffer.itemsize, self.bucket_bytes):
                self.comm.Allreduce(MPI.IN_PLACE, buffer[start:stop], op=MPI.SUM)
                self.stats.allreduce_calls += 1
            self.stats.bytes += buffer.nbytes

    def check(self, params: Any, state: Any) -> None:
        """Raise DistributedError on every rank unless params and state are
        bit-identical on all ranks (collective)."""
        consistency.check_identical((params, state), self.comm, "params and state",
                                    self.stats.steps)


def data_parallel(loss_fn: Callable, update: Callable, comm: Any = None, *,
                  bucket_bytes: int = DEFAULT_BUCKET_BYTES, check_every: int = 0) -> DataParallel:
    """A data-parallel train step over the ranks of `comm` (MPI.COMM_WORLD if None).

    `loss_fn(params, *batch)` returns a float scalar loss, the mean over this rank's
    shard; `update(params, grads, state)` returns `(params, state)` (for example
    `lambda p, g, s: pc.optim.momentum(p, g, s, 0.05, 0.9)`). Both are traced and
    compiled. Use it as

        dp = data_parallel(loss_fn, update)
        params, state = dp.start(params, state)          # rank 0's values everywhere
        params, state, loss = dp.step(params, state, x_shard, y_shard)

    Every rank's shard must be the same size: the global batch is the sum of the
    shards and the averaged gradient is the gradient of the global batch's mean loss.
    """
    return DataParallel(loss_fn, update, comm, bucket_bytes, check_every)
