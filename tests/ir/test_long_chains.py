"""No stage recurses on graph depth: a 5,000-op dependency chain goes through tracing,
reverse mode, partition, simplify, the printer, the parser and the verifier with
Python's default recursion limit (compiling long fused chains is codegen/expr.py's
part, tested with it)."""
import sys

import numpy as np

import ir
import propc as pc
from ir.passes.autodiff import vjp_graph
from ir.passes.partition import partition
from ir.passes.simplify import simplify

DEPTH = 5000


def chain(x, lib=pc):
    """Every kind of op the passes walk: views, copies, selects, reductions, converts.
    With lib=np the same code runs on NumPy arrays (the oracle)."""
    for i in range(DEPTH):
        k = i % 8
        if k == 0:
            x = x.T
        elif k == 1:
            x = x.reshape(4, 4)
        elif k == 2:
            x = lib.where(x > 0, x, -x * 0.5)
        elif k == 3:
            x = x + x.sum(axis=0) * 0.001
        elif k == 4:
            x = x.astype(np.float64).astype(np.float32)
        elif k == 5:
            x = lib.concatenate([x[1:], x[:1]])
        elif k == 6:
            x = -x
        else:
            x = lib.maximum(x, x * 0.5)
    return (x * x).sum()


def test_a_5000_op_chain_goes_through_every_ir_stage():
    assert sys.getrecursionlimit() <= 1000
    x = (np.arange(16, dtype=np.float32).reshape(4, 4) - 7.5) / 8
    graph = pc.trace(chain, x)
    assert len(graph.ops) > DEPTH
    text = str(graph)
    assert ir.parse(text) == graph
    ir.verify(graph)
    joint = vjp_graph(graph)
    forward, backward = partition(joint)
    for g in (joint.graph, forward, backward, simplify(joint.graph)):
        ir.verify(g)
        assert ir.parse(str(g)) == g
    value = ir.interpret(graph, x)[0]
    np.testing.assert_allclose(value, chain(x, np), rtol=1e-4)
    grad = pc.grad(chain)(x)
    assert grad.shape == (4, 4) and np.isfinite(grad).all()


def test_a_long_chain_of_copies_partitions_without_recursion():
    def copies(x):
        for i in range(DEPTH):
            x = x[1:] if i % 2 else pc.concatenate([x, x[:1]])
        return (x * x).sum()

    x = np.arange(8, dtype=np.float32)
    # each pair of ops rotates x left by one: the sum of squares, and 2x, stay
    assert np.array_equal(pc.grad(copies)(x), 2 * x)
