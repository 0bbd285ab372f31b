"""Shared pieces of the float32 matmul emitter (codegen/kernels/matmul.py and its helpers
matmul_pack.py, matmul_kernel.py): the blocking geometry `SgemmConfig`, the
`Epilogue` extension point, and small llvmlite helpers (counted loops with runtime
bounds, float addressing, intrinsic declarations).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import llvmlite.ir as lir

PTR = lir.PointerType()
I1 = lir.IntType(1)
I32 = lir.IntType(32)
I64 = lir.IntType(64)
F32 = lir.FloatType()
FLOAT_BYTES = 4

# An epilogue emits elementwise code on one vector of finished C values:
# emit(builder, values, row, col, mask, extra_args) -> new values.
# `row` is the i64 row of C, `col` the i64 column of lane 0, `mask` an <W x i1>
# of the lanes inside C (None when all are), `extra_args` the caller's extra
# function arguments (bias pointers...). It runs once per element, after the last
# block of K, so it sees the complete (accumulated) C value.
EpilogueEmit = Callable[[lir.IRBuilder, lir.Value, lir.Value, lir.Value, "lir.Value | None",
                         Sequence[lir.Value]], lir.Value]


@dataclass(frozen=True)
class Epilogue:
    """Elementwise code fused into the store of each C tile (bias add, activation).

    `arg_types` are extra arguments appended to the sgemm signature and handed to
    `emit` unchanged.
    """

    emit: EpilogueEmit
    arg_types: tuple[lir.Type, ...] = ()


@dataclass(frozen=True)
class SgemmConfig:
    """Blocking geometry: MR x (nr_vectors * vector_width) register tile, KC deep
    panels, MC rows of A and NC columns of B per packed block."""

    vector_width: int
    mr: int
    nr_vectors: int
    kc: int
    mc: int
    nc: int

    @property
    def nr(self) -> int:
        return self.nr_vectors * self.vector_width

    def __post_init__(self) -> None:
        if self.mc % self.mr or self.nc % self.nr:
            raise ValueError(f"SgemmConfig: mc must be a multiple of mr and nc of nr: {self}")


def i64(value: int) -> lir.Constant:
    """An i64 constant (sizes, strides and offsets are all i64)."""
    return lir.Constant(I64, value)


def vector_type(config: SgemmConfig) -> lir.VectorType:
    """<W x float>, one vector register of the configured width."""
    return lir.VectorType(F32, config.vector_width)


def smin(builder: lir.IRBuilder, left: lir.Value, right: lir.Value) -> lir.Value:
    """Signed minimum of two i64 values."""
    return builder.select(builder.icmp_signed("<", left, right), left, right)


def lanes_below(builder: lir.IRBuilder, limit: lir.Value, width: int,
                first_lane: int = 0) -> lir.Value:
    """The <width x i1> mask of lanes first_lane + l < limit (an i64)."""
    index_type = lir.VectorType(I64, width)
    splat = builder.insert_element(lir.Constant(index_type, None), limit, i64(0))
    splat = builder.shuffle_vector(splat, lir.Constant(index_type, None),
                                   lir.Constant(lir.VectorType(I32, width), [0] * width))
    lanes = lir.Constant(index_type, [first_lane + lane for lane in range(width)])
    return builder.icmp_signed("<", lanes, splat)


def float_at(builder: lir.IRBuilder, base: lir.Value, offset: lir.Value) -> lir.Value:
    """Address of float element `offset` of `base`."""
    return builder.gep(base, [offset], source_etype=F32)


def declare(module: lir.Module, name: str, return_type: lir.Type,
            arg_types: Sequence[lir.Type]) -> lir.Function:
    """The function `name` of the module, declared now if it is not there yet."""
    existing = module.globals.get(name)
    if existing is not None:
        return existing
    return lir.Function(module, lir.FunctionType(return_type, list(arg_types)), name=name)


@contextmanager
def counted(builder: lir.IRBuilder, start: lir.Value, stop: lir.Value, step: lir.Value,
            name: str, plain: bool = False) -> Iterator[lir.Value]:
    """`for i in range(start, stop, step)` (runtime i64 bounds, may run 0 times);
    the body is emitted inside the `with` block, which yields the counter.
    `plain`: ask LLVM not to vectorise or unroll the loop (for cold scalar loops,
    where doing so only costs compile time)."""
    before = builder.block
    head = builder.append_basic_block(f"{name}.head")
    body = builder.append_basic_block(f"{name}.body")
    done = builder.append_basic_block(f"{name}.done")
    builder.branch(head)
    builder.position_at_end(head)
    counter = builder.phi(I64, name=name)
    counter.add_incoming(start, before)
    builder.cbranch(builder.icmp_signed("<", counter, stop), body, done)
    builder.position_at_end(body)
    yield counter
    following = builder.add(counter, step, flags=["nsw"])
    counter.add_incoming(following, builder.block)
    latch = builder.branch(head)
    if plain:
        latch.set_metadata("llvm.loop", _plain_loop_id(builder.module))
    builder.position_at_end(done)


def _plain_loop_id(module: lir.Module) -> lir.Value:
    """A fresh `!llvm.loop` node disabling vectorisation and unrolling. Loop IDs must
    be distinct and refer to themselves, which llvmlite's `add_metadata` (it
    interns nodes by content) cannot express, so the node is built directly."""
    disable_vectors = module.add_metadata([lir.MetaDataString(module, "llvm.loop.vectorize.enable"),
                                           lir.Constant(I1, 0)])
    disable_unroll = module.add_metadata([lir.MetaDataString(module, "llvm.loop.unroll.disable")])
    loop_id = lir.values.MDValue(module, [], name=str(len(module.metadata)))
    loop_id.operands = (loop_id, disable_vectors, disable_unroll)
    return loop_id


def internal_function(module: lir.Module, name: str, arg_types: Sequence[lir.Type],
                      arg_names: Sequence[str]) -> lir.Function:
    """A new `void name(args)` helper, private to the module and never inlined."""
    fn = lir.Function(module, lir.FunctionType(lir.VoidType(), list(arg_types)), name=name)
    fn.linkage = "internal"
    fn.attributes.add("nounwind")
    # Called once per block or tile: inlining only slows compilation (the driver's
    # loops get unswitched and duplicated around the bodies).
    fn.attributes.add("noinline")
    for arg, arg_name in zip(fn.args, arg_names):
        arg.name = arg_name
    return fn
