"""What the MPI tests run on every rank: `mpiexec -n N python mpi_worker.py MODE ...`.

Modes:
  train    20 steps of data_parallel for sgd, momentum and adam (momentum's buffer
           in buckets of 1 KiB: 5 Allreduce calls a step); rank 0 writes the final
           parameters of each to --out (.npz, keys "<optimizer>/<leaf>").
  restart  resume from the newest checkpoint in --dir (or start fresh), train to
           --steps with a checkpoint every --every steps; with --fail-rank R and
           --fail-at S, rank R raises once S steps are done; rank 0 writes --out.
  mismatch rank 1 builds a model of another width: start() must reject it.
  diverge  rank 1 nudges one weight after start(): the hash check must catch it.
The setup (model, data, learning rates) is shared with the tests, which compute the
single-process reference from it; mpi4py is imported only by the modes.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

import propc as pc
from propc.datasets import load_digits
from propc.demo_mlp import initial_state, loss_fn
from propc.demo_distributed import make_update
from propc.distributed.sharding import Shards

SIZES = [64, 16, 10]
GLOBAL_BATCH = 16
STEPS = 20
SEED = 3
ROWS = 320
LR = {"sgd": 0.1, "momentum": 0.05, "adam": 0.003}
OPTIMIZERS = ("sgd", "momentum", "adam")


def data() -> tuple[np.ndarray, np.ndarray]:
    x, y = load_digits()
    return x[:ROWS], y[:ROWS]


def shards(rank: int = 0, size: int = 1) -> Shards:
    return Shards(data(), GLOBAL_BATCH, rank, size, SEED)


def initial(optimizer: str, hidden: int = SIZES[1]):
    params = pc.nn.init_mlp([SIZES[0], hidden, SIZES[2]], seed=SEED)
    return params, initial_state(optimizer, params)


def flat_params(params) -> dict[str, np.ndarray]:
    return {f"{layer}/{name}": array for layer, pair in enumerate(params)
            for name, array in zip("Wb", pair)}


def _train(comm, optimizer: str, first: int, stop: int, params, state, every: int = 0,
           directory: str | None = None, fail: tuple[int, int] | None = None,
           bucket_bytes: int = 16 << 20):
    from propc import distributed as dist
    dp = dist.data_parallel(loss_fn, make_update(optimizer, LR[optimizer]), comm, check_every=5,
                            bucket_bytes=bucket_bytes)
    params, state = dp.start(params, state)
    mine = shards(comm.Get_rank(), comm.Get_size())
    for step, batch in mine.batches(first, stop):
        if fail is not None and fail == (comm.Get_rank(), step):
            raise RuntimeError(f"injected failure before step {step + 1}")
        params, state, _ = dp.step(params, state, *batch)
        if directory and every and (step + 1) % every == 0:
            dist.save_checkpoint(directory, step + 1, params, state, comm)
    return params, state, dp.stats


def run_train(comm, out: str) -> None:
    results = {}
    for optimizer in OPTIMIZERS:
        bucket_bytes = 1024 if optimizer == "momentum" else 16 << 20
        params, _, stats = _train(comm, optimizer, 0, STEPS, *initial(optimizer),
                                  bucket_bytes=bucket_bytes)
        results.update({f"{optimizer}/{k}": v for k, v in flat_params(params).items()})
        results[f"{optimizer}:allreduce_calls"] = np.array(stats.allreduce_calls)
    if comm.Get_rank() == 0:
        np.savez(out, **results)


def run_restart(comm, options) -> None:
    from propc import distributed as dist
    params, state = initial(options.optimizer)
    first = 0
    found = dist.restore_checkpoint(options.dir, comm)
    if found is not None:
        params, state, first = found.params, found.state, found.step
    fail = (options.fail_rank, options.fail_at) if options.fail_rank is not None else None
    params, _, _ = _train(comm, options.optimizer, first, options.steps, params, state,
                          options.every, options.dir, fail)
    if comm.Get_rank() == 0:
        np.savez(options.out, first_step=first, **flat_params(params))
    print(f"rank {comm.Get_rank()} finished", flush=True)


def run_mismatch(comm) -> None:
    hidden = SIZES[1] + (1 if comm.Get_rank() == 1 else 0)
    _train(comm, "sgd", 0, 1, *initial("sgd", hidden))
    print(f"rank {comm.Get_rank()} finished", flush=True)


def run_diverge(comm) -> None:
    from propc import distributed as dist
    dp = dist.data_parallel(loss_fn, make_update("sgd", LR["sgd"]), comm, check_every=1)
    params, state = dp.start(*initial("sgd"))
    if comm.Get_rank() == 1:
        params[0][0][0, 0] += 1e-6
    dp.step(params, state, *shards(comm.Get_rank(), comm.Get_size()).batch(0))
    print(f"rank {comm.Get_rank()} finished", flush=True)


def main(argv: list[str]) -> int:
    from propc import distributed as dist
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["train", "restart", "mismatch", "diverge"])
    p.add_argument("--out")
    p.add_argument("--dir")
    p.add_argument("--optimizer", default="adam", choices=OPTIMIZERS)
    p.add_argument("--steps", type=int, default=STEPS)
    p.add_argument("--every", type=int, default=5)
    p.add_argument("--fail-rank", type=int)
    p.add_argument("--fail-at", type=int)
    options = p.parse_args(argv)
    with dist.fail_fast() as comm:
        if options.mode == "train":
            run_train(comm, options.out)
        elif options.mode == "restart":
            run_restart(comm, options)
        elif options.mode == "mismatch":
            run_mismatch(comm)
        else:
            run_diverge(comm)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
