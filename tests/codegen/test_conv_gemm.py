"""float32 convs through the blocked patches + sgemm path (codegen/conv_gemm.py):
several row blocks and tap blocks (a partial last block of each), strides, dilations
and cropping padding, against the interpreter and against the direct loops; each
also summed in registers over its contraction where it qualifies
(codegen/kernels/conv_long_direct.py) and through patches with that switched off;
and in debug mode."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import codegen
from codegen.kernels import conv_blocking
from codegen.plan.threads import SERIAL, ThreadPlan
from codegen.emit.lowering import plan_graph
from codegen.options import from_environment
from codegen.threads import host
from codegen.kernels.conv_blocking import BLOCK_FLOATS, CONTRACTION_TARGET, plan_blocking
from codegen.kernels.matmul import host_config
from ir import Builder, DType, TensorType, interpret


def conv_graph(x_shape, w_shape, **attrs):
    b = Builder("conv")
    x = b.input(TensorType(x_shape, DType.f32))
    w = b.input(TensorType(w_shape, DType.f32))
    b.output(b.conv(x, w, **attrs))
    return b.build()


def attrs(strides, low, high, lhs=(1, 1), rhs=(1, 1)):
    return dict(strides=strides, padding_low=low, padding_high=high, lhs_dilation=lhs,
                rhs_dilation=rhs, feature_group_count=1)


CASES = [
    # 64 channels: 16 taps per block, so a 5x5 window takes a full and a partial block;
    # 41 lines of 7 rows, at most 36 lines a block: blocks of 21 and 20 lines
    ("blocks", (1, 41, 7, 64), (5, 5, 64, 8), attrs((1, 1), (2, 2), (2, 2))),
    ("strided dilated cropped", (3, 13, 8, 5), (5, 3, 5, 7),
     attrs((2, 1), (1, -1), (0, 2), lhs=(1, 2), rhs=(2, 1))),
    ("kernel gradient shape", (4, 6, 6, 40), (4, 4, 40, 3), attrs((1, 1), (0, 1), (1, 0))),
    # 4 channels, 40 features: k-major patches, a row-major product
    ("few channels wide", (2, 9, 7, 4), (3, 3, 4, 40), attrs((1, 1), (1, 1), (1, 1))),
    # contractions of 25 and 27: in registers (codegen/kernels/conv_direct.py), a line
    # of 9 positions is a group of 8 and a tail of 1
    ("first layer", (1, 9, 9, 1), (5, 5, 1, 20), attrs((1, 1), (2, 2), (2, 2))),
    ("first layer strided dilated", (2, 8, 9, 3), (3, 3, 3, 10),
     attrs((2, 1), (1, 0), (0, 2), lhs=(1, 2), rhs=(2, 1))),
    # 9 channels, 33 features, batch 1: row-major patches and product
    ("wide", (1, 6, 5, 9), (3, 2, 9, 33), attrs((2, 1), (1, 0), (1, 1), rhs=(1, 2))),
    # a first layer's kernel gradient: 9 rows of 16 features, 4096 deep, in one group
    ("first kernel gradient", (1, 8, 8, 64), (8, 8, 64, 16), attrs((1, 1), (1, 1), (1, 1))),
    # 24 features (two vectors a row): 90 rows, groups of 8 and a tail of 2
    ("groups and a tail", (3, 5, 6, 20), (3, 3, 20, 24), attrs((1, 1), (1, 1), (1, 1))),
    # window-row runs (one block per image, a view per window row): 17 lines of 8,
    # strided, dilated and unevenly padded along the rows' positions, 40 features
    ("window-row runs", (2, 16, 20, 8), (3, 5, 8, 40),
     attrs((1, 2), (1, 2), (2, 1), rhs=(1, 2))),
    # a medium CNN's second layer on 2 images, cropped above and padded below
    ("window-row runs cropped", (2, 14, 14, 32), (5, 5, 32, 64),
     attrs((1, 1), (-1, 2), (3, 2))),
]


@pytest.fixture(params=[True, False], ids=["long in registers", "patches"])
def long_direct(request):
    """Long contractions summed in registers (the default) or, switched off, every
    conv past DIRECT_MAX_DEPTH through patches and sgemm."""
    return request.param


def options_with(**switches):
    return dataclasses.replace(from_environment(), **switches)


def test_the_cases_take_every_layout_and_orientation():
    """Row-major and k-major patches, each with a plain and a transposed product, and
    the convs in registers."""
    kinds = set()
    for _, x_shape, w_shape, attributes in CASES:
        op = conv_graph(x_shape, w_shape, **attributes).ops[0]
        blocking = plan_blocking(op, SERIAL, host_config(), long_direct=False)
        kinds.add("direct" if blocking.direct else (blocking.columns, blocking.transposed))
    assert kinds == {(False, False), (False, True), (True, False), (True, True), "direct"}


def test_long_contractions_of_few_features_sum_in_registers():
    """With the long-contraction kernel on, the cases of at most two vectors of
    features go there (the tail group included); the wider ones keep patches."""
    groups = {name: plan_blocking(conv_graph(x_shape, w_shape, **attributes).ops[0], SERIAL,
                                  host_config()).row_group
              for name, x_shape, w_shape, attributes in CASES}
    assert groups["first kernel gradient"] == 9 and groups["groups and a tail"] == 8
    assert groups["kernel gradient shape"] > 0 and groups["strided dilated cropped"] > 0
    assert groups["wide"] == 0 and groups["few channels wide"] == 0


def test_window_row_runs_on_one_thread_only():
    """The run cases write one block per image, a window row of taps per sgemm
    call; under threads they keep the ordinary patches."""
    for name, x_shape, w_shape, attributes in CASES:
        op = conv_graph(x_shape, w_shape, **attributes).ops[0]
        serial = plan_blocking(op, SERIAL, host_config(), long_direct=False)
        threaded = plan_blocking(op, ThreadPlan(2, pool=True), host_config(), long_direct=False)
        assert serial.runs is name.startswith("window-row runs")
        assert not threaded.runs
        if serial.runs:
            assert serial.tap_block == w_shape[1] and serial.tap_blocks == w_shape[0]
            assert serial.lines_per_block == op.result.shape[1]


def test_the_blocks_of_the_first_case_are_partial():
    graph = conv_graph(*CASES[0][1:3], **CASES[0][3])
    step = plan_blocking(graph.ops[0], SERIAL, host_config(), long_direct=False)
    assert step.tap_block == CONTRACTION_TARGET // 64 and step.taps % step.tap_block
    assert step.lines_per_block <= BLOCK_FLOATS // (step.tap_block * 64 * step.line)
    assert step.lines > step.lines_per_block and step.lines % step.lines_per_block


@pytest.mark.parametrize("name,x_shape,w_shape,attributes", CASES, ids=[c[0] for c in CASES])
def test_sgemm_conv_matches_interpreter_and_direct_loops(name, x_shape, w_shape, attributes,
                                                         long_direct, monkeypatch):
    monkeypatch.setenv("PROPC_NUM_THREADS", "1")   # as plan_blocking plans below, serial
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    graph = conv_graph(x_shape, w_shape, **attributes)
    options = options_with(conv_long_direct=long_direct)
    fast = codegen.compile_graph(graph, options=options)
    in_registers = plan_blocking(graph.ops[0], SERIAL, host_config(), long_direct).direct
    assert ("propc.shared.sgemm" in fast.llvm_ir) is not in_registers
    (fast,) = fast(x, w)
    (expected,) = interpret(graph, x, w)
    scale = np.abs(expected).max()
    np.testing.assert_allclose(fast, expected, rtol=1e-5, atol=1e-5 * scale)
    direct = codegen.compile_graph(
        graph, options=options_with(sgemm_conv=False))
    assert "propc.shared.sgemm" not in direct.llvm_ir
    np.testing.assert_allclose(direct(x, w)[0], expected, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("case", [1, 5, 8, 9, 10], ids=["patches", "in registers",
                                                       "long contraction", "runs", "runs cropped"])
def test_sgemm_conv_in_debug_mode(case):
    options = options_with(conv_long_direct=case not in (1, 9, 10))
    x_shape, w_shape, attributes = CASES[case][1:]
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    graph = conv_graph(x_shape, w_shape, **attributes)
    (got,) = codegen.compile_graph(graph, debug=True, options=options)(x, w)
    np.testing.assert_allclose(got, interpret(graph, x, w)[0], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name,x_shape,w_shape,attributes", CASES, ids=[c[0] for c in CASES])
def test_row_blocks_shared_by_three_threads(name, x_shape, w_shape, attributes, long_direct,
                                           monkeypatch):
    """Every conv, however small, made to pay for threads: each of 3 threads takes
    whole row blocks with its own workspace slot (codegen/kernels/conv_blocking.py),
    or, summed in registers over a long contraction, shares of its row groups."""
    monkeypatch.setenv("PROPC_NUM_THREADS", "3")
    monkeypatch.setattr(conv_blocking, "_least_flops", lambda threads: 0)
    monkeypatch.setattr(conv_blocking, "LONG_DIRECT_REGION_MIN_FLOPS", 0)
    graph = conv_graph(x_shape, w_shape, **attributes)
    blocking = plan_blocking(graph.ops[0], ThreadPlan(3, spinning=False, pool=True),
                             host_config(), long_direct)
    shared = (blocking.rows >= 3 * blocking.row_group if blocking.row_group
              else blocking.lines >= 3)
    assert blocking.region == (3 if shared else 1)
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    (expected,) = interpret(graph, x, w)
    (got,) = codegen.compile_graph(graph, options=options_with(conv_long_direct=long_direct))(x, w)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("batch,region", [(64, 1), (256, 2)], ids=["small", "big"])
def test_a_conv_in_registers_keeps_them_under_threads(batch, region, monkeypatch):
    """The small CNN's second conv (9.4 MFLOP: past the pool's threshold for patches,
    below LONG_DIRECT_REGION_MIN_FLOPS) planned for two threads still sums its rows in
    registers, on one thread, rather than taking a region of patches and sgemm that
    was slower than one thread; at 4x the batch its row groups are shared by both
    threads. Compiled so, each matches the interpreter (a debug build, PROPC_DEBUG=1,
    checks every access on one thread: no region)."""
    monkeypatch.setenv("PROPC_NUM_THREADS", "2")
    x_shape, w_shape = (batch, 4, 4, 16), (3, 3, 16, 32)
    graph = conv_graph(x_shape, w_shape, **attrs((1, 1), (1, 1), (1, 1)))
    serial = plan_blocking(graph.ops[0], SERIAL, host_config())
    threaded = plan_blocking(graph.ops[0], ThreadPlan(2, pool=True), host_config())
    assert serial.row_group > 0
    assert (threaded.row_group, threaded.region) == (serial.row_group, region)
    rng = np.random.default_rng(3)
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    options = options_with()
    compiled = codegen.compile_graph(graph, options=options)
    assert "propc.shared.sgemm" not in compiled.llvm_ir
    assert ("propc.shared.parallel" in compiled.llvm_ir) is (region > 1 and not options.debug)
    np.testing.assert_allclose(compiled(x, w)[0], interpret(graph, x, w)[0], rtol=1e-5,
                               atol=1e-4)


# the "blocks" case: 7.3 MFLOP over 41 lines, threaded only when regions are cheap
PLANS = {"serial": (SERIAL, 1), "libgomp teams, 4 threads": (ThreadPlan(4), 1),
         "pool, 4 threads": (ThreadPlan(4, pool=True), 4),
         "spinning, 2 threads": (ThreadPlan(2, spinning=True), 2)}


def test_blocking_follows_the_plan_it_is_given_not_hidden_state():
    """Conv blocking reads no thread-local planning state: the same conv planned
    under several thread plans, one after another on this thread, straight and
    through the graph's plan (the FusionPlan's ThreadPlan reaching the conv's
    lowering), is cut for each plan's threads."""
    assert not hasattr(host, "planning")
    graph = conv_graph(*CASES[0][1:3], **CASES[0][3])
    patches = options_with(conv_long_direct=False)    # in registers it keeps one thread
    regions = {}
    for name, (threads, expected) in PLANS.items():
        blocking = plan_blocking(graph.ops[0], threads, host_config(), long_direct=False)
        (kernel,) = plan_graph(graph, threads=threads, options=patches).kernels
        (step,) = kernel.steps
        regions[name] = (blocking.region, step.blocking.region)
    assert regions == {name: (expected, expected) for name, (_, expected) in PLANS.items()}
