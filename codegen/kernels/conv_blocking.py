"""How a float32 conv is cut into patches blocks and sgemm calls (codegen/kernels/conv_gemm.py).

The conv is out[rows, K] = patches[rows, taps * C] . kernel[taps * C, K], rows the
output positions (batch and spatial, in the result's order). Rows are grouped in
lines (the positions along the last spatial axis, which share everything but that
coordinate), and blocks are whole lines, so the patches code finds a line's
coordinates once and walks its positions with a constant trip count.

Choices, each made here once per conv:
- direct: a contraction of at most DIRECT_MAX_DEPTH (a first layer) skips patches
  and sgemm: each row's features are summed in registers (conv_direct.py); so does
  a longer one with at most two vector registers of features per row, the
  contraction as loops (conv_long_direct.py), when its kernel matrix stays near L2;
- blocks: a patches block stays near BLOCK_FLOATS (cache sized) while giving sgemm
  a contraction of about CONTRACTION_TARGET (at least one tap): the forward convs
  (many rows, short contraction) and the kernel-gradient convs (few rows, a
  contraction over the whole batch) both run as well-shaped products;
- layout: with few input channels (a first layer's 1 or 3) a tap's channels are
  too short to copy as a run, so the block is written k-major ("columns": one
  contiguous run of rows per tap and channel, a vectorised loop), else row-major
  (one memcpy of C channels per row and tap);
- transposed: with fewer output features than the sgemm's register tile is wide
  (NR: 32 floats with AVX-512) a row-major product would compute half-empty tiles,
  so the block computes out^T = kernel^T . patches^T into scratch and transposes
  it into the output (when the contraction is long enough to pay for that copy);
- window-row runs: a 2-D conv on one thread whose window slides by one row at a
  time (stride and dilation 1 along the first spatial axis) writes, per image,
  each padded input row's positions with the taps of one window row side by side
  (block[(row, x), dx * C + c]); the rows of one window row's patches are then a
  strided view of that block (one padded row further per window row), so each
  window row is one sgemm call on that view, accumulating, and the block is
  written once for all of them: the copy is the window's width times the
  input, not its area (5x fewer floats for a 5x5 window);
- threads: a conv summed in registers over a long contraction keeps that path
  under threads: the register path beats patches and sgemm by 1.15-1.8x on one
  thread (below), more than a second thread gained the patches path (small CNN
  train step, 2 threads: 0.25 ms with its three such convs in regions of patches,
  0.17 ms in registers, as on 1 thread); from LONG_DIRECT_REGION_MIN_FLOPS its
  row groups (or output positions) are shared by the threads of a region, several
  shares per thread; any other conv big enough to pay for threads, with at least a line per
  thread, is cut into at least one row block per thread and each thread takes
  whole row blocks (patches, scratch and one-thread sgemm calls in a workspace
  slot it claims: the patches are written in parallel and the whole conv costs one
  region; the blocks are cut in several shares per thread, taken by whichever
  thread is free, so a thread kept off its core delays little); else
  each block's product is split by the threaded sgemm when it is big enough.
"""
from __future__ import annotations

from dataclasses import dataclass

from ir.graph import Op

from ..plan.threads import ThreadPlan
from ..threads.host import CHUNKS_PER_THREAD
from ..threads.sgemm import block_scratch_bytes, threaded_workspace_bytes
from .matmul import SCRATCH_ALIGN, SgemmConfig, round_up
from .sgemm_step import SPINNING_MIN_FLOPS, THREADED_MIN_FLOPS

BLOCK_FLOATS = 1 << 18          # one patches block: 1 MiB of float32
CONTRACTION_TARGET = 1024       # taps * C per sgemm call, at least one tap
COLUMN_CHANNELS = 8             # fewer input channels: the k-major ("columns") layout
# a transposed product pays for its copy back from a contraction about this long
# (measured: 16 features, contraction 288: 73 vs 88 µs; contraction 9: 39 vs 24 µs)
TRANSPOSED_MIN_DEPTH = 64
# at most this contraction (taps * C) and these features: the conv runs in vector
# registers without patches or sgemm (a first layer's 3x3 or 5x5 window on 1 channel)
DIRECT_MAX_DEPTH = 32
DIRECT_MAX_FEATURES = 64
# a longer contraction with at most LONG_DIRECT_VECTORS vector registers of features
# per row: the rows sum in registers over the contraction as loops
# (conv_long_direct.py), as many at a time as the sgemm micro-kernel has
# accumulators, each group streaming the whole kernel matrix, so only while that
# stays near L2 (LONG_DIRECT_KERNEL_BYTES) or the groups are few (LONG_DIRECT_FEW_ROWS).
# Measured, 1 thread, µs, sgemm -> registers: small CNN forward 16->32 43.7 -> 37.4,
# its input gradient 72.5 -> 40.8, kernel gradients 45 -> 38 and 19 -> 6.4; medium
# input gradient 10.9 -> 6.9 ms, first kernel gradient 0.51 -> 0.36 ms.
LONG_DIRECT_VECTORS = 2
LONG_DIRECT_KERNEL_BYTES = 1 << 20
LONG_DIRECT_FEW_ROWS = 64
# window-row runs: at least this many output rows per image (one sgemm call per
# window row on them; fewer and the calls' B packing and C passes cost more than
# the smaller copy saves)
RUNS_MIN_ROWS = 128
# such a conv shares its row groups among threads only from this size (~0.13 ms in
# registers on one core): measured, the small CNN's three 9.4 MFLOP convs (~40 µs
# each) in regions took its train step from 0.166 to 0.172-0.178 ms at 2 threads
# while the second core was busy elsewhere (a region then costs its caller ~2 µs),
# under 2% of a conv from this size on
LONG_DIRECT_REGION_MIN_FLOPS = 32_000_000


@dataclass(frozen=True)
class ConvBlocking:
    """The geometry of one conv's blocked product (see the module docstring)."""

    rows: int
    features: int
    channels: int
    taps: int
    line: int                 # output positions per line (last spatial axis)
    lines: int
    tap_block: int
    lines_per_block: int
    columns: bool             # k-major patches block
    transposed: bool          # out^T = kernel^T . patches^T per block
    region: int               # threads sharing the row blocks (1: no region)
    sgemm_threads: int        # threads of each block's product (region == 1)
    config: SgemmConfig       # the sgemm's blocking for the CPU planned for
    direct: bool = False      # rows in registers, no patches (codegen/kernels/conv_direct.py)
    row_group: int = 0        # > 0: rows in register groups of this many over a long
                              # contraction (codegen/kernels/conv_long_direct.py), one block
    runs: bool = False        # window-row runs: one block per image, a tap block per
                              # window row, read as a view of the block

    @property
    def depth(self) -> int:
        """Contraction of one full tap block."""
        return self.tap_block * self.channels

    @property
    def row_block(self) -> int:
        return self.lines_per_block * self.line

    @property
    def row_blocks(self) -> int:
        return -(-self.lines // self.lines_per_block)

    @property
    def tap_blocks(self) -> int:
        return -(-self.taps // self.tap_block)

    def product(self) -> tuple[int, int, int]:
        """(M, N, K) of one block's sgemm call."""
        if self.transposed:
            return self.features, self.row_block, self.depth
        return self.row_block, self.features, self.depth

    def sgemm_bytes(self) -> int:
        if self.direct:
            return 0
        m, n, k = self.product()
        return round_up(threaded_workspace_bytes(m, n, k, self.sgemm_threads, self.config),
                        SCRATCH_ALIGN)

    def sgemm_stride(self) -> int:
        """Packing scratch per thread of a threaded call."""
        m, n, k = self.product()
        return block_scratch_bytes(m, n, k, self.sgemm_threads, self.config)

    def patches_bytes(self) -> int:
        if self.direct:
            return 0
        if self.runs:   # the image's padded rows: tap_blocks - 1 more than its lines
            rows = (self.lines_per_block + self.tap_blocks - 1) * self.line
            return round_up(rows * self.depth * 4, SCRATCH_ALIGN)
        return round_up(self.row_block * self.depth * 4, SCRATCH_ALIGN)

    def transposed_bytes(self) -> int:
        return round_up(self.row_block * self.features * 4, SCRATCH_ALIGN) if self.transposed else 0

    def slot_bytes(self) -> int:
        """One thread's workspace: sgemm scratch, patches block, transposed result."""
        return self.sgemm_bytes() + self.patches_bytes() + self.transposed_bytes()

    def chunks(self) -> int:
        """Shares of the row blocks in a region: several per thread, so a thread that
        was off its core leaves its shares to the others."""
        return min(self.row_blocks, self.region * CHUNKS_PER_THREAD) if self.region > 1 else 1

    def flags_bytes(self) -> int:
        """The slots' busy flags (one i64 each) ahead of the slots, in a region."""
        return round_up(8 * self.region, SCRATCH_ALIGN) if self.region > 1 else 0

    def workspace_bytes(self) -> int:
        return self.flags_bytes() + self.region * self.slot_bytes()


def plan_blocking(op: Op, threads: ThreadPlan, config: SgemmConfig,
                  long_direct: bool = True) -> ConvBlocking:
    """Blocks, layout, orientation and threads of a conv through sgemm, under the
    compile's thread plan `threads` (the FusionPlan's, passed down by the lowering)
    for the sgemm blocking `config` of the CPU planned for (CompileOptions.cpu);
    `long_direct` (CompileOptions.conv_long_direct) allows summing long contractions
    in registers (conv_long_direct.py)."""
    x, w = op.operands
    y = op.result
    n = len(op.attrs["strides"])
    channels, features = x.shape[-1], w.shape[-1]
    taps = 1
    for size in w.shape[:n]:
        taps *= size
    rows = y.type.size // features
    line = y.shape[-2] if n else 1
    lines = rows // line
    tap_block = max(1, min(taps, CONTRACTION_TARGET // max(channels, 1)))
    depth = tap_block * channels
    most_lines = max(1, min(lines, BLOCK_FLOATS // (depth * line)))
    least = _least_flops(threads)
    count = threads.count
    row_group = _long_row_group(rows, features, taps * channels, config) if long_direct else 0
    flops = 2 * rows * features * taps * channels
    if row_group:
        big = flops >= max(least, LONG_DIRECT_REGION_MIN_FLOPS)
        region = count if big and count > 1 and rows >= count * row_group else 1
    else:
        region = count if flops >= least and count > 1 and lines >= count else 1
    lines_per_block = _balanced(lines, most_lines, region)
    direct = taps * channels <= DIRECT_MAX_DEPTH and features <= DIRECT_MAX_FEATURES
    if row_group:
        direct, lines_per_block = True, lines
    columns = channels < COLUMN_CHANNELS and tap_block == taps
    transposed = (not direct and features < config.nr and depth >= TRANSPOSED_MIN_DEPTH
                  and lines_per_block * line >= 2 * features)
    runs = (count == 1 and region == 1 and not direct and not columns and not transposed
            and _window_row_runs(op, config))
    if runs:
        tap_block, lines_per_block = w.shape[1], y.shape[1]
    sgemm_threads = 1
    if region == 1 and count > 1 and not direct:
        m = lines_per_block * line
        sgemm_threads = count if 2 * m * features * depth >= least else 1
    return ConvBlocking(rows, features, channels, taps, line, lines, tap_block,
                        lines_per_block, columns, transposed, region, sgemm_threads, config,
                        direct, row_group, runs)


def _long_row_group(rows: int, features: int, depth: int, config: SgemmConfig) -> int:
    """Rows per register group of a long-contraction direct conv, or 0 when the
    conv is not one (see LONG_DIRECT_VECTORS)."""
    vectors = -(-features // config.vector_width)
    fits = depth * features * 4 <= LONG_DIRECT_KERNEL_BYTES or rows <= LONG_DIRECT_FEW_ROWS
    if depth <= DIRECT_MAX_DEPTH or vectors > LONG_DIRECT_VECTORS or not fits:
        return 0
    return max(1, min(rows, config.mr * config.nr_vectors // vectors))


def _window_row_runs(op: Op, config: SgemmConfig) -> bool:
    """Whether the conv can run as window-row runs (see the module docstring): two
    spatial axes, the first with stride and dilations 1, a window of several rows
    whose row of taps is one block of K for the sgemm, enough rows per image, and
    an image's padded block within BLOCK_FLOATS."""
    x, w = op.operands
    y = op.result
    attrs = op.attrs
    if len(attrs["strides"]) != 2:
        return False
    unit = (attrs["strides"][0], attrs["rhs_dilation"][0], attrs["lhs_dilation"][0]) == (1, 1, 1)
    height, width = y.shape[1], y.shape[2]
    window_rows, depth = w.shape[0], w.shape[1] * x.shape[-1]
    block = (height + window_rows - 1) * width * depth
    return (unit and window_rows > 1 and depth <= config.kc
            and height * width >= RUNS_MIN_ROWS and block <= BLOCK_FLOATS)


def _least_flops(threads: ThreadPlan) -> int:
    """The product size from which threads pay under `threads`, by the rule
    sgemm_step uses for a dot."""
    return SPINNING_MIN_FLOPS if threads.cheap_regions else THREADED_MIN_FLOPS


def _balanced(lines: int, most: int, threads: int) -> int:
    """Lines per block: at most `most`, with at least one block per thread and a
    block count that is a multiple of `threads` where possible (equal shares for
    the threads of a region)."""
    blocks = max(-(-lines // most), threads)
    blocks = -(-blocks // threads) * threads
    return max(1, -(-lines // blocks))


__all__ = ["BLOCK_FLOATS", "COLUMN_CHANNELS", "CONTRACTION_TARGET", "ConvBlocking",
           "plan_blocking"]
