"""The buffer plan: where every materialized value lives, and the scratch arena.

Graph inputs and outputs live in the caller's arrays; non-uniform constants are
module globals; every other materialized value gets a slot in one 64-byte aligned
scratch arena (one per thread per compiled graph, reused across calls). Slots are
reused:
- liveness: each value is live from the kernel that writes it to the last kernel
  that reads it; two values whose lifetimes overlap never share bytes (greedy
  offset assignment, largest buffers first);
- in place: an elementwise kernel whose operand dies in it, and which reads that
  operand only at the very element it writes, stores its result over the operand
  (`in_place_pairs`); the two then share one slot (and one kernel argument, so
  LLVM sees the aliasing);
- kernel workspaces (sgemm packing panels) live only while their kernel runs;
  the plan reports how much of the peak they account for (`MemoryPlan.workspace`).
In debug mode the arena also holds the bounds checks' error record
(codegen/emit/bounds.py, `ERROR_BYTES` here). The kernels it places are
codegen/emit/steps.py's KernelPlans; the plan reads only their fields.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .affine import flat_offset, identity_access

ALIGN = 64
# the bounds checks' error record slot (codegen/emit/bounds.py writes it)
ERROR_BYTES = 64


def align_up(nbytes: int, alignment: int = ALIGN) -> int:
    return (nbytes + alignment - 1) // alignment * alignment


@dataclass(frozen=True)
class Workspace:
    """Key of the temporary scratch a kernel asks for (e.g. packed matmul panels)."""

    kernel: int


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
    residual inputs (backward graphs); `workspace` the part of the peak scratch
    that is there only for kernel workspaces (sgemm packing panels): the peak minus
    `buffers`, the arena the same placement gives the array values alone (never
    below 0); `in_place` how many kernels write over a dead operand;
    `error_slot` the arena offset of debug mode's error record, just past the peak
    scratch (None otherwise); `slots` lists the scratch values (label, bytes,
    offset, first, last kernel). The arena a call needs is `arena_bytes`.
    """

    inputs: int
    outputs: int
    peak_scratch: int
    residuals: int = 0
    slots: list[tuple[str, int, int, int, int]] = field(default_factory=list)
    workspace: int = 0
    in_place: int = 0
    error_slot: int | None = None

    @property
    def buffers(self) -> int:
        """Bytes of the peak scratch the array values need: the peak less workspace."""
        return self.peak_scratch - self.workspace

    @property
    def arena_bytes(self) -> int:
        """Bytes of arena a call needs: the peak scratch, plus debug's error record."""
        return self.peak_scratch + (ERROR_BYTES if self.error_slot is not None else 0)

    def to_meta(self) -> dict:
        """JSON-able form (the disk cache stores it)."""
        return asdict(self)

    @classmethod
    def from_meta(cls, meta: dict) -> "MemoryPlan":
        values = dict(meta)
        values["slots"] = [tuple(slot) for slot in values.get("slots", [])]
        return cls(**values)

    def __str__(self) -> str:
        lines = ["buffer plan", f"  inputs        {self.inputs:>12,} bytes",
                 f"  outputs       {self.outputs:>12,} bytes",
                 f"  residuals     {self.residuals:>12,} bytes",
                 f"  peak scratch  {self.peak_scratch:>12,} bytes",
                 f"    buffers     {self.buffers:>12,} bytes (array values; "
                 f"{self.in_place} kernels in place)",
                 f"    workspace   {self.workspace:>12,} bytes (kernel scratch)"]
        if self.slots:
            lines.append("  scratch slots (value, bytes, offset, live kernels):")
            for label, nbytes, offset, first, last in self.slots:
                lines.append(f"    {label:<40} {nbytes:>10,} @ {offset:>10,}  [{first}..{last}]")
        return "\n".join(lines)


def in_place_pairs(kernels: list[KernelPlan], homes: dict, last: dict[object, int],
                   numbers: dict) -> dict[object, object]:
    """{result: operand} for kernels that may write their result over an operand.

    Legal when the kernel is one elementwise loop writing its scratch result at the
    row-major position of each element, the operand is scratch, is read by no later
    kernel, has elements of the same size and at least as many bytes, and every load
    of it in the loop reads exactly the element being written (so each element is
    read before it is overwritten, and never after).
    """
    pairs: dict[object, object] = {}
    for position, kernel in enumerate(kernels):
        dest = kernel.dest
        if not _rewritable(kernel, homes):
            continue
        step = kernel.steps[0]
        for operand in sorted(kernel.reads(), key=lambda v: numbers.get(v, -1)):
            if (homes[operand].kind == "scratch" and last[operand] == position
                    and operand.dtype.itemsize == dest.dtype.itemsize
                    and operand.type.nbytes >= dest.type.nbytes
                    and _reads_only_written_element(step, operand)):
                pairs[dest] = operand
                break
    return pairs


def _rewritable(kernel: KernelPlan, homes: dict) -> bool:
    """One map loop writing a scratch value at its row-major identity offset."""
    dest = kernel.dest
    home = homes.get(dest)
    if home is None or home.kind != "scratch" or kernel.workspace or len(kernel.steps) != 1:
        return False
    step = kernel.steps[0]
    if not step.is_map or step.dest is not dest:
        return False
    rank = len(dest.shape)
    return (step.plan.original_rank == rank
            and step.dest_offset == flat_offset(identity_access(rank), dest.shape, rank))


def _reads_only_written_element(step: MapStep, operand) -> bool:
    loads = [load for load in step.exprs.loads if load.value is operand]
    return bool(loads) and all(load.offset == step.dest_offset for load in loads)


def plan_memory(graph, kernels: list[KernelPlan], homes: dict, *, checks: bool = False
                ) -> tuple[MemoryPlan, dict[object, int], dict[object, object]]:
    """The buffer plan of a lowered graph, the arena offset of each scratch key
    (values, `Workspace(k)`) and the in-place pairs {result: operand it overwrites};
    `checks` reserves debug mode's error record."""
    first: dict[object, int] = {}
    last: dict[object, int] = {}
    for position, kernel in enumerate(kernels):
        for dest in (kernel.dest, *kernel.also_writes):
            first.setdefault(dest, position)
            last[dest] = max(last.get(dest, position), position)
        for value in kernel.reads():
            last[value] = max(last.get(value, position), position)
    numbers = graph.value_numbers()
    pairs = in_place_pairs(kernels, homes, last, numbers)
    group = _groups(pairs)
    lifetimes = _group_lifetimes(homes, first, last, group, numbers)
    _, buffers_alone = assign_offsets(lifetimes)
    lifetimes += [Lifetime(Workspace(position), kernel.workspace, position, position,
                           f"workspace of kernel {position}")
                  for position, kernel in enumerate(kernels) if kernel.workspace]
    offsets, peak = assign_offsets(lifetimes)
    for key, representative in group.items():
        offsets[key] = offsets[representative]
    error_slot = peak if checks else None
    scratch = [key for key, home in homes.items() if home.kind == "scratch"]
    slots = sorted(((_label(key, numbers, pairs), key.type.nbytes, offsets[key], first[key],
                     last[key]) for key in scratch),
                   key=lambda slot: (slot[3], slot[2]))
    slots += [(life.label, life.nbytes, offsets[life.key], life.first, life.last)
              for life in lifetimes if isinstance(life.key, Workspace)]
    residual_in = sum(v.type.nbytes for v in graph.inputs[:graph.residual_inputs])
    residual_out = sum(v.type.nbytes for v in graph.outputs[len(graph.outputs)
                                                             - graph.residual_outputs:])
    memory = MemoryPlan(inputs=sum(v.type.nbytes for v in graph.inputs),
                        outputs=sum(v.type.nbytes for v in graph.outputs),
                        peak_scratch=peak, residuals=residual_in + residual_out, slots=slots,
                        workspace=max(0, peak - buffers_alone),
                        in_place=len(pairs), error_slot=error_slot)
    return memory, offsets, pairs


def _groups(pairs: dict[object, object]) -> dict[object, object]:
    """Each in-place result's representative: the first value of its chain."""
    group: dict[object, object] = {}
    for dest, operand in pairs.items():
        group[dest] = group.get(operand, operand)
    return group


def _group_lifetimes(homes: dict, first: dict, last: dict, group: dict, numbers: dict
                     ) -> list[Lifetime]:
    """One lifetime per slot: a value alone, or an in-place chain spanning its members."""
    spans: dict[object, list] = {}
    for key, home in homes.items():
        if home.kind != "scratch":
            continue
        representative = group.get(key, key)
        span = spans.setdefault(representative, [key.type.nbytes, first[key], last[key]])
        span[0] = max(span[0], key.type.nbytes)
        span[1] = min(span[1], first[key])
        span[2] = max(span[2], last[key])
    return [Lifetime(key, nbytes, start, end, _label(key, numbers))
            for key, (nbytes, start, end) in spans.items()]


def _label(key, numbers: dict, pairs: dict | None = None) -> str:
    """`%7 tanh f32[4,5]`, plus `in place of %6` for a result written over an operand."""
    label = f"%{numbers[key]} {key.producer.prim} {key.type}"
    if pairs and key in pairs:
        label += f" in place of %{numbers[pairs[key]]}"
    return label
