"""pc.vmap: against Python loops over the batch, in_axes/out_axes variants (None,
negative, pytrees), composition with grad, itself and compile, and errors."""
import numpy as np
import pytest

import propc as pc
from propc.pytree import tree_flatten

from frontend_helpers import assert_same

RNG = np.random.default_rng(11)


def f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def loss(params, x, label):
    """One example's loss of a small 2-layer network."""
    (W1, b1), (W2, b2) = params
    h = pc.tanh(x @ W1 + b1)
    logits = h @ W2 + b2
    return pc.nn.logsumexp(logits) - (logits * pc.nn.one_hot(label, 3)).sum()


def params_of(n_in=4, hidden=5):
    return [(f32(n_in, hidden), f32(hidden)), (f32(hidden, 3), f32(3))]


def loop_grads(params, xs, labels):
    grad = pc.grad(loss)
    return [grad(params, xs[i], labels[i]) for i in range(len(xs))]


def assert_stacked(actual, per_example, what=""):
    """`actual` (a pytree with a leading batch axis) equals the stacked loop results."""
    flat_actual = pc_leaves(actual)
    flat_loop = [pc_leaves(r) for r in per_example]
    for i, leaf in enumerate(flat_actual):
        assert_same(leaf, np.stack([r[i] for r in flat_loop]), f"{what} leaf {i}",
                    rtol=1e-5, atol=1e-6)


def pc_leaves(tree):
    return tree_flatten(tree)[0]


@pytest.mark.parametrize("runner", [pc.interpret, pc.compile], ids=["interpreted", "compiled"])
def test_per_example_gradients_match_a_loop(runner):
    params, xs, labels = params_of(), f32(6, 4), np.arange(6, dtype=np.int32) % 3
    per_example = runner(pc.vmap(pc.grad(loss), in_axes=(None, 0, 0)))
    assert_stacked(per_example(params, xs, labels), loop_grads(params, xs, labels), "vmap(grad)")


@pytest.mark.parametrize("runner", [pc.interpret, pc.compile], ids=["interpreted", "compiled"])
def test_grad_of_vmap_is_the_sum_of_per_example_gradients(runner):
    params, xs, labels = params_of(), f32(6, 4), np.arange(6, dtype=np.int32) % 3

    def total(params, xs, labels):
        return pc.vmap(loss, in_axes=(None, 0, 0))(params, xs, labels).sum()

    got = runner(pc.grad(total))(params, xs, labels)
    loop = loop_grads(params, xs, labels)
    for i, leaf in enumerate(pc_leaves(got)):
        want = np.sum([pc_leaves(r)[i] for r in loop], axis=0)
        assert_same(leaf, want, f"leaf {i}", rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("runner", [pc.interpret, pc.compile], ids=["interpreted", "compiled"])
def test_vmap_of_vmap_matches_a_double_loop(runner):
    a, b = f32(2, 3, 4), f32(3, 4, 5)

    def f(x, y):      # x: (4,), y: (4, 5)
        return pc.tanh(x @ y) * x.sum()

    # outer maps a's axis 1 and b's axis 0 (size 3), inner maps a's axis 0 (size 2)
    inner = pc.vmap(f, in_axes=(0, None))
    got = runner(pc.vmap(inner, in_axes=(1, 0)))(a, b)
    want = np.stack([np.stack([np.tanh(a[i, j] @ b[j]) * a[i, j].sum() for i in range(2)])
                     for j in range(3)])
    assert_same(got, want.astype(np.float32), "vmap(vmap)")


@pytest.mark.parametrize("in_axes,out_axes", [(0, 0), (1, 0), (-1, -1), (2, 1), (-2, 2)])
def test_in_and_out_axes(in_axes, out_axes):
    x = f32(2, 3, 4)
    got = pc.vmap(lambda m: pc.sin(m) * 2.0, in_axes=in_axes, out_axes=out_axes)(x)
    moved = np.moveaxis(x, in_axes, 0)
    want = np.moveaxis(np.stack([np.sin(m) * 2.0 for m in moved]), 0, out_axes)
    assert_same(got, want.astype(np.float32), f"in {in_axes} out {out_axes}")


def test_in_axes_pytree_with_none_and_unbatched_outputs():
    params = {"scale": f32(3), "shift": f32(3)}
    xs = f32(3, 5)      # batch on axis 1

    def f(p, x, k):
        return {"y": p["scale"] * x + p["shift"] + k, "norm": (p["scale"] ** 2).sum()}

    got = pc.vmap(f, in_axes=({"scale": None, "shift": None}, 1, None),
                  out_axes={"y": -1, "norm": None})(params, xs, 1.5)
    want_y = np.stack([params["scale"] * xs[:, i] + params["shift"] + 1.5 for i in range(5)], -1)
    assert_same(got["y"], want_y, "y")
    assert_same(got["norm"], np.float32((params["scale"] ** 2).sum()), "norm")
    # an output that depends on no batched argument, with out_axes 0, is broadcast
    broadcast = pc.vmap(lambda p, x: p.sum() * 2.0, in_axes=(None, 0))(params["scale"], xs.T)
    assert_same(broadcast, np.full(5, params["scale"].sum() * 2.0, np.float32), "broadcast")


def test_per_example_gradient_graph_does_not_grow_with_the_batch():
    params = params_of(8, 16)
    counts = []
    for batch in (4, 64):
        fn = pc.compile(pc.vmap(pc.grad(loss), in_axes=(None, 0, 0)))
        lowered = fn.lower(params, pc.ShapeDtype((batch, 8)), pc.ShapeDtype((batch,), np.int32))
        counts.append((len(lowered.traced_graph.ops), len(lowered.graph.ops)))
    assert counts[0] == counts[1]


def test_errors_name_the_problem():
    x = f32(3, 4)
    with pytest.raises(ValueError, match="batch size"):
        pc.vmap(lambda a, b: a + b)(x, f32(4, 4))
    with pytest.raises(ValueError, match="out of range"):
        pc.vmap(pc.exp, in_axes=2)(x)
    with pytest.raises(ValueError, match="no argument is batched"):
        pc.vmap(pc.exp, in_axes=None)(x)
    with pytest.raises(ValueError, match="out_axes is None"):
        pc.vmap(pc.exp, out_axes=None)(x)
    with pytest.raises(ValueError, match="2 entries for 1"):
        pc.vmap(pc.exp, in_axes=(0, 0))(x)
    with pytest.raises(ValueError, match="structure"):
        pc.vmap(lambda p: p["a"], in_axes=({"b": 0},))({"a": x})


def test_vjp_of_vmap_and_vmap_of_a_pullback():
    W, xs = f32(4, 3), f32(5, 4)

    def f(W, x):
        return pc.tanh(x @ W)

    batched = pc.vmap(f, in_axes=(None, 0))
    out, pullback = pc.vjp(pc.compile(batched), W, xs)
    ct = f32(5, 3)
    gW, gx = pullback(ct)
    loop = [pc.vjp(f, W, xs[i]) for i in range(5)]
    assert_same(out, np.stack([o for o, _ in loop]))
    assert_same(gW, np.sum([pb(ct[i])[0] for i, (_, pb) in enumerate(loop)], axis=0),
                rtol=1e-5, atol=1e-5)
    assert_same(gx, np.stack([pb(ct[i])[1] for i, (_, pb) in enumerate(loop)]))
    per_row = pc.vmap(lambda x, c: pc.vjp(f, W, x)[1](c)[1])(xs, ct)
    assert_same(per_row, gx)
