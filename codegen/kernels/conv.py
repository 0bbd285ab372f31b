"""Direct loop lowerings of `conv` and `reduce_window_sum/max` (codegen/emit/direct.py).

conv: the output is zero-filled, then loops (batch, output position, group, window
tap, input channel) load one input element (the identity 0 where the tap falls in
padding or a dilation hole) and add its products with a contiguous row of the
kernel into a contiguous row of the output (the innermost loop, over the group's
output features, vectorises). reduce_window: per output element, the window taps
reduce into a register.
"""
from __future__ import annotations

import llvmlite.ir as lir

from ir.graph import Op, Value
from ir.types import DType

from .conv_gemm import gemm_qualifies, lower_conv_gemm
from .conv_views import buffers_read
from ..emit.direct import add_values, all_of, fill_body, flat, plan, window_position
from ..emit.elementwise import emit_max, intrinsic
from ..plan.affine import Affine, flat_offset
from ..plan.fusion import FusionPlan
from ..plan.threads import ThreadPlan
from ..options import CompileOptions
from ..emit.expr import ExprBuilder
from ..emit.kernels import fill_step
from ..emit.llvmtypes import index, load_element, lowest, scalar_constant, store_element
from ..emit.steps import ReduceStep
from ..emit.loops import loop_nest
from ..emit.steps import KernelPlan


def lower_conv(op: Op, materialized: FusionPlan) -> KernelPlan:
    """float32 single-group convs go through sgemm (codegen/kernels/conv_gemm.py), the rest
    through the direct loops below."""
    if materialized.options.sgemm_conv and gemm_qualifies(op):
        return lower_conv_gemm(op, materialized)
    x, w = op.operands
    y = op.result
    empty = x.type.size == 0 or w.type.size == 0 or y.type.size == 0
    return plan(op, materialized, [fill_body(y, 0)] + ([] if empty else [_conv_body(op)]))


def conv_buffers_read(op: Op, threads: ThreadPlan, options: CompileOptions) -> list[Value]:
    """The conv's `Lowering.buffers_read` planning query: its operands, except those
    a conv summed in registers reads through their transpose (conv_views.py)."""
    if options.sgemm_conv and gemm_qualifies(op):
        return buffers_read(op, threads, options)
    return list(op.operands)


def _conv_body(op: Op):
    x, w = op.operands
    y = op.result
    attrs = op.attrs
    n = len(attrs["strides"])
    groups = attrs["feature_group_count"]
    per_group_in = w.shape[n]
    per_group_out = w.shape[-1] // groups
    dtype = y.dtype
    zero = scalar_constant(0, dtype)
    sizes = [x.shape[0], *y.shape[1:-1], groups, *w.shape[:n], per_group_in]

    def body(b: lir.IRBuilder, pointers: dict) -> None:
        def point(c, _):
            batch, outs, group = c[0], c[1:1 + n], c[1 + n]
            taps, channel = c[2 + n:2 + 2 * n], c[2 + 2 * n]
            found = [window_position(b, outs[k], taps[k], attrs["strides"][k],
                                     attrs["rhs_dilation"][k], attrs["padding_low"][k],
                                     attrs["lhs_dilation"][k], x.shape[1 + k]) for k in range(n)]
            inside = all_of(b, [flag for flag, _ in found])
            channel_in = b.add(b.mul(group, index(per_group_in)), channel)
            x_at = flat(b, [batch, *[i for _, i in found], channel_in], x.shape)
            value = b.select(inside, load_element(b, pointers[x], x_at, dtype), zero)
            first = b.mul(group, index(per_group_out))
            w_row = flat(b, [*taps, channel, first], w.shape)
            y_row = flat(b, [batch, *outs, first], y.shape)

            def feature(f, _):
                y_at = b.add(y_row, f[0])
                product = b.fmul(value, load_element(b, pointers[w], b.add(w_row, f[0]), dtype),
                                 flags=("contract",))
                total = b.fadd(load_element(b, pointers[y], y_at, dtype), product,
                               flags=("contract",))
                store_element(b, pointers[y], y_at, dtype, total)
                return []
            loop_nest(b, [per_group_out], feature)
            return []
        loop_nest(b, sizes, point)
    return body


def _combine(kind: str, dtype: DType):
    if kind == "sum":
        return lambda b, acc, value: add_values(b, acc, value, dtype)
    if dtype.is_float:   # NaN wins and -0.0 < +0.0, as in reduce_max
        return lambda b, acc, value: intrinsic(b, "llvm.maximum", [acc, value])
    return lambda b, acc, value: emit_max(b, acc, value, dtype)


def _trivial(attrs: dict, axis: int) -> bool:
    """An axis the window does not slide along: output index = operand index."""
    return (attrs["window"][axis] == 1 and attrs["strides"][axis] == 1
            and attrs["padding_low"][axis] == 0 and attrs["padding_high"][axis] == 0)


def window_reads_buffer(op: Op) -> bool:
    """The `buffered_operands` planning query of reduce_window_sum/max: windows with
    padding (and empty ones) read the operand's buffer; the others read it through
    affine indices, so its elementwise producers fuse into the pooling loop."""
    (x,) = op.operands
    fused = (x.type.size > 0 and op.result.type.size > 0 and x.ndim > 0
             and not any(op.attrs["padding_low"] + op.attrs["padding_high"]))
    return not fused


def _lower_reduce_window(op: Op, materialized: set[Value], kind: str) -> KernelPlan:
    """Fill the output with the identity, then loop over (output axes but the last,
    window taps, last output axis) combining into the output in memory: the innermost
    loop walks the output's last axis (an NHWC pool's channels: contiguous, with no
    index arithmetic on axes the window does not slide along), so it vectorises."""
    (x,) = op.operands
    y = op.result
    attrs = op.attrs
    dtype = y.dtype
    identity = 0 if kind == "sum" else lowest(dtype)
    if x.type.size == 0 or y.type.size == 0:
        return plan(op, materialized, [fill_body(y, identity)])
    if not window_reads_buffer(op):
        return _fused_reduce_window(op, materialized, kind, identity)
    start = scalar_constant(identity, dtype)
    combine = _combine(kind, dtype)
    rank = x.ndim
    sliding = [axis for axis in range(rank) if not _trivial(attrs, axis)]
    last = list(y.shape[-1:])              # none for a 0-d operand
    sizes = list(y.shape[:-1]) + [attrs["window"][axis] for axis in sliding] + last

    def body(b: lir.IRBuilder, pointers: dict) -> None:
        def point(counters, _):
            outer = max(rank - 1, 0)
            outs = counters[:outer] + counters[len(counters) - len(last):]
            taps = dict(zip(sliding, counters[outer:len(counters) - len(last)]))
            flags, position = [], []
            for axis in range(rank):
                if axis not in taps:
                    position.append(outs[axis])
                    continue
                flag, at = window_position(b, outs[axis], taps[axis], attrs["strides"][axis], 1,
                                           attrs["padding_low"][axis], 1, x.shape[axis])
                flags.append(flag)
                position.append(at)
            value = load_element(b, pointers[x], flat(b, position, x.shape), dtype)
            if flags:
                value = b.select(all_of(b, flags), value, start)
            at = flat(b, outs, y.shape)
            store_element(b, pointers[y], at, dtype,
                          combine(b, load_element(b, pointers[y], at, dtype), value))
            return []
        loop_nest(b, sizes, point)
    return plan(op, materialized, [fill_body(y, identity), body])


def _fused_reduce_window(op: Op, materialized: set[Value], kind: str, identity) -> KernelPlan:
    """Windows without padding: every tap is in range, so the operand is read through
    affine indices (o * stride + tap) and its elementwise producers (a conv's bias and
    relu) are fused into the pooling loop instead of getting a buffer. Loop order and
    in-memory accumulation as in the direct kernel (last output axis innermost)."""
    (x,) = op.operands
    y = op.result
    attrs = op.attrs
    rank = x.ndim
    total = 2 * rank      # loop axes: outputs but the last, taps, the last output
    out_axis = list(range(rank - 1)) + [total - 1]
    tap_axis = [rank - 1 + k for k in range(rank)]
    access = tuple(Affine.counter(out_axis[k], total).scale(attrs["strides"][k])
                   + Affine.counter(tap_axis[k], total) for k in range(rank))
    exprs = ExprBuilder(materialized, total)
    node = exprs.read(x, access)
    dest = flat_offset(tuple(Affine.counter(a, total) for a in out_axis), y.shape, total)
    sizes = list(y.shape[:-1]) + list(attrs["window"]) + [y.shape[-1]]
    pick = _combine(kind, y.dtype)
    step = ReduceStep(sizes, 0, exprs, [node], lambda b, acc, values: pick(b, acc, values[0]), scalar_constant(identity, y.dtype), y,
                      dest, y.dtype, False)
    return KernelPlan(y, [fill_step(y.shape, y.dtype, identity, y), step])


def lower_reduce_window_sum(op: Op, materialized: set[Value]) -> KernelPlan:
    return _lower_reduce_window(op, materialized, "sum")


def lower_reduce_window_max(op: Op, materialized: set[Value]) -> KernelPlan:
    return _lower_reduce_window(op, materialized, "max")
