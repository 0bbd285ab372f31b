"""pc.checkpoint and the policy= of grad/vjp: the same gradients bit for bit, and
less saved for the backward pass as the policy recomputes more."""
import numpy as np
import pytest

import propc as pc
from propc.pytree import tree_flatten

from frontend_helpers import assert_same

PARAMS = pc.nn.init_mlp([16, 32, 32, 32, 10], seed=1)      # a 4-layer MLP
X = np.random.default_rng(0).standard_normal((8, 16)).astype(np.float32)
Y = np.arange(8, dtype=np.int32) % 10


def layer(W, b, h):
    return pc.nn.gelu(h @ W + b)


def mlp_loss(checkpointed):
    def loss(params, x, y):
        h = x
        for W, b in params[:-1]:
            h = (pc.checkpoint(layer) if checkpointed else layer)(W, b, h)
        W, b = params[-1]
        return pc.nn.cross_entropy(h @ W + b, y)
    return loss


# (name, checkpoint each layer, policy of grad), in order of what they save
SETTINGS = [("save", False, "save"), ("recompute_elementwise", False, "recompute_elementwise"),
            ("checkpoint_per_layer", True, "save")]


def _leaves(tree):
    return tree_flatten(tree)[0]


@pytest.mark.parametrize("runner", [pc.interpret, pc.compile], ids=["interpreted", "compiled"])
def test_gradients_are_bit_identical_across_policies(runner):
    results = [_leaves(runner(pc.grad(mlp_loss(ck), policy=policy))(PARAMS, X, Y))
               for _, ck, policy in SETTINGS]
    results.append(_leaves(runner(pc.grad(mlp_loss(False), policy="save_inputs"))(PARAMS, X, Y)))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert np.array_equal(a, b)


def test_residual_bytes_strictly_decrease_with_recomputation():
    saved = []
    for _, ck, policy in SETTINGS:
        lowered = pc.compile(pc.grad(mlp_loss(ck), policy=policy)).lower(PARAMS, X, Y)
        saved.append(lowered.memory.residuals)
    assert saved[0] > saved[1] > saved[2] > 0, saved
    # per-layer checkpoints keep each layer's input activation and little else
    activations = 3 * X.shape[0] * 32 * 4
    assert saved[2] < 2 * activations


def test_vjp_pullback_runs_a_recomputing_backward_pass():
    """The top-level vjp compiles the two passes separately: the checkpointed
    forward keeps only inputs, the backward recomputes, the cotangents agree."""
    def f(W, b, x):
        return pc.checkpoint(lambda W, b, x: pc.tanh(pc.tanh(x @ W + b) @ W.T))(W, b, x)

    W, b = PARAMS[1][0], PARAMS[1][1]
    h = np.tanh(X @ PARAMS[0][0])
    plain_out, plain_pullback = pc.vjp(pc.compile(lambda W, b, x: pc.tanh(
        pc.tanh(x @ W + b) @ W.T)), W, b, h)
    out, pullback = pc.vjp(pc.compile(f), W, b, h)
    assert_same(out, plain_out)
    ct = np.ones_like(out)
    for got, want in zip(pullback(ct), plain_pullback(ct)):
        assert np.array_equal(got, want)
    kept = pullback.forward_graph.outputs[-pullback.forward_graph.residual_outputs:]
    assert all(v.producer is None for v in kept)      # inputs only: nothing derived saved
    assert "tanh" in [op.prim for op in pullback.backward_graph.ops]


def test_checkpoint_differentiates_closed_over_values():
    W = PARAMS[0][0]

    def loss(W, x):
        return pc.checkpoint(lambda x: pc.tanh(x @ W))(x).sum()

    got = pc.grad(loss)(W, X)
    want = pc.grad(lambda W, x: pc.tanh(x @ W).sum())(W, X)
    assert np.array_equal(got, want)


def test_unknown_policy_is_an_error():
    with pytest.raises(ValueError, match="unknown policy 'fast'.*save_inputs"):
        pc.grad(mlp_loss(False), policy="fast")
    with pytest.raises(ValueError, match="unknown policy"):
        pc.checkpoint(layer, policy="everything")
