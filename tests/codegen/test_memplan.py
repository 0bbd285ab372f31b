"""codegen/memplan.py: slot assignment never overlaps values that are live together."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from codegen.plan.memplan import Lifetime, align_up, assign_offsets


@st.composite
def lifetimes(draw):
    count = draw(st.integers(0, 25))
    out = []
    for key in range(count):
        first = draw(st.integers(0, 20))
        last = draw(st.integers(first, 24))
        out.append(Lifetime(key, draw(st.integers(0, 5000)), first, last))
    return out


@settings(max_examples=100, deadline=None)
@given(lifetimes())
def test_live_values_never_share_bytes(lives):
    offsets, peak = assign_offsets(lives)
    assert set(offsets) == {life.key for life in lives}
    for life in lives:
        assert offsets[life.key] % 64 == 0
        assert offsets[life.key] + life.nbytes <= peak
    for i, a in enumerate(lives):
        for b in lives[i + 1:]:
            if a.overlaps(b) and a.nbytes and b.nbytes:
                assert (offsets[a.key] + a.nbytes <= offsets[b.key]
                        or offsets[b.key] + b.nbytes <= offsets[a.key])
    # never worse than giving every value its own slot
    assert peak <= sum(align_up(life.nbytes) for life in lives)


def test_dead_values_reuse_space():
    lives = [Lifetime("a", 1000, 0, 1), Lifetime("b", 1000, 2, 3), Lifetime("c", 1000, 4, 5)]
    offsets, peak = assign_offsets(lives)
    assert peak == align_up(1000)
    assert len(set(offsets.values())) == 1


def test_values_live_together_are_disjoint():
    lives = [Lifetime("a", 100, 0, 2), Lifetime("b", 100, 1, 3), Lifetime("c", 100, 2, 2)]
    offsets, peak = assign_offsets(lives)
    assert len(set(offsets.values())) == 3
    assert peak == 3 * 128


# -- the plan of compiled graphs: in-place reuse, never aliasing live buffers ------------

import re  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, event  # noqa: E402

import codegen  # noqa: E402
from ir import Builder, DType, TensorType, interpret  # noqa: E402
from graph_strategies import graphs, sample_inputs  # noqa: E402
from codegen_graphs import bcast  # noqa: E402
from codegen_oracle import assert_matches  # noqa: E402
from rounding_bounds import discrepancy_bounds  # noqa: E402

F32 = DType.f32


def doubled(b: Builder, x):
    """2*x as a kernel result (a reduction over a broadcast copy): a scratch buffer."""
    shape = x.shape
    wide = bcast(b, x, shape + (2,), tuple(range(len(shape))))
    return b.reduce_sum(wide, axes=(len(shape),))


def in_place_slots(memory) -> dict[int, int]:
    """{result number: operand number} from the slot labels `%7 ... in place of %6`."""
    found = {}
    for label, *_ in memory.slots:
        match = re.match(r"%(\d+) .* in place of %(\d+)$", label)
        if match:
            found[int(match.group(1))] = int(match.group(2))
    return found


def live_slots_are_disjoint(memory) -> None:
    """Slots live at the same kernel never share bytes, except a result and the
    operand it overwrites in place (at the one kernel where both are live)."""
    pairs = in_place_slots(memory)
    numbered = [(int(label.split()[0][1:]) if label.startswith("%") else None, *rest)
                for label, *rest in memory.slots]
    for i, (number_a, size_a, at_a, first_a, last_a) in enumerate(numbered):
        assert at_a % 64 == 0 and at_a + size_a <= memory.peak_scratch
        for number_b, size_b, at_b, first_b, last_b in numbered[i + 1:]:
            if not (size_a and size_b and first_a <= last_b and first_b <= last_a):
                continue
            shared = None not in (number_a, number_b) and (
                pairs.get(number_b) == number_a and last_a == first_b
                or pairs.get(number_a) == number_b and last_b == first_a)
            if shared:
                assert at_a == at_b
                continue
            assert at_a + size_a <= at_b or at_b + size_b <= at_a, (number_a, number_b)


def run_and_compare(graph, kind: str = "ulp"):
    """Compile `graph`, run it and the interpreter on seeded inputs, compare: "exact"
    bit for bit, "ulp" within 8 ulps (+1e-5), "propagated" within the first-order
    bound on rounding differences carried through the graph (rounding_bounds.py)."""
    exe = codegen.compile_graph(graph)
    arrays = sample_inputs(graph, np.random.default_rng(0))
    wanted = interpret(graph, *arrays)
    if kind == "propagated":
        bounds = discrepancy_bounds(graph, arrays)
        for index, (got, want, bound) in enumerate(zip(exe(*arrays), wanted, bounds)):
            assert_matches(got, want, f"output {index}", "sum", atol=bound)
        return exe
    for index, (got, want) in enumerate(zip(exe(*arrays), wanted)):
        assert_matches(got, want, f"output {index}", kind, ulps=8, atol=1e-5)
    return exe


def test_elementwise_result_overwrites_a_dying_kernel_result():
    b = Builder("chain")
    x = b.input(TensorType((6, 5), F32))
    u = doubled(b, x)                       # scratch, last read by the tanh kernel
    v = b.tanh(b.add(u, x))                 # read by two kernels: gets a buffer
    b.output(doubled(b, v), b.reduce_max(v, axes=(1,)))
    exe = run_and_compare(b.build())
    numbers = exe.graph.value_numbers()
    assert in_place_slots(exe.memory) == {numbers[v]: numbers[u]}
    assert exe.memory.in_place == 1
    live_slots_are_disjoint(exe.memory)
    assert exe.memory.peak_scratch == 6 * 5 * 4 + 8    # one slot for u and v (+ alignment)


def test_no_in_place_when_the_operand_is_read_elsewhere_or_later():
    b = Builder("refused")
    x = b.input(TensorType((4, 4), F32))
    u = doubled(b, x)
    crossed = b.exp(b.add(u, b.transpose(u, perm=(1, 0))))      # u[i,j] and u[j,i]
    w = doubled(b, x)
    kept = b.exp(w)                                             # w is read again below
    b.output(doubled(b, crossed), b.reduce_sum(kept, axes=(0,)), doubled(b, kept),
             b.reduce_sum(w, axes=(1,)))
    exe = run_and_compare(b.build())
    assert exe.memory.in_place == 0
    live_slots_are_disjoint(exe.memory)


def test_no_in_place_into_a_narrower_element_type():
    b = Builder("narrow")
    x = b.input(TensorType((3, 8), F32))
    u = doubled(b, x)
    flags = b.gt(u, x)                                          # bool: 1 byte per element
    b.output(b.reduce_max(b.convert(flags, dtype=DType.i32), axes=(1,)),
             b.reduce_min(b.convert(flags, dtype=DType.i32), axes=(0,)))
    exe = run_and_compare(b.build())
    assert exe.memory.in_place == 0


# ops whose compiled results are bit-identical to the interpreter's (no reassociated
# sums, no polynomial transcendentals), so any aliasing mistake shows exactly
EXACT_PRIMS = ["add", "mul", "neg", "max", "gt", "select", "convert", "transpose",
               "broadcast_in_dim", "reshape", "slice", "pad", "concatenate", "reduce_max"]


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(graphs(max_ops=12, prims=EXACT_PRIMS, residuals=False))
def test_random_graphs_with_the_planner_match_the_interpreter_exactly(graph):
    exe = run_and_compare(graph, kind="exact")
    live_slots_are_disjoint(exe.memory)
    event("in place" if exe.memory.in_place else "no in-place")


@st.composite
def kernel_chains(draw):
    """Graphs where kernel results (scratch) feed elementwise maps that are read by
    several kernels (so they get buffers too), through identity, transposed and
    broadcast indexing, with random extra outputs keeping operands alive."""
    rows, cols = draw(st.sampled_from([(1, 1), (2, 2), (3, 3), (2, 5), (5, 3), (4, 4)]))
    b = Builder("chain")
    values = [b.input(TensorType((rows, cols), F32)) for _ in range(2)]
    for _ in range(draw(st.integers(2, 7))):
        pick = draw(st.sampled_from(values))
        kind = draw(st.sampled_from(["kernel", "map", "map", "view map", "row max"]))
        if kind == "kernel":
            values.append(doubled(b, pick))
        elif kind == "map":
            other = draw(st.sampled_from(values))
            values.append(b.tanh(b.add(pick, b.mul(other, other))))
        elif kind == "view map" and rows == cols:
            values.append(b.exp(b.neg(b.transpose(pick, perm=(1, 0)))))
        else:
            top = b.reduce_max(pick, axes=(1,))
            values.append(b.sub(pick, bcast(b, top, (rows, cols), (0,))))
    extra = draw(st.lists(st.sampled_from(values[2:] or values), max_size=2))
    b.output(doubled(b, values[-1]), b.reduce_sum(values[-1], axes=(0,)), *extra)
    return b.build()


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(kernel_chains())
def test_random_kernel_chains_with_in_place_reuse_match_the_interpreter(graph):
    """Within the rounding differences the chain itself can amplify (an exp of a
    value near 10 multiplies an upstream ulp by 10), and nothing more: a fixed ulp
    bound on the outputs was flaky on exp -> sum -> exp chains."""
    exe = run_and_compare(graph, kind="propagated")
    live_slots_are_disjoint(exe.memory)
    event("in place" if exe.memory.in_place else "no in-place")


# -- MLP inference and training memory ------------------------------------------------------


@pytest.mark.parametrize("size_name", ["small", "medium", "large"])
def test_mlp_inference_keeps_two_activations_training_keeps_residuals(size_name):
    import propc as pc
    from propc.bench.cases import mlp_predict, mlp_train_step
    from propc.bench.common import SIZES, random_inputs
    size = SIZES[size_name]
    params, x, labels = random_inputs(size)
    largest = max(size.batch * width * 4 for width in size.widths[1:])
    infer = pc.compile(mlp_predict).lower(params, x)
    plan = infer.executable.memory
    assert infer.memory.residuals == 0
    assert plan.peak_scratch <= 2 * largest + plan.workspace
    train = pc.compile(mlp_train_step).lower(params, x, labels)
    kept = train.memory.residuals                 # activations saved for the backward
    assert kept >= (len(size.widths) - 2) * size.batch * size.widths[1] * 4
    assert kept + largest <= train.memory.peak_scratch      # kept + the backward's work
