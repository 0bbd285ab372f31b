"""codegen/memplan.py: slot assignment never overlaps values that are live together."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from codegen.memplan import Lifetime, align_up, assign_offsets


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
