"""float32 `conv` (one feature group) through the shared packed sgemm.

The product is out[rows, K] = patches[rows, taps * C] . kernel[taps * C, K], with
rows the output positions (batch and spatial, in the result's order) and the kernel
already laid out as that matrix (window, C, K row-major). The patches matrix is
never built whole: the kernel loops over blocks of rows and blocks of taps, writes
one block of patches (codegen/kernels/conv_patches.py) into its workspace and calls
sgemm on it, accumulating over the tap blocks (with window-row runs, one block per
image serves every tap block, each reading it as a strided view); a conv with a contraction short
enough sums its rows in registers instead (codegen/kernels/conv_direct.py). How the
conv is cut, laid out and threaded is decided once in codegen/kernels/conv_blocking.py;
with threads, each runs whole row blocks in its own workspace slot, all in one
parallel region. Nothing here is a residual: the blocks are scratch.

An elementwise consumer of the conv (its bias add, relu) can run as the product's
epilogue (codegen/kernels/conv_epilogue.py): `dest` is then the consumer's buffer,
the products write into it, and the epilogue rewrites each finished block of rows
while it is in cache (called by sgemm on its last tap block, or by the transposing
copy after it).
"""
from __future__ import annotations

import llvmlite.ir as lir

from ir.graph import Op, Value
from ir.types import DType

from ..emit.bounds import check_span, checks_active
from ..emit.direct import buffered_operands
from ..errors import CodegenError
from ..emit.llvmtypes import F32, I32, I64, PTR, index
from ..emit.parallel_nest import emit_chunked_region
from ..emit.steps import WORKSPACE, KernelEnv, KernelPlan, Step
from ..plan.affine import row_major_strides
from ..plan.fusion import FusionPlan
from ..threads.host import CHUNKS_PER_THREAD, split_range
from ..threads.library import SINGLE, THREADED, shared_sgemm
from .conv_blocking import plan_blocking
from .conv_direct import emit_direct_block
from .conv_long_direct import emit_long_direct, share_units, write_zero_row, zero_row_bytes
from .conv_views import OperandSource, operand_source
from .conv_patches import PatchWriter
from .matmul import EPILOGUE_TYPE, sgemm_config
from .matmul_ir import counted, float_at, smin

NULL = lir.Constant(PTR, None)


def gemm_qualifies(op: Op) -> bool:
    x, w = op.operands
    return (op.result.dtype is DType.f32 and op.attrs["feature_group_count"] == 1
            and min(x.type.size, w.type.size, op.result.type.size) > 0)


def lower_conv_gemm(op: Op, materialized: FusionPlan) -> KernelPlan:
    """The conv's kernel, threaded as the fusion plan's ThreadPlan allows."""
    step = ConvGemmStep(op, materialized)
    return KernelPlan(op.result, [step], step.workspace_bytes())


class ConvGemmStep(Step):
    """The blocked patches + sgemm loops of one conv (see the module docstring).

    `materialized`: the fusion plan, whose ThreadPlan cuts and threads the loops and
    whose options name the CPU (the sgemm blocking) and the kernel switches; a conv
    summed in registers over a long contraction reads an operand without a buffer
    through its transpose (codegen/kernels/conv_views.py), the others read their
    operands' buffers."""

    def __init__(self, op: Op, materialized: FusionPlan, dest: Value | None = None,
                 epilogue=None):
        self.op = op
        self.dest = op.result if dest is None else dest
        self.epilogue = epilogue
        options = materialized.options
        self.blocking = plan_blocking(op, materialized.threads, sgemm_config(options.cpu),
                                      options.conv_long_direct)
        self.threads = max(self.blocking.region, self.blocking.sgemm_threads)
        self.patches = PatchWriter(op, self.blocking)
        if self.blocking.row_group:
            self.sources = [operand_source(op, position, materialized, self.blocking)
                            for position in (0, 1)]
        else:
            buffered_operands(op, materialized)
            self.sources = [OperandSource(v, row_major_strides(v.shape)) for v in op.operands]
        if any(s.buffer not in materialized and s.buffer.producer is not None
               for s in self.sources):
            raise CodegenError("conv: the fusion plan left a buffer this kernel reads out")

    def reads(self) -> set[Value]:
        found = {source.buffer for source in self.sources}
        if self.epilogue is not None:
            found |= self.epilogue.reads()
        return found

    def workspace_bytes(self) -> int:
        if self.blocking.row_group:
            return zero_row_bytes(self.blocking.channels, self.sources[0].strides[-1])
        return self.blocking.workspace_bytes()

    def work(self) -> int:
        s = self.blocking
        return s.rows * s.taps * s.channels * s.features

    def emit(self, env: KernelEnv) -> None:
        b = env.builder
        x, w = (source.buffer for source in self.sources)
        check_span(b, env.pointers[w], 0, w.type.size - 1, "load")
        check_span(b, env.pointers[self.dest], 0, self.dest.type.size - 1, "store")
        callback = [NULL, NULL]
        if self.epilogue is not None:
            callback = self.epilogue.emit_callback(env)
        values = [env.pointers[x], env.pointers[w], env.pointers[self.dest],
                  env.pointers.get(WORKSPACE, NULL), *callback]
        s = self.blocking
        if s.row_group:
            self._in_registers(b, values)
        elif s.region > 1 and not checks_active(b):
            flags = values[3]
            for position in range(s.region):     # every slot free
                b.store(index(0), b.gep(flags, [index(position)], source_etype=I64))
            emit_chunked_region(b, values, s.region, s.chunks(),
                                lambda inner, args, chunk: self._chunk(inner, args, chunk,
                                                                       s.chunks()))
        else:
            self._chunk(b, values, index(0), 1)

    def _in_registers(self, b: lir.IRBuilder, values: list) -> None:
        """A long contraction summed in registers (conv_long_direct.py): its units
        shared by the threads of a region (several shares per thread), or all run
        here; the epilogue on the rows each share wrote, or after the region when a
        share's rows are not consecutive (groups along the batch)."""
        s = self.blocking
        x, w, y, zeros, callback, context = values
        write_zero_row(b, s, self.sources, zeros)
        units = share_units(self.op, s, self.sources)
        chunks = min(units, s.region * CHUNKS_PER_THREAD)
        if s.region == 1 or chunks == 1 or checks_active(b):
            emit_long_direct(b, self.op, s, self.sources, x, w, y, zeros, index(0), index(units))
            self._end_block(b, callback, context, index(0), index(s.rows))
            return
        scattered = []

        def share(inner: lir.IRBuilder, args: list, chunk: lir.Value) -> None:
            first, stop = split_range(inner, index(units), chunk, index(chunks), 1)
            rows = emit_long_direct(inner, self.op, s, self.sources, *args[:4], first, stop)
            if rows is None:
                scattered.append(True)
            else:
                self._end_block(inner, args[4], args[5], rows[0], inner.sub(rows[1], rows[0]))
        emit_chunked_region(b, values, s.region, chunks, share)
        if scattered:
            self._end_block(b, callback, context, index(0), index(s.rows))

    def _chunk(self, b: lir.IRBuilder, values: list, chunk: lir.Value, chunks: int) -> None:
        """The row blocks of share `chunk` of `chunks`, in a workspace slot it holds
        meanwhile (claimed from the busy flags in a region: at most `region` shares
        run at once, so one is always free)."""
        s = self.blocking
        workspace = values[3]
        first, stop = split_range(b, index(s.row_blocks), chunk, index(chunks), 1)
        number = _claim_slot(b, workspace, s.region) if chunks > 1 else index(0)
        offset = b.add(index(s.flags_bytes()), b.mul(number, index(s.slot_bytes())))
        slot = b.gep(workspace, [offset], inbounds=True, source_etype=lir.IntType(8))
        with counted(b, first, stop, index(1), "cblock") as row_chunk:
            first_line = b.mul(row_chunk, index(s.lines_per_block))
            lines = smin(b, index(s.lines_per_block), b.sub(index(s.lines), first_line))
            self._block(b, values, slot, first_line, lines)
        if chunks > 1:
            # free the slot; release: its writes come before the next claim sees it free
            b.atomic_rmw("xchg", b.gep(workspace, [number], source_etype=I64), index(0),
                         "release")

    def _block(self, b: lir.IRBuilder, values: list, slot: lir.Value, first_line: lir.Value,
               lines: lir.Value) -> None:
        """One row block: its patches and products (or direct rows), then the epilogue."""
        s = self.blocking
        x, w, y, _, callback, context = values
        first_row = b.mul(first_line, index(s.line))
        rows = b.mul(lines, index(s.line))
        if s.direct:
            emit_direct_block(b, self.op, s, x, w, y, first_line, lines)
            self._end_block(b, callback, context, first_row, rows)
            return
        block = b.gep(slot, [index(s.sgemm_bytes())], inbounds=True, source_etype=lir.IntType(8))
        turned = b.gep(block, [index(s.patches_bytes())], inbounds=True,
                       source_etype=lir.IntType(8))
        target = turned if s.transposed else float_at(b, y, b.mul(first_row, index(s.features)))
        # the sgemm runs the epilogue itself, unless the result is transposed after it
        ending = [NULL, NULL, first_row] if s.transposed else [callback, context, first_row]

        if s.runs:   # one block for every window row, each read one padded row further
            self.patches.fill_runs(b, x, block, first_line, lines)

        def tap_chunk(tap_index, last):
            first_tap = b.mul(tap_index, index(s.tap_block))
            taps = smin(b, index(s.tap_block), b.sub(index(s.taps), first_tap))
            view = block
            if s.runs:
                view = float_at(b, block, b.mul(tap_index, index(s.line * s.depth)))
            else:
                self.patches.fill(b, x, block, first_line, lines, first_tap, taps)
            self._multiply(b, w, view, slot, target, rows, first_tap, taps, tap_index, last,
                           ending)
        if s.tap_blocks == 1:
            tap_chunk(index(0), None)
        else:
            with counted(b, index(0), index(s.tap_blocks), index(1), "ctap") as tap_index:
                tap_chunk(tap_index, b.icmp_signed("==", tap_index, index(s.tap_blocks - 1)))
        if s.transposed:
            self._transpose_out(b, turned, y, first_row, rows)
            self._end_block(b, callback, context, first_row, rows)

    def _multiply(self, b, w_ptr, block, scratch, target, rows, first_tap, taps, tap_index,
                  last, ending) -> None:
        """One block's product into `target`, accumulating after the first tap block;
        the epilogue (ending: callback, context, first row) only on the last one."""
        s = self.blocking
        c, k = s.channels, s.features
        kernel = float_at(b, w_ptr, b.mul(first_tap, index(c * k)))
        depth = b.mul(taps, index(c))
        accumulate = b.zext(b.icmp_signed(">", tap_index, index(0)), I32)
        # the block: A[r, d] (rows layout) or its k-major transpose (columns layout)
        along_rows, along_depth = (index(1), index(s.row_block)) if s.columns else (
            index(s.depth), index(1))
        if s.transposed:   # out^T[k, r] = kernel^T[k, d] . block^T[d, r]
            args = [index(k), rows, depth, kernel, index(1), index(k),
                    block, along_depth, along_rows, target, index(s.row_block)]
        else:
            args = [rows, index(k), depth, block, along_rows, along_depth,
                    kernel, index(k), index(1), target, index(k)]
        callback, context, first_row = ending
        if last is not None:
            callback = b.select(last, callback, NULL)
        args += [accumulate, scratch, callback, context, first_row, index(0)]
        if s.sgemm_threads > 1:
            threaded = [index(s.sgemm_threads), index(s.sgemm_stride())]
            b.call(shared_sgemm(b.module, THREADED), threaded + args)
        else:
            b.call(shared_sgemm(b.module, SINGLE), args)

    def _transpose_out(self, b, turned, y, first_row, rows) -> None:
        """y[first_row + r, k] = turned[k, r]."""
        s = self.blocking
        with counted(b, index(0), rows, index(1), "trow") as row:
            out = float_at(b, y, b.mul(b.add(first_row, row), index(s.features)))
            for feature in range(s.features):
                value = b.load(float_at(b, turned, b.add(b.mul(index(feature),
                                                               index(s.row_block)), row)),
                               typ=F32)
                b.store(value, float_at(b, out, index(feature)))

    def _end_block(self, b, callback, context, first_row, rows) -> None:
        """The epilogue on rows [first_row, +rows), all features (when there is one)."""
        if self.epilogue is None:
            return
        address = b.ptrtoint(callback, lir.IntType(64))
        with b.if_then(b.icmp_signed("!=", address, index(0))):
            # an indirect call needs a pointer typed with its function type
            function = b.inttoptr(address, EPILOGUE_TYPE.as_pointer())
            b.call(function, [context, first_row, index(0), rows, index(self.blocking.features)])



def _claim_slot(b: lir.IRBuilder, flags: lir.Value, slots: int) -> lir.Value:
    """The number of a free slot, marked busy: busy flag 0 -> 1 by compare-and-swap,
    trying the slots in turn until one is taken."""
    entry = b.block
    trying = b.append_basic_block("slot.try")
    taken = b.append_basic_block("slot.taken")
    b.branch(trying)
    b.position_at_end(trying)
    number = b.phi(I64, name="slot")
    number.add_incoming(index(0), entry)
    swapped = b.cmpxchg(b.gep(flags, [number], source_etype=I64), index(0), index(1),
                        "acquire", "monotonic")
    following = b.urem(b.add(number, index(1)), index(slots))
    number.add_incoming(following, trying)
    b.cbranch(b.extract_value(swapped, 1), taken, trying)
    b.position_at_end(taken)
    return number


__all__ = ["ConvGemmStep", "gemm_qualifies", "lower_conv_gemm"]
