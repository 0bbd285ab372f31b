"""A small CNN written by hand in NumPy: im2col convolutions, 2x2 max pooling, a
linear layer, softmax cross-entropy and its backward pass derived by hand.

The peer `propc demo --model cnn` and the CNN rows of `propc bench` compare compiled
code against. It never goes through propc's IR. Layout: NHWC activations, HWIO
kernels, SAME padding and stride 1 for the convs, pooling windows of 2 (stride 2,
even sizes), as in the propc model it mirrors.
"""
from __future__ import annotations

import numpy as np

from .reference_mlp import softmax_cross_entropy


def im2col(x: np.ndarray, kernel: int) -> np.ndarray:
    """(N, H, W, C) -> (N*H*W, kernel*kernel*C) patches of a SAME, stride-1 conv."""
    n, h, w, c = x.shape
    low = (kernel - 1) // 2
    padded = np.pad(x, ((0, 0), (low, kernel - 1 - low), (low, kernel - 1 - low), (0, 0)))
    patches = np.empty((n, h, w, kernel, kernel, c), dtype=x.dtype)
    for i in range(kernel):
        for j in range(kernel):
            patches[:, :, :, i, j, :] = padded[:, i:i + h, j:j + w, :]
    return patches.reshape(n * h * w, kernel * kernel * c)


def col2im(cols: np.ndarray, shape: tuple, kernel: int) -> np.ndarray:
    """The transpose of im2col: patch gradients summed back into the input's shape."""
    n, h, w, c = shape
    low = (kernel - 1) // 2
    padded = np.zeros((n, h + kernel - 1, w + kernel - 1, c), dtype=cols.dtype)
    patches = cols.reshape(n, h, w, kernel, kernel, c)
    for i in range(kernel):
        for j in range(kernel):
            padded[:, i:i + h, j:j + w, :] += patches[:, :, :, i, j, :]
    return padded[:, low:low + h, low:low + w, :]


def conv_forward(x, w):
    kernel = w.shape[0]
    cols = im2col(x, kernel)
    out = cols @ w.reshape(-1, w.shape[-1])
    return out.reshape(x.shape[:3] + (w.shape[-1],)), cols


def pool_forward(x):
    n, h, w, c = x.shape
    blocks = x.reshape(n, h // 2, 2, w // 2, 2, c)
    return blocks.max(axis=(2, 4)), blocks


def pool_backward(grad, blocks):
    """Each window's gradient to its max (ties share it equally, like propc)."""
    top = blocks.max(axis=(2, 4), keepdims=True)
    hits = blocks == top
    share = grad[:, :, None, :, None, :] / hits.sum(axis=(2, 4), keepdims=True)
    return (hits * share).reshape(blocks.shape[0], blocks.shape[1] * 2, blocks.shape[3] * 2, -1)


def forward(params, x):
    """Logits and what the backward pass needs."""
    (w1, b1), (w2, b2), (w3, b3) = params
    z1, cols1 = conv_forward(x, w1)
    a1 = np.maximum(z1 + b1, 0)
    p1, blocks1 = pool_forward(a1)
    z2, cols2 = conv_forward(p1, w2)
    a2 = np.maximum(z2 + b2, 0)
    p2, blocks2 = pool_forward(a2)
    flat = p2.reshape(len(x), -1)
    return flat @ w3 + b3, (cols1, a1, blocks1, p1, cols2, a2, blocks2, flat)


def loss_and_grads(params, x, labels):
    (w1, b1), (w2, b2), (w3, b3) = params
    logits, (cols1, a1, blocks1, p1, cols2, a2, blocks2, flat) = forward(params, x)
    loss, error = softmax_cross_entropy(logits, labels)
    g3 = (flat.T @ error, error.sum(axis=0))
    d_p2 = (error @ w3.T).reshape(p1.shape[0], a2.shape[1] // 2, a2.shape[2] // 2, -1)
    d_z2 = pool_backward(d_p2, blocks2) * (a2 > 0)
    d_z2_rows = d_z2.reshape(-1, d_z2.shape[-1])
    g2 = ((cols2.T @ d_z2_rows).reshape(w2.shape), d_z2_rows.sum(axis=0))
    d_p1 = col2im(d_z2_rows @ w2.reshape(-1, w2.shape[-1]).T, p1.shape, w2.shape[0])
    d_z1 = pool_backward(d_p1, blocks1) * (a1 > 0)
    d_z1_rows = d_z1.reshape(-1, d_z1.shape[-1])
    g1 = ((cols1.T @ d_z1_rows).reshape(w1.shape), d_z1_rows.sum(axis=0))
    return loss, [g1, g2, g3]


def sgd_step(params, x, labels, lr):
    loss, grads = loss_and_grads(params, x, labels)
    return [(w - lr * gw, b - lr * gb) for (w, b), (gw, gb) in zip(params, grads)], loss


def predict(params, x):
    return forward(params, x)[0]


def init_cnn(channels=(1, 16, 32), kernel=3, side=8, classes=10, seed=0, dtype=np.float32):
    """He-initialised [(w1, b1), (w2, b2), (w3, b3)] for two SAME convs with 2x2 pools
    on side x side images, then a linear layer."""
    rng = np.random.default_rng(seed)
    params = []
    for c_in, c_out in zip(channels[:-1], channels[1:]):
        w = rng.standard_normal((kernel, kernel, c_in, c_out)) * np.sqrt(2.0 / (kernel ** 2 * c_in))
        params.append((w.astype(dtype), np.zeros(c_out, dtype)))
    features = (side // 4) ** 2 * channels[-1]
    w = rng.standard_normal((features, classes)) * np.sqrt(1.0 / features)
    params.append((w.astype(dtype), np.zeros(classes, dtype)))
    return params
