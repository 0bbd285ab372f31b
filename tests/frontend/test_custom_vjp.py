"""pc.custom_vjp: user-given gradient rules, against derivatives written here in
NumPy, finite differences where the rule is the true derivative, and the residuals
the forward pass keeps."""
import numpy as np
import pytest

import propc as pc

from frontend_helpers import assert_same

X = np.array([-1.5, -0.25, 0.5, 2.0], np.float32)


@pc.custom_vjp
def step_ste(x):
    """Heaviside step forward; straight-through (identity) gradient backward."""
    return pc.where(x > 0, 1.0, 0.0)


step_ste.defvjp(lambda x: (step_ste.fn(x), ()), lambda residuals, g: (g,))


@pc.custom_vjp
def clip_gradient(x):
    return x


clip_gradient.defvjp(lambda x: (x, ()),
                     lambda residuals, g: (pc.maximum(pc.minimum(g, 1.0), -1.0),))


@pc.custom_vjp
def safe_norm(x):
    return pc.sqrt((x * x).sum())


def _norm_fwd(x):
    norm = pc.sqrt((x * x).sum())
    return norm, (x, norm)


def _norm_bwd(residuals, g):
    x, norm = residuals
    positive = norm > 0
    return (pc.where(positive, g * x / pc.where(positive, norm, 1.0), 0.0),)


safe_norm.defvjp(_norm_fwd, _norm_bwd)


@pytest.mark.parametrize("runner", [pc.interpret, pc.compile], ids=["interpreted", "compiled"])
def test_straight_through_estimator(runner):
    grad = runner(pc.grad(lambda x: (step_ste(x) * x * x).sum()))
    step = (X > 0).astype(np.float32)
    # d/dx [step(x) * x^2] with d step/dx := 1: x^2 + 2 x step(x)
    assert_same(grad(X), X * X + 2 * X * step)
    assert_same(runner(step_ste)(X), step)
    # the rule is not the step's true derivative (0), and check_grad says so
    assert not pc.check_grad(lambda x: step_ste(x).sum(), X + 0.1).ok


@pytest.mark.parametrize("runner", [pc.interpret, pc.compile], ids=["interpreted", "compiled"])
def test_clipped_gradient(runner):
    grad = runner(pc.grad(lambda x, w: (clip_gradient(x * w) * 5.0).sum(), argnums=(0, 1)))
    w = np.float32(0.5)
    gx, gw = grad(X, w)
    # the cotangent reaching clip_gradient is 5, clipped to 1
    assert_same(gx, np.full(4, w, np.float32))
    assert_same(gw, np.float32(X.sum()))


def test_norm_with_a_zero_gradient_at_zero():
    zero = np.zeros(3, np.float32)
    assert_same(pc.grad(safe_norm)(zero), zero)
    assert np.isnan(pc.grad(lambda x: pc.sqrt((x * x).sum()))(zero)).all()   # without the rule
    assert_same(pc.grad(safe_norm)(X), X / np.linalg.norm(X))
    report = pc.check_grad(safe_norm, X)      # the rule is the true derivative away from 0
    assert report.ok, str(report)


def test_grad_inside_compile_keeps_fwd_residuals():
    @pc.custom_vjp
    def soft(x):
        return pc.exp(x).sum()

    def fwd(x):
        e = pc.exp(x)
        return e.sum(), e

    soft.defvjp(fwd, lambda e, g: (g * e,))
    fn = pc.compile(pc.value_and_grad(lambda x: soft(pc.sin(x)) * 2.0))
    value, grad = fn(X)
    expected = 2.0 * np.exp(np.sin(X)) * np.cos(X)
    assert_same(value, np.float32(2.0 * np.exp(np.sin(X)).sum()))
    assert_same(grad, expected.astype(np.float32))
    lowered = fn.lower(X)
    forward, backward = lowered.forward_graph, lowered.backward_graph
    kept = forward.outputs[len(forward.outputs) - forward.residual_outputs:]
    assert "exp" in [v.producer.prim for v in kept if v.producer is not None]
    assert "exp" not in [op.prim for op in backward.ops]    # read, not recomputed


def test_vjp_and_vmap_compose_with_the_rule():
    outputs, pullback = pc.vjp(clip_gradient, X)
    assert_same(outputs, X)
    assert_same(pullback(np.full(4, 3.0, np.float32))[0], np.ones(4, np.float32))
    per_example = pc.vmap(pc.grad(lambda x: (step_ste(x) * x).sum()))(X[:, None])
    assert_same(per_example, (X + (X > 0))[:, None].astype(np.float32))

    def total(w, xs):
        return pc.vmap(lambda x: (step_ste(x * w) * x).sum(), in_axes=0)(xs).sum()

    # d/dw sum_i step(x_i w) x_i with the straight-through rule: sum_i x_i^2
    assert_same(pc.grad(total)(np.float32(1.0), X[:, None]), np.float32((X * X).sum()))


def test_closing_over_a_differentiated_value_is_an_error():
    def f(scale):
        @pc.custom_vjp
        def scaled(x):
            return x * scale

        scaled.defvjp(lambda x: (x * scale, ()), lambda residuals, g: (g * scale,))
        return scaled(X).sum()

    with pytest.raises(ValueError, match="'scaled' closes over a f32.. value that is being "
                                         "differentiated"):
        pc.grad(f)(np.float32(2.0))


def test_rule_errors():
    @pc.custom_vjp
    def f(x, y):
        return x * y

    with pytest.raises(TypeError, match="defvjp"):
        f(X, X)
    f.defvjp(lambda x, y: (x * y, (x, y)), lambda r, g: (g * r[1],))
    with pytest.raises(TypeError, match="one entry per argument"):
        pc.grad(lambda x: f(x, X).sum())(X)
    f.defvjp(lambda x, y: x * y, lambda r, g: (g, g))
    with pytest.raises(TypeError, match="pair"):
        pc.grad(lambda x: f(x, X).sum())(X)


def test_bwd_may_read_a_value_computed_outside():
    """bwd closes over sin(x): that value's own gradient path is kept."""
    def f(x):
        s = pc.sin(x)

        @pc.custom_vjp
        def double(y):
            return y * 2.0

        double.defvjp(lambda y: (y * 2.0, ()), lambda residuals, g: (g * s,))
        return double(x).sum() + s.sum()

    assert_same(pc.grad(f)(X), (np.sin(X) + np.cos(X)).astype(np.float32))
    assert_same(pc.compile(pc.grad(f))(X), (np.sin(X) + np.cos(X)).astype(np.float32))
