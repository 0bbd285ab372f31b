"""propc.optim inside a traced step against NumPy implementations written here."""
from __future__ import annotations

import numpy as np
import pytest

import propc as pc
from propc import optim
from frontend_helpers import assert_same, run, sample


def make_params():
    return {"W": sample((3, 2), np.float32, 1), "b": sample((2,), np.float32, 2),
            "deep": [sample((4,), np.float64, 3)]}


def make_grads(seed):
    return {"W": sample((3, 2), np.float32, seed), "b": sample((2,), np.float32, seed + 1),
            "deep": [sample((4,), np.float64, seed + 2)]}


def leaves(tree):
    return [tree["W"], tree["b"], tree["deep"][0]]


def assert_trees(got, expected, what, rtol=None):
    for g, e in zip(leaves(got), leaves(expected)):
        assert_same(g, e, what, rtol=rtol)


def test_sgd():
    params, grads = make_params(), make_grads(10)
    got = run(lambda p, g, lr: optim.sgd(p, g, lr), params, grads, 0.1)
    lr = float(np.float32(0.1))  # a Python float argument is traced as a weak float32
    expected = {k: (v - np.float32(lr) * grads[k] if k != "deep"
                    else [v[0] - lr * grads["deep"][0]]) for k, v in params.items()}
    assert_trees(got, expected, "sgd")


def test_momentum_over_steps():
    params, velocity = make_params(), {"W": np.zeros((3, 2), np.float32),
                                       "b": np.zeros(2, np.float32), "deep": [np.zeros(4)]}
    step = pc.interpret(lambda p, g, v: optim.momentum(p, g, v, lr=0.05, beta=0.9))
    ref_p = [x.copy() for x in leaves(params)]
    ref_v = [x.copy() for x in leaves(velocity)]
    for k in range(3):
        grads = make_grads(20 + k)
        params, velocity = step(params, grads, velocity)
        for i, g in enumerate(leaves(grads)):
            ref_v[i] = (0.9 * ref_v[i] + g).astype(g.dtype)
            ref_p[i] = (ref_p[i] - 0.05 * ref_v[i]).astype(g.dtype)
    for got, ref in zip(leaves(params) + leaves(velocity), ref_p + ref_v):
        assert_same(got, ref, "momentum", rtol=1e-5)


def ref_adam(params, grads_seq, lr, b1=0.9, b2=0.999, eps=1e-8):
    p = [x.astype(np.float64) for x in params]
    m = [np.zeros_like(x) for x in p]
    v = [np.zeros_like(x) for x in p]
    for t, grads in enumerate(grads_seq, start=1):
        for i, g in enumerate(grads):
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            m_hat = m[i] / (1 - b1 ** t)
            v_hat = v[i] / (1 - b2 ** t)
            p[i] = p[i] - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p, m, v


def test_adam_over_steps_with_bias_correction():
    params = make_params()
    state = optim.adam_init(params)
    assert state["step"].dtype == np.int32 and state["step"] == 0
    step = pc.interpret(lambda p, g, s: optim.adam(p, g, s, 0.01))
    grads_seq = [make_grads(30 + 3 * k) for k in range(4)]
    for grads in grads_seq:
        params, state = step(params, grads, state)
    ref_p, ref_m, ref_v = ref_adam(leaves(make_params()), [leaves(g) for g in grads_seq], 0.01)
    assert state["step"] == 4
    for got, ref in zip(leaves(params), ref_p):
        assert_same(got, ref.astype(got.dtype), "adam params", rtol=1e-5)
    for got, ref in zip(leaves(state["m"]) + leaves(state["v"]), ref_m + ref_v):
        assert_same(got, ref.astype(got.dtype), "adam state", rtol=1e-5)
    assert step.trace_count == 1


def test_none_gradients_leave_parameters_unchanged():
    params = {"w": sample((2,), np.float32, 40), "count": np.array(3, np.int32)}
    grads = {"w": sample((2,), np.float32, 41), "count": None}
    got = run(lambda p, g: optim.sgd(p, g, 0.5), params, grads)
    assert_same(got["count"], params["count"], "int param")
    assert_same(got["w"], params["w"] - np.float32(0.5) * grads["w"], "float param")
    state = optim.adam_init(params)
    new_params, new_state = run(lambda p, g, s: optim.adam(p, g, s, 0.1), params, grads, state)
    assert_same(new_params["count"], params["count"], "adam int param")
    assert_same(new_state["m"]["count"], state["m"]["count"], "adam int state")


def test_structure_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="structures differ"):
        run(lambda p, g: optim.sgd(p, g, 0.1), {"a": np.ones(2, np.float32)},
            {"b": np.ones(2, np.float32)})


def test_optimisers_run_eagerly_on_numpy_arrays():
    params, grads = [np.ones(3, np.float32)], [np.full(3, 2.0, np.float32)]
    new_params, state = optim.adam(params, grads, optim.adam_init(params), 0.1)
    assert isinstance(new_params[0], np.ndarray) and new_params[0].dtype == np.float32
    # first Adam step moves each weight by about lr against the gradient's sign
    np.testing.assert_allclose(new_params[0], 1.0 - 0.1, rtol=1e-5)
    assert int(state["step"]) == 1
