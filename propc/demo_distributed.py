"""`mpiexec -n N propc demo --data-parallel`: the demo's MLP trained on N ranks.

Each rank trains on its shard of every global batch (`--batch` examples per rank,
so the global batch is N * --batch) with `propc.distributed.data_parallel`; rank 0
prints the demo's sections plus, per epoch, the time and bytes spent in Allreduce,
and ends with `test accuracy: 0.xxx`. Checkpoints go to `--checkpoint DIR` (every
`--checkpoint-every` steps, at the end, and after the current step when mpiexec
gets SIGUSR1); a run started with an existing DIR resumes from its newest valid
checkpoint, on any number of ranks.
"""
from __future__ import annotations

import argparse
import os
import time
from typing import Any, Callable

import numpy as np

from .demo_common import accuracy, report_accuracy
from .demo_mlp import DEFAULT_LR, describe_step, initial_state, loss_fn, predict
from .usage import UsageError


def make_update(optimizer: str, lr: float) -> Callable:
    """The optimizer half of the demo's train step: update(params, grads, state)."""
    import propc as pc

    def update(params, grads, state):
        if optimizer == "sgd":
            return pc.optim.sgd(params, grads, lr), state
        if optimizer == "momentum":
            return pc.optim.momentum(params, grads, state, lr, 0.9)
        return pc.optim.adam(params, grads, state, lr)

    update.__name__ = f"update_{optimizer}"
    return update


def yield_when_oversubscribed() -> None:
    """Called before MPI starts: with more ranks on this host than cores (as the
    launcher tells: Hydra's MPI_LOCALNRANKS, Open MPI's OMPI_COMM_WORLD_LOCAL_SIZE),
    let MPICH's waiting ranks yield their core instead of spinning on it, unless the
    user set it (measured here, 4 ranks on 2 cores: 0.89 s instead of 1.29 s for
    100 steps of 2-4 ms of work and an Allreduce)."""
    from codegen.threads.host import available_cores
    launcher = os.environ.get("MPI_LOCALNRANKS") or os.environ.get("OMPI_COMM_WORLD_LOCAL_SIZE")
    if launcher and launcher.isdigit() and int(launcher) > available_cores():
        os.environ.setdefault("MPIR_CVAR_ENABLE_HEAVY_YIELD", "1")


def one_thread_per_core(ranks_here: int) -> None:
    """Called before anything compiles: unless the user chose PROPC_NUM_THREADS,
    give each rank on this host an equal share of its cores (1 when oversubscribed),
    so N ranks do not start N * cores compute threads."""
    if "PROPC_NUM_THREADS" not in os.environ:
        from codegen.threads.host import available_cores
        os.environ["PROPC_NUM_THREADS"] = str(max(1, available_cores() // ranks_here))


def _mib(n: float) -> str:
    return f"{n / (1 << 20):.2f} MiB"


def run_data_parallel(options: argparse.Namespace, out: Callable[[str], None] = print) -> float:
    """The demo on every rank of MPI.COMM_WORLD; returns the test accuracy."""
    from . import distributed as dist
    if options.checkpoint_every < 1:
        raise UsageError("--checkpoint-every must be positive")
    yield_when_oversubscribed()
    try:
        comm = dist.world()
    except dist.MPIUnavailable as err:
        raise UsageError(f"--data-parallel: {err}") from None
    with dist.fail_fast(comm):
        one_thread_per_core(dist.ranks_on_this_host(comm))
        if comm.Get_rank() != 0:
            out = _silent
        return _train(options, comm, out)


def _silent(_: str) -> None:
    pass


def _train(options: argparse.Namespace, comm: Any, out: Callable[[str], None]) -> float:
    import propc as pc
    from . import distributed as dist
    epochs = 3 if options.quick else options.epochs
    lr = DEFAULT_LR[options.optimizer] if options.lr is None else options.lr
    ranks = comm.Get_size()
    shards, (x_test, y_test) = dist.shard_digits(options.batch * ranks, comm, options.seed)
    x_train, y_train = shards.arrays
    sizes = [x_train.shape[1], *options.hidden, 10]
    params = pc.nn.init_mlp(sizes, seed=options.seed)
    state = initial_state(options.optimizer, params)
    dp = dist.data_parallel(loss_fn, make_update(options.optimizer, lr), comm,
                            check_every=shards.steps_per_epoch)
    params, state, first_step = _resume(dp, params, state, options, out)
    out(f"propc demo --data-parallel: {ranks} ranks x {shards.local_batch} examples = global "
        f"batch {shards.global_batch}; {len(x_train)} training and {len(x_test)} test images, "
        f"{os.environ.get('PROPC_NUM_THREADS', '?')} compute thread(s) per rank\n")
    _describe(dp, params, state, shards, x_test, out)
    out("== 2. training ==")
    infer = pc.compile(predict)
    params, state = _epochs(dp, params, state, shards, first_step, epochs, options,
                            lambda p: accuracy(infer(p, x_train), y_train), out)
    test_acc = report_accuracy(infer, params, (x_train, y_train), (x_test, y_test), out)
    out("== 4. compiled vs interpreted (rank 0's gradient step, same inputs) ==")
    xb, yb = shards.batch(0)
    out(str(pc.compare(dp.grad.fn, params, xb, yb)) + "\n")
    out("== 5. speed (last epoch, mean per step on rank 0) ==")
    _speed(dp.stats, out)
    out(f"test accuracy: {test_acc:.3f}")
    return test_acc


def _speed(stats, out) -> None:
    steps = max(stats.steps, 1)
    compute, reduce = stats.compute_seconds / steps, stats.allreduce_seconds / steps
    out(f"  compute (backward + update)   {compute * 1e3:8.3f} ms")
    out(f"  allreduce (and waiting)       {reduce * 1e3:8.3f} ms   "
        f"{stats.bytes / steps / 1024:,.1f} KiB per step")
    out(f"  step                          {(compute + reduce) * 1e3:8.3f} ms   "
        f"{1 / max(compute + reduce, 1e-12):10,.0f} steps/s\n")


def _resume(dp, params, state, options, out) -> tuple[Any, Any, int]:
    """Rank 0's initial values everywhere, or the newest valid checkpoint's."""
    from . import distributed as dist
    params, state = dp.start(params, state)
    if not options.checkpoint:
        return params, state, 0
    found = dist.restore_checkpoint(options.checkpoint, dp.comm)
    if found is None:
        return params, state, 0
    out(f"resuming from {found.path} (step {found.step}, written by {found.ranks} rank(s))")
    params, state = dp.start(found.params, found.state)
    return params, state, found.step


def _describe(dp, params, state, shards, x_test, out) -> None:
    """Section 1: the compiled gradient half (forward + backward) and the update."""
    import propc as pc
    xb, yb = shards.batch(0)
    started = time.perf_counter()
    lowered = dp.grad.lower(params, xb, yb)
    lowered.executable
    buffers = dp.grad(params, xb, yb)
    dp.apply.lower(params, state, buffers).executable
    seconds = time.perf_counter() - started
    lowered_infer = pc.compile(predict).lower(params, x_test[:len(xb)])
    sizes = [params[0][0].shape[0]] + [w.shape[1] for w, _ in params]
    out("== 1. the compiled step (per rank) ==")
    for line in describe_step(lowered, lowered_infer, sizes, len(xb)):
        out(line)
    out(f"  gradients + loss in {len(buffers)} flat buffer(s) of "
        f"{_mib(sum(b.nbytes for b in buffers))}: one Allreduce each between the backward "
        f"pass and the compiled optimizer update")
    out(f"  trace + autodiff + optimise + LLVM compile: {seconds:.2f} s\n")


def _epochs(dp, params, state, shards, first_step, epochs, options, train_accuracy,
            out) -> tuple[Any, Any]:
    """Train from `first_step` to the end of epoch `epochs`: one line per epoch."""
    from . import distributed as dist
    per_epoch = shards.steps_per_epoch
    requests = dist.SaveRequests().install() if options.checkpoint else None
    for epoch in range(first_step // per_epoch + 1, epochs + 1):
        start, stop = max(first_step, (epoch - 1) * per_epoch), epoch * per_epoch
        dp.stats.reset()
        losses = []
        started = time.perf_counter()
        for step, batch in shards.batches(start, stop):
            params, state, loss = dp.step(params, state, *batch)
            losses.append(float(loss))
            asked = requests is not None and requests.take()
            if options.checkpoint and (asked or (step + 1) % options.checkpoint_every == 0):
                dist.save_checkpoint(options.checkpoint, step + 1, params, state, dp.comm)
        elapsed = time.perf_counter() - started
        s = dp.stats
        out(f"epoch {epoch:3d}  loss {np.mean(losses):.4f}  train accuracy "
            f"{train_accuracy(params):.3f}  {s.steps / elapsed:,.0f} steps/s  "
            f"allreduce+wait {s.allreduce_seconds * 1e3:.1f} ms ({s.allreduce_seconds / elapsed:.0%} "
            f"of the epoch), {_mib(s.bytes)} in {s.allreduce_calls} calls")
    if options.checkpoint:
        dist.save_checkpoint(options.checkpoint, epochs * per_epoch, params, state, dp.comm)
    return params, state
