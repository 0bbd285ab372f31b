"""How much of the peak scratch is kernel workspace (codegen/memplan.py
MemoryPlan.workspace, propc/compile.py MemorySummary.workspace): the peak less the
arena the array values alone take. Inference of an MLP keeps its array buffers
within two of the largest activations; the rest of the peak is sgemm packing.
"""
from __future__ import annotations

import numpy as np
import pytest

import propc as pc
from codegen.threads import host as parallel
from codegen.kernels.matmul import host_config, sgemm_scratch_bytes
from codegen.plan.memplan import Lifetime, assign_offsets

BATCH, N_IN, HIDDEN, N_OUT = 256, 784, 512, 10


def two_layer(params, x):
    (w1, b1), (w2, b2) = params
    return pc.maximum(x @ w1 + b1, 0.0) @ w2 + b2


def two_layer_args():
    rng = np.random.default_rng(3)
    params = [(rng.standard_normal((N_IN, HIDDEN)).astype(np.float32) * 0.05,
               np.zeros(HIDDEN, np.float32)),
              (rng.standard_normal((HIDDEN, N_OUT)).astype(np.float32) * 0.05,
               np.zeros(N_OUT, np.float32))]
    return params, rng.standard_normal((BATCH, N_IN)).astype(np.float32)


def test_inference_buffers_stay_within_two_activations():
    params, x = two_layer_args()
    compiled = pc.compile(two_layer)
    memory = compiled.lower(params, x).memory
    largest = max(BATCH * HIDDEN * 4, BATCH * N_OUT * 4)
    assert memory.workspace > 0                            # the sgemm's packing panels
    assert memory.buffers == memory.peak_scratch - memory.workspace
    assert 0 <= memory.buffers <= 2 * largest
    text = str(memory)
    assert f"{memory.workspace:,}" in text and f"{memory.buffers:,}" in text
    (w1, b1), (w2, b2) = params
    want = np.maximum(x.astype(np.float64) @ w1 + b1, 0) @ w2 + b2
    np.testing.assert_allclose(compiled(params, x), want, rtol=1e-3, atol=1e-3)


def value_lifetimes(slots) -> list[Lifetime]:
    """The array values' slots as lifetimes; a result written in place of an operand
    (`... in place of %N`) shares one slot with it, spanning both."""
    spans: dict[str, list] = {}
    owner: dict[str, str] = {}
    for label, nbytes, _, first, last in slots:
        if label.startswith("workspace of kernel"):
            continue
        name = label.split()[0]
        key = owner.get(label.split("in place of ")[-1], name) if "in place of" in label else name
        owner[name] = key
        span = spans.setdefault(key, [0, first, last])
        span[0] = max(span[0], nbytes)
        span[1], span[2] = min(span[1], first), max(span[2], last)
    return [Lifetime(key, nbytes, first, last) for key, (nbytes, first, last) in spans.items()]


@pytest.mark.parametrize("debug", ["0", "1"])
def test_workspace_is_the_peak_less_the_values_own_arena(debug, monkeypatch):
    """Rebuild the array values' lifetimes from the reported slots and place them
    alone: their arena is what the plan calls buffers (debug mode's unfused kernels
    write in place, so in-place chains are merged)."""
    monkeypatch.setenv("PROPC_DEBUG", debug)
    params, x = two_layer_args()
    plan = pc.compile(two_layer).lower(params, x).executable.memory
    _, alone = assign_offsets(value_lifetimes(plan.slots))
    assert plan.workspace == max(0, plan.peak_scratch - alone)
    assert plan.buffers == plan.peak_scratch - plan.workspace
    assert f"{plan.workspace:,}" in str(plan)


@pytest.mark.skipif(not parallel.load_gomp(), reason="needs libgomp for two threads")
def test_regression_large_mlp_packing_scratch_is_per_block(monkeypatch):
    """Each of two threads used to reserve packing scratch for the whole 512 x 1024 .
    1024 x 1024 product (2.09 MiB each); a thread computes half of C's columns."""
    from propc.bench.cases import mlp_predict
    monkeypatch.setenv("PROPC_NUM_THREADS", "2")
    batch, width = 512, 1024
    params = [(pc.ShapeDtype((m, d), "float32"), pc.ShapeDtype((d,), "float32"))
              for m, d in ((width, width), (width, width), (width, 10))]
    memory = pc.compile(mlp_predict).lower(params, pc.ShapeDtype((batch, width),
                                                                 "float32")).memory
    config = host_config()
    half = -(-width // config.nr // 2) * config.nr           # whole NR panels
    per_thread = -(-sgemm_scratch_bytes(batch, half, width) // 64) * 64
    activation = batch * width * 4
    assert memory.workspace == 2 * per_thread
    assert memory.buffers <= 2 * activation
    assert memory.peak_scratch <= 2 * activation + 2 * per_thread
    assert memory.peak_scratch < 2 * activation + 2 * sgemm_scratch_bytes(batch, width, width)
