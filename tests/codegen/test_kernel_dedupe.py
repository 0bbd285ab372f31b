"""Identical kernels are emitted once (codegen/kernel_dedupe.py).

An unrolled recurrence plans the same kernels at every step, reading one time step
of the sequence at a different offset each time. The module must keep one function
per distinct kernel (the offsets are applied by the caller), and the results must
still equal the interpreter's.
"""
from __future__ import annotations

import re

import numpy as np
import pytest

import codegen
import ir
import propc as pc
from ir.passes.simplify import simplify

STEPS = 12


def recurrence(xs, w, u):
    h = pc.tanh(xs[0] @ w)
    for t in range(1, xs.shape[0]):
        h = pc.tanh(xs[t] @ w + h @ u) * 0.5
    return h


def _inputs(seed: int = 0):
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((STEPS, 4, 16)).astype(np.float32)
    w = rng.standard_normal((16, 24)).astype(np.float32) * 0.3
    u = rng.standard_normal((24, 24)).astype(np.float32) * 0.3
    return xs, w, u


def _kernel_functions(llvm_ir: str) -> set[str]:
    return set(re.findall(r'define internal (?:fastcc )?void @"?(propc\.[\w.]*\.k\d+)"?\(', llvm_ir))


@pytest.mark.parametrize("function", [recurrence, pc.grad(lambda xs, w, u: recurrence(
    xs, w, u).sum(), argnums=(1, 2))], ids=["forward", "gradient"])
def test_unrolled_steps_share_kernels_and_agree_with_the_interpreter(function):
    args = _inputs()
    graph = simplify(pc.trace(function, *args))
    exe = codegen.compile_graph(graph, debug=False)
    kernels = _kernel_functions(exe.llvm_ir)
    # every step plans kernels of its own; one function each would be STEPS x more
    assert exe.kernel_count >= 2 * STEPS - 1
    assert 0 < len(kernels) <= exe.kernel_count // 3, sorted(kernels)
    got = exe(*args)
    want = ir.interpret(graph, *args)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=2e-6)


def test_kernels_differing_in_a_constant_are_not_shared():
    """Two chains scaled by different constants: same shapes, different code."""
    def two_scales(x):
        a = x
        b = x
        for _ in range(4):
            a = pc.tanh(a * 0.25)
            b = pc.tanh(b * 0.75)
        return a, b

    x = np.linspace(-3, 3, 64, dtype=np.float32).reshape(8, 8)
    graph = simplify(pc.trace(two_scales, x))
    exe = codegen.compile_graph(graph, debug=False)
    got_a, got_b = exe(x)
    want_a, want_b = x.astype(np.float64), x.astype(np.float64)
    for _ in range(4):
        want_a, want_b = np.tanh(want_a * 0.25), np.tanh(want_b * 0.75)
    np.testing.assert_allclose(got_a, want_a, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_b, want_b, rtol=1e-5, atol=1e-6)


def _kernel_with_helper(module, name: str, constant: float):
    """Emit `name` calling its own helper `name.epilogue`, which adds `constant`."""
    import llvmlite.ir as lir
    f32 = lir.FloatType()
    helper = lir.Function(module, lir.FunctionType(f32, [f32]), f"{name}.epilogue")
    builder = lir.IRBuilder(helper.append_basic_block("entry"))
    builder.ret(builder.fadd(helper.args[0], lir.Constant(f32, constant)))
    kernel = lir.Function(module, lir.FunctionType(f32, [f32]), name)
    builder = lir.IRBuilder(kernel.append_basic_block("entry"))
    builder.ret(builder.call(helper, [kernel.args[0]]))
    return kernel


def test_kernels_whose_names_prefix_each_other_are_told_apart():
    """The table replaces a kernel's own names in its text by placeholders: `@"p.k1"`
    must not be read inside `@"p.k10"` or `@"p.k1.epilogue"`, and a kernel is shared
    only when its helpers are identical too; the dropped globals leave the module."""
    import llvmlite.ir as lir
    from codegen.emit.kernel_dedupe import KernelTable
    module = lir.Module("dedupe")
    table = KernelTable(module)
    interned = []
    for name, constant in (("p.k1", 1.0), ("p.k10", 1.0), ("p.k11", 2.0), ("p.k100", 2.0)):
        mark = table.mark()
        interned.append(table.intern(_kernel_with_helper(module, name, constant), mark).name)
    assert interned == ["p.k1", "p.k1", "p.k11", "p.k11"]
    assert table.shared == 2
    assert sorted(module.globals) == ["p.k1", "p.k1.epilogue", "p.k11", "p.k11.epilogue"]
    assert "noinline" in module.globals["p.k1"].attributes
