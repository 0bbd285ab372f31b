"""PROPC_DEBUG=1 through the user API: models compiled with bounds checks give the
interpreter's values and gradients, threads share checked code, and a bounds
failure reaches the caller of `pc.compile` as a Python exception naming the op and
the user's source line (never a crash)."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import codegen
import propc as pc
from codegen.emit import kernels
from codegen.registry import Lowering


@pytest.fixture
def debug_env(monkeypatch):
    monkeypatch.setenv("PROPC_DEBUG", "1")


def mlp_loss(params, x, labels):
    h = x
    for w, b in params[:-1]:
        h = pc.tanh(h @ w + b)
    w, b = params[-1]
    return pc.nn.cross_entropy(h @ w + b, labels)


def train_step(params, x, labels):
    loss, grads = pc.value_and_grad(mlp_loss)(params, x, labels)
    return pc.optim.sgd(params, grads, 0.1), loss


def mlp_inputs(seed: int = 0):
    params = pc.nn.init_mlp([12, 16, 16, 5], seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((8, 12)).astype(np.float32)
    labels = rng.integers(0, 5, size=8).astype(np.int32)
    return params, x, labels


def assert_trees_close(got, want, rtol=2e-5, atol=2e-6):
    got_leaves = np.concatenate([np.ravel(a) for a in _leaves(got)])
    want_leaves = np.concatenate([np.ravel(a) for a in _leaves(want)])
    np.testing.assert_allclose(got_leaves, want_leaves, rtol=rtol, atol=atol)


def _leaves(tree):
    if isinstance(tree, (list, tuple)):
        return [leaf for item in tree for leaf in _leaves(item)]
    return [np.asarray(tree, dtype=np.float64)]


def test_train_step_under_debug_matches_the_interpreter(debug_env):
    params, x, labels = mlp_inputs()
    compiled = pc.compile(train_step)
    got = compiled(params, x, labels)
    assert compiled.lower(params, x, labels).executable.memory.error_slot is not None
    assert_trees_close(got, pc.interpret(train_step)(params, x, labels))


def test_vjp_pullback_under_debug_matches_the_interpreter(debug_env):
    params, x, labels = mlp_inputs(1)
    loss = pc.compile(lambda p: mlp_loss(p, x, labels))
    value, pullback = pc.vjp(loss, params)
    (grads,) = pullback(np.float32(1.0))
    want_value, want_grads = pc.interpret(pc.value_and_grad(mlp_loss))(params, x, labels)
    np.testing.assert_allclose(value, want_value, rtol=2e-5)
    assert_trees_close(grads, want_grads)


def test_threads_share_checked_code(debug_env):
    params, x, labels = mlp_inputs(2)
    compiled = pc.compile(train_step)
    want = compiled(params, x, labels)
    failures = []

    def work():
        for _ in range(20):
            got = compiled(params, x, labels)
            if not np.array_equal(got[1], want[1]):
                failures.append(got[1])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_a_broken_kernel_surfaces_as_an_error_naming_the_user_line(debug_env, monkeypatch):
    monkeypatch.setenv("PROPC_CACHE", "0")   # never store the broken code

    def reduce_sum_past_the_end(op, materialized):
        plan = kernels.lower_reduce_sum(op, materialized)
        step = plan.steps[-1]
        step.dest_offset = step.dest_offset.shift(op.result.type.size)
        return plan

    monkeypatch.setitem(codegen.LOWERINGS, "reduce_sum",
                        Lowering("kernel", reduce_sum_past_the_end))

    def row_sums(x):
        return pc.sum(pc.exp(x), axis=1)   # the line the error must name

    line = row_sums.__code__.co_firstlineno + 1
    with pytest.raises(codegen.BoundsCheckError) as caught:
        pc.compile(row_sums)(np.ones((3, 4), np.float32))
    message = str(caught.value)
    assert "reduce_sum f32[3,4] -> f32[3]" in message
    assert f"test_debug_mode_models.py:{line}" in message
    assert "store of element" in message
