"""Rank-aware batches (propc/distributed/sharding.py): the shards of any rank count
are exactly the rows one process would use, in the same order."""
from __future__ import annotations

import numpy as np
import pytest

from propc.distributed.sharding import Shards


def rows(n: int = 100) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(n * 2, dtype=np.float32).reshape(n, 2), np.arange(n, dtype=np.int32)


@pytest.mark.parametrize("ranks", [1, 2, 4])
def test_the_shards_of_a_step_concatenate_to_the_global_batch(ranks):
    whole = Shards(rows(), 16, seed=5)
    for step in (0, 3, 6, 7, 13):  # 6 steps per epoch: crosses epochs
        parts = [Shards(rows(), 16, rank, ranks, seed=5).batch(step) for rank in range(ranks)]
        np.testing.assert_array_equal(np.concatenate([x for x, _ in parts]), whole.batch(step)[0])
        np.testing.assert_array_equal(np.concatenate([y for _, y in parts]), whole.batch(step)[1])


def test_an_epoch_visits_distinct_rows_and_epochs_differ():
    shards = Shards(rows(), 16, seed=5)
    epoch0 = np.concatenate([shards.global_indices(s) for s in range(6)])
    epoch1 = np.concatenate([shards.global_indices(s) for s in range(6, 12)])
    assert len(set(epoch0.tolist())) == 96 and len(set(epoch1.tolist())) == 96
    assert not np.array_equal(epoch0, epoch1)
    assert shards.steps_per_epoch == 6 and shards.local_batch == 16


@pytest.mark.parametrize("batch,ranks,message", [
    (10, 4, "does not split evenly over 4 ranks"),
    (2, 4, "does not split evenly over 4 ranks"),
    (128, 1, "larger than the 100 rows"),
])
def test_bad_global_batches_are_rejected(batch, ranks, message):
    with pytest.raises(ValueError, match=message):
        Shards(rows(), batch, 0, ranks)
