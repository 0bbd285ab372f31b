"""codegen/affine.py and codegen/views.py: index maps and loop collapsing, checked
against NumPy's own indexing of the same arrays."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from codegen.plan.affine import Affine, flat_offset, identity_access, plan_loops
from codegen.plan.views import reshape_access
from ir import Builder, DType, TensorType


def evaluate(affine: Affine, point) -> int:
    return affine.const + sum(c * p for c, p in zip(affine.coeffs, point))


def test_flat_offset_matches_numpy_ravel():
    shape = (3, 4, 5)
    access = identity_access(3)
    offset = flat_offset(access, shape, 3)
    for point in itertools.product(*map(range, shape)):
        assert evaluate(offset, point) == np.ravel_multi_index(point, shape)


def test_contiguous_axes_merge_and_broadcast_axes_do_not():
    shape = (4, 1, 6, 5)
    own = flat_offset(identity_access(4), shape, 4)
    plan = plan_loops(shape, [own])
    assert plan.sizes == (120,)
    row = Affine((0, 0, 0, 1), 0)  # a [5] row broadcast over the other axes
    plan = plan_loops(shape, [own, row])
    assert plan.sizes == (24, 5)
    assert plan.project(own) == ((5, 1), 0)


def test_barrier_keeps_axes_apart():
    shape = (6, 5)
    own = flat_offset(identity_access(2), shape, 2)
    assert plan_loops(shape, [own], barriers=[1]).sizes == (6, 5)


@pytest.mark.parametrize("source,target", [((12,), (3, 4)), ((6, 4), (2, 3, 2, 2)),
                                           ((1, 6), (6, 1)), ((2, 6), (2, 1, 6))])
def test_splitting_reshape_is_affine_and_matches_numpy(source, target):
    b = Builder("r")
    x = b.input(TensorType(source, DType.i32))
    op_result = b.reshape(x, shape=target)
    op = op_result.producer
    rank = len(target)
    access = reshape_access(op, identity_access(rank), rank)
    assert access is not None
    numbers = np.arange(np.prod(source)).reshape(source)
    reshaped = numbers.reshape(target)
    for point in itertools.product(*map(range, target)):
        index = tuple(evaluate(a, point) for a in access)
        assert numbers[index] == reshaped[point]


def test_merging_reshape_is_not_affine():
    b = Builder("r")
    x = b.input(TensorType((3, 4), DType.i32))
    op = b.reshape(x, shape=(12,)).producer
    assert reshape_access(op, identity_access(1), 1) is None
