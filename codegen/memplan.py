"""The buffer plan: where every materialized value lives, and the scratch arena.

Graph inputs and outputs live in the caller's arrays; non-uniform constants are
module globals; every other materialized value gets a slot in one 64-byte aligned
scratch arena. Slots are reused: each value is live from the kernel that writes it
to the last kernel that reads it, and two values whose lifetimes overlap never
share bytes (greedy offset assignment, largest buffers first).
"""
from __future__ import annotations

from dataclasses import dataclass, field

ALIGN = 64


def align_up(nbytes: int, alignment: int = ALIGN) -> int:
    return (nbytes + alignment - 1) // alignment * alignment


@dataclass(frozen=True)
class Lifetime:
    """A scratch value: bytes needed, first and last kernel index using it."""

    key: object
    nbytes: int
    first: int
    last: int
    label: str = ""

    def overlaps(self, other: "Lifetime") -> bool:
        return self.first <= other.last and other.first <= self.last


def assign_offsets(lifetimes: list[Lifetime]) -> tuple[dict[object, int], int]:
    """Byte offset of each value in the arena (64-aligned), and the arena size.

    Values whose lifetimes overlap get disjoint byte ranges; others may share.
    """
    placed: list[tuple[Lifetime, int]] = []
    offsets: dict[object, int] = {}
    peak = 0
    for life in sorted(lifetimes, key=lambda l: (-l.nbytes, l.first)):
        if life.nbytes == 0:
            offsets[life.key] = 0
            continue
        busy = sorted((offset, offset + align_up(other.nbytes))
                      for other, offset in placed if other.overlaps(life))
        offset = 0
        for start, end in busy:
            if offset + life.nbytes <= start:
                break
            offset = max(offset, end)
        offsets[life.key] = offset
        placed.append((life, offset))
        peak = max(peak, offset + align_up(life.nbytes))
    return offsets, peak


@dataclass
class MemoryPlan:
    """Bytes of a compiled graph's buffers: inputs, outputs, peak scratch.

    `residuals` counts the bytes of the residual outputs (forward graphs) or
    residual inputs (backward graphs); `slots` lists the scratch values.
    """

    inputs: int
    outputs: int
    peak_scratch: int
    residuals: int = 0
    slots: list[tuple[str, int, int, int, int]] = field(default_factory=list)

    def __str__(self) -> str:
        lines = ["buffer plan", f"  inputs        {self.inputs:>12,} bytes",
                 f"  outputs       {self.outputs:>12,} bytes",
                 f"  residuals     {self.residuals:>12,} bytes",
                 f"  peak scratch  {self.peak_scratch:>12,} bytes"]
        if self.slots:
            lines.append("  scratch slots (value, bytes, offset, live kernels):")
            for label, nbytes, offset, first, last in self.slots:
                lines.append(f"    {label:<28} {nbytes:>10,} @ {offset:>10,}  [{first}..{last}]")
        return "\n".join(lines)
