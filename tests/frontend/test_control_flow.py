"""pc.scan / pc.fori_loop / pc.cond / pc.while_loop: results and gradients equal the
same loop unrolled in Python (run by the interpreter, the oracle), compiled and
interpreted; graph sizes independent of the trip count; checkpointed scans; errors."""
import re

import numpy as np
import pytest

import propc as pc
from ir.differences import central_differences

RNG = np.random.default_rng(16)


def f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


W = f32(4, 4) * 0.5
U = f32(3, 4) * 0.5
H0 = f32(2, 4)


def rnn_scan(W, U, h0, xs, reverse=False, checkpoint=False):
    def step(h, x):
        h = pc.tanh(x @ U + h @ W)
        return h, (h * h).sum()
    h, ys = pc.scan(step, h0, xs, reverse=reverse, checkpoint=checkpoint)
    return h.sum() + (ys * 0.5).sum()


def rnn_unrolled(W, U, h0, xs, reverse=False):
    h, total = h0, 0.0
    order = range(xs.shape[0] - 1, -1, -1) if reverse else range(xs.shape[0])
    for t in order:
        h = pc.tanh(xs[t] @ U + h @ W)
        total = total + (h * h).sum() * 0.5
    return h.sum() + total


def close(a, b, tol=2e-5):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


@pytest.mark.parametrize("T", [0, 1, 2, 17, 64])
def test_scan_value_and_grad_equal_the_unrolled_loop(T):
    xs = f32(T, 2, 3)
    args = (W, U, H0, xs)
    value_and_grad = pc.value_and_grad(rnn_scan, argnums=(0, 1, 2, 3))
    expected_value, expected_grads = pc.value_and_grad(rnn_unrolled, argnums=(0, 1, 2, 3))(*args)
    for value, grads in (value_and_grad(*args), pc.compile(value_and_grad)(*args)):
        close(value, expected_value)
        for got, want in zip(grads, expected_grads):
            close(got, want)


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_check_grad_and_compare(reverse):
    args = [a.astype(np.float64) for a in (W, U, H0, f32(5, 2, 3))]
    fn = lambda *a: rnn_scan(*a, reverse=reverse)  # noqa: E731
    assert pc.check_grad(fn, *args, argnums=(0, 1, 2, 3)).ok
    assert pc.compare(pc.grad(fn, argnums=(0, 1, 2, 3)), *args).ok
    unrolled = lambda *a: rnn_unrolled(*a, reverse=reverse)  # noqa: E731
    close(pc.interpret(fn)(*args), pc.interpret(unrolled)(*args), 1e-12)


@pytest.mark.parametrize("T", [0, 1, 2, 17, 64])
def test_fori_loop_and_cond_equal_python_control_flow(T):
    def loop(x, p):
        def body(i, v):
            scaled = v * 0.9 + pc.sin(v) * i.astype(np.float32) * 0.1
            return pc.cond(p > 0, lambda a: pc.tanh(a * a), lambda a: a - 0.01, scaled)
        return pc.fori_loop(2, 2 + T, body, x).sum()

    def unrolled(x, p):
        v = x
        for i in range(2, 2 + T):
            v = v * 0.9 + pc.sin(v) * np.float32(i) * 0.1
            v = pc.tanh(v * v) if p > 0 else v - 0.01
        return v.sum()

    x = f32(3) * 0.3
    for p in (np.float32(1.0), np.float32(-1.0)):
        oracle = lambda x, p=float(p): unrolled(x, p)  # noqa: E731  (a Python if)
        close(pc.compile(loop)(x, p), pc.interpret(oracle)(x))
        close(pc.compile(pc.grad(loop))(x, p), pc.grad(oracle)(x), 1e-4)
        close(pc.grad(loop)(x, p), pc.grad(oracle)(x), 1e-4)


def test_nested_scans_and_pytree_carries():
    def inner_sum(row):
        total, _ = pc.scan(lambda acc, v: (acc + pc.tanh(v), ()), pc.zeros_like(row[0]), row)
        return total

    def model(params, xs):
        def step(carry, x):
            new = {"h": carry["h"] * params["a"] + inner_sum(x), "n": carry["n"] + 1}
            return new, (new["h"], carry["n"])
        init = {"h": pc.zeros_like(params["a"]), "n": np.int32(0)}
        carry, (hs, ns) = pc.scan(step, init, xs)
        return (carry["h"] * carry["h"]).sum() + hs.sum(), ns

    params, xs = {"a": f32(3) * 0.5}, f32(4, 5, 3)
    (value, ns), grads = pc.value_and_grad(model, has_aux=True)(params, xs)
    assert ns.dtype == np.int32 and list(ns) == [0, 1, 2, 3]
    a = params["a"].astype(np.float64)
    h, hs = np.zeros(3), []
    for x in xs.astype(np.float64):
        h = h * a + np.tanh(x).sum(0)
        hs.append(h)
    close(value, (h * h).sum() + np.sum(hs), 1e-4)
    assert pc.check_grad(lambda p: model(p, xs)[0], params).ok
    compiled = pc.compile(pc.grad(lambda p: model(p, xs)[0]))(params)
    close(compiled["a"], grads["a"], 1e-4)


def test_int_counter_carry_gets_no_cotangent():
    def f(x, xs):
        (n, h), _ = pc.scan(lambda c, v: ((c[0] + 1, pc.tanh(c[1] + v)), ()), (np.int32(0), x),
                            xs)
        return h.sum() * n.astype(np.float32)

    lowered = pc.compile(pc.grad(f)).lower(f32(3), f32(5, 3))
    (backward_scan,) = [op for op in lowered.backward_graph.ops if op.prim == "scan"]
    carried = backward_scan.operands[backward_scan.attrs["num_consts"]:][
        :backward_scan.attrs["num_carry"]]
    assert [v.type.dtype.is_float for v in carried] == [True]
    close(pc.compile(pc.grad(f))(f32(3), f32(5, 3)) * 0, 0)


def _graph_sizes(T):
    lowered = pc.compile(pc.grad(rnn_scan, argnums=(0, 1))).lower(W, U, H0, f32(T, 2, 3))
    return tuple(len(g.ops) for g in (lowered.traced_graph, lowered.forward_graph,
                                      lowered.backward_graph)), lowered


def test_graph_sizes_do_not_depend_on_the_trip_count():
    sizes = {T: _graph_sizes(T)[0] for T in (16, 64, 256)}
    assert len(set(sizes.values())) == 1, sizes
    text = str(pc.trace(rnn_scan, W, U, H0, f32(16, 2, 3)))
    assert text.count("graph @body {") == 1
    assert len(re.findall(r"= tanh", text)) == 1        # the body printed once, not 16 times
    _, lowered = _graph_sizes(16)                       # forward scan, backward scan
    assert str(lowered.traced_graph).count("graph @body {") == 2


def test_checkpointed_scan_gives_identical_gradients_with_fewer_residual_bytes():
    args = (W, U, H0, f32(9, 2, 3))
    saving = pc.compile(pc.grad(rnn_scan, argnums=(0, 1, 2, 3)))
    checkpointed = pc.compile(pc.grad(lambda *a: rnn_scan(*a, checkpoint=True),
                                      argnums=(0, 1, 2, 3)))
    for got, want in zip(checkpointed(*args), saving(*args)):
        assert np.array_equal(got, want)
    for got, want in zip(pc.grad(lambda *a: rnn_scan(*a, checkpoint=True),
                                 argnums=(0, 1, 2, 3))(*args),
                         pc.grad(rnn_scan, argnums=(0, 1, 2, 3))(*args)):
        assert np.array_equal(got, want)
    assert checkpointed.lower(*args).memory.residuals < saving.lower(*args).memory.residuals


def test_while_loop_runs_compiled_and_interpreted():
    def halve_until_small(x, limit):
        return pc.while_loop(lambda c: c[0].sum() > limit, lambda c: (c[0] * 0.5, c[1] + 1),
                             (x, np.int32(0)))

    x = np.abs(f32(4)) + 10
    value, count = pc.compile(halve_until_small)(x, np.float32(1.0))
    expected, steps = x.copy(), 0
    while expected.sum() > 1.0:
        expected, steps = expected * np.float32(0.5), steps + 1
    assert count == steps and np.array_equal(value, expected)
    interpreted = pc.interpret(halve_until_small)(x, np.float32(1.0))
    assert np.array_equal(interpreted[0], expected)


# --------------------------------------------------------------------------------------
# errors name the user's line and both types


def line_of(marker):
    source = open(__file__).read().split("\n")
    return next(i + 1 for i, text in enumerate(source) if marker in text)


def test_carry_changing_shape_or_dtype_is_an_error():
    def grows(x):
        return pc.scan(lambda c, v: (pc.concatenate([c, v]), ()), x, x[None])  # MARK-shape

    def retypes(x):
        return pc.scan(lambda c, v: (c.astype(np.float64), ()), x, x[None])  # MARK-dtype

    with pytest.raises(ValueError, match=rf"test_control_flow.py:{line_of('MARK-shape')}"
                                         r".*f32\[3\] to f32\[6\]"):
        pc.trace(grows, f32(3))
    with pytest.raises(ValueError, match=rf"test_control_flow.py:{line_of('MARK-dtype')}"
                                         r".*f32\[3\] to f64\[3\]"):
        pc.trace(retypes, f32(3))


def test_mismatched_xs_and_bad_predicates_are_errors():
    def mismatched(a, b):
        return pc.scan(lambda c, v: (c, ()), a[0], (a, b))  # MARK-xs

    with pytest.raises(ValueError, match=rf":{line_of('MARK-xs')}.*f32\[4,3\].*f32\[5,3\]"):
        pc.trace(mismatched, f32(4, 3), f32(5, 3))
    with pytest.raises(TypeError, match=r"0-d .*f32\[2\]"):
        pc.trace(lambda p, x: pc.cond(p, lambda a: a, lambda a: -a, x), f32(2), f32(3))
    with pytest.raises(TypeError, match=r"different types: true_fn \(f32\[3\]\), false_fn "
                                        r"\(f64\[3\]\)"):
        pc.trace(lambda x: pc.cond(x.sum() > 0, lambda a: a, lambda a: a.astype(np.float64),
                                   x), f32(3))


def test_grad_through_while_loop_is_a_type_error_pointing_to_fori_loop():
    def f(x):
        return pc.while_loop(lambda v: v.sum() < 10, lambda v: v * 2, x).sum()  # MARK-while

    with pytest.raises(TypeError, match=rf":{line_of('MARK-while')}.*fori_loop"):
        pc.grad(f)(np.ones(2, np.float32))


def _hessian_row_sums(fn, w):
    """d/dw of sum(grad fn(w)) (a Hessian-vector product with ones), by autodiff."""
    return pc.grad(lambda v: pc.grad(fn)(v).sum())(w)


def test_grad_of_grad_through_scan_and_cond():
    xs = RNG.standard_normal((4, 3))

    def through_scan(w):
        h, ys = pc.scan(lambda h, x: (pc.tanh(h * w + x), (h * h).sum()), pc.zeros_like(w), xs)
        return h.sum() + ys.sum()

    def through_cond(w):
        return pc.cond(w.sum() > 0, lambda a: (pc.sin(a) * a).sum(), lambda a: (a ** 3).sum(), w)

    w = RNG.standard_normal(3)
    for fn in (through_scan, through_cond):
        numeric = central_differences(lambda v, fn=fn: float(pc.grad(fn)(v).sum()), w, step=1e-5)
        close(_hessian_row_sums(fn, w), numeric, 1e-6)
        close(pc.compile(lambda v, fn=fn: _hessian_row_sums(fn, v))(w), numeric, 1e-6)


def test_lowered_memory_counts_stacked_residuals_per_step():
    """Residual bytes grow by T x (per-step bytes); the per-step part is the same."""
    sizes = {}
    for T in (4, 12):
        lowered = pc.compile(pc.grad(rnn_scan)).lower(W, U, H0, f32(T, 2, 3))
        sizes[T] = lowered.memory.residuals
        (scan,) = [op for op in lowered.forward_graph.ops if op.prim == "scan"]
        stacked = scan.results[scan.attrs["num_carry"]:]
        assert all(v.shape[0] == T for v in stacked)
    per_step = (sizes[12] - sizes[4]) / 8
    assert per_step > 0 and sizes[4] - 4 * per_step == sizes[12] - 12 * per_step
    assert "x" in str(lowered.cost) and f"({12} x " in str(lowered.cost)


def test_vmap_of_a_scan_is_one_scan_over_the_batch():
    def final_state(h0, xs):
        h, _ = pc.scan(lambda h, x: (pc.tanh(x @ U + h @ W), ()), h0, xs)
        return h

    h0s, xss = f32(5, 2, 4), f32(5, 6, 2, 3)
    batched = pc.vmap(final_state)
    graph = pc.trace(batched, h0s, xss)
    assert [op.prim for op in graph.ops].count("scan") == 1
    expected = np.stack([pc.interpret(final_state)(h, xs) for h, xs in zip(h0s, xss)])
    close(pc.compile(batched)(h0s, xss), expected)
    close(pc.interpret(batched)(h0s, xss), expected)
