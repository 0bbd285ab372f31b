"""`propc bench --memory`, `propc bench --scaling` and `propc bench --busy`.

--memory: for each MLP size, the buffer plan of inference (forward only) next to
training (the whole step), from `pc.compile(fn).lower(...).memory`: inputs,
outputs, the residuals the forward pass keeps for the backward pass, and peak
scratch with the part of it that is kernel workspace (sgemm packing panels; the
rest is array buffers). Nothing is run, so it needs no worker process.

--scaling: the train step's time as the batch grows at a fixed width, and as the
hidden width grows at a fixed batch (at least four points each), next to the
predicted FLOPs, so the cost can be seen growing linearly in n·m and in d.

--busy: the train step (and its NumPy twin) at each thread count while another
process spins on the last core (propc/bench/command.py starts it); the workers are not
pinned, so at every thread count the scheduler may also put the calling thread
on the busy core, and "vs 1 thread" says what using more threads there costs or
gains. NumPy's BLAS runs on one thread in every row (a fixed reference).
"""
from __future__ import annotations

from ir.table import render

from .cases import mlp_cases, mlp_predict, mlp_train_step
from .common import MLPSize, Row, Timing
from .report import number, ordered
from .worker import emit, failure_text, run_case

MEMORY_FIELDS = ("inputs", "outputs", "residuals", "peak_scratch", "workspace")


def _abstract_inputs(size: MLPSize) -> tuple:
    """ShapeDtype stand-ins for (params, x, labels): no data needed to plan memory."""
    import propc as pc
    params = [(pc.ShapeDtype((m, d), "float32"), pc.ShapeDtype((d,), "float32"))
              for m, d in size.layers()]
    x = pc.ShapeDtype((size.batch, size.widths[0]), "float32")
    labels = pc.ShapeDtype((size.batch,), "int32")
    return params, x, labels


def memory_rows(sizes: list[MLPSize]) -> list[dict]:
    """One row per (size, pass): bytes of the buffer plan, or an error text."""
    import propc as pc
    rows = []
    for size in sizes:
        params, x, labels = _abstract_inputs(size)
        for kind, program, args in (("inference", mlp_predict, (params, x)),
                                    ("training", mlp_train_step, (params, x, labels))):
            row = {"section": "memory", "size": size.name, "describe": size.describe(),
                   "pass": kind}
            try:
                memory = pc.compile(program).lower(*args).memory
                row.update({field: int(getattr(memory, field)) for field in MEMORY_FIELDS})
            except Exception as err:  # reported in the table, the other sizes still run
                row["error"] = failure_text(err)
            rows.append(row)
    return rows


def _kib(count: int) -> str:
    return f"{count / 1024:,.1f}"


def format_memory(rows: list[dict]) -> str:
    """The --memory table, bytes shown in KiB."""
    header = ("size", "pass", "inputs KiB", "outputs KiB", "residuals KiB", "peak scratch KiB",
              "of it workspace KiB")
    lines = []
    for row in rows:
        label = f"{row['size']} ({row['describe']})"
        if "error" in row:
            lines.append((label, row["pass"], "-", "-", "-", row["error"], "-"))
        else:
            lines.append((label, row["pass"]) + tuple(_kib(row[f]) for f in MEMORY_FIELDS))
    title = "memory of the compiled MLP: inference (forward only) vs training (whole step)"
    return "\n".join([title] + render(header, lines, left={0, 1}))


# -- scaling --------------------------------------------------------------------------


def scaling_sizes(quick: bool) -> list[tuple[str, MLPSize]]:
    """(sweep, size) points: batch sweep at a fixed width, then hidden-width sweep."""
    if quick:
        base_batch, base_in, base_hidden = 32, 64, 128
        batches, hiddens = (8, 16, 32, 64), (32, 64, 128, 256)
    else:
        base_batch, base_in, base_hidden = 128, 784, 256
        batches, hiddens = (32, 64, 128, 256, 512), (64, 128, 256, 512, 1024)
    points = [("batch", MLPSize(f"n={n}", n, (base_in, base_hidden, 10))) for n in batches]
    points += [("width", MLPSize(f"d={d}", base_batch, (base_in, d, 10))) for d in hiddens]
    return points


def run_scaling(threads: int, timing: Timing, quick: bool) -> list[Row]:
    """Time the propc train step (and the NumPy twin) at every scaling point."""
    rows = []
    for sweep, size in scaling_sizes(quick):
        case = mlp_cases(size)[0]
        case.section = "scaling"
        case.name = f"{sweep} {size.describe()}"
        for row in run_case(case, threads, timing):
            rows.append(row)
            emit(row)
    return rows


def format_scaling(rows: list[Row]) -> str:
    """Step time next to predicted FLOPs; time per FLOP relative to each sweep's first
    point stays near 1 when the cost grows linearly."""
    header = ("point", "threads", "MFLOP", "propc ms", "numpy ms", "GFLOP/s",
              "time/FLOP vs first", "check")
    lines = []
    first: dict[tuple[str, int], float] = {}
    for row in ordered(rows):
        sweep = row.case.split(" ", 1)[0]
        per_flop = row.ms / row.flops if row.ms and row.flops else None
        if per_flop is not None:
            first.setdefault((sweep, row.threads), per_flop)
        relative = (f"{per_flop / first[(sweep, row.threads)]:.2f}"
                    if per_flop is not None else "-")
        mflop = "-" if row.flops is None else f"{row.flops / 1e6:.1f}"
        lines.append((row.case, str(row.threads), mflop, number(row.ms),
                      number(row.numpy_ms), "-" if row.gflops is None else f"{row.gflops:.1f}",
                      relative, row.check))
    title = ("scaling of the propc train step as batch n and hidden width d grow "
             "(predicted FLOPs: 2nmd forward, 4nmd backward per layer)")
    return "\n".join([title] + render(header, lines, left={0, len(header) - 1}))


# -- busy -----------------------------------------------------------------------------


def run_busy(sizes: list[MLPSize], threads: int, timing: Timing) -> list[Row]:
    """Time the propc train step and its NumPy twin at every size (the parent keeps
    a core busy meanwhile)."""
    rows = []
    for size in sizes:
        case = mlp_cases(size)[0]
        case.section = "busy"
        for row in run_case(case, threads, timing):
            rows.append(row)
            emit(row)
    return rows


def format_busy(rows: list[Row], core: int | None) -> str:
    """Step time per thread count, relative to the same step on 1 thread."""
    header = ("case", "threads", "propc ms", "vs 1 thread", "numpy 1-thread ms", "check")
    alone = {row.case: row.ms for row in rows if row.threads == 1 and row.ms}
    lines = []
    for row in ordered(rows):
        relative = (f"{row.ms / alone[row.case]:.3f}" if row.ms and row.case in alone
                    else "-")
        lines.append((row.case, str(row.threads), number(row.ms), relative,
                      number(row.numpy_ms), row.check))
    where = (f"another process keeps core {core} busy" if core is not None
             else "only one core here: nothing is kept busy")
    title = f"the train step next to a busy core ({where}; workers not pinned)"
    return "\n".join([title] + render(header, lines, left={0, len(header) - 1}))
