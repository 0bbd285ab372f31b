"""Link an exported object (codegen/runtime/export.py) into a shared library with the
system C compiler.

    link_shared("out/model.o", "out/model.so", "model")

The library exports only `model_*` (a version script hides everything else, the
start files' symbols included), has no text relocations (`-z text` makes the
linker refuse any), every reference resolved at link time (`--no-undefined`),
and depends on libc and, only when the code calls it, libm (`--as-needed`).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

from ..errors import CodegenError

COMPILERS = ("cc", "gcc", "clang")


def c_compiler() -> str:
    """The first C compiler on PATH (cc, gcc, clang); CodegenError when none is."""
    for name in COMPILERS:
        found = shutil.which(name)
        if found:
            return found
    raise CodegenError("exporting a shared library needs a C compiler to link it "
                       f"(none of {', '.join(COMPILERS)} is on PATH); the object file "
                       "was written and can be linked elsewhere")


def link_shared(object_path: str, library_path: str, prefix: str, gomp: bool = False) -> None:
    """Link `object_path` into the shared library `library_path`, exporting `prefix_*`
    (with libgomp when `gomp`: code exported with threads calls it)."""
    compiler = c_compiler()
    with tempfile.TemporaryDirectory(prefix="propc-link-") as scratch:
        script = os.path.join(scratch, "exports.map")
        with open(script, "w", encoding="ascii") as handle:
            handle.write(f"{{\n  global: {prefix}_*;\n  local: *;\n}};\n")
        command = [compiler, "-shared", "-o", library_path, object_path,
                   f"-Wl,--version-script={script}", "-Wl,-z,text", "-Wl,-z,noexecstack",
                   "-Wl,--no-undefined", "-Wl,--as-needed", "-lm"] + (["-lgomp"] if gomp else [])
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.SubprocessError) as err:
            raise CodegenError(f"linking {library_path} failed: {err}") from None
    if result.returncode != 0:
        raise CodegenError(f"linking {library_path} failed ({' '.join(command)}):\n"
                           f"{result.stderr.strip()}")


__all__ = ["COMPILERS", "c_compiler", "link_shared"]
