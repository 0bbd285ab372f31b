"""grad / value_and_grad / vjp / check_grad: against NumPy derivatives written here,
finite differences, and each other; composition and error cases."""
import logging

import numpy as np
import pytest

import propc as pc
from ir.differences import directional_difference

RNG = np.random.default_rng(7)


def f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def mlp_loss(params, x, labels):
    (W1, b1), (W2, b2) = params
    h = pc.tanh(x @ W1 + b1)
    return pc.nn.cross_entropy(h @ W2 + b2, labels)


def numpy_mlp_grads(params, x, labels):
    """Backpropagation by hand: the per-layer error-signal recurrence."""
    (W1, b1), (W2, b2) = [(w.astype(np.float64), b.astype(np.float64)) for w, b in params]
    x = x.astype(np.float64)
    h = np.tanh(x @ W1 + b1)
    logits = h @ W2 + b2
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    e2 = p.copy()
    e2[np.arange(len(labels)), labels] -= 1
    e2 /= len(labels)
    e1 = (e2 @ W2.T) * (1 - h ** 2)
    return [(x.T @ e1, e1.sum(0)), (h.T @ e2, e2.sum(0))]


@pytest.fixture(scope="module")
def mlp():
    params = [(f32(5, 7), f32(7)), (f32(7, 3), f32(3))]
    return params, f32(4, 5), np.array([0, 2, 1, 2], np.int32)


@pytest.mark.parametrize("runner", ["eager", "interpret", "compile"])
def test_grad_of_mlp_matches_hand_backprop(mlp, runner):
    params, x, labels = mlp
    g = pc.grad(mlp_loss)
    g = {"eager": g, "interpret": pc.interpret(g), "compile": pc.compile(g)}[runner]
    grads = g(params, x, labels)
    for (gw, gb), (ew, eb) in zip(grads, numpy_mlp_grads(params, x, labels)):
        assert gw.dtype == np.float32 and gw.shape == ew.shape
        np.testing.assert_allclose(gw, ew, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(gb, eb, rtol=1e-4, atol=1e-6)


def test_value_and_grad_argnums_tuple_and_aux(mlp):
    params, x, labels = mlp

    def loss_aux(params, x, labels):
        value = mlp_loss(params, x, labels)
        return value, {"twice": 2 * value}

    (value, aux), (gp, gx) = pc.value_and_grad(loss_aux, argnums=(0, 1), has_aux=True)(
        params, x, labels)
    np.testing.assert_allclose(aux["twice"], 2 * value, rtol=1e-6)
    np.testing.assert_allclose(value, pc.interpret(mlp_loss)(params, x, labels), rtol=1e-6)
    assert gx.shape == x.shape
    expected = numpy_mlp_grads(params, x, labels)
    np.testing.assert_allclose(gp[1][0], expected[1][0], rtol=1e-4, atol=1e-6)
    assert pc.check_grad(mlp_loss, params, x, labels, argnums=1).ok


def test_grad_of_grad_and_hessian_vector_product():
    cube = lambda x: (x * x * x).sum()  # noqa: E731
    x = np.array([0.5, -1.5, 2.0], np.float64)
    second = pc.grad(lambda x: pc.grad(cube)(x).sum())(x)
    np.testing.assert_allclose(second, 6 * x, rtol=1e-12)
    scalar = pc.grad(pc.grad(lambda t: t * t * t))(2.0)
    np.testing.assert_allclose(scalar, 12.0, rtol=1e-6)

    def f(x):
        return (pc.sin(x) * x).sum() + (x[0] * x[1] * x[2])

    v = np.array([0.3, -0.2, 1.0])

    def hvp(x, v):
        return pc.grad(lambda y: (pc.grad(f)(y) * v).sum())(x)

    h = 1e-6
    grad_f = pc.grad(f)
    numeric = directional_difference(grad_f, x, v, h)
    np.testing.assert_allclose(pc.compile(hvp)(x, v), numeric, rtol=1e-6, atol=1e-8)


def test_vjp_structure_ints_get_none_and_compiled_passes_are_two_functions():
    def fn(tree, n):
        return {"a": tree["x"] * tree["y"], "b": (tree["x"].sum() * 2.0, n + 1)}

    tree = {"x": f32(3), "y": f32(3)}
    n = np.array([1, 2], np.int32)
    cot = {"a": np.ones(3, np.float32), "b": (np.float32(1.0), np.zeros(2, np.int32))}
    for target in (fn, pc.compile(fn)):
        out, pullback = pc.vjp(target, tree, n)
        np.testing.assert_allclose(out["a"], tree["x"] * tree["y"], rtol=1e-6)
        dtree, dn = pullback(cot)
        assert dn is None and set(dtree) == {"x", "y"}
        np.testing.assert_allclose(dtree["x"], tree["y"] + 2.0, rtol=1e-6)
        np.testing.assert_allclose(dtree["y"], tree["x"], rtol=1e-6)
    lowered = pc.compile(lambda x: pc.vjp(lambda y: pc.tanh(y), x)[1](x)).lower(f32(4))
    assert lowered.forward_graph.residual_outputs == 1
    x = f32(4)
    out, pullback = pc.vjp(pc.compile(lambda x: pc.tanh(x) * 3.0), x)
    assert pullback.forward_graph.name.endswith("_fwd")
    assert pullback.backward_graph.residual_inputs == 1
    defined = [line for line in pullback.llvm_ir.splitlines() if line.startswith("define")]
    assert any("_fwd" in line for line in defined) and any("_bwd" in line for line in defined)
    # forward and backward called separately give the interpreter's numbers
    (dx,) = pullback(np.full(4, 2.0, np.float32))
    np.testing.assert_allclose(out, 3.0 * np.tanh(x), rtol=1e-6)
    np.testing.assert_allclose(dx, 6.0 * (1 - np.tanh(x) ** 2), rtol=1e-5)
    _, interpreted = pc.vjp(lambda x: pc.tanh(x) * 3.0, x)
    assert interpreted.llvm_ir is None
    np.testing.assert_allclose(dx, interpreted(np.full(4, 2.0, np.float32))[0], rtol=2e-5)


def test_scalar_cotangent_pullback():
    _, pullback = pc.vjp(lambda x: (x * x).sum(), f32(3))
    (dx,) = pullback(np.float32(1.0))
    assert dx.shape == (3,)


def test_error_cases():
    x = f32(3)
    with pytest.raises(TypeError, match="float scalar"):
        pc.grad(lambda x: x * 2.0)(x)
    with pytest.raises(TypeError, match="only float arguments"):
        pc.grad(lambda x, n: (x * n).sum(), argnums=1)(x, np.arange(3, dtype=np.int32))
    with pytest.raises(TypeError, match="argnums"):
        pc.grad(lambda x: x.sum(), argnums=3)(x)
    with pytest.raises(TypeError, match="pair"):
        pc.value_and_grad(lambda x: x.sum(), has_aux=True)(x)
    _, pullback = pc.vjp(lambda x: x * 2.0, x)
    with pytest.raises((TypeError, ValueError)):
        pullback((np.ones(3, np.float32),))


def test_check_grad_detects_a_wrong_gradient():
    x = np.array([0.3, -1.2, 2.0], np.float32)

    def wrong(x):  # value x³, but the gradient sees only x·stop(x)²: 1/3 of the truth
        return (x * pc.stop_gradient(x * x)).sum()

    report = pc.check_grad(wrong, x)
    assert not report.ok and "FAIL" in str(report)
    assert pc.check_grad(lambda x: (x * x * x).sum(), x).ok


def test_recompile_is_logged_with_the_changed_leaf(caplog):
    f = pc.compile(lambda x: pc.exp(x).sum())
    f(f32(3))
    with caplog.at_level(logging.INFO, logger="propc.compile"):
        f(f32(4))
    assert f.compile_count == 2
    assert "args[0] changed from f32[3] to f32[4]" in caplog.text


def test_mlp_passes_flops_ratio_residuals_and_no_dead_ops():
    """Per layer forward 2nmd, backward 4nmd (2nmd for the first layer, which needs
    no input gradient): 3 equal layers give backward/forward = 10/6."""
    from ir.passes.cost import cost
    from ir.passes.dce import dce

    d, n = 16, 32
    params = pc.nn.init_mlp([n, n, n, n], seed=3)
    x, labels = f32(d, n), np.arange(d, dtype=np.int32) % n

    def loss(params, x, labels):
        h = x
        for W, b in params[:-1]:
            h = pc.tanh(h @ W + b)
        W, b = params[-1]
        return pc.nn.cross_entropy(h @ W + b, labels)

    lowered = pc.compile(pc.grad(loss)).lower(params, x, labels)
    fwd, bwd = lowered.forward_graph, lowered.backward_graph
    ratio = cost(bwd).dot_flops / cost(fwd).dot_flops
    assert cost(fwd).dot_flops == 3 * 2 * n * n * d
    assert ratio == pytest.approx(10 / 6)
    assert 1.5 <= ratio <= 2.5
    for graph in (fwd, bwd, lowered.graph):
        assert len(dce(graph).ops) == len(graph.ops)
    residuals = fwd.outputs[len(fwd.outputs) - fwd.residual_outputs:]
    # x and the W's that carry the error signal back are inputs (not copies); the two
    # tanh outputs are the activations; the rest is the softmax's small state
    inputs = [v for v in residuals if v.producer is None]
    assert {v.type.shape for v in inputs} == {(d, n), (n, n)}
    tanh_outputs = [v for v in residuals if v.producer is not None and v.producer.prim == "tanh"]
    assert len(tanh_outputs) == 2
    assert all(v.producer is None or v.producer.prim not in ("reshape", "broadcast_in_dim",
                                                             "transpose", "convert")
               for v in residuals)


def test_double_where_keeps_gradients_finite():
    """sqrt is undefined for x <= 0: the inner where keeps its argument valid, the
    outer where picks the branch; select routes cotangents, so no 0 * inf NaN."""
    def safe_sqrt(x):
        return pc.where(x > 0, pc.sqrt(pc.where(x > 0, x, 1.0)), 0.0).sum()

    def naive(x):
        return pc.where(x > 0, pc.sqrt(x), 0.0).sum()

    x = np.array([-1.0, 0.0, 4.0], np.float32)
    g = pc.grad(safe_sqrt)(x)
    np.testing.assert_array_equal(g, np.array([0.0, 0.0, 0.25], np.float32))
    np.testing.assert_array_equal(pc.compile(pc.grad(safe_sqrt))(x), g)
    assert np.isnan(pc.grad(naive)(x)[0])  # the single where is the known trap


@pytest.mark.parametrize("scale", [100.0, -100.0])
def test_stable_losses_have_finite_correct_gradients_at_extreme_logits(scale):
    logits = (np.array([[1.0, -1.0, 0.5], [0.0, 1.0, -0.5]]) * scale).astype(np.float32)
    labels = np.array([1, 0], np.int32)
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    onehot = np.eye(3)[labels]
    expected_ce = (p - onehot) / 2
    for run in (pc.grad, lambda f: pc.compile(pc.grad(f))):
        g = run(lambda l: pc.nn.cross_entropy(l, labels))(logits)
        assert np.all(np.isfinite(g))
        np.testing.assert_allclose(g, expected_ce, atol=1e-6)
        g = run(lambda l: pc.nn.logsumexp(l).sum())(logits)
        np.testing.assert_allclose(g, p, atol=1e-6)
        g = run(lambda l: (pc.nn.log_softmax(l) * onehot).sum())(logits)
        np.testing.assert_allclose(g, onehot - p * onehot.sum(1, keepdims=True), atol=1e-6)


def test_lowered_passes_are_the_ones_compiled_and_aux_comes_from_the_forward():
    """`Lowered.forward_graph`/`.backward_graph` are the passes the compiled grad runs:
    interpreting them one after the other gives the compiled results. The aux output
    is an output of that forward pass: the function is traced and inlined once."""
    import ir

    def loss(w, x):
        y = pc.tanh(x @ w)
        return (y * y).sum(), y.mean()

    w, x = f32(3, 2), f32(4, 3)
    compiled = pc.compile(pc.value_and_grad(loss, has_aux=True))
    (value, aux), dw = compiled(w, x)
    lowered = compiled.lower(w, x)
    fwd, bwd = lowered.forward_graph, lowered.backward_graph
    assert len(fwd.outputs) - fwd.residual_outputs == 2          # value, aux
    assert [op.prim for op in lowered.traced_graph.ops].count("tanh") == 1
    forward = ir.interpret(fwd, w, x)
    backward = ir.interpret(bwd, *forward[2:], np.float32(1.0))
    y = np.tanh(x.astype(np.float64) @ w)
    np.testing.assert_allclose(forward[:2], [(y * y).sum(), y.mean()], rtol=1e-5)
    np.testing.assert_allclose([value, aux], forward[:2], rtol=1e-5)
    np.testing.assert_allclose(dw, backward[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dw, x.T @ (2 * y * (1 - y * y)), rtol=1e-4, atol=1e-5)
