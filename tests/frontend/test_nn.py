"""propc.nn against independent NumPy formulas written here, on the same inputs;
extreme logits stay finite; all -inf rows; the stable forms are what the graph holds."""
from __future__ import annotations

import numpy as np
import pytest

import propc as pc
from propc import nn
from frontend_helpers import assert_same, run, sample

# -- NumPy references (float64, then cast to the input dtype) --------------------------


def ref_logsumexp(x, axis=-1):
    x64 = x.astype(np.float64)
    m = x64.max(axis=axis, keepdims=True)
    return (np.log(np.exp(x64 - m).sum(axis=axis, keepdims=True)) + m).squeeze(axis)


def ref_log_softmax(x, axis=-1):
    return x.astype(np.float64) - np.expand_dims(ref_logsumexp(x, axis), axis)


def ref_softmax(x, axis=-1):
    return np.exp(ref_log_softmax(x, axis))


def ref_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x.astype(np.float64)))


def ref_gelu(x):
    x = x.astype(np.float64)
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


def ref_cross_entropy(logits, labels):
    logp = ref_log_softmax(logits)
    picked = np.take_along_axis(logp, labels[..., None].astype(np.int64), axis=-1)[..., 0]
    return -picked.mean()


def ref_layer_norm(x, gamma, beta, eps=1e-5):
    x = x.astype(np.float64)
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * gamma + beta


def as_dtype(expected, like):
    return np.asarray(expected).astype(like.dtype)


# -- elementwise ------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_sigmoid_gelu(dtype):
    x = sample((4, 5), dtype, 1, low=-6, high=6)
    assert_same(run(nn.relu, x), np.maximum(x, 0), "relu")
    assert_same(run(nn.sigmoid, x), as_dtype(ref_sigmoid(x), x), "sigmoid")
    assert_same(run(nn.gelu, x), as_dtype(ref_gelu(x), x), "gelu", rtol=1e-5, atol=1e-6)


def test_relu_of_ints_stays_int():
    x = sample((6,), np.int32, 2)
    assert_same(run(nn.relu, x), np.maximum(x, 0), "relu int32")


def test_sigmoid_extremes_are_finite_and_accurate():
    x = np.array([-100.0, -30.0, -1.0, 0.0, 1.0, 30.0, 100.0], np.float32)
    got = run(nn.sigmoid, x)
    assert np.all(np.isfinite(got))
    assert_same(got, as_dtype(ref_sigmoid(x), x), "sigmoid extremes", atol=1e-30)


# -- softmax family -----------------------------------------------------------------------


@pytest.mark.parametrize("axis", [-1, 0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_family_matches_numpy(axis, dtype):
    x = sample((3, 4, 5), dtype, 3, low=-5, high=5)
    assert_same(run(lambda t: nn.softmax(t, axis=axis), x), as_dtype(ref_softmax(x, axis), x),
                "softmax")
    assert_same(run(lambda t: nn.log_softmax(t, axis=axis), x),
                as_dtype(ref_log_softmax(x, axis), x), "log_softmax")
    assert_same(run(lambda t: nn.logsumexp(t, axis=axis), x),
                as_dtype(ref_logsumexp(x, axis), x), "logsumexp")


def test_logsumexp_keepdims_and_tuple_axes():
    x = sample((2, 3, 4), np.float64, 4)
    expected = np.log(np.exp(x).sum(axis=(0, 2), keepdims=True))
    assert_same(run(lambda t: nn.logsumexp(t, axis=(0, 2), keepdims=True), x), expected, "lse")


def test_softmax_family_finite_for_logits_of_100():
    x = np.array([[100.0, -100.0, 0.0], [-100.0, -100.0, -100.0], [100.0, 100.0, 99.0]],
                 np.float32)
    labels = np.array([1, 0, 2], np.int32)
    outputs = run(lambda t, y: (nn.softmax(t), nn.log_softmax(t), nn.logsumexp(t),
                                nn.cross_entropy(t, y)), x, labels)
    for out in outputs:
        assert np.all(np.isfinite(out)), out
    assert_same(outputs[0], as_dtype(ref_softmax(x), x), "softmax", atol=1e-30)
    assert_same(outputs[1], as_dtype(ref_log_softmax(x), x), "log_softmax")
    assert_same(outputs[2], as_dtype(ref_logsumexp(x), x), "logsumexp")
    assert_same(outputs[3], as_dtype(ref_cross_entropy(x, labels), x), "cross_entropy")


def test_all_minus_inf_row():
    x = np.array([[-np.inf, -np.inf, -np.inf], [0.0, -np.inf, 1.0]], np.float32)
    lse, soft, log_soft = run(lambda t: (nn.logsumexp(t), nn.softmax(t), nn.log_softmax(t)), x)
    assert lse[0] == -np.inf and not np.any(np.isnan(lse))
    assert_same(lse[1:], as_dtype(ref_logsumexp(x[1:]), x), "finite row")
    assert not np.any(np.isnan(soft)) and not np.any(np.isnan(log_soft))
    assert_same(soft[1:], as_dtype(ref_softmax(x[1:]), x), "softmax finite row")
    assert np.all(log_soft[0] == -np.inf)


def _producers(graph, prim):
    return [op for op in graph.ops if op.prim == prim]


def _ancestors(value):
    """Prims of every op that `value` depends on."""
    prims, stack, seen = [], [value], set()
    while stack:
        op = stack.pop().producer
        if op is not None and id(op) not in seen:
            seen.add(id(op))
            prims.append(op.prim)
            stack.extend(op.operands)
    return prims


def test_softmax_shift_has_no_gradient():
    graph = pc.trace(nn.softmax, pc.ShapeDtype((2, 3)))
    stops = _producers(graph, "stop_gradient")
    assert len(stops) == 1
    assert "reduce_max" in _ancestors(stops[0].operands[0])
    assert "stop_gradient" in _ancestors(graph.outputs[0])


def test_cross_entropy_never_takes_log_of_softmax():
    graph = pc.trace(nn.cross_entropy, pc.ShapeDtype((4, 10)), pc.ShapeDtype((4,), np.int32))
    for op in _producers(graph, "log"):
        producer = op.operands[0].producer
        assert producer is None or producer.prim != "div", "log(softmax) in cross_entropy"


# -- one_hot, cross_entropy, mse ----------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_one_hot(dtype):
    labels = np.array([[0, 3], [2, 1]], dtype)
    assert_same(run(lambda y: nn.one_hot(y, 4), labels), np.eye(4, dtype=np.float32)[labels],
                "one_hot")
    assert_same(run(lambda y: nn.one_hot(y, 4, dtype=np.int32), labels),
                np.eye(4, dtype=np.int32)[labels], "one_hot int32")


@pytest.mark.parametrize("shape", [(5,), (2, 3)])
def test_cross_entropy(shape):
    logits = sample(shape + (7,), np.float32, 5, low=-4, high=4)
    labels = np.random.default_rng(6).integers(0, 7, size=shape).astype(np.int32)
    assert_same(run(nn.cross_entropy, logits, labels),
                as_dtype(ref_cross_entropy(logits, labels), logits), "cross_entropy")


def test_cross_entropy_with_minus_inf_logit_of_another_class():
    logits = np.array([[0.0, -np.inf, 2.0]], np.float32)
    labels = np.array([2], np.int32)
    got = run(nn.cross_entropy, logits, labels)
    assert np.isfinite(got)
    assert_same(got, np.float32(np.log(1 + np.exp(-2.0))), "ce with -inf logit")


def test_mse():
    p, t = sample((3, 4), np.float32, 7), sample((3, 4), np.float32, 8)
    assert_same(run(nn.mse, p, t), np.mean((p - t) ** 2), "mse")


# -- layer_norm, linear, init_mlp ---------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_norm(dtype):
    x = sample((2, 3, 8), dtype, 9)
    gamma, beta = sample((8,), dtype, 10), sample((8,), dtype, 11)
    assert_same(run(nn.layer_norm, x, gamma, beta), as_dtype(ref_layer_norm(x, gamma, beta), x),
                "layer_norm", rtol=1e-4 if dtype is np.float32 else None)
    got = run(lambda a, g, b: nn.layer_norm(a, g, b, eps=0.5), x, gamma, beta)
    assert_same(got, as_dtype(ref_layer_norm(x, gamma, beta, 0.5), x), "eps", rtol=1e-4)


def test_linear():
    x, W, b = sample((5, 3), np.float32, 12), sample((3, 4), np.float32, 13), sample((4,),
                                                                                   np.float32, 14)
    assert_same(run(nn.linear, x, W, b), x @ W + b, "linear")
    assert_same(run(lambda a, w: nn.linear(a, w, None), x, W), x @ W, "linear no bias")


def test_init_mlp():
    params = nn.init_mlp([6, 5, 3])
    assert [(W.shape, b.shape) for W, b in params] == [((6, 5), (5,)), ((5, 3), (3,))]
    assert all(W.dtype == np.float32 and b.dtype == np.float32 for W, b in params)
    assert all(np.all(b == 0) for _, b in params)
    again = nn.init_mlp([6, 5, 3])
    assert all(np.array_equal(W1, W2) for (W1, _), (W2, _) in zip(params, again))
    other = nn.init_mlp([6, 5, 3], seed=1)
    assert not np.array_equal(params[0][0], other[0][0])
    assert nn.init_mlp([4, 2], dtype=np.float64)[0][0].dtype == np.float64
    wide = nn.init_mlp([400, 300])[0][0]
    assert abs(wide.std() - np.sqrt(2.0 / 400)) < 0.01
    with pytest.raises(ValueError):
        nn.init_mlp([5])


def test_nn_functions_run_eagerly_on_numpy_arrays():
    x = sample((2, 5), np.float32, 15)
    got = nn.softmax(x)
    assert isinstance(got, np.ndarray)
    assert_same(got, as_dtype(ref_softmax(x), x), "eager softmax")
