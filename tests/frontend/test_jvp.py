"""pc.jvp (forward mode): every primitive against central differences of the op
table's independent NumPy references, forward-over-reverse Hessian-vector products
against reverse-over-reverse, Jacobians by vmap of jvp, and errors."""
import sys
from pathlib import Path

import numpy as np
import pytest

import propc as pc
from ir import DType
from ir.differences import directional_difference
from propc import tracing

from frontend_helpers import assert_same

sys.path.append(str(Path(__file__).resolve().parents[1]))
from op_cases import OP_CASES  # noqa: E402
from tolerances import tolerance  # noqa: E402

EPS = 1e-6
# while_loop has no reverse mode, and jvp is its transpose: a named test below
F64_CASES = [c for c in OP_CASES if c.shapes and c.dtype is DType.f64 and c.prim != "while_loop"]


def test_jvp_through_while_loop_is_a_type_error():
    case = next(c for c in OP_CASES if c.prim == "while_loop" and c.dtype is DType.f64)
    arrays = case.make_inputs(np.random.default_rng(3))
    with pytest.raises(TypeError, match="fori_loop"):
        pc.jvp(_one_op(case.graph(arrays)), tuple(arrays), tuple(np.zeros_like(a) for a in arrays))


def _one_op(graph):
    return lambda *xs: tracing.bind(graph, xs)[0]


@pytest.mark.parametrize("case", F64_CASES, ids=lambda c: c.id)
def test_jvp_matches_central_differences(case):
    rng = np.random.default_rng(3)
    arrays = case.make_inputs(rng)
    tangents = [rng.standard_normal(a.shape) if a.dtype == np.float64 else np.zeros_like(a)
                for a in arrays]
    out, tangent = pc.jvp(_one_op(case.graph(arrays)), tuple(arrays), tuple(tangents))
    assert_same(out, case.reference(*arrays), case.id, *tolerance("op", np.float64))
    if out.dtype.kind != "f" or case.prim == "stop_gradient":     # defined to be 0
        assert_same(tangent, np.zeros_like(out), case.id)
        return
    # float32 results (convert to f32) are linear in the input: a larger step keeps
    # their rounding out of the difference
    eps = EPS if out.dtype == np.float64 else 1e-2
    rtol, atol = tolerance("jvp_differences", out.dtype)

    def along(s):              # the reference at arrays + s * tangents (float64 ones)
        return case.reference(*[a + s * t if a.dtype == np.float64 else a
                                for a, t in zip(arrays, tangents)])
    with np.errstate(invalid="ignore"):
        expected = directional_difference(along, np.float64(0.0), np.float64(1.0), eps)
    finite = np.isfinite(out)      # an infinite output (max of nothing) has no FD
    np.testing.assert_allclose(tangent[finite], expected[finite], rtol=rtol, atol=atol,
                               err_msg=case.id)
    assert np.isfinite(tangent).all()


def _loss(params, x):
    (W1, b1), (W2, b2) = params
    return pc.nn.logsumexp(pc.tanh(x @ W1 + b1) @ W2 + b2, axis=-1).mean()


@pytest.mark.parametrize("runner", [pc.interpret, pc.compile], ids=["interpreted", "compiled"])
def test_forward_over_reverse_hvp_equals_reverse_over_reverse(runner):
    rng = np.random.default_rng(5)
    params = [(rng.standard_normal((4, 6)), rng.standard_normal(6)),
              (rng.standard_normal((6, 3)), rng.standard_normal(3))]
    direction = [(rng.standard_normal((4, 6)), rng.standard_normal(6)),
                 (rng.standard_normal((6, 3)), rng.standard_normal(3))]
    x = rng.standard_normal((5, 4))
    gradient = pc.grad(_loss)

    def forward_over_reverse(params, direction, x):
        return pc.jvp(lambda p: gradient(p, x), (params,), (direction,))[1]

    def reverse_over_reverse(params, direction, x):
        def along(p):
            g = gradient(p, x)
            return sum((gi * di).sum() for layer_g, layer_d in zip(g, direction)
                       for gi, di in zip(layer_g, layer_d))
        return pc.grad(along)(params)

    fwd = runner(forward_over_reverse)(params, direction, x)
    rev = runner(reverse_over_reverse)(params, direction, x)
    for (a_w, a_b), (b_w, b_b) in zip(fwd, rev):
        np.testing.assert_allclose(a_w, b_w, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(a_b, b_b, rtol=1e-10, atol=1e-12)


def test_jacobian_by_vmap_of_jvp():
    x = np.array([0.3, -1.2, 2.0])

    def f(x):
        return pc.concatenate([pc.sin(x) * x[::-1], (x * x).sum()[None]])

    jacobian = pc.vmap(lambda t: pc.jvp(f, (x,), (t,))[1], out_axes=1)(np.eye(3))

    def numpy_f(x):
        return np.concatenate([np.sin(x) * x[::-1], [np.sum(x * x)]])
    expected = np.stack([directional_difference(numpy_f, x, e, EPS) for e in np.eye(3)],
                        axis=1)
    np.testing.assert_allclose(jacobian, expected, rtol=1e-6, atol=1e-8)


def test_integer_arguments_and_outputs_take_zero_tangents():
    def f(x, n):
        return x * n, n * 2

    (y, m), (dy, dm) = pc.jvp(f, (np.ones(2), np.int32(3)), (np.full(2, 0.5), np.int32(7)))
    assert_same(dy, np.full(2, 1.5))
    assert_same(dm, np.zeros((), np.int32))


def test_tangent_errors():
    x = np.ones(3)
    with pytest.raises(TypeError, match="structure"):
        pc.jvp(pc.sin, (x,), (x, x))
    with pytest.raises(ValueError, match=r"tangents\[0\].*shape \(3,\)"):
        pc.jvp(pc.sin, (x,), (np.ones(4),))
    with pytest.raises(TypeError, match="tuples"):
        pc.jvp(pc.sin, x, x)
