"""The CPU that generated code is planned for: this machine (the JIT's, always) or
a named x86-64 level that an exported library is built for (codegen/runtime/export.py).

Lowering plans the sgemm's register blocking for the vector features of the CPU
the compile's options name (`CompileOptions.cpu`: "host" for the JIT, an export's
target otherwise; `features(cpu)`, read by codegen/kernels/matmul.sgemm_config). An
export lowers with options naming its target and a ThreadPlan of its own
(`target.threads`, no pool): nothing here depends on which thread lowers what.

The levels are the x86-64 micro-architecture levels of the System V psABI (LLVM
knows them as CPU names); `LEVEL_FEATURES` lists what each adds, so planning
needs no probe of the named CPU.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Mapping

import llvmlite.binding as llvm

from .llvm_init import initialise

HOST = "host"
_BASE = ("cmov", "cx8", "fxsr", "mmx", "sse", "sse2")
_V2 = _BASE + ("cx16", "sahf", "popcnt", "sse3", "sse4.1", "sse4.2", "ssse3")
_V3 = _V2 + ("avx", "avx2", "bmi", "bmi2", "f16c", "fma", "lzcnt", "movbe", "xsave")
_V4 = _V3 + ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl")
LEVEL_FEATURES: dict[str, tuple[str, ...]] = {
    "x86-64": _BASE, "x86-64-v2": _V2, "x86-64-v3": _V3, "x86-64-v4": _V4}
CPU_CHOICES = (HOST,) + tuple(LEVEL_FEATURES)


@dataclass(frozen=True)
class Target:
    """A CPU to generate code for.

    `cpu` and `feature_string` are what LLVM's target machine is made with (an
    empty feature string: the named CPU's own features); `flags` maps feature
    names to whether the CPU has them (what lowering plans with); `threads` is the
    thread count an export's code may use (None: 1).
    """

    name: str
    cpu: str
    feature_string: str
    flags: Mapping[str, bool]
    threads: int | None = None

    def target_machine(self, *, pic: bool = False, opt: int = 3) -> llvm.TargetMachine:
        """A new LLVM target machine for this CPU (position independent with `pic`)."""
        initialise()
        target = llvm.Target.from_default_triple()
        return target.create_target_machine(cpu=self.cpu, features=self.feature_string,
                                            opt=opt, reloc="pic" if pic else "default",
                                            codemodel="default")


def named_target(name: str, threads: int | None = None) -> Target:
    """The Target called `name`: "host" (this machine's CPU and features) or one of
    the x86-64 levels. ValueError names the choices for anything else."""
    if name == HOST:
        return Target(HOST, llvm.get_host_cpu_name(), _host_feature_string(),
                      _host_flags(), threads)
    if name not in LEVEL_FEATURES:
        raise ValueError(f"unknown cpu {name!r}: expected one of {', '.join(CPU_CHOICES)}")
    if not llvm.get_default_triple().startswith("x86_64"):
        raise ValueError(f"cpu {name!r} is an x86-64 level; this machine is "
                         f"{llvm.get_default_triple()} (use cpu='host')")
    return Target(name, name, "", features(name), threads)


def features(cpu: str) -> Mapping[str, bool]:
    """Feature flags of the CPU called `cpu` ("host": this machine's; an x86-64
    level: what it has, with no probe), what lowering plans the sgemm for."""
    if cpu == HOST:
        return _host_flags()
    return {feature: True for feature in LEVEL_FEATURES[cpu]}


@functools.lru_cache(maxsize=None)
def _host_flags() -> Mapping[str, bool]:
    return dict(llvm.get_host_cpu_features())


@functools.lru_cache(maxsize=None)
def _host_feature_string() -> str:
    return llvm.get_host_cpu_features().flatten()


__all__ = ["CPU_CHOICES", "HOST", "LEVEL_FEATURES", "Target", "features", "named_target"]
