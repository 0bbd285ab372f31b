"""The cases `propc bench` times: each a propc program, its inputs and a NumPy twin.

A `Case` pairs a function traced and compiled by propc with the same computation
written directly in NumPy (the baseline and the correctness oracle), the FLOPs it
does, and how to compare the two results. MLP cases use the hand-written step of
`propc.reference_mlp`; kernel cases are one expression each.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .. import demo_mlp, reference_mlp
from .common import (LEARNING_RATE, TOLERANCE, MLPSize, check_arrays, check_train_step,
                           matmul_flops, mlp_flops, random_inputs)


@dataclass
class Case:
    """One benchmarked computation."""

    section: str                        # "mlp", "cnn", "kernel" or "overhead"
    name: str
    program: Callable                   # what pc.compile traces
    args: tuple                         # its inputs (NumPy arrays in pytrees)
    reference: Callable[[], Any]        # the NumPy twin, on the same inputs
    flops: int | None
    check: Callable[[Any, Any], str]    # (propc result, reference result) -> "ok"/"FAIL ..."
    size: MLPSize | None = None         # set for MLP cases (peers rebuild them from it)
    train: bool = False
    products: list[tuple[int, int, int]] | None = None  # (m, k, n) matmuls, timed alone


def _check_result(got: Any, want: Any) -> str:
    return check_arrays([("result", got, want, TOLERANCE)])


# -- the MLP: the demo's model (ordinary NumPy-style code for propc to trace) --------

mlp_predict, mlp_loss = demo_mlp.predict, demo_mlp.loss_fn


def mlp_train_step(params, x, labels):
    """One SGD step: (new params, loss), the same contract as reference_mlp.sgd_step."""
    import propc as pc
    loss, grads = pc.value_and_grad(mlp_loss)(params, x, labels)
    return pc.optim.sgd(params, grads, LEARNING_RATE), loss


def mlp_cases(size: MLPSize) -> list[Case]:
    """The train step and the inference of one MLP size."""
    params, x, labels = random_inputs(size)
    train = Case(
        "mlp", f"train {size.name} ({size.describe()})", mlp_train_step, (params, x, labels),
        lambda: reference_mlp.sgd_step(params, x, labels, LEARNING_RATE),
        mlp_flops(size.batch, size.widths, train=True),
        lambda got, want: check_train_step(params, got, want), size, True)
    infer = Case(
        "mlp", f"infer {size.name} ({size.describe()})", mlp_predict, (params, x),
        lambda: reference_mlp.predict(params, x),
        mlp_flops(size.batch, size.widths, train=False), _check_result, size, False)
    return [train, infer]


# -- kernels ----------------------------------------------------------------------------


def matmul_ab(a, b):
    return a @ b


def matmul_atb(a, b):
    return a.T @ b


def matmul_abt(a, b):
    return a @ b.T


def dense_tanh(x, w, b):
    import propc as pc
    return pc.tanh(x @ w + b)


def elementwise_exp(x):
    import propc as pc
    return pc.exp(x)


def elementwise_tanh(x):
    import propc as pc
    return pc.tanh(x)


def add_one(x):
    return x + 1.0


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape)


def _matmul_case(program: Callable, label: str, a_shape: tuple, b_shape: tuple,
                 product: tuple[int, int, int], rng: np.random.Generator) -> Case:
    a = rng.standard_normal(a_shape).astype(np.float32)
    b = rng.standard_normal(b_shape).astype(np.float32)
    name = f"matmul {label} a:{_shape(a_shape)} b:{_shape(b_shape)}"
    return Case("kernel", name, program, (a, b), lambda: program(a, b),
                matmul_flops(*product), _check_result)


def matmul_cases(sizes: list[MLPSize], seed: int = 1) -> list[Case]:
    """Every distinct matmul an MLP step does: forward a@b, weight gradient a.T@b
    (activations transposed) and input gradient a@b.T (weights transposed; not for
    the first layer)."""
    rng = np.random.default_rng(seed)
    cases, seen = [], set()
    for size in sizes:
        n = size.batch
        for index, (m, d) in enumerate(size.layers()):
            wanted = [(matmul_ab, "a@b", (n, m), (m, d), (n, m, d)),
                      (matmul_atb, "a.T@b", (n, m), (n, d), (m, n, d))]
            if index > 0:
                wanted.append((matmul_abt, "a@b.T", (n, d), (m, d), (n, d, m)))
            for program, label, a_shape, b_shape, product in wanted:
                key = (label, a_shape, b_shape)
                if key not in seen:
                    seen.add(key)
                    cases.append(_matmul_case(program, label, a_shape, b_shape, product, rng))
    return cases


def dense_tanh_cases(sizes: list[MLPSize], seed: int = 2) -> list[Case]:
    """The fused first hidden layer tanh(x@W+b) of each MLP size."""
    rng = np.random.default_rng(seed)
    cases = []
    for size in sizes:
        m, d = size.layers()[0]
        x = rng.standard_normal((size.batch, m)).astype(np.float32)
        w = (rng.standard_normal((m, d)) / np.sqrt(m)).astype(np.float32)
        b = rng.standard_normal(d).astype(np.float32)
        cases.append(Case("kernel", f"tanh(x@W+b) x:{size.batch}x{m} W:{m}x{d}", dense_tanh,
                          (x, w, b), lambda x=x, w=w, b=b: np.tanh(x @ w + b),
                          matmul_flops(size.batch, m, d), _check_result))
    return cases


def elementwise_cases(seed: int = 3) -> list[Case]:
    """exp and tanh over about a million float32 elements."""
    x = np.random.default_rng(seed).standard_normal((1024, 1024)).astype(np.float32)
    return [Case("kernel", "exp 1024x1024", elementwise_exp, (x,), lambda: np.exp(x), None,
                 _check_result),
            Case("kernel", "tanh 1024x1024", elementwise_tanh, (x,), lambda: np.tanh(x), None,
                 _check_result)]


def overhead_case() -> Case:
    """x + 1.0 on four elements: the cost of one call into compiled code."""
    x = np.arange(4, dtype=np.float32)
    return Case("overhead", "call overhead x+1.0 (4 elements)", add_one, (x,),
                lambda: x + 1.0, None, _check_result)


def kernel_cases(sizes: list[MLPSize]) -> list[Case]:
    """All kernel rows for the chosen MLP sizes, then elementwise and call overhead."""
    return (matmul_cases(sizes) + dense_tanh_cases(sizes) + elementwise_cases()
            + [overhead_case()])
