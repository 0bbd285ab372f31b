"""Compile options: every setting of a compile; the environment is read here only.

    options = from_environment()     # a frozen CompileOptions, built at the edge

Nothing else in codegen reads or writes `os.environ`, and `from_environment` is
called only at the edge (tests/test_layering.py checks both): propc's compile entry
(propc/compile.py) builds the options once per compile and passes them to
codegen's compile functions (codegen/runtime/executable.py, which build them
themselves only for a direct caller that passes none). Below the edge the settings
travel as arguments: `debug` as lowering's `checks`, the thread settings as one
`ThreadPlan` (codegen/plan/threads.py, made by codegen/threads/host.thread_plan),
the cache directory to the disk cache and the process-wide library's loader.
The settings:

- PROPC_DEBUG (1/true/yes/on): bounds checks compiled into every memory access
  (codegen/emit/bounds.py) when a compile does not say `debug=` itself;
- PROPC_NUM_THREADS: the threads generated code uses (codegen/threads/host.py
  interprets the text: a bad or huge value is said once and replaced);
- OMP_WAIT_POLICY / GOMP_SPINCOUNT: whether libgomp's idle threads spin (then
  parallel regions are cheap and smaller work gets threads);
- PROPC_CACHE=0 / PROPC_CACHE_DIR / XDG_CACHE_HOME: the disk cache's directory.

Besides them, the kernel switches, which no variable sets: every one is on by
default, and tests and the bench turn one off for a comparison with
`dataclasses.replace(options, sgemm=False)` on the options they compile with
(they are part of the cache key, codegen/runtime/executable.py):

- `sgemm`: float32 dots through the packed sgemm (codegen/kernels/dot.py), else
  generic loop nests;
- `sgemm_conv`: float32 single-group convs through sgemm (codegen/kernels/conv.py),
  else direct loops;
- `conv_long_direct`: such convs with a long contraction and few features summed
  in vector registers (codegen/kernels/conv_long_direct.py), else patches + sgemm;
- `epilogues`: elementwise consumers fused into their product's kernel
  (codegen/plan/epilogues.py);
- `mathlib`: transcendentals as inline polynomials (codegen/kernels/mathlib.py),
  else LLVM intrinsics (libm calls; codegen/emit/elementwise.py);
- `pool`: compiled calls run their parallel regions on the thread pool where the
  host has one, else every region wakes a libgomp team (the ThreadPlan's `pool`,
  codegen/threads/host.thread_plan).

And `cpu`, the CPU code is planned for: "host" for the JIT, an x86-64 level for an
export (codegen/runtime/export.py sets it); the sgemm's blocking follows its vector
features (codegen/kernels/matmul.sgemm_config).

libgomp reads its wait policy from the process environment once, when it is loaded,
and has no call to set it afterwards or per team: `prepare_libgomp_environment` makes
the one write codegen does, OMP_WAIT_POLICY=PASSIVE (idle threads sleep at once)
unless the user chose a policy or a spin count, just before libgomp is loaded.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

TRUE_WORDS = ("1", "true", "yes", "on")
# libgomp's idle threads sleep at once unless the user asked otherwise
DEFAULT_WAIT_POLICY = "PASSIVE"


@dataclass(frozen=True)
class CompileOptions:
    """One compile's settings: the environment's, read once, and the kernel switches
    (see the module docstring)."""

    debug: bool = False
    num_threads: str = ""          # PROPC_NUM_THREADS as given ("" when unset)
    spinning: bool = False         # libgomp's idle threads spin (user's wait policy)
    cache_dir: Path | None = None  # None: the disk cache is off
    # the CPU code is planned for (codegen/target.py): "host" (always, for the JIT),
    # or the x86-64 level an export is built for
    cpu: str = "host"
    # the kernel switches (see the module docstring)
    sgemm: bool = True
    sgemm_conv: bool = True
    conv_long_direct: bool = True
    epilogues: bool = True
    mathlib: bool = True
    pool: bool = True


# What planning uses when a caller (a unit test planning one graph) passes no options.
DEFAULT_OPTIONS = CompileOptions()


def from_environment(environ: Mapping[str, str] | None = None) -> CompileOptions:
    """The CompileOptions the environment (default: this process's) asks for."""
    env = os.environ if environ is None else environ
    return CompileOptions(debug=env.get("PROPC_DEBUG", "").strip().lower() in TRUE_WORDS,
                          num_threads=env.get("PROPC_NUM_THREADS", "").strip(),
                          spinning=_spinning(env), cache_dir=_cache_dir(env))


def _spinning(env: Mapping[str, str]) -> bool:
    policy = env.get("OMP_WAIT_POLICY", "").strip().upper()
    if policy:
        return policy == "ACTIVE"
    count = env.get("GOMP_SPINCOUNT", "").strip().lower()
    return count in ("infinite", "infinity") or (count.isdigit() and int(count) > 0)


def _cache_dir(env: Mapping[str, str]) -> Path | None:
    if env.get("PROPC_CACHE", "1").strip() in ("0", "false", "no", "off"):
        return None
    explicit = env.get("PROPC_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "propc"


def prepare_libgomp_environment() -> None:
    """Before libgomp loads: idle threads sleep at once (OMP_WAIT_POLICY=PASSIVE)
    unless the user set OMP_WAIT_POLICY or GOMP_SPINCOUNT (libgomp reads them when
    it starts, from the process environment only)."""
    if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
        os.environ["OMP_WAIT_POLICY"] = DEFAULT_WAIT_POLICY


__all__ = ["CompileOptions", "DEFAULT_OPTIONS", "DEFAULT_WAIT_POLICY", "TRUE_WORDS",
           "from_environment", "prepare_libgomp_environment"]
