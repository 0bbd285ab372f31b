"""Emitting fused expressions: a tree (codegen/plan/expr_tree.py) as LLVM instructions.

`Emitter` turns a tree into LLVM instructions at one loop point, given the
pointers of the kernel's buffers and its (collapsed) loop counters. The tree
types and `ExprBuilder` are re-exported here for the kernels that build and emit.
"""
from __future__ import annotations

import llvmlite.ir as lir

from ir.graph import Value
from ir.types import DType

from ..errors import CodegenError
from ..plan.affine import Affine, LoopPlan
from ..plan.expr_tree import (Apply, Const, ExprBuilder, Iota, Load, Node, constant_source,
                              iota_source, splat_value)
from .elementwise import Scalar, emit_convert, emit_elementwise
from .llvmtypes import index, load_element, scalar_constant


class Emitter:
    """Emits trees at one loop point: `counters` are the collapsed loop counters;
    `mathlib`: transcendentals as inline polynomials (the compile's
    CompileOptions.mathlib, which the kernel's KernelEnv carries), else intrinsics."""

    def __init__(self, builder: lir.IRBuilder, pointers: dict[Value, lir.Value],
                 plan: LoopPlan, counters: list[lir.Value], mathlib: bool):
        self.builder = builder
        self.pointers = pointers
        self.plan = plan
        self.counters = counters
        self.mathlib = mathlib
        self._memo: dict[int, lir.Value] = {}

    def offset(self, affine: Affine) -> lir.Value:
        """i64 value of an affine expression at this point."""
        coeffs, const = self.plan.project(affine)
        b = self.builder
        total = None
        for coeff, counter in zip(coeffs, self.counters):
            if coeff == 0:
                continue
            term = counter if coeff == 1 else b.mul(counter, index(coeff), flags=["nsw"])
            total = term if total is None else b.add(total, term, flags=["nsw"])
        if total is None:
            return index(const)
        return total if const == 0 else b.add(total, index(const), flags=["nsw"])

    def emit(self, node: Node) -> lir.Value:
        """The LLVM value of `node`, emitting its arguments first (first to last,
        depth first) with an explicit stack: deep trees overflow Python's recursion."""
        todo = [node]
        while todo:
            current = todo[-1]
            if id(current) in self._memo:
                todo.pop()
                continue
            if isinstance(current, Apply):
                missing = [arg for arg in current.args if id(arg) not in self._memo]
                if missing:
                    todo.extend(reversed(missing))
                    continue
            todo.pop()
            self._memo[id(current)] = self._emit(current)
        return self._memo[id(node)]

    def _emit(self, node: Node) -> lir.Value:
        if isinstance(node, Load):
            pointer = self.pointers[node.value]
            return load_element(self.builder, pointer, self.offset(node.offset), node.dtype)
        if isinstance(node, Const):
            return scalar_constant(node.value, node.dtype)
        if isinstance(node, Iota):
            position = self.offset(node.index)
            return emit_convert(self.builder, position, DType.i64, node.dtype)
        if isinstance(node, Apply):
            args = [self.emit(a) for a in node.args]
            scalar = Scalar(node.attrs, tuple(a.dtype for a in node.args), node.dtype,
                            self.mathlib)
            return emit_elementwise(self.builder, node.prim, args, scalar)
        raise CodegenError(f"unknown expression node {type(node).__name__}")


__all__ = ["Apply", "Const", "Emitter", "ExprBuilder", "Iota", "Load", "Node",
           "constant_source", "iota_source", "splat_value"]
