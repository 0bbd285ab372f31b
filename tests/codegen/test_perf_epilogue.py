"""Matmul epilogue fusion (codegen/matmul_epilogue.py): a float32 dot and the one
elementwise kernel that consumes it become one kernel, the consumer running on each
finished block of C. Checked: which graphs fuse (kernel counts, no buffer for the
product), which must not, and the results against float64 NumPy written here,
within the float32 bound of a dot (2*K*eps*(|A|@|B|)) carried through the epilogue.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import codegen
from codegen.options import from_environment
from codegen_graphs import bcast, full, matmul
from ir import Builder, DType, TensorType

F32 = DType.f32
EPS32 = 2.0 ** -24


@pytest.fixture(autouse=True)
def _normal_build(monkeypatch):
    """These tests check what the normal build does; debug mode (PROPC_DEBUG=1, the CI
    debug job) compiles unfused, single-threaded, bounds-checked code instead."""
    monkeypatch.delenv("PROPC_DEBUG", raising=False)


def product_bound(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Error a float32 a @ b may carry, elementwise."""
    depth = max(a.shape[1], 1)
    return 2.0 * depth * EPS32 * (np.abs(a.astype(np.float64)) @ np.abs(b.astype(np.float64)))


def assert_within(got: np.ndarray, want: np.ndarray, bound, what: str) -> None:
    assert got.shape == want.shape and got.dtype == np.float32, what
    error = np.abs(got.astype(np.float64) - want)
    allowed = bound + 4 * EPS32 * np.abs(want) + 1e-30
    assert (error <= allowed).all(), f"{what}: max error {error.max():.3g}"


def dense_graph(batch: int, n_in: int, n_out: int):
    """tanh(x @ W + b)."""
    b = Builder("dense")
    x = b.input(TensorType((batch, n_in), F32))
    w = b.input(TensorType((n_in, n_out), F32))
    bias = b.input(TensorType((n_out,), F32))
    b.output(b.tanh(b.add(matmul(b, x, w), bcast(b, bias, (batch, n_out), (1,)))))
    return b.build()


def sgd_graph(batch: int, n_in: int, n_out: int, lr: float = 0.1):
    """W - lr * (x.T @ dz): the weight update with its gradient's product."""
    b = Builder("sgd")
    w = b.input(TensorType((n_in, n_out), F32))
    x = b.input(TensorType((batch, n_in), F32))
    dz = b.input(TensorType((batch, n_out), F32))
    gradient = matmul(b, x, dz, lhs_contract=0, rhs_contract=0)
    b.output(b.sub(w, b.mul(full(b, lr, (n_in, n_out)), gradient)))
    return b.build()


def tanh_derivative_graph(batch: int, n_hidden: int, n_out: int):
    """(dz @ W.T) * (1 - h*h): the backward through a tanh layer."""
    b = Builder("dtanh")
    dz = b.input(TensorType((batch, n_out), F32))
    w = b.input(TensorType((n_hidden, n_out), F32))
    h = b.input(TensorType((batch, n_hidden), F32))
    back = matmul(b, dz, w, lhs_contract=1, rhs_contract=1)
    b.output(b.mul(back, b.sub(full(b, 1.0, (batch, n_hidden)), b.mul(h, h))))
    return b.build()


def inputs_for(graph, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(v.type.shape).astype(np.float32) for v in graph.inputs]


SHAPES = [(1, 1, 1), (5, 3, 7), (32, 64, 128), (33, 70, 50), (128, 784, 256), (7, 600, 300)]


@pytest.mark.parametrize("batch,n_in,n_out", SHAPES)
def test_dense_layer_is_one_kernel(batch, n_in, n_out):
    graph = dense_graph(batch, n_in, n_out)
    x, w, bias = inputs_for(graph, batch + n_in)
    exe = codegen.compile_graph(graph)
    assert exe.kernel_count == 1
    assert exe.memory.peak_scratch == exe.memory.workspace    # no buffer for x @ W
    (got,) = exe(x, w, bias)
    want = np.tanh(x.astype(np.float64) @ w + bias)
    assert_within(got, want, product_bound(x, w), "tanh(x@W+b)")


@pytest.mark.parametrize("batch,n_in,n_out", SHAPES)
def test_sgd_update_fuses_into_the_weight_gradient(batch, n_in, n_out):
    graph = sgd_graph(batch, n_in, n_out)
    w, x, dz = inputs_for(graph, n_out)
    exe = codegen.compile_graph(graph)
    assert exe.kernel_count == 1
    (got,) = exe(w, x, dz)
    want = w - np.float32(0.1).astype(np.float64) * (x.T.astype(np.float64) @ dz)
    bound = 0.1 * product_bound(x.T, dz) + 2 * EPS32 * np.abs(w)
    assert_within(got, want, bound, "W - lr * x.T@dz")


@pytest.mark.parametrize("batch,n_hidden,n_out", [(32, 128, 10), (128, 256, 256), (3, 5, 1)])
def test_tanh_derivative_fuses_into_the_input_gradient(batch, n_hidden, n_out):
    graph = tanh_derivative_graph(batch, n_hidden, n_out)
    dz, w, h = inputs_for(graph, batch)
    exe = codegen.compile_graph(graph)
    assert exe.kernel_count == 1
    (got,) = exe(dz, w, h)
    square = h.astype(np.float64) ** 2
    back = dz.astype(np.float64) @ w.T
    want = back * (1.0 - square)
    # the product's error scaled, plus float32 rounding of 1 - h*h times the product
    bound = (product_bound(dz, w.T) * np.abs(1.0 - square)
             + 2 * EPS32 * (1.0 + square) * np.abs(back))
    assert_within(got, want, bound, "(dz@W.T)*(1-h*h)")


def test_product_read_twice_keeps_its_buffer():
    """An output (or second reader) of the product: nothing fuses, both correct."""
    b = Builder("twice")
    x = b.input(TensorType((9, 20), F32))
    w = b.input(TensorType((20, 30), F32))
    product = matmul(b, x, w)
    b.output(product, b.tanh(product))
    graph = b.build()
    x, w = inputs_for(graph, 3)
    exe = codegen.compile_graph(graph)
    assert exe.kernel_count == 2
    plain, squashed = exe(x, w)
    want = x.astype(np.float64) @ w
    assert_within(plain, want, product_bound(x, w), "x@W")
    assert_within(squashed, np.tanh(want), product_bound(x, w), "tanh(x@W)")


def test_consumer_reading_the_product_transposed_does_not_fuse():
    b = Builder("transposed")
    x = b.input(TensorType((12, 12), F32))
    w = b.input(TensorType((12, 12), F32))
    product = matmul(b, x, w)
    b.output(b.add(b.transpose(product, perm=(1, 0)), full(b, 1.0, (12, 12))))
    graph = b.build()
    x, w = inputs_for(graph, 4)
    exe = codegen.compile_graph(graph)
    assert exe.kernel_count == 2
    (got,) = exe(x, w)
    want = (x.astype(np.float64) @ w).T + 1.0
    assert_within(got, want, product_bound(x, w).T, "(x@W).T + 1")


def test_consumer_mixing_two_products_fuses_one_of_them():
    b = Builder("two")
    x = b.input(TensorType((16, 24), F32))
    w = b.input(TensorType((24, 40), F32))
    v = b.input(TensorType((24, 40), F32))
    b.output(b.mul(matmul(b, x, w), b.tanh(matmul(b, x, v))))
    graph = b.build()
    x, w, v = inputs_for(graph, 5)
    exe = codegen.compile_graph(graph)
    assert exe.kernel_count == 2
    (got,) = exe(x, w, v)
    first, second = x.astype(np.float64) @ w, x.astype(np.float64) @ v
    bound = (product_bound(x, w) * np.abs(np.tanh(second)) + product_bound(x, v)
             * np.abs(first))
    assert_within(got, first * np.tanh(second), bound, "(x@W)*tanh(x@V)")


def without_epilogues():
    """The environment's compile options with epilogue fusion switched off."""
    return dataclasses.replace(from_environment(), epilogues=False)


def test_switch_off_gives_separate_kernels(monkeypatch):
    monkeypatch.setenv("PROPC_CACHE", "0")
    graph = dense_graph(32, 64, 128)
    x, w, bias = inputs_for(graph, 6)
    exe = codegen.compile_graph(graph, options=without_epilogues())
    assert exe.kernel_count == 2
    (got,) = exe(x, w, bias)
    assert_within(got, np.tanh(x.astype(np.float64) @ w + bias), product_bound(x, w), "off")


def test_debug_mode_does_not_fuse(monkeypatch):
    """Bounds checks live in each kernel's own function: no callbacks then."""
    monkeypatch.setenv("PROPC_CACHE", "0")
    graph = dense_graph(8, 16, 24)
    x, w, bias = inputs_for(graph, 7)
    exe = codegen.compile_graph(graph, debug=True)
    assert exe.kernel_count == 2
    (got,) = exe(x, w, bias)
    assert_within(got, np.tanh(x.astype(np.float64) @ w + bias), product_bound(x, w), "debug")


@pytest.mark.parametrize("sizes", [[13, 17, 5], [64, 128, 96, 10]])
def test_mlp_train_step_fuses_every_layer(monkeypatch, sizes):
    """Per layer: the forward product with its bias add (and tanh), the weight
    gradient with its SGD update, and (hidden layers) the input gradient with the
    tanh derivative: 3 * layers - 1 products lose their own kernel and buffer."""
    from codegen_graphs import train_step_graph, train_step_inputs, train_step_reference
    monkeypatch.setenv("PROPC_CACHE", "0")
    graph = train_step_graph(16, sizes)
    inputs = train_step_inputs(np.random.default_rng(8), 16, sizes)
    separate = codegen.compile_graph(graph, options=without_epilogues())
    fused = codegen.compile_graph(graph, options=from_environment())
    layers = len(sizes) - 1
    assert fused.kernel_count == separate.kernel_count - (3 * layers - 1)
    want = train_step_reference(*inputs)
    for got, plain, expected in zip(fused(*inputs), separate(*inputs), want):
        np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-5)
        np.testing.assert_allclose(got, plain, rtol=2e-5, atol=2e-6)
