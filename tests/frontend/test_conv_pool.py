"""pc.nn.conv2d / max_pool2d / avg_pool2d against the naive loops of
tests/window_naive.py (written from the textbook definition, not from propc's
geometry), compiled and interpreted, f32 and f64; gradients against finite
differences, grad of grad, and bad input errors at the user's line.

Many configurations share one compiled function, so the file costs a few compiles.
"""
from __future__ import annotations

import numpy as np
import pytest

import propc as pc
from window_naive import conv2d as naive_conv, pool as naive_pool

# (name, x shape NHWC, kernel size, stride, padding, dilation, groups)
CONVS = [
    ("k1", (1, 5, 4, 3), 1, 1, "VALID", 1, 1),
    ("k3 same", (2, 7, 5, 2), 3, 1, "SAME", 1, 1),
    ("k3 same stride2 odd", (1, 7, 9, 3), 3, 2, "SAME", 1, 1),
    ("k5 valid", (1, 9, 8, 2), 5, 1, "VALID", 1, 1),
    ("k5 same stride2", (2, 6, 7, 2), 5, 2, "SAME", 1, 1),
    ("k3 explicit", (1, 5, 6, 2), 3, (2, 1), ((2, 0), (1, 3)), 1, 1),
    ("k3 dilation2", (1, 9, 7, 2), 3, 1, "SAME", 2, 1),
    ("k3 dilation2 valid stride2", (2, 9, 9, 1), 3, 2, "VALID", (2, 1), 1),
    ("depthwise", (1, 6, 5, 4), 3, 1, "SAME", 1, 4),
    ("groups2", (1, 5, 5, 4), 3, 2, 1, 1, 2),
]


def same_padding(size, kernel, stride, dilation):
    """jax.lax 'SAME': ceil(size / stride) outputs, the odd pad element at the end."""
    extent = (kernel - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + extent - size, 0)
    return total // 2, total - total // 2


def pair(v):
    return v if isinstance(v, tuple) else (v, v)


def reference_conv(x, w, stride, padding, dilation, groups):
    stride, dilation = pair(stride), pair(dilation)
    if padding == "SAME":
        pads = [same_padding(x.shape[1 + k], w.shape[k], stride[k], dilation[k]) for k in (0, 1)]
    elif padding == "VALID":
        pads = [(0, 0), (0, 0)]
    elif isinstance(padding, int):
        pads = [(padding, padding)] * 2
    else:
        pads = list(padding)
    return naive_conv(x, w, stride, (pads[0][0], pads[1][0]), (pads[0][1], pads[1][1]),
                      rhs_dilation=dilation, groups=groups)


def conv_inputs(dtype):
    rng = np.random.default_rng(0)
    xs, ws = [], []
    for _, shape, kernel, _, _, _, groups in CONVS:
        xs.append(rng.normal(size=shape).astype(dtype))
        ws.append(rng.normal(size=(kernel, kernel, shape[-1] // groups, 3 * groups))
                  .astype(dtype))
    return xs, ws


def all_convs(xs, ws):
    return [pc.nn.conv2d(x, w, stride=s, padding=p, dilation=d, groups=g)
            for x, w, (_, _, _, s, p, d, g) in zip(xs, ws, CONVS)]


@pytest.mark.parametrize("mode", ["compiled", "interpreted"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_matches_naive_loops(dtype, mode):
    xs, ws = conv_inputs(dtype)
    run = pc.compile(all_convs) if mode == "compiled" else pc.interpret(all_convs)
    results = run(xs, ws)
    tolerance = 2e-5 if dtype == np.float32 else 1e-12
    for got, x, w, (name, _, _, s, p, d, g) in zip(results, xs, ws, CONVS):
        expected = reference_conv(x, w, s, p, d, g)
        assert got.dtype == dtype and got.shape == expected.shape, name
        np.testing.assert_allclose(got, expected, rtol=tolerance, atol=tolerance, err_msg=name)


# (name, x shape, window, stride, padding)
POOLS = [
    ("2x2", (2, 6, 8, 3), 2, None, "VALID"),
    ("3x3 stride2 same odd", (1, 7, 5, 2), 3, 2, "SAME"),
    ("3x2 overlapping", (1, 5, 6, 1), (3, 2), 1, "VALID"),
    ("2x2 explicit", (2, 5, 5, 2), 2, 2, ((1, 0), (0, 1))),
]


def pool_padding(x, window, stride, padding):
    window, stride = pair(window), pair(window if stride is None else stride)
    if padding == "SAME":
        pads = [same_padding(x.shape[1 + k], window[k], stride[k], 1) for k in (0, 1)]
    elif padding == "VALID":
        pads = [(0, 0), (0, 0)]
    else:
        pads = list(padding)
    low, high = (0, pads[0][0], pads[1][0], 0), (0, pads[0][1], pads[1][1], 0)
    return (1, *window, 1), (1, *stride, 1), low, high


def all_pools(xs):
    out = []
    for x, (_, _, window, stride, padding) in zip(xs, POOLS):
        out.append(pc.nn.max_pool2d(x, window, stride, padding))
        out.append(pc.nn.avg_pool2d(x, window, stride, padding))
    return out


@pytest.mark.parametrize("mode", ["compiled", "interpreted"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pools_match_naive_loops(dtype, mode):
    rng = np.random.default_rng(1)
    xs = [rng.normal(size=shape).astype(dtype) for _, shape, _, _, _ in POOLS]
    run = pc.compile(all_pools) if mode == "compiled" else pc.interpret(all_pools)
    results = run(xs)
    for i, (x, (name, _, window, stride, padding)) in enumerate(zip(xs, POOLS)):
        full_window, strides, low, high = pool_padding(x, window, stride, padding)
        np.testing.assert_array_equal(results[2 * i], naive_pool(x, full_window, strides, low,
                                                                 high, "max"), err_msg=name)
        mean = naive_pool(x, full_window, strides, low, high, "sum") / np.prod(full_window)
        np.testing.assert_allclose(results[2 * i + 1], mean.astype(dtype), rtol=1e-5, atol=1e-6,
                                   err_msg=name)


def test_max_pool_of_ints_matches_naive_loops():
    x = np.random.default_rng(2).integers(-50, 50, size=(1, 5, 4, 2)).astype(np.int32)
    got = pc.compile(lambda x: pc.nn.max_pool2d(x, 2, 1))(x)
    np.testing.assert_array_equal(got, naive_pool(x, (1, 2, 2, 1), (1, 1, 1, 1), (0,) * 4,
                                                  (0,) * 4, "max"))


# -- gradients -------------------------------------------------------------------------


@pytest.mark.parametrize("config", [CONVS[2], CONVS[6], CONVS[8]], ids=lambda c: c[0])
def test_conv2d_gradients_on_input_and_kernel(config):
    _, shape, kernel, s, p, d, g = config
    rng = np.random.default_rng(3)
    x = rng.normal(size=shape)
    w = rng.normal(size=(kernel, kernel, shape[-1] // g, 2 * g))

    def loss(x, w):
        return (pc.nn.conv2d(x, w, stride=s, padding=p, dilation=d, groups=g) ** 2).sum()
    assert pc.check_grad(loss, x, w, argnums=(0, 1)).ok


def test_cnn_grad_of_grad_matches_finite_differences():
    """A Hessian-vector style second derivative through conv, max pool and avg pool."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(1, 6, 6, 2))
    w = rng.normal(size=(3, 3, 2, 2))

    def loss(x, w):
        h = pc.nn.conv2d(x, w, stride=1, padding="SAME", dilation=1, groups=1)
        h = pc.nn.max_pool2d(pc.tanh(h), 2) + pc.nn.avg_pool2d(h, 2)
        return (h * h).sum()

    def grad_norm(x, w):
        gx, gw = pc.grad(loss, argnums=(0, 1))(x, w)
        return (gx * gx).sum() + (gw * gw).sum()
    assert pc.check_grad(grad_norm, x, w, argnums=(0, 1)).ok


def test_grouped_strided_conv_grad_of_grad():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(1, 5, 5, 4))
    w = rng.normal(size=(3, 3, 2, 4))

    def grad_norm(x, w):
        def loss(x, w):
            return (pc.nn.conv2d(x, w, stride=2, padding="SAME", groups=2) ** 2).sum()
        gx, gw = pc.grad(loss, argnums=(0, 1))(x, w)
        return (gx ** 2).sum() + (gw ** 2).sum()
    assert pc.check_grad(grad_norm, x, w, argnums=(0, 1)).ok


def test_conv_gradients_compiled_match_interpreted():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(2, 6, 5, 3))
    w = rng.normal(size=(3, 3, 3, 4))

    def grads(x, w):
        def loss(x, w):
            h = pc.nn.conv2d(x, w, stride=(2, 1), padding="SAME", dilation=(1, 2))
            return (pc.nn.max_pool2d(h, 2, padding="SAME") ** 2).sum()
        return pc.grad(loss, argnums=(0, 1))(x, w)
    assert pc.compare(grads, x, w).ok


# -- bad input -------------------------------------------------------------------------


def test_kernel_channel_mismatch_is_an_error_at_the_user_line():
    x, w = np.zeros((1, 5, 5, 3), np.float32), np.zeros((3, 3, 2, 4), np.float32)
    with pytest.raises(pc.ShapeError, match=r"test_conv_pool.py:\d+: conv: kernel .* expects 2 "
                                            r"input channels"):
        pc.interpret(lambda x, w: pc.nn.conv2d(x, w))(x, w)


def test_window_bigger_than_padded_input_is_an_error():
    x = np.zeros((1, 3, 3, 1), np.float32)
    with pytest.raises(pc.ShapeError, match=r"test_conv_pool.py:\d+: reduce_window_max: .* "
                                            r"bigger than the padded input"):
        pc.interpret(lambda x: pc.nn.max_pool2d(x, 4))(x)
    with pytest.raises(pc.ShapeError, match=r"test_conv_pool.py:\d+: conv: .* bigger"):
        pc.interpret(lambda x: pc.nn.conv2d(x, np.zeros((5, 5, 1, 1), np.float32),
                                            padding="VALID"))(x)


def test_bad_conv_arguments_name_the_argument():
    x, w = np.zeros((1, 5, 5, 2), np.float32), np.zeros((3, 3, 2, 2), np.float32)
    with pytest.raises(TypeError, match="padding must be"):
        pc.interpret(lambda x, w: pc.nn.conv2d(x, w, padding="FULL"))(x, w)
    with pytest.raises(TypeError, match="stride must be"):
        pc.interpret(lambda x, w: pc.nn.conv2d(x, w, stride=0))(x, w)
    with pytest.raises(pc.ShapeError, match=r"x f32\[5,5,2\] must be 4-d"):
        pc.interpret(lambda x, w: pc.nn.conv2d(x[0], w))(x, w)


def test_max_pool_ties_share_the_cotangent_in_both_vjp_forms():
    """Tiling windows (stride = window) and overlapping ones use different VJP rules;
    both give tied maxima equal shares, like reduce_max."""
    x = np.zeros((1, 4, 4, 1))
    x[0, 0, 0, 0] = x[0, 0, 1, 0] = 2.0            # a tie in the first 2x2 window
    tiled = pc.interpret(pc.grad(lambda x: pc.nn.max_pool2d(x, 2).sum()))(x)
    assert tiled[0, 0, 0, 0] == tiled[0, 0, 1, 0] == 0.5
    assert tiled[0, 2:, 2:, 0].sum() == 1.0 and np.all(tiled[0, 2:, 2:, 0] == 0.25)
    general = pc.interpret(pc.grad(lambda x: pc.nn.max_pool2d(x, 2, stride=3).sum()))(x)
    assert general[0, 0, 0, 0] == general[0, 0, 1, 0] == 0.5
