"""The CNN rows of `propc bench` (issue 17): train step and inference of two CNNs,
each against the NumPy im2col CNN with a hand-written backward
(propc/reference_cnn.py), and the residual memory of the medium train step next to
the same model built from slices and `concatenate` (how one had to write it before
the `conv` primitive).

- small: 8x8x1 digits, batch 64, conv3x3 1->16 SAME, relu, maxpool 2, conv3x3 16->32,
  relu, maxpool 2, linear 128->10;
- medium: 28x28x1, batch 64, conv5x5 1->32 SAME, relu, maxpool 2, conv5x5 32->64,
  relu, maxpool 2, linear 3136->10.
Both train with SGD on softmax cross-entropy. Peers: JAX (lax.conv_general_dilated,
lax.reduce_window) and PyTorch (F.conv2d, F.max_pool2d) when importable, else none. FLOPs count the convolutions and the
matmuls (2 per multiply-add, forward: one product per conv/linear layer, backward:
two, minus the first conv's input gradient, which is not needed). `CNNSize.products`
lists those products as im2col matrix shapes; the worker times them alone through
np.matmul, the denominator of the target "within 1.3x of the step's products".
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import reference_cnn
from .cases import Case, _check_result
from .common import LEARNING_RATE, check_train_step
from .peers import prepare_peers, torch_prepared


@dataclass(frozen=True)
class CNNSize:
    name: str
    side: int
    kernel: int
    channels: tuple[int, int, int]
    batch: int = 64

    def describe(self) -> str:
        c0, c1, c2 = self.channels
        return (f"{self.side}x{self.side}x{c0} b{self.batch}, conv{self.kernel} {c0}->{c1}, "
                f"pool, conv{self.kernel} {c1}->{c2}, pool, linear "
                f"{(self.side // 4) ** 2 * c2}->10")

    def flops(self, train: bool) -> int:
        k2 = self.kernel ** 2
        c0, c1, c2 = self.channels
        n, side = self.batch, self.side
        conv1 = 2 * n * side * side * c1 * k2 * c0
        conv2 = 2 * n * (side // 2) ** 2 * c2 * k2 * c1
        linear = 2 * n * (side // 4) ** 2 * c2 * 10
        forward = conv1 + conv2 + linear
        return forward + (conv1 + 2 * conv2 + 2 * linear if train else 0)

    def products(self, train: bool) -> list[tuple[int, int, int]]:
        """The step's matrix products in im2col form, as (m, k, n) of (m, k) @ (k, n).

        Forward, per conv: (batch*positions, k*k*C_in) @ (k*k*C_in, C_out); the linear
        layer: (batch, features) @ (features, 10). A train step adds per layer the
        weight gradient (inputs transposed @ output gradient) and, except for the
        first conv (pc.grad is taken w.r.t. the parameters only, so the images need
        no gradient), the input gradient (output gradient @ weights transposed).
        """
        k2 = self.kernel ** 2
        c0, c1, c2 = self.channels
        rows1 = self.batch * self.side ** 2
        rows2 = self.batch * (self.side // 2) ** 2
        features = (self.side // 4) ** 2 * c2
        forward = [(rows1, k2 * c0, c1), (rows2, k2 * c1, c2), (self.batch, features, 10)]
        if not train:
            return forward
        weight_gradients = [(k2 * c0, rows1, c1), (k2 * c1, rows2, c2), (features, self.batch, 10)]
        input_gradients = [(rows2, c2, k2 * c1), (self.batch, 10, features)]
        return forward + weight_gradients + input_gradients


CNN_SIZES = {"small": CNNSize("small", 8, 3, (1, 16, 32)),
             "medium": CNNSize("medium", 28, 5, (1, 32, 64))}


def cnn_predict(params, x):
    import propc as pc
    (w1, b1), (w2, b2), (w3, b3) = params
    h = pc.nn.max_pool2d(pc.nn.relu(pc.nn.conv2d(x, w1) + b1), 2)
    h = pc.nn.max_pool2d(pc.nn.relu(pc.nn.conv2d(h, w2) + b2), 2)
    return h.reshape(x.shape[0], -1) @ w3 + b3


def cnn_train_step(params, x, labels):
    import propc as pc
    loss, grads = pc.value_and_grad(
        lambda p: pc.nn.cross_entropy(cnn_predict(p, x), labels))(params)
    return pc.optim.sgd(params, grads, LEARNING_RATE), loss


def cnn_inputs(size: CNNSize, seed: int = 0):
    rng = np.random.default_rng(seed)
    params = reference_cnn.init_cnn(size.channels, size.kernel, size.side, seed=seed)
    x = rng.standard_normal((size.batch, size.side, size.side, size.channels[0]))
    labels = rng.integers(0, 10, size.batch).astype(np.int32)
    return params, x.astype(np.float32), labels


def cnn_cases(names: list[str]) -> list[Case]:
    """Train and infer rows for each named CNN size."""
    cases = []
    for name in names:
        size = CNN_SIZES[name]
        params, x, labels = cnn_inputs(size)
        cases.append(Case(
            "cnn", f"cnn train {name} ({size.describe()})", cnn_train_step, (params, x, labels),
            lambda p=params, x=x, y=labels: reference_cnn.sgd_step(p, x, y, LEARNING_RATE),
            size.flops(True), lambda got, want, p=params: check_train_step(p, got, want),
            train=True, products=size.products(True)))
        cases.append(Case(
            "cnn", f"cnn infer {name} ({size.describe()})", cnn_predict, (params, x),
            lambda p=params, x=x: reference_cnn.predict(p, x), size.flops(False),
            _check_result, products=size.products(False)))
    return cases


# -- the slice-built CNN of before `conv`: residual memory comparison --------------------


def _sliced_conv(x, w):
    """SAME stride-1 conv as im2col by k*k slices + concatenate + one matmul."""
    import propc as pc
    k = w.shape[0]
    low = (k - 1) // 2
    n, h, width, c = x.shape
    padded = pc.pad(x, ((0, 0), (low, k - 1 - low), (low, k - 1 - low), (0, 0)))
    columns = [padded[:, i:i + h, j:j + width, :] for i in range(k) for j in range(k)]
    patches = pc.concatenate(columns, axis=3).reshape(n * h * width, k * k * c)
    return (patches @ w.reshape(k * k * c, -1)).reshape(n, h, width, -1)


def _sliced_pool(x):
    """2x2 max pooling by a reshape and a max over the two window axes."""
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def sliced_train_step(params, x, labels):
    import propc as pc

    def predict(p):
        (w1, b1), (w2, b2), (w3, b3) = p
        h = _sliced_pool(pc.nn.relu(_sliced_conv(x, w1) + b1))
        h = _sliced_pool(pc.nn.relu(_sliced_conv(h, w2) + b2))
        return h.reshape(x.shape[0], -1) @ w3 + b3
    loss, grads = pc.value_and_grad(lambda p: pc.nn.cross_entropy(predict(p), labels))(params)
    return pc.optim.sgd(params, grads, LEARNING_RATE), loss


def residual_lines(names: list[str]) -> list[str]:
    """Residual bytes of the train step: conv primitive vs the slice-built model."""
    import propc as pc
    lines = []
    for name in names:
        params, x, labels = cnn_inputs(CNN_SIZES[name])
        with_conv = pc.compile(cnn_train_step).lower(params, x, labels).memory.residuals
        sliced = pc.compile(sliced_train_step).lower(params, x, labels).memory.residuals
        lines.append(f"cnn train {name}: residuals {with_conv / 2**20:.2f} MiB with conv vs "
                     f"{sliced / 2**20:.2f} MiB slice-built ({with_conv / sliced:.0%}; "
                     "target <= 60%)")
    return lines


# -- optional peers (JAX, PyTorch): the same CNN, skipped when not importable ------------


def prepare_cnn_peers(args: tuple, train: bool, threads: int) -> list:
    """(name, (run, to_numpy)) for every importable peer (peers.prepare_peers)."""
    return prepare_peers(args, train, threads, (("jax", _jax_cnn), ("torch", _torch_cnn)))


def _jax_cnn(args: tuple, train: bool, threads: int):
    import jax
    import jax.numpy as jnp

    def block(h, w, b):
        h = jax.lax.conv_general_dilated(h, w, (1, 1), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        h = jnp.maximum(h + b, 0)
        return jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1),
                                     "VALID")

    def predict(params, x):
        (w1, b1), (w2, b2), (w3, b3) = params
        h = block(block(x, w1, b1), w2, b2)
        return h.reshape(x.shape[0], -1) @ w3 + b3

    def step(params, x, labels):
        def loss(p):
            log_probs = jax.nn.log_softmax(predict(p, x), axis=-1)
            return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=-1))
        value, grads = jax.value_and_grad(loss)(params)
        return [(w - LEARNING_RATE * gw, b - LEARNING_RATE * gb)
                for (w, b), (gw, gb) in zip(params, grads)], value

    device_args = jax.device_put(args)
    program = jax.jit(step if train else predict)

    def to_numpy(result):
        if train:
            new, value = result
            return [(np.asarray(w), np.asarray(b)) for w, b in new], np.asarray(value)
        return np.asarray(result)
    return (lambda: jax.block_until_ready(program(*device_args))), to_numpy


def _torch_cnn(args: tuple, train: bool, threads: int):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    params = [(torch.from_numpy(w.copy()), torch.from_numpy(b.copy())) for w, b in args[0]]
    x = torch.from_numpy(args[1]).permute(0, 3, 1, 2)            # NHWC -> NCHW

    def predict(ps):
        (w1, b1), (w2, b2), (w3, b3) = ps
        h = x
        for w, b in ((w1, b1), (w2, b2)):                           # HWIO -> OIHW
            h = F.conv2d(h, w.permute(3, 2, 0, 1), padding="same")
            h = F.max_pool2d(torch.relu(h + b.view(1, -1, 1, 1)), 2)
        flat = h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)      # NHWC order, like propc
        return flat @ w3 + b3

    return torch_prepared(predict, params, args, train)
