"""The scanned tanh RNN of `propc demo --model rnn` and `propc bench`'s RNN rows,
as ordinary propc code: `pc.scan` over the time axis, a readout of the last state,
softmax cross-entropy, and an SGD step (the loop stays one op: its body is traced,
differentiated and compiled once, whatever the number of steps)."""
from __future__ import annotations

import numpy as np


def rnn_logits(params: dict, xs, *, checkpoint: bool = False):
    """Logits of the last state for xs of shape (T, batch, inputs)."""
    import propc as pc

    def cell(h, x):
        h = pc.tanh(x @ params["Wx"] + h @ params["Wh"] + params["b"])
        return h, ()

    h0 = np.zeros((xs.shape[1], params["Wh"].shape[0]), np.float32)
    h, _ = pc.scan(cell, h0, xs, checkpoint=checkpoint)
    return h @ params["Wo"] + params["bo"]


def rnn_logits_unrolled(params: dict, xs):
    """The same model with the loop unrolled by Python while tracing."""
    import propc as pc
    h = np.zeros((xs.shape[1], params["Wh"].shape[0]), np.float32)
    for t in range(xs.shape[0]):
        h = pc.tanh(xs[t] @ params["Wx"] + h @ params["Wh"] + params["b"])
    return h @ params["Wo"] + params["bo"]


def make_rnn_step(lr: float, logits_fn=rnn_logits):
    """params, xs, labels -> (new params, loss): one SGD step of the RNN."""
    import propc as pc

    def loss_fn(params, xs, labels):
        return pc.nn.cross_entropy(logits_fn(params, xs), labels)

    def rnn_train_step(params, xs, labels):
        loss, grads = pc.value_and_grad(loss_fn)(params, xs, labels)
        return pc.optim.sgd(params, grads, lr), loss

    return rnn_train_step


def rows_as_steps(images: np.ndarray) -> np.ndarray:
    """Digits (batch, 64) read row by row: (8 steps, batch, 8 pixels)."""
    return np.ascontiguousarray(images.reshape(-1, 8, 8).transpose(1, 0, 2))
