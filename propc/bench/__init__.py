"""`propc bench`: the benchmark harness, kept out of the compiler's core.

Nothing in propc's compiler imports this package; `propc bench` (propc/cli.py) and
`python -m propc.bench` reach it through `main`. The modules, one job each:

- `command`: the command line, the worker processes (one per thread count) and the
  sections it prints (`main`, `build_parser`, `run_worker`); `environment`: a
  worker's environment and cores (`worker_environment`, `worker_cores`).
- `common`: sizes, rows, timing and result checks (imports no compiler code, so the
  parent process stays light); `cases`: the MLP and kernel cases; `cnn`: the CNN rows;
  `rnn`: the `--rnn` rows (scan vs unrolled vs NumPy BPTT); `peers`: JAX/PyTorch
  versions of the cases when importable.
- `worker`: runs the main table's cases inside one worker process.
- `report`: the main table's text; every bench table is drawn by `ir.table.render`.
- `extra`: `--memory`, `--scaling` and `--busy`; `compile`: `--compile`;
  `distributed`: `--data-parallel`.
"""
from __future__ import annotations

from .command import build_parser, main, run_worker
from .environment import worker_cores, worker_environment

__all__ = ["build_parser", "main", "run_worker", "worker_cores", "worker_environment"]
