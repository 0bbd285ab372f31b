"""Debug mode (codegen/bounds.py) around the shared sgemm (codegen/sgemm_step.py).

A float32 dot lowered to the packed sgemm is a call into a library, so its element
accesses cannot be checked one by one: SgemmStep checks the call's lowest and
highest offsets into A, B and C before it is made. Every sgemm-eligible form of dot
must still match the interpreter under debug mode (no false alarms), and a plan
made deliberately too big must be caught, naming the dot.
"""
from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

import codegen
from codegen.kernels import sgemm_step
from codegen.plan import sgemm_layout
from ir import Builder, DType, SourceLoc, TensorType, interpret

from codegen_oracle import assert_matches, random_array

F32 = DType.f32


@pytest.fixture
def no_cache(monkeypatch):
    """A broken plan must not reach the disk cache (nor be served from it)."""
    monkeypatch.setenv("PROPC_CACHE", "0")
    monkeypatch.delenv("PROPC_DEBUG", raising=False)


def dot(b: Builder, lhs, rhs, lb=(), rb=(), lc=(1,), rc=(0,)):
    return b.dot(lhs, rhs, lhs_batch=lb, rhs_batch=rb, lhs_contract=lc, rhs_contract=rc)


def plain(b):
    return dot(b, b.input(TensorType((7, 13), F32)), b.input(TensorType((13, 9), F32)))


def lhs_transposed(b):
    return dot(b, b.input(TensorType((13, 7), F32)), b.input(TensorType((13, 9), F32)),
               lc=(0,))


def rhs_transposed(b):
    return dot(b, b.input(TensorType((7, 13), F32)), b.input(TensorType((9, 13), F32)),
               rc=(1,))


def both_transposed_views(b):
    x = b.transpose(b.input(TensorType((13, 7), F32)), perm=(1, 0))
    w = b.transpose(b.input(TensorType((9, 13), F32)), perm=(1, 0))
    return dot(b, x, w)


def batched(b):
    return dot(b, b.input(TensorType((3, 5, 6), F32)), b.input(TensorType((3, 6, 4), F32)),
               lb=(0,), rb=(0,), lc=(2,), rc=(1,))


def batched_shared_rhs(b):
    """The rhs broadcast over the batch: batch stride 0."""
    w = b.broadcast_in_dim(b.input(TensorType((6, 4), F32)), shape=(3, 6, 4), dims=(1, 2))
    return dot(b, b.input(TensorType((3, 5, 6), F32)), w, lb=(0,), rb=(0,), lc=(2,), rc=(1,))


def sliced_columns(b):
    """x[:, 1:5] @ w: lhs rows strided by 8, starting one element in."""
    x = b.slice(b.input(TensorType((6, 8), F32)), start=(0, 1), stop=(6, 5), stride=(1, 1))
    return dot(b, x, b.input(TensorType((4, 3), F32)))


def sliced_both(b):
    """Strided and offset slices of bigger buffers on both sides, ending at their
    last rows (the highest offsets are the buffers' last elements)."""
    x = b.slice(b.input(TensorType((9, 10), F32)), start=(1, 2), stop=(9, 10), stride=(2, 1))
    w = b.slice(b.input(TensorType((11, 7), F32)), start=(3, 1), stop=(11, 7), stride=(1, 2))
    return dot(b, x, w)


def reversed_rows(b):
    """rev reads the lhs backwards: a negative row stride from the buffer's end."""
    x = b.rev(b.input(TensorType((7, 13), F32)), dims=(0,))
    return dot(b, x, b.input(TensorType((13, 9), F32)))


def reversed_contraction(b):
    w = b.rev(b.input(TensorType((13, 9), F32)), dims=(0, 1))
    return dot(b, b.input(TensorType((7, 13), F32)), w)


def empty_contraction(b):
    """K = 0: C is all zeros, A and B are not read."""
    return dot(b, b.input(TensorType((4, 0), F32)), b.input(TensorType((0, 3), F32)))


FORMS = [plain, lhs_transposed, rhs_transposed, both_transposed_views, batched,
         batched_shared_rhs, sliced_columns, sliced_both, reversed_rows,
         reversed_contraction, empty_contraction]


def build(form):
    b = Builder(form.__name__)
    with b.at(SourceLoc("model.py", 42)):
        b.output(form(b))
    return b.build()


def sgemm_kernels(llvm_text: str) -> list[str]:
    """The bodies of the functions in `llvm_text` that call a shared sgemm."""
    bodies = re.findall(r"^define .*?^\}", llvm_text, flags=re.M | re.S)
    return [body for body in bodies if "@\"propc.shared.sgemm" in body]


def product_bound(graph, arrays) -> np.ndarray:
    """n * eps * (|A| . |B|): how far a float32 dot may differ from the interpreter's
    (a different summation order), computed on the absolute inputs."""
    absolute = [np.abs(a).astype(np.float32) for a in arrays]
    (terms,) = interpret(graph, *absolute)
    depth = max(a.size for a in arrays)
    return depth * np.finfo(np.float32).eps * terms.astype(np.float64) + 1e-6


@pytest.mark.parametrize("form", FORMS, ids=lambda form: form.__name__)
def test_sgemm_forms_pass_under_debug_mode(form, no_cache):
    graph = build(form)
    rng = np.random.default_rng(len(form.__name__))
    arrays = [random_array(rng, v.type, edges=False) for v in graph.inputs]
    exe = codegen.compile_graph(graph, debug=True)
    kernels = sgemm_kernels(exe.unoptimised_ir)
    assert len(kernels) == 1, f"{form.__name__}: not lowered to one sgemm call"
    if min(graph.outputs[0].shape, default=1) > 0:
        assert "bounds.fail" in kernels[0], f"{form.__name__}: the sgemm call is unchecked"
    (got,) = exe(*arrays)
    (want,) = interpret(graph, *arrays)
    assert_matches(got, want, form.__name__, "sum", atol=product_bound(graph, arrays))


BROKEN = [(form, group) for form in (plain, lhs_transposed, sliced_both, reversed_rows,
                                     reversed_contraction) for group in ("m", "n", "k")]
BROKEN += [(batched, group) for group in ("batch", "m", "n", "k")]
BROKEN += [(batched_shared_rhs, "batch")]


@pytest.mark.parametrize("form,group", BROKEN,
                         ids=[f"{form.__name__}-{group}" for form, group in BROKEN])
def test_regression_sgemm_plan_one_too_big_is_caught(form, group, monkeypatch, no_cache):
    """Before span checks the library call was unchecked: a plan one row, column,
    step of K or batch entry too big read or wrote past a buffer silently."""
    planned = sgemm_layout._shape   # the sgemm's shape is planned there

    def one_too_big(*args):
        shape = planned(*args)
        assert shape is not None, f"{form.__name__} no longer lowers to sgemm"
        return dataclasses.replace(shape, **{group: getattr(shape, group) + 1})

    monkeypatch.setattr(sgemm_layout, "_shape", one_too_big)
    graph = build(form)
    arrays = [np.ones(v.type.shape, np.float32) for v in graph.inputs]
    exe = codegen.compile_graph(graph, debug=True)
    with pytest.raises(codegen.BoundsCheckError) as caught:
        exe(*arrays)
    message = str(caught.value)
    assert re.search(r"computing %\d+ = dot .*\(model\.py:42\)", message), message
    assert re.search(r"(load|store) of element -?\d+ of ", message), message


def test_span_covers_negative_and_zero_strides():
    """_span against the offsets enumerated one by one."""
    shape = sgemm_step.SgemmShape(batch=3, m=4, n=5, k=2,
                                  a={"batch": 0, "m": -7, "k": 3, "const": 40},
                                  b={"batch": 10, "k": -5, "n": 1, "const": 12},
                                  c={"batch": 20, "m": 5, "n": 1, "const": 0})
    sizes = {"batch": 3, "m": 4, "n": 5, "k": 2}
    for strides, groups in ((shape.a, ("batch", "m", "k")), (shape.b, ("batch", "k", "n")),
                            (shape.c, ("batch", "m", "n"))):
        grids = np.meshgrid(*[np.arange(sizes[g]) for g in groups], indexing="ij")
        offsets = strides["const"] + sum(grid * strides[g] for grid, g in zip(grids, groups))
        assert sgemm_step._span(shape, strides, groups) == (offsets.min(), offsets.max())
