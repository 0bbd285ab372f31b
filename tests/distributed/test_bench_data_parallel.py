"""`propc bench --data-parallel`: the measured table and the allreduce estimate."""
from __future__ import annotations

import json

import pytest

from mpi_launch import requires_mpi
from propc import bench
from propc.bench.distributed import estimate_allreduce_ms, format_estimate


def test_ring_estimate_by_hand():
    # 2 hosts: each sends half of 8 MiB and receives half, twice (reduce-scatter,
    # allgather): 8 MiB = 67,108,864 bits at 10 Gb/s = 6.71 ms, plus 2 messages x 20 µs
    assert estimate_allreduce_ms(8 << 20, 2, 10.0, 20.0) == pytest.approx(6.7109 + 0.04, abs=1e-3)
    # 4 hosts: 1.5 x 8 MiB and 6 messages
    assert estimate_allreduce_ms(8 << 20, 4, 10.0, 20.0) == pytest.approx(10.0663 + 0.12, abs=1e-3)
    assert estimate_allreduce_ms(8 << 20, 1, 10.0, 20.0) == 0.0


def test_estimate_table_splits_the_measured_compute_over_the_hosts():
    row = {"compute_ms": 40.0, "bytes": 8 << 20, "local_batch": 512, "ranks": 1}
    lines = format_estimate(row, [2, 4], 10.0, 20.0)
    assert lines[1].split() == ["2", "256", "20.00", "6.75", "26.75", "1.50x"]
    assert lines[2].split() == ["4", "128", "10.00", "10.19", "20.19", "1.98x"]


def test_bad_host_counts_exit_2(capsys):
    assert bench.main(["--data-parallel", "--hosts", "2,x"]) == 2
    assert "--hosts '2,x': expected positive integers" in capsys.readouterr().err


@requires_mpi
def test_quick_data_parallel_bench_runs_both_configurations(tmp_path, capsys):
    out = tmp_path / "rows.json"
    assert bench.main(["--data-parallel", "--quick", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    rows = json.loads(out.read_text())
    assert [(row["ranks"], row["check"]) for row in rows] == [(1, "ok"), (2, "ok")]
    for row in rows:
        assert row["compute_ms"] > 0 and row["allreduce_ms"] >= 0
        # the flat buffer: every gradient of the 784-256-256-10 MLP and the loss, float32
        assert row["bytes"] == 4 * (784 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10 + 1)
    assert "allreduce estimate: ring over N hosts" in text
    assert "Traceback" not in text
