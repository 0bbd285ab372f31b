"""Launching `mpiexec` from a test: where it is, its environment, a bounded run."""
from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys

import pytest

from propc.distributed.mpi import mpiexec_path

HERE = os.path.dirname(os.path.abspath(__file__))
WORKER = os.path.join(HERE, "mpi_worker.py")
# a launch that takes longer than this is a hang (they take 1-4 s here)
LAUNCH_TIMEOUT_S = 180


MPIEXEC = mpiexec_path()
MISSING = [name for name, present in (("mpi4py", importlib.util.find_spec("mpi4py")),
                                      ("mpiexec", MPIEXEC)) if not present]
requires_mpi = pytest.mark.skipif(
    bool(MISSING), reason=f"the propc[mpi] extra is not installed (no {', '.join(MISSING)}): "
                          "pip install -e '.[mpi]' (CI installs it with '.[test]')")


def mpi_environment(threads: str | None = "1") -> dict[str, str]:
    """One compute thread per rank (PROPC_NUM_THREADS, NumPy's BLAS), and MPICH's
    waiting ranks yielding their core: 4 ranks on 2 cores would otherwise spin."""
    env = dict(os.environ)
    env["OPENBLAS_NUM_THREADS"] = "1"
    env["MPIR_CVAR_ENABLE_HEAVY_YIELD"] = "1"
    env.pop("PROPC_NUM_THREADS", None)
    if threads is not None:
        env["PROPC_NUM_THREADS"] = threads
    return env


def launch(ranks: int, *args: str, threads: str | None = "1") -> subprocess.CompletedProcess:
    """`mpiexec -n ranks python mpi_worker.py args...` (or `propc args...` when
    args[0] is "propc"), output captured, bounded by LAUNCH_TIMEOUT_S."""
    program = ([sys.executable, "-m", "propc", *args[1:]] if args and args[0] == "propc"
               else [sys.executable, WORKER, *args])
    command = [MPIEXEC, "-n", str(ranks), *program]
    # its own session, so that a hang is ended with every rank it started
    process = subprocess.Popen(command, env=mpi_environment(threads), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, cwd=HERE,
                               start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=LAUNCH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise AssertionError(f"{' '.join(command)} hung: still running after "
                             f"{LAUNCH_TIMEOUT_S} s\n{stderr}") from None
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
