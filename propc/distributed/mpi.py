"""MPI access for propc.distributed: a lazy import of mpi4py and failing fast.

mpi4py is an optional extra (`pip install 'propc[mpi]'`), so nothing here imports
it at module level: `propc` and `propc.distributed` import without it, and only
asking for a communicator does. `fail_fast` turns an exception on one rank into the
end of the whole job: without it the other ranks wait forever in their next
collective call (measured here with MPICH: a rank raising mid-training left its
peer spinning in Allreduce until killed).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
import traceback
from typing import Any, Iterator

INSTALL_HINT = "pip install 'propc[mpi]' (mpi4py and the mpich wheel)"


class DistributedError(RuntimeError):
    """Ranks disagree (structure, shapes, parameter values) or MPI is unusable."""


class MPIUnavailable(ImportError):
    """mpi4py (the `propc[mpi]` extra) is not installed."""


def mpi_module() -> Any:
    """mpi4py's MPI module (initialising MPI on first use), or MPIUnavailable."""
    try:
        from mpi4py import MPI
    except ImportError as err:
        raise MPIUnavailable(f"propc.distributed needs mpi4py: {INSTALL_HINT} "
                             f"({err})") from None
    return MPI


def mpiexec_path() -> str | None:
    """The `mpiexec` of this interpreter's environment (the mpich wheel installs it
    next to python), else one on PATH, else None."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    if os.access(beside, os.X_OK):
        return beside
    return shutil.which("mpiexec")


def world(comm: Any = None) -> Any:
    """`comm`, or MPI.COMM_WORLD when it is None."""
    if comm is not None:
        return comm
    return mpi_module().COMM_WORLD


def ranks_on_this_host(comm: Any = None) -> int:
    """How many ranks of `comm` share this host's memory (MPI_COMM_TYPE_SHARED)."""
    MPI = mpi_module()
    comm = world(comm)
    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return local.Get_size()
    finally:
        local.Free()


def failure_message(rank: int, size: int, error: BaseException) -> str:
    """The line a failing rank prints before it ends the job."""
    return (f"propc.distributed: rank {rank} of {size} failed: "
            f"{type(error).__name__}: {error}; aborting all {size} ranks")


@contextlib.contextmanager
def fail_fast(comm: Any = None, exit_code: int = 1) -> Iterator[Any]:
    """Run the block; if it raises, print the traceback and a line naming this rank,
    then MPI_Abort the whole job, so every rank exits non-zero at once instead of
    waiting in a collective that the failed rank will never join. SystemExit(0)
    passes through. Yields the communicator."""
    comm = world(comm)
    try:
        yield comm
    except SystemExit as exit_:
        if exit_.code in (None, 0):
            raise
        _abort(comm, exit_, exit_code)
    except BaseException as error:  # noqa: BLE001 - any failure must end every rank
        _abort(comm, error, exit_code)


def _abort(comm: Any, error: BaseException, exit_code: int) -> None:
    traceback.print_exception(type(error), error, error.__traceback__, file=sys.stderr)
    print(failure_message(comm.Get_rank(), comm.Get_size(), error), file=sys.stderr,
          flush=True)
    sys.stdout.flush()
    comm.Abort(exit_code)
