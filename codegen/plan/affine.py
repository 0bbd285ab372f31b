"""Affine index expressions over a loop nest, and collapsing of loop axes.

A kernel is a loop nest over a *loop space* (one counter per axis). Every index it
needs — an axis of a value being read, or a flat element offset into a buffer — is
an `Affine`: `const + sum(coeffs[k] * counter[k])`. Views (broadcast, transpose,
slice, splitting reshape) only change coefficients, so they cost nothing at run time.

Before emitting, `plan_loops` drops size-1 axes and merges neighbouring axes that
every affine expression of the kernel walks contiguously (`a` outer, `a+1` inner,
`coeff[a] == coeff[a+1] * size[a+1]` for all of them). Pure elementwise kernels so
become one flat counted loop, which is what the loop vectoriser likes best.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence


@dataclass(frozen=True)
class Affine:
    """`const + sum(coeffs[k] * counter[k])` over a loop space's counters."""

    coeffs: tuple[int, ...]
    const: int = 0

    @staticmethod
    def counter(axis: int, rank: int) -> "Affine":
        """The expression that is just loop counter `axis`."""
        return Affine(tuple(1 if k == axis else 0 for k in range(rank)), 0)

    @staticmethod
    def constant(value: int, rank: int) -> "Affine":
        return Affine((0,) * rank, int(value))

    def scale(self, factor: int) -> "Affine":
        return Affine(tuple(c * factor for c in self.coeffs), self.const * factor)

    def shift(self, amount: int) -> "Affine":
        return Affine(self.coeffs, self.const + amount)

    def __add__(self, other: "Affine") -> "Affine":
        return Affine(tuple(a + b for a, b in zip(self.coeffs, other.coeffs)),
                      self.const + other.const)


Access = tuple[Affine, ...]  # one Affine per axis of the value being indexed


def identity_access(rank: int) -> Access:
    """Access of a value whose axes are exactly the loop axes, in order."""
    return tuple(Affine.counter(k, rank) for k in range(rank))


def row_major_strides(shape: Sequence[int]) -> tuple[int, ...]:
    """Element strides of a C-contiguous array of `shape`."""
    strides = []
    step = 1
    for dim in reversed(shape):
        strides.append(step)
        step *= dim
    return tuple(reversed(strides))


def flat_offset(access: Access, shape: Sequence[int], rank: int) -> Affine:
    """Flat element offset into a C-contiguous buffer of `shape` read at `access`."""
    total = Affine.constant(0, rank)
    for axis_index, stride in zip(access, row_major_strides(shape)):
        total = total + axis_index.scale(stride)
    return total


@dataclass(frozen=True)
class LoopPlan:
    """Collapsed loop axes: `groups[j]` lists the original axes merged into axis j."""

    sizes: tuple[int, ...]
    groups: tuple[tuple[int, ...], ...]
    original_rank: int

    def project(self, affine: Affine) -> tuple[tuple[int, ...], int]:
        """Coefficients of `affine` on the collapsed counters, and its constant.

        On a merged group the innermost axis' coefficient is the step of the merged
        counter (valid because merging required contiguity for every expression).
        """
        coeffs = tuple(affine.coeffs[group[-1]] for group in self.groups)
        return coeffs, affine.const


def plan_loops(sizes: Sequence[int], affines: Iterable[Affine],
               barriers: Iterable[int] = ()) -> LoopPlan:
    """Drop size-1 axes and merge contiguous neighbours (never across a barrier).

    A barrier `b` forbids merging axis b-1 with axis b: reductions use it to keep
    kept axes and reduced axes in separate loops.
    """
    affines = list(affines)
    barrier_set = set(barriers)
    kept = [k for k, size in enumerate(sizes) if size != 1]
    groups: list[list[int]] = []
    for axis in kept:
        if groups and _mergeable(groups[-1][-1], axis, sizes, affines, barrier_set):
            groups[-1].append(axis)
        else:
            groups.append([axis])
    merged_sizes = []
    for group in groups:
        size = 1
        for axis in group:
            size *= sizes[axis]
        merged_sizes.append(size)
    return LoopPlan(tuple(merged_sizes), tuple(tuple(g) for g in groups), len(sizes))


def _mergeable(outer: int, inner: int, sizes: Sequence[int], affines: list[Affine],
               barriers: set[int]) -> bool:
    if any(outer < b <= inner for b in barriers):
        return False
    return all(a.coeffs[outer] == a.coeffs[inner] * sizes[inner] for a in affines)
