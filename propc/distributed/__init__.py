"""propc.distributed: data-parallel training over MPI (the optional `propc[mpi]` extra).

    from propc import distributed as dist
    dp = dist.data_parallel(loss_fn, update)            # MPI.COMM_WORLD
    with dist.fail_fast(dp.comm):                       # one rank fails: all stop
        params, state = dp.start(params, state)         # rank 0's values everywhere
        shards = dist.shard((x, y), global_batch, dp.comm, seed)
        for step, (xb, yb) in shards.batches(0, steps):
            params, state, loss = dp.step(params, state, xb, yb)
            if (step + 1) % 100 == 0:
                dist.save_checkpoint(directory, step + 1, params, state, dp.comm)

Run it as `mpiexec -n 4 python train.py`. mpi4py is imported only when a
communicator is needed, so this package (and propc) import without it.
"""
from .checkpoint import (Checkpoint, CheckpointError, SaveRequests, latest_checkpoint,
                         list_checkpoints, load_checkpoint, restore_checkpoint, save_checkpoint,
                         write_checkpoint)
from .consistency import broadcast_params, check_identical, check_same_structure
from .mpi import (DistributedError, MPIUnavailable, fail_fast, failure_message, mpi_module,
                  ranks_on_this_host, world)
from .sharding import Shards, shard, shard_digits
from .trainer import CommStats, DataParallel, data_parallel

__all__ = [
    "Checkpoint", "CheckpointError", "CommStats", "DataParallel", "DistributedError",
    "MPIUnavailable", "SaveRequests", "Shards", "broadcast_params", "check_identical", "check_same_structure",
    "data_parallel", "fail_fast", "failure_message", "latest_checkpoint", "list_checkpoints",
    "load_checkpoint", "mpi_module", "ranks_on_this_host", "restore_checkpoint",
    "save_checkpoint", "shard", "shard_digits", "world", "write_checkpoint",
]
