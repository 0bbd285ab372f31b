"""Data-parallel training over MPI, checked against one process on the whole batch.

Each test launches `mpiexec` itself (mpi_launch.py) with a timeout, so a hang fails
instead of blocking the suite. One launch per rank count trains all three
optimizers; the reference is the demo's single compiled train step (forward,
backward and update in one function, no flat buffers, no MPI) on the global batch.

Tolerance: N ranks average N shard-mean gradients where one process takes one mean
over the whole batch; the two differ by float32 reduction order (a few ulps per
gradient element). Through 20 steps at these learning rates that stays far below
ATOL + RTOL*|p| (measured here: at most 1.2e-7), while a wrong average (a sum
not divided by N, a shard missing) moves parameters by ~1e-2.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import mpi_worker as setup
from mpi_launch import launch, requires_mpi

pytestmark = requires_mpi

RTOL = 1e-5
ATOL = 1e-6
RANK_COUNTS = (1, 2, 4)


def reference(optimizer: str, steps: int = setup.STEPS) -> dict[str, np.ndarray]:
    """One process, one compiled train step on each whole global batch."""
    import propc as pc
    from propc.demo_mlp import make_step
    params, state = setup.initial(optimizer)
    step = pc.compile(make_step(optimizer, setup.LR[optimizer]))
    batches = setup.shards()
    for index in range(steps):
        params, state, _ = step(params, state, *batches.batch(index))
    return setup.flat_params(params)


@pytest.fixture(scope="module")
def references() -> dict[str, dict[str, np.ndarray]]:
    return {optimizer: reference(optimizer) for optimizer in setup.OPTIMIZERS}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[int, dict[str, np.ndarray]]:
    """Final parameters of every optimizer after 20 steps, per rank count."""
    results = {}
    for ranks in RANK_COUNTS:
        out = tmp_path_factory.mktemp("train") / f"n{ranks}.npz"
        done = launch(ranks, "train", "--out", str(out))
        assert done.returncode == 0, f"mpiexec -n {ranks} failed:\n{done.stderr}"
        with np.load(out) as saved:
            results[ranks] = dict(saved)
    return results


def assert_same_params(got: dict[str, np.ndarray], want: dict[str, np.ndarray], what: str):
    assert sorted(got) == sorted(want), what
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=RTOL, atol=ATOL,
                                   err_msg=f"{what}: {key}")


@pytest.mark.parametrize("optimizer", setup.OPTIMIZERS)
@pytest.mark.parametrize("ranks", RANK_COUNTS)
def test_ranks_on_shards_match_one_process_on_the_whole_batch(trained, references, ranks,
                                                               optimizer):
    got = {key.split("/", 1)[1]: value for key, value in trained[ranks].items()
           if key.startswith(optimizer + "/")}
    # one flat buffer of 64*16 + 16 + 16*10 + 10 weights and the loss, float32: one
    # Allreduce a step, or 5 in buckets of 1 KiB (256 floats) for momentum
    assert int(trained[ranks][f"{optimizer}:allreduce_calls"]) == setup.STEPS * (
        5 if optimizer == "momentum" else 1)
    want = references[optimizer]
    assert_same_params(got, want, f"{optimizer}, {ranks} ranks vs 1 process")
    # the comparison is not vacuous: training moved the parameters far more than ATOL
    initial = setup.flat_params(setup.initial(optimizer)[0])
    assert max(np.max(np.abs(want[k] - initial[k])) for k in want) > 1000 * ATOL


def test_a_failing_rank_stops_every_rank_and_a_restart_on_other_ranks_continues(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    failed = launch(2, "restart", "--dir", str(checkpoints), "--optimizer", "adam",
                    "--every", "5", "--fail-rank", "1", "--fail-at", "12",
                    "--out", str(tmp_path / "never.npz"))
    assert failed.returncode != 0
    assert "rank 1 of 2 failed: RuntimeError: injected failure before step 13" in failed.stderr
    assert "finished" not in failed.stdout, "a rank went on after its peer failed"
    assert not (tmp_path / "never.npz").exists()
    assert sorted(p.name for p in checkpoints.iterdir()) == ["ckpt-00000005.npz",
                                                             "ckpt-00000010.npz"]

    out = tmp_path / "resumed.npz"
    resumed = launch(4, "restart", "--dir", str(checkpoints), "--optimizer", "adam",
                     "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr
    with np.load(out) as saved:
        assert int(saved["first_step"]) == 10
        got = {key: saved[key] for key in saved.files if key != "first_step"}
    assert_same_params(got, reference("adam"), "restarted at step 10 on 4 ranks vs "
                                                "uninterrupted on 1 process")


@pytest.mark.parametrize("mode,messages", [
    # rank 1's model is 64-17-10: start() compares structure and shapes, names the rank
    ("mismatch", ["params structure, shapes or dtypes differ across ranks",
                  "rank 1: [(*, *), (*, *)] with params[0][0]: float32[64, 17]"]),
    # rank 1 nudges one weight after start(): the hash check after step 1 catches it
    ("diverge", ["params and state values after step 1 differ across ranks", "rank 1: hash"]),
])
def test_ranks_that_disagree_are_stopped_with_the_rank_named(mode, messages):
    done = launch(2, mode)
    assert done.returncode != 0
    for message in messages + ["of 2 failed: DistributedError"]:
        assert message in done.stderr
    assert "finished" not in done.stdout


def test_demo_trains_on_four_oversubscribed_ranks(tmp_path):
    done = launch(4, "propc", "demo", "--data-parallel", "--quick", "--batch", "8",
                  "--checkpoint", str(tmp_path), threads=None)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    threads = max(1, len(os.sched_getaffinity(0)) // 4)
    assert "4 ranks x 8 examples = global batch 32" in lines[0]
    assert f"{threads} compute thread(s) per rank" in lines[0]
    epochs = [line for line in lines if line.startswith("epoch")]
    assert len(epochs) == 3 and all("allreduce+wait" in line and "MiB in" in line
                                    for line in epochs)
    accuracy = float(lines[-1].removeprefix("test accuracy: "))
    assert accuracy > 0.7
    assert lines.count(lines[-1]) == 1, "only rank 0 prints"
    # every 50 steps and at the end (3 epochs of 1438 // 32 steps), the newest two kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-00000100.npz",
                                                          "ckpt-00000132.npz"]
