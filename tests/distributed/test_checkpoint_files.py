"""Checkpoints (propc/distributed/checkpoint.py): round trip, atomic writes, damage.

No MPI needed: the writing and reading functions are plain file I/O.
"""
from __future__ import annotations

import os
import zipfile

import numpy as np
import pytest

from propc.distributed import checkpoint as ck


def sample(step: int):
    rng = np.random.default_rng(step)
    params = [(rng.standard_normal((3, 2)).astype(np.float32), np.zeros(2, np.float32))]
    state = {"m": [(np.ones((3, 2), np.float32), np.ones(2, np.float32))],
             "step": np.int32(step), "v": [(np.full((3, 2), 2.0), np.zeros(2))]}
    return params, state


def test_round_trip_keeps_structure_values_and_dtypes(tmp_path):
    params, state = sample(7)
    path = ck.write_checkpoint(tmp_path, 7, params, state, ranks=4, extra={"seed": 3})
    loaded = ck.load_checkpoint(path)
    assert (loaded.step, loaded.ranks, loaded.extra) == (7, 4, {"seed": 3})
    assert isinstance(loaded.params, list) and isinstance(loaded.params[0], tuple)
    np.testing.assert_array_equal(loaded.params[0][0], params[0][0])
    assert loaded.state["step"].dtype == np.int32 and int(loaded.state["step"]) == 7
    assert loaded.state["v"][0][0].dtype == np.float64
    np.testing.assert_array_equal(loaded.state["v"][0][0], state["v"][0][0])


def test_only_the_newest_two_are_kept_and_no_temporary_file_is_left(tmp_path):
    for step in (5, 10, 15):
        ck.write_checkpoint(tmp_path, step, *sample(step))
    assert sorted(os.listdir(tmp_path)) == ["ckpt-00000010.npz", "ckpt-00000015.npz"]
    assert ck.latest_checkpoint(tmp_path).step == 15


def _flip_a_byte_in_leaf(path, leaf: str = "leaf_00000.npy") -> None:
    """Damage the stored bytes of one array, as a bad disk would (not the zip index)."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(leaf)
    data = bytearray(path.read_bytes())
    header = info.header_offset  # local header: 30 bytes, the name, an extra field
    name_length, extra_length = (int.from_bytes(data[header + at:header + at + 2], "little")
                                 for at in (26, 28))
    last_data_byte = header + 30 + name_length + extra_length + info.compress_size - 1
    data[last_data_byte] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flipped byte", "truncated", "not a zip"])
def test_a_damaged_checkpoint_is_rejected_and_the_previous_one_is_used(tmp_path, damage):
    ck.write_checkpoint(tmp_path, 10, *sample(10))
    newest = ck.write_checkpoint(tmp_path, 20, *sample(20))
    if damage == "flipped byte":
        _flip_a_byte_in_leaf(newest)
    elif damage == "truncated":
        newest.write_bytes(newest.read_bytes()[:300])
    else:
        newest.write_bytes(b"this is not a checkpoint")
    with pytest.raises(ck.CheckpointError, match=r"ckpt-00000020\.npz is damaged"):
        ck.load_checkpoint(newest)
    with pytest.warns(RuntimeWarning, match="trying the previous checkpoint"):
        found = ck.latest_checkpoint(tmp_path)
    assert found.step == 10
    np.testing.assert_array_equal(found.params[0][0], sample(10)[0][0][0])
    assert newest.exists(), "the damaged file is left for inspection"


def test_a_write_that_fails_midway_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    ck.write_checkpoint(tmp_path, 10, *sample(10))

    def failing_savez(stream, **arrays):
        stream.write(b"PK partial")
        raise OSError("disk full")

    monkeypatch.setattr(ck.np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        ck.write_checkpoint(tmp_path, 20, *sample(20))
    assert os.listdir(tmp_path) == ["ckpt-00000010.npz"]
    assert ck.latest_checkpoint(tmp_path).step == 10


def test_a_signal_asks_for_one_save():
    import signal
    previous = signal.getsignal(signal.SIGUSR1)
    try:
        requests = ck.SaveRequests().install()
        assert not requests.take()
        os.kill(os.getpid(), signal.SIGUSR1)
        assert requests.take() and not requests.take()
    finally:
        signal.signal(signal.SIGUSR1, previous)


def test_an_empty_or_missing_directory_has_no_checkpoint(tmp_path):
    assert ck.latest_checkpoint(tmp_path) is None
    assert ck.latest_checkpoint(tmp_path / "missing") is None


def test_a_leaf_rewritten_inside_a_valid_zip_fails_its_checksum(tmp_path):
    path = ck.write_checkpoint(tmp_path, 10, *sample(10))
    with np.load(path) as archive:
        arrays = dict(archive)
    arrays["leaf_00000"] = arrays["leaf_00000"] + 1
    with open(path, "wb") as stream:
        np.savez(stream, **arrays)
    with pytest.raises(ck.CheckpointError, match=r"leaf 0 \(float32\[3, 2\]\) fails its SHA-256"):
        ck.load_checkpoint(path)
