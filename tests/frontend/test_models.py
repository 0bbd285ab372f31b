"""Whole models traced through pc.interpret against the same models written in NumPy:
a 3-layer MLP loss, and an attention block softmax(q kᵀ/√d) v with layer_norm."""
from __future__ import annotations

import math

import numpy as np

import propc as pc
from ir import PRIMITIVES
from propc import nn
from frontend_helpers import assert_same, run, sample

# -- 3-layer MLP --------------------------------------------------------------------------


def mlp_loss(params, x, labels):
    h = x
    for W, b in params[:-1]:
        h = nn.relu(nn.linear(h, W, b))
    W, b = params[-1]
    return nn.cross_entropy(nn.linear(h, W, b), labels)


def numpy_mlp_loss(params, x, labels):
    h = x.astype(np.float64)
    for W, b in params[:-1]:
        h = np.maximum(h @ W + b, 0.0)
    W, b = params[-1]
    logits = h @ W + b
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return -log_probs[np.arange(len(labels)), labels].mean()


def test_three_layer_mlp_loss_matches_numpy():
    params = nn.init_mlp([16, 32, 24, 10], seed=3)
    x = sample((8, 16), np.float32, 1)
    labels = np.random.default_rng(2).integers(0, 10, size=8).astype(np.int32)
    got = run(mlp_loss, params, x, labels)
    assert_same(got, np.float32(numpy_mlp_loss(params, x, labels)), "mlp loss", rtol=1e-5)


def test_mlp_graph_is_primitives_with_user_lines():
    params = [(pc.ShapeDtype((16, 32)), pc.ShapeDtype((32,))),
              (pc.ShapeDtype((32, 10)), pc.ShapeDtype((10,)))]
    graph = pc.trace(mlp_loss, params, pc.ShapeDtype((8, 16)), pc.ShapeDtype((8,), np.int32))
    assert all(op.prim in PRIMITIVES for op in graph.ops)
    assert all(op.loc is not None and op.loc.file == "test_models.py" for op in graph.ops)
    assert sum(op.prim == "dot" for op in graph.ops) == 2
    assert str(graph.output_types[0]) == "f32[]"


# -- attention block -----------------------------------------------------------------------


def attention_block(params, x):
    """Pre-norm single-head self-attention with a residual connection."""
    h = nn.layer_norm(x, params["gamma"], params["beta"])
    q, k, v = h @ params["Wq"], h @ params["Wk"], h @ params["Wv"]
    d = q.shape[-1]
    scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)
    attended = nn.softmax(scores, axis=-1) @ v
    return x + attended @ params["Wo"]


def numpy_attention_block(params, x):
    x = x.astype(np.float64)
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    h = (x - mu) / np.sqrt(var + 1e-5) * params["gamma"] + params["beta"]
    q, k, v = h @ params["Wq"], h @ params["Wk"], h @ params["Wv"]
    scores = np.einsum("bqd,bkd->bqk", q, k) / np.sqrt(q.shape[-1])
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    return x + np.einsum("bqk,bkd->bqd", weights, v) @ params["Wo"]


def test_attention_block_matches_numpy():
    d_model, d_head = 16, 8
    params = {"gamma": sample((d_model,), np.float32, 1, low=0.5, high=1.5),
              "beta": sample((d_model,), np.float32, 2, low=-0.1, high=0.1),
              "Wq": sample((d_model, d_head), np.float32, 3, low=-0.3, high=0.3),
              "Wk": sample((d_model, d_head), np.float32, 4, low=-0.3, high=0.3),
              "Wv": sample((d_model, d_head), np.float32, 5, low=-0.3, high=0.3),
              "Wo": sample((d_head, d_model), np.float32, 6, low=-0.3, high=0.3)}
    x = sample((2, 5, d_model), np.float32, 7)
    got = run(attention_block, params, x)
    expected = numpy_attention_block(params, x).astype(np.float32)
    assert_same(got, expected, "attention block", rtol=1e-4, atol=1e-5)
