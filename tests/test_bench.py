"""`propc bench`: the quick table end to end, FLOP counts, the NumPy baseline's
gradients, and the correctness guard. Performance itself is never asserted."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from ir.differences import central_differences
from propc import reference_mlp
from propc.bench import build_parser, run_worker
from propc.bench import main as bench_main
from propc.bench.common import (SIZES, MLPSize, Row, Timing, apply_peaks, check_train_step,
                                interleaved_medians_ms, matmul_flops, median_ms, mlp_flops,
                                random_inputs, relative_error)
from propc.bench.extra import format_busy, format_scaling, memory_rows
from propc.bench.report import TABLE_HEADER, failures

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_table(text: str) -> list[dict]:
    """The main table's rows as dicts keyed by the header's column names."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("case "))
    header = re.split(r"\s{2,}", lines[start].strip())
    rows = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        cells = re.split(r"\s{2,}", line.strip(), maxsplit=len(header) - 1)
        assert len(cells) == len(header), line
        rows.append(dict(zip(header, cells)))
    return rows


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    json_path = tmp_path_factory.mktemp("bench") / "rows.json"
    done = subprocess.run([sys.executable, "-m", "propc", "bench", "--quick", "--no-peers",
                           "--json", str(json_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    return done, json_path


def expected_quick_cases() -> set[str]:
    """Small MLP: layer 1 (32x64 -> 128) has a@b and a.T@b, layer 2 (128 -> 10) also
    a@b.T; then the fused layer, exp, tanh and the call overhead."""
    return {
        "train small (b32 64-128-10)", "infer small (b32 64-128-10)",
        "matmul a@b a:32x64 b:64x128", "matmul a.T@b a:32x64 b:32x128",
        "matmul a@b a:32x128 b:128x10", "matmul a.T@b a:32x128 b:32x10",
        "matmul a@b.T a:32x10 b:128x10", "tanh(x@W+b) x:32x64 W:64x128",
        "exp 1024x1024", "tanh 1024x1024", "call overhead x+1.0 (4 elements)",
        "cnn train small (8x8x1 b64, conv3 1->16, pool, conv3 16->32, pool, linear 128->10)",
        "cnn infer small (8x8x1 b64, conv3 1->16, pool, conv3 16->32, pool, linear 128->10)",
    }


def test_cnn_flops_and_residual_line(quick_run):
    """The CNN rows' FLOPs are the textbook count, and the residual comparison prints."""
    from propc.bench.cnn import CNN_SIZES
    small = CNN_SIZES["small"]
    conv1 = 2 * 64 * 64 * 16 * 9 * 1
    conv2 = 2 * 64 * 16 * 32 * 9 * 16
    linear = 2 * 64 * 128 * 10
    assert small.flops(False) == conv1 + conv2 + linear
    assert small.flops(True) == 2 * conv1 + 3 * conv2 + 3 * linear
    done, _ = quick_run
    assert re.search(r"cnn train small: residuals [\d.]+ MiB with conv vs [\d.]+ MiB "
                     r"slice-built", done.stdout)


def test_cnn_products_add_up_to_the_step_flops():
    """Every CNN case's im2col matmuls, timed alone for issue 17's target, do exactly the
    FLOPs the case counts (both are derived from CNNSize, independently)."""
    from propc.bench.cnn import CNN_SIZES, cnn_cases
    for size in CNN_SIZES.values():
        for train in (False, True):
            total = sum(matmul_flops(*shape) for shape in size.products(train))
            assert total == size.flops(train), (size.name, train)
    for case in cnn_cases(list(CNN_SIZES)):
        assert sum(matmul_flops(*shape) for shape in case.products) == case.flops, case.name


def test_small_cnn_train_products_by_hand():
    """conv1 (64*8*8, 9) @ (9, 16), conv2 (64*4*4, 144) @ (144, 32), linear (64, 128) @
    (128, 10); their weight gradients; input gradients of conv2 and the linear only."""
    from propc.bench.cnn import CNN_SIZES
    want = [(4096, 9, 16), (1024, 144, 32), (64, 128, 10),
            (9, 4096, 16), (144, 1024, 32), (128, 64, 10),
            (1024, 32, 144), (64, 10, 128)]
    assert sorted(CNN_SIZES["small"].products(True)) == sorted(want)
    assert CNN_SIZES["small"].products(False) == want[:3]


def test_quick_bench_prints_each_cnn_step_against_its_products(quick_run):
    done, json_path = quick_run
    assert done.returncode == 0, done.stderr
    table = {row["case"].split(" (")[0]: row for row in parse_table(done.stdout)}
    for mode in ("train", "infer"):
        found = re.search(rf"cnn {mode} small, 1 thread: products alone through np\.matmul "
                          r"([\d.e-]+) ms; propc ([\d.e-]+) ms = ([\d.]+)x \(target <= 1\.3x\)",
                          done.stdout)
        assert found, done.stdout
        products_ms, propc_ms, ratio = map(float, found.groups())
        assert propc_ms == pytest.approx(float(table[f"cnn {mode} small"]["ms"]), rel=0.01)
        assert ratio == pytest.approx(propc_ms / products_ms, rel=0.02, abs=0.006)
    rows = [Row.from_dict(data) for data in json.loads(json_path.read_text())]
    products = {row.case: row for row in rows if row.section == "products"}
    cnn = [row for row in rows if row.section == "cnn"]
    assert cnn and set(products) == {row.case for row in cnn}
    for row in cnn:
        assert products[row.case].flops == row.flops and products[row.case].ms > 0


def test_quick_bench_exits_zero_with_every_row(quick_run):
    done, _ = quick_run
    assert done.returncode == 0, done.stdout + done.stderr
    rows = parse_table(done.stdout)
    assert tuple(rows[0]) == TABLE_HEADER
    assert {row["case"] for row in rows} == expected_quick_cases()
    for row in rows:
        assert row["impl"] == "propc" and row["threads"] == "1"
        assert row["check"] == "ok", row
        ms, numpy_ms, ratio = float(row["ms"]), float(row["numpy ms"]), float(row["ratio"])
        assert ms > 0 and numpy_ms > 0
        assert ratio == pytest.approx(ms / numpy_ms, rel=0.02, abs=0.006)
        if row["case"].startswith(("train", "infer", "matmul", "tanh(", "cnn")):
            assert float(row["GFLOP/s"]) > 0 and float(row["eff"]) > 0
        else:
            assert row["GFLOP/s"] == "-" and row["eff"] == "-"
    assert "compile time of the train step (first call): small" in done.stdout
    assert re.search(r"np\.matmul peak .*: 1 thread [0-9.]+ GFLOP/s", done.stdout)


def test_quick_bench_json_rows_agree_with_the_flop_count(quick_run):
    done, json_path = quick_run
    assert done.returncode == 0, done.stderr
    rows = [Row.from_dict(data) for data in json.loads(json_path.read_text())]
    peaks = [row for row in rows if row.section == "peak"]
    assert len(peaks) == 2 and all(row.flops == 2 * 1024 ** 3 for row in peaks)
    best = max(row.gflops for row in peaks)
    train = next(row for row in rows if row.case.startswith("train small"))
    assert train.flops == mlp_flops(32, (64, 128, 10), train=True)
    assert train.gflops == pytest.approx(train.flops / (train.ms * 1e-3) / 1e9)
    assert train.efficiency == pytest.approx(train.gflops / best)
    assert train.compile_ms > 0


def test_a_dead_worker_becomes_a_fail_row(capsys):
    options = build_parser().parse_args(["--quick", "--no-peers"])
    options.sizes = "huge"          # the worker rejects it and exits with status 2
    rows = run_worker(1, options, "table")
    assert [row.check for row in rows] == ["FAIL the 1-thread worker exited with status 2 "
                                           "after 0 rows"]
    assert failures(rows) == rows
    assert "worker exited with status 2" in capsys.readouterr().err


def test_efficiency_uses_the_best_peak_at_the_same_thread_count():
    def peak(threads, ms):
        return Row("peak", "np.matmul", "numpy", threads, ms=ms, flops=2 * 10 ** 9).finish()

    rows = [peak(1, 200.0), peak(1, 100.0), peak(2, 50.0),      # 10, 20 and 40 GFLOP/s
            Row("mlp", "step", "propc", 1, ms=200.0, flops=2 * 10 ** 9).finish(),
            Row("mlp", "step", "propc", 2, ms=200.0, flops=2 * 10 ** 9).finish(),
            Row("kernel", "exp", "propc", 1, ms=1.0)]
    apply_peaks(rows)
    assert [row.efficiency for row in rows[3:]] == [pytest.approx(0.5), pytest.approx(0.25),
                                                     None]


def test_bad_options_exit_2(capsys):
    assert bench_main(["--threads", "two"]) == 2
    assert bench_main(["--sizes", "huge"]) == 2
    assert "choose from small, medium, large" in capsys.readouterr().err


# -- FLOP counting ----------------------------------------------------------------------


def test_flops_of_the_small_mlp_by_hand():
    forward = 2 * 32 * (64 * 128 + 128 * 10)
    backward = 2 * 32 * 64 * 128 + 4 * 32 * 128 * 10   # first layer: no input gradient
    assert mlp_flops(32, (64, 128, 10), train=False) == forward
    assert mlp_flops(32, (64, 128, 10), train=True) == forward + backward


def test_flops_of_the_medium_and_large_mlps_by_hand():
    n = 128
    layers = [(784, 256), (256, 256), (256, 10)]
    forward = sum(2 * n * m * d for m, d in layers)
    backward = 2 * n * 784 * 256 + 4 * n * 256 * 256 + 4 * n * 256 * 10
    assert mlp_flops(n, SIZES["medium"].widths, train=True) == forward + backward
    big = 2 * 512 * (1024 * 1024 * 2 + 1024 * 10)
    assert mlp_flops(512, SIZES["large"].widths, train=False) == big


# -- the NumPy baseline is itself right ---------------------------------------------------


def _loss64(params: list, x: np.ndarray, labels: np.ndarray) -> float:
    return float(reference_mlp.loss_and_grads(params, x, labels)[0])


def test_reference_gradients_match_central_differences():
    size = MLPSize("tiny", 5, (4, 6, 3, 3))
    params, x, labels = random_inputs(size, seed=7)
    params = [(w.astype(np.float64), b.astype(np.float64)) for w, b in params]
    x = x.astype(np.float64)
    _, grads = reference_mlp.loss_and_grads(params, x, labels)
    for layer, (w, b) in enumerate(params):
        for leaf, array in enumerate((w, b)):
            def at(value, layer=layer, leaf=leaf):
                moved = [list(pair) for pair in params]
                moved[layer][leaf] = value
                return _loss64(moved, x, labels)
            numeric = central_differences(at, array, step=1e-6)
            np.testing.assert_allclose(grads[layer][leaf], numeric, rtol=1e-5, atol=1e-8,
                                       err_msg=f"layer {layer} leaf {leaf}")


def test_reference_loss_is_mean_cross_entropy():
    params, x, labels = random_inputs(MLPSize("tiny", 6, (3, 5, 4)), seed=3)
    logits = np.tanh(x @ params[0][0] + params[0][1]) @ params[1][0] + params[1][1]
    logits = logits.astype(np.float64)
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    want = -np.mean(log_probs[np.arange(6), labels])
    new, loss = reference_mlp.sgd_step(params, x, labels, 0.5)
    assert loss == pytest.approx(want, rel=1e-5)
    _, grads = reference_mlp.loss_and_grads(params, x, labels)
    np.testing.assert_allclose(new[1][0], params[1][0] - 0.5 * grads[1][0], rtol=1e-6)


# -- the correctness guard ----------------------------------------------------------------


def test_guard_accepts_the_reference_and_flags_a_wrong_gradient():
    params, x, labels = random_inputs(SIZES["small"])
    want = reference_mlp.sgd_step(params, x, labels, 0.1)
    assert check_train_step(params, want, want) == "ok"
    new, loss = want
    wrong = [(w, b) for w, b in new]
    w1, b1 = wrong[1]
    wrong[1] = (params[1][0] + 1.1 * (w1 - params[1][0]), b1)   # update 10% too large
    assert check_train_step(params, (wrong, loss), want).startswith("FAIL W1 update")
    assert check_train_step(params, (new, loss + 0.01), want).startswith("FAIL loss")


def test_relative_error_treats_nan_and_shape_mismatch_as_failures():
    want = np.ones((2, 3), np.float32)
    assert relative_error(want * np.nan, want) == float("inf")
    assert relative_error(np.ones((3, 2)), want) == float("inf")
    assert relative_error(want + 0.5, want) == pytest.approx(0.5)


class FakeClock:
    """A clock that moves only when a timed function says it took time: the timing
    logic is checked exactly, whatever the machine's load."""

    def __init__(self):
        self.now = 0.0
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return self.now

    def taking(self, seconds: float, record: list | None = None, label: str = ""):
        """A function whose every call takes `seconds` on this clock."""
        def call():
            if record is not None:
                record.append(label)
            self.now += seconds
        return call

    def samples(self, contenders: int) -> int:
        """Samples taken so far: each one is two reads, after the probe's two each."""
        return (self.reads - 2 * contenders) // 2


def test_median_ms_groups_cheap_calls_and_reports_milliseconds():
    clock, calls = FakeClock(), []
    ms = median_ms(clock.taking(10e-6, calls), Timing(budget_s=0.005, min_samples=3), clock)
    assert ms == pytest.approx(0.010)               # 10 µs per call, in milliseconds
    timed_calls = len(calls) - 2                    # after the warm-up call and the probe
    assert timed_calls == 5 * clock.samples(1)      # groups of 5 calls make 50 µs samples
    assert clock.now == pytest.approx(0.005, rel=0.03)   # about the budget, then stop


def test_median_ms_takes_between_min_and_max_samples():
    slow = FakeClock()
    median_ms(slow.taking(0.01), Timing(budget_s=0.01, min_samples=4), slow)
    assert slow.samples(1) == 4 + 1                 # the budget buys one; min_samples wins
    cheap = FakeClock()
    median_ms(cheap.taking(1e-3), Timing(budget_s=10.0, min_samples=3, max_samples=7), cheap)
    assert cheap.samples(1) == 7 + 1                # (+1: the round that sizes the budget)


def test_interleaved_medians_keep_each_contenders_time_apart():
    clock, order = FakeClock(), []
    slow = clock.taking(0.002, order, "slow")
    fast_calls = []

    def fast():                                     # one call hit by a 100 ms hiccup
        fast_calls.append(1)
        order.append("fast")
        clock.now += 0.1 if len(fast_calls) == 5 else 0.0002

    slow_ms, fast_ms = interleaved_medians_ms([slow, fast], Timing(0.01, min_samples=4), clock)
    assert slow_ms == pytest.approx(2.0) and fast_ms == pytest.approx(0.2)   # median, not mean
    assert order[-4:] == ["slow", "fast", "slow", "fast"]        # sampled in turns
    assert order[4:] == ["slow", "fast"] * (len(order[4:]) // 2)


# -- --memory and --scaling -----------------------------------------------------------------


def test_memory_rows_of_the_small_mlp():
    rows = {row["pass"]: row for row in memory_rows([SIZES["small"]])}
    params, x, labels = random_inputs(SIZES["small"])
    param_bytes = sum(w.nbytes + b.nbytes for w, b in params)
    assert rows["inference"]["residuals"] == 0
    assert rows["training"]["residuals"] > 0
    assert rows["inference"]["inputs"] >= param_bytes + x.nbytes
    assert rows["training"]["inputs"] >= param_bytes + x.nbytes + labels.nbytes
    assert rows["training"]["outputs"] >= param_bytes + 4      # new params and the loss
    assert rows["inference"]["outputs"] >= 32 * 10 * 4


def test_scaling_table_shows_time_per_flop_relative_to_the_first_point():
    rows = [Row("scaling", f"batch b{n} 8-16-2", "propc", 1, ms=0.01 * n,
                numpy_ms=0.02 * n, flops=1000 * n, check="ok").finish() for n in (1, 2, 4)]
    rows.append(Row("scaling", "width b4 8-32-2", "propc", 1, ms=3.0, numpy_ms=1.0,
                    flops=1500, check="ok").finish())
    rows.append(Row("scaling", "width b4 8-64-2", "propc", 1, ms=12.0, numpy_ms=2.0,
                    flops=3000, check="ok").finish())
    lines = format_scaling(rows).splitlines()
    assert "MFLOP" in lines[1]
    relative = [line.split()[-2] for line in lines[2:]]
    assert relative == ["1.00", "1.00", "1.00", "1.00", "2.00"]


def test_busy_table_relates_each_thread_count_to_one_thread():
    rows = [Row("busy", "train b4 8-16-2", "propc", 2, ms=3.0, numpy_ms=2.0, check="ok"),
            Row("busy", "train b4 8-16-2", "propc", 1, ms=2.0, numpy_ms=2.5, check="ok")]
    lines = format_busy(rows, 1).splitlines()
    assert "core 1 busy" in lines[0]
    table = parse_table("\n".join(lines[1:]))
    assert [(row["threads"], row["vs 1 thread"]) for row in table] == [("1", "1.000"),
                                                                        ("2", "1.500")]
    assert "nothing is kept busy" in format_busy(rows, None).splitlines()[0]


def test_quick_busy_bench_runs_next_to_a_busy_core(tmp_path):
    """End to end: the --busy table for the small step at 1 and 2 threads, every
    result checked against NumPy, and the spinning process gone afterwards."""
    env = dict(os.environ, PROPC_CACHE_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "propc", "bench", "--busy", "--quick",
                           "--threads", "1,2"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("the train step next to a busy core")
    rows = parse_table("\n".join(lines[1:]))
    assert [row["threads"] for row in rows] == ["1", "2"]
    assert all(row["check"] == "ok" and float(row["propc ms"]) > 0 for row in rows)
    assert rows[0]["vs 1 thread"] == "1.000"
    assert not _processes_running("while True: pass"), "the busy process was stopped"


def _processes_running(text: str) -> list[str]:
    """Process ids whose command line contains `text` (Linux /proc; [] elsewhere)."""
    found = []
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                if text.encode() in handle.read():
                    found.append(entry)
        except OSError:
            continue
    return found


def test_workers_pin_threads_and_quiet_openblas_spinning(monkeypatch):
    from propc.bench import worker_environment
    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    env = worker_environment(2)
    assert env["OPENBLAS_NUM_THREADS"] == env["PROPC_NUM_THREADS"] == "2"
    assert env["OPENBLAS_THREAD_TIMEOUT"] == "4"
    assert "OPENBLAS_CORETYPE" not in env
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "20")  # the user's own choice is kept
    assert worker_environment(1)["OPENBLAS_THREAD_TIMEOUT"] == "20"


def test_workers_for_fewer_threads_than_cores_are_pinned_to_that_many():
    from propc.bench import worker_cores
    if not hasattr(os, "sched_getaffinity"):
        pytest.skip("no CPU affinity on this platform")
    available = os.sched_getaffinity(0)
    assert worker_cores(len(available)) is None
    if len(available) > 1:
        cores = worker_cores(1)
        assert len(cores) == 1 and cores <= available
