"""Multi-op graphs: fused elementwise chains, views feeding kernels, an MLP layer with
softmax, a whole MLP train step, and random op chains (hypothesis) — compiled vs
ir.interpret, and the models also vs plain NumPy written here."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import codegen
from ir import Builder, DType, TensorType, interpret
from codegen_graphs import (bcast, layer_graph, layer_reference, matmul, train_step_graph,
                            train_step_inputs, train_step_reference)
from codegen_oracle import assert_matches, random_array

F32, F64, I32 = DType.f32, DType.f64, DType.i32


def run_both(graph, inputs):
    exe = codegen.compile_graph(graph)
    return exe, exe(*inputs), interpret(graph, *inputs)


def test_elementwise_chain_with_broadcasts_is_one_kernel():
    b = Builder("chain")
    x = b.input(TensorType((5, 33), F32))
    row = b.input(TensorType((33,), F32))
    col = b.input(TensorType((5, 1), F32))
    y = b.mul(x, bcast(b, row, (5, 33), (1,)))
    y = b.add(y, bcast(b, col, (5, 33), (0, 1)))
    y = b.select(b.gt(y, x), b.exp(y), b.neg(y))
    y = b.convert(b.convert(y, dtype=F64), dtype=F32)
    b.output(y)
    graph = b.build()
    rng = np.random.default_rng(0)
    inputs = [random_array(rng, v.type, edges=False) for v in graph.inputs]
    exe, got, want = run_both(graph, inputs)
    assert exe.kernel_count == 1
    assert exe.memory.peak_scratch == 0
    assert_matches(got[0], want[0], "chain", "ulp", ulps=4)


def test_value_read_twice_is_computed_once_and_stored():
    b = Builder("fanout")
    x = b.input(TensorType((64,), F32))
    e = b.exp(x)
    total = b.reduce_sum(e, axes=(0,))
    b.output(b.div(e, bcast(b, total, (64,), ())))
    graph = b.build()
    rng = np.random.default_rng(1)
    inputs = [random_array(rng, graph.inputs[0].type, edges=False)]
    exe, got, want = run_both(graph, inputs)
    # exp gets a buffer (two readers), the sum, then the division into the output
    assert exe.kernel_count == 3
    assert exe.memory.peak_scratch >= 64 * 4
    assert_matches(got[0], want[0], "softmax-1d", "ulp", ulps=8)


def test_merging_reshape_of_fused_broadcast_gets_a_buffer():
    b = Builder("reshape_merge")
    x = b.input(TensorType((4,), F32))
    wide = b.exp(bcast(b, x, (3, 4), (1,)))
    flat = b.reshape(wide, shape=(12,))
    b.output(b.add(flat, flat))
    graph = b.build()
    inputs = [np.arange(4, dtype=np.float32) / 3]
    exe, got, want = run_both(graph, inputs)
    assert_matches(got[0], want[0], "reshape", "ulp", ulps=4)


def test_splitting_reshape_and_transpose_fuse_into_the_consumer():
    b = Builder("split")
    x = b.input(TensorType((2, 12), I32))
    y = b.transpose(b.reshape(b.mul(x, x), shape=(2, 3, 4)), perm=(2, 0, 1))
    b.output(b.sub(y, b.slice(y, start=(0, 0, 0), stop=(4, 2, 3), stride=(1, 1, 1))))
    graph = b.build()
    inputs = [np.arange(24, dtype=np.int32).reshape(2, 12) - 7]
    exe, got, want = run_both(graph, inputs)
    assert exe.kernel_count == 1
    assert_matches(got[0], want[0], "views")


def test_transposed_operands_feed_dot_without_copies():
    b = Builder("dot_views")
    x = b.input(TensorType((6, 5), F64))
    w = b.input(TensorType((7, 6), F64))
    xt = b.transpose(x, perm=(1, 0))
    wt = b.transpose(w, perm=(1, 0))
    b.output(matmul(b, xt, wt))
    graph = b.build()
    rng = np.random.default_rng(2)
    inputs = [rng.standard_normal((6, 5)), rng.standard_normal((7, 6))]
    exe, got, want = run_both(graph, inputs)
    assert exe.kernel_count == 1
    np.testing.assert_allclose(got[0], inputs[0].T @ inputs[1].T, rtol=1e-12)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-12)


def test_fused_operand_of_dot_is_materialized_once():
    b = Builder("dot_fused")
    x = b.input(TensorType((4, 9), F32))
    w = b.input(TensorType((9, 3), F32))
    b.output(matmul(b, b.tanh(x), w))
    graph = b.build()
    rng = np.random.default_rng(3)
    inputs = [rng.standard_normal((4, 9)).astype(np.float32),
              rng.standard_normal((9, 3)).astype(np.float32)]
    exe, got, want = run_both(graph, inputs)
    assert exe.kernel_count == 2
    np.testing.assert_allclose(got[0], np.tanh(inputs[0]) @ inputs[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("batch,n_in,n_out", [(1, 1, 1), (8, 33, 17), (32, 64, 10)])
def test_mlp_layer_then_softmax(batch, n_in, n_out):
    graph = layer_graph(batch, n_in, n_out)
    rng = np.random.default_rng(batch)
    inputs = [rng.standard_normal((batch, n_in)).astype(np.float32),
              (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32),
              rng.standard_normal(n_out).astype(np.float32)]
    exe, got, want = run_both(graph, inputs)
    reference = layer_reference(*[a.astype(np.float64) for a in inputs])
    for g, w, r in zip(got, want, reference):
        assert g.dtype == np.float32 and g.shape == r.shape
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-6)
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("batch,sizes", [(8, [13, 17, 5]), (32, [64, 128, 10])])
def test_mlp_train_step(batch, sizes):
    graph = train_step_graph(batch, sizes)
    rng = np.random.default_rng(len(sizes) + batch)
    inputs = train_step_inputs(rng, batch, sizes)
    exe, got, want = run_both(graph, inputs)
    reference = train_step_reference(*inputs)
    assert len(got) == len(reference) == 1 + 2 * (len(sizes) - 1)
    for g, w, r in zip(got, want, reference):
        assert g.dtype == np.float32 and g.shape == r.shape
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(g, r, rtol=1e-3, atol=1e-5)


# Compile time is measured by `propc bench --compile` (the medium MLP train step and
# the RNN rows, stage by stage), not asserted here: a wall-clock bound in a unit test
# fails on a loaded machine and says nothing on a fast one.


# ---- random op chains ----------------------------------------------------------------

UNARY = ["neg", "abs", "exp", "tanh", "sin"]
BINARY = ["add", "sub", "mul", "max", "min"]


@st.composite
def random_graphs(draw):
    """A random chain of elementwise, broadcast, view and reduction ops on f32[3,5]."""
    b = Builder("random")
    values = [b.input(TensorType((3, 5), F32)), b.input(TensorType((5,), F32))]
    for _ in range(draw(st.integers(1, 8))):
        choice = draw(st.sampled_from(["unary", "binary", "bcast", "reduce", "view"]))
        x = draw(st.sampled_from(values))
        if choice == "unary":
            values.append(b.emit(draw(st.sampled_from(UNARY)), x))
        elif choice == "binary":
            same = [v for v in values if v.shape == x.shape]
            values.append(b.emit(draw(st.sampled_from(BINARY)), x, draw(st.sampled_from(same))))
        elif choice == "bcast" and x.shape == (5,):
            values.append(bcast(b, x, (3, 5), (1,)))
        elif choice == "reduce" and x.ndim == 2:
            axis = draw(st.integers(0, 1))
            prim = draw(st.sampled_from(["reduce_sum", "reduce_max"]))
            values.append(b.emit(prim, x, axes=(axis,)))
        elif choice == "view" and x.ndim == 2:
            flat = b.reshape(b.transpose(x, perm=(1, 0)), shape=(15,))
            values.append(b.reshape(b.slice(flat, start=(0,), stop=(15,), stride=(3,)),
                                    shape=(5,)))
    outputs = draw(st.lists(st.sampled_from(values[2:] or values), min_size=1, max_size=3))
    b.output(*outputs)
    return b.build()


@settings(max_examples=40, deadline=None)
@given(graph=random_graphs(), seed=st.integers(0, 2**16))
def test_random_chains_match_interpreter(graph, seed):
    rng = np.random.default_rng(seed)
    inputs = [rng.uniform(-2, 2, v.shape).astype(np.float32) for v in graph.inputs]
    exe, got, want = run_both(graph, inputs)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        with np.errstate(invalid="ignore", over="ignore"):
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("lhs_shape,rhs_shape,lc,rc", [
    ((70, 300), (300, 45), 1, 0),     # plain, sizes leaving partial tiles
    ((300, 70), (300, 45), 0, 0),     # lhs transposed (weight gradient)
    ((70, 300), (45, 300), 1, 1),     # rhs transposed (input gradient)
    ((1, 300), (300, 1), 1, 0),
])
def test_larger_matmuls_against_float64_numpy(dtype, lhs_shape, rhs_shape, lc, rc):
    b = Builder("mm")
    x = b.input(TensorType(lhs_shape, dtype))
    w = b.input(TensorType(rhs_shape, dtype))
    b.output(matmul(b, x, w, lc, rc))
    graph = b.build()
    rng = np.random.default_rng(5)
    x_np = rng.standard_normal(lhs_shape).astype(dtype.numpy)
    w_np = rng.standard_normal(rhs_shape).astype(dtype.numpy)
    (got,) = codegen.compile_graph(graph)(x_np, w_np)
    a = x_np.astype(np.float64) if lc == 1 else x_np.T.astype(np.float64)
    c = w_np.astype(np.float64) if rc == 0 else w_np.T.astype(np.float64)
    bound = 4 * a.shape[1] * np.finfo(dtype.numpy).eps * (np.abs(a) @ np.abs(c))
    assert got.dtype == dtype.numpy
    assert np.all(np.abs(got - a @ c) <= bound)


def test_batched_matmul_of_sliced_and_transposed_views():
    b = Builder("bmm")
    x = b.input(TensorType((3, 10, 9), F32))
    w = b.input(TensorType((3, 6, 8), F32))
    xs = b.slice(x, start=(0, 2, 1), stop=(3, 9, 9), stride=(1, 1, 1))   # [3,7,8]
    wt = b.transpose(w, perm=(0, 2, 1))                                  # [3,8,6]
    b.output(b.dot(xs, wt, lhs_batch=(0,), rhs_batch=(0,), lhs_contract=(2,),
                   rhs_contract=(1,)))
    graph = b.build()
    rng = np.random.default_rng(6)
    inputs = [rng.standard_normal((3, 10, 9)).astype(np.float32),
              rng.standard_normal((3, 6, 8)).astype(np.float32)]
    exe, got, want = run_both(graph, inputs)
    assert exe.kernel_count == 1
    expected = inputs[0][:, 2:9, 1:9].astype(np.float64) @ np.transpose(inputs[1], (0, 2, 1))
    np.testing.assert_allclose(got[0], expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-4, atol=1e-5)


@st.composite
def reduce_graphs(draw):
    """reduce_* of a transposed (maybe broadcast) operand over random axes."""
    rank = draw(st.integers(0, 3))
    shape = tuple(draw(st.lists(st.integers(0, 6), min_size=rank, max_size=rank)))
    dtype = draw(st.sampled_from([I32, F64]))
    prim = draw(st.sampled_from(["reduce_sum", "reduce_max", "reduce_min"]))
    perm = tuple(draw(st.permutations(range(rank))))
    axes = tuple(sorted(draw(st.sets(st.integers(0, max(rank - 1, 0)), max_size=rank)))) \
        if rank else ()
    b = Builder("reduce")
    x = b.input(TensorType(shape, dtype))
    viewed = b.transpose(b.abs(x), perm=perm)
    b.output(b.emit(prim, viewed, axes=axes))
    return b.build()


@settings(max_examples=50, deadline=None)
@given(graph=reduce_graphs(), seed=st.integers(0, 2**16))
def test_random_reductions_of_views_match_interpreter(graph, seed):
    rng = np.random.default_rng(seed)
    (x,) = [random_array(rng, v.type, edges=False) for v in graph.inputs]
    exe, got, want = run_both(graph, [x])
    assert got[0].shape == want[0].shape and got[0].dtype == want[0].dtype
    if want[0].dtype.kind == "i":
        np.testing.assert_array_equal(got[0], want[0])
    else:
        np.testing.assert_allclose(got[0], want[0], rtol=1e-12, atol=1e-12)
