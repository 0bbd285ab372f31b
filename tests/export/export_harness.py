"""Helpers for the export tests: a C99 driver program for any exported library,
built with `cc -std=c99 -Wall -Werror` and linked against the .so alone, fed
and read back through raw binary files.

The driver (generated from the manifest, so it also checks that the header's
macros and prototypes compile as documented) reads every input leaf, calls
NAME_run `steps` times, after each call copying the first `feedback` outputs
over the first `feedback` inputs (how a C program continues training: the new
parameters become the next step's inputs), and writes every output leaf of the
last call. Its first call passes a NULL workspace (the library allocates one),
later calls a posix_memalign'ed workspace of NAME_workspace_bytes().
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np

CC = shutil.which("cc") or shutil.which("gcc")

_DRIVER = """\
#define _POSIX_C_SOURCE 200112L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "{name}.h"

#define STEPS {steps}
#define FEEDBACK {feedback}
static const size_t in_bytes[] = {{{in_bytes}}};
static const size_t out_bytes[] = {{{out_bytes}}};

int main(int argc, char **argv) {{
    void *in[{n_in}];
    void *out[{n_out}];
    void *workspace = NULL;
    FILE *file;
    int i, step;
    if (argc != 3) return 2;
    if ({name}_abi_version() != {macro}_ABI_VERSION || strcmp({name}_ir_hash(), {macro}_IR_HASH) != 0) {{
        fprintf(stderr, "library does not match its header\\n");
        return 3;
    }}
    file = fopen(argv[1], "rb");
    if (file == NULL) return 4;
    for (i = 0; i < {n_in}; ++i) {{
        in[i] = malloc(in_bytes[i] + 1);
        if (in_bytes[i] && fread(in[i], 1, in_bytes[i], file) != in_bytes[i]) return 5;
    }}
    fclose(file);
    for (i = 0; i < {n_out}; ++i) out[i] = malloc(out_bytes[i] + 1);
    if (posix_memalign(&workspace, {macro}_WORKSPACE_ALIGN, {name}_workspace_bytes() + 1) != 0) return 6;
    for (step = 0; step < STEPS; ++step) {{
        if ({name}_run({args}, step == 0 ? NULL : workspace) != {macro}_OK) return 7;
        for (i = 0; i < FEEDBACK; ++i) memcpy(in[i], out[i], out_bytes[i]);
    }}
    file = fopen(argv[2], "wb");
    if (file == NULL) return 8;
    for (i = 0; i < {n_out}; ++i) fwrite(out[i], 1, out_bytes[i], file);
    fclose(file);
    free(workspace);
    return 0;
}}
"""


def manifest(directory: str, name: str = "model") -> dict:
    with open(os.path.join(directory, f"{name}.json"), encoding="utf-8") as handle:
        return json.load(handle)


def build_driver(directory: str, name: str = "model", steps: int = 1, feedback: int = 0,
                 static: bool = False) -> str:
    """Compile and link the driver for the export in `directory` against NAME.so
    (or, `static`, NAME.o and libm); the program's path."""
    found = manifest(directory, name)["passes"][0]
    n_in, n_out = len(found["inputs"]), len(found["outputs"])
    macro = f"{name.upper()}_RUN"
    args = [f"in[{i}]" for i in range(n_in)] + [f"out[{j}]" for j in range(n_out)]
    source = _DRIVER.format(
        name=name, macro=name.upper(), steps=steps, feedback=feedback, n_in=n_in, n_out=n_out,
        in_bytes=", ".join(f"{macro}_IN{i}_BYTES" for i in range(n_in)),
        out_bytes=", ".join(f"{macro}_OUT{j}_BYTES" for j in range(n_out)),
        args=", ".join(args))
    source_path = os.path.join(directory, "driver.c")
    with open(source_path, "w", encoding="ascii") as handle:
        handle.write(source)
    program = os.path.join(directory, "driver-static" if static else "driver")
    command = [CC, "-std=c99", "-Wall", "-Werror", "-o", program, source_path, f"-I{directory}"]
    if static:
        command += [os.path.join(directory, f"{name}.o"), "-lm"]
    else:
        command += [f"-L{directory}", f"-l:{name}.so", f"-Wl,-rpath,{os.path.abspath(directory)}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stderr}"
    return program


def run_driver(program: str, directory: str, arrays: list[np.ndarray], name: str = "model"
               ) -> list[np.ndarray]:
    """Run the driver on `arrays` (the flat inputs); the flat outputs it wrote."""
    found = manifest(directory, name)["passes"][0]
    inputs, outputs = os.path.join(directory, "in.bin"), os.path.join(directory, "out.bin")
    with open(inputs, "wb") as handle:
        for leaf, array in zip(found["inputs"], arrays, strict=True):
            handle.write(np.ascontiguousarray(array, dtype=leaf["dtype"]).tobytes())
    result = subprocess.run([program, inputs, outputs], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, f"driver exit {result.returncode}: {result.stderr}"
    raw = open(outputs, "rb").read()
    found_outputs, offset = [], 0
    for leaf in found["outputs"]:
        dtype = np.dtype(leaf["dtype"])
        count = int(np.prod(leaf["shape"], dtype=np.int64))
        found_outputs.append(np.frombuffer(raw, dtype, count, offset).reshape(leaf["shape"]))
        offset += count * dtype.itemsize
    assert offset == len(raw)
    return found_outputs


def dynamic_symbols(library: str, defined: bool) -> list[str]:
    """Names from `nm -D` (defined ones, or undefined ones)."""
    flag = "--defined-only" if defined else "--undefined-only"
    listing = subprocess.run(["nm", "-D", flag, library], capture_output=True, text=True,
                             check=True).stdout
    return [line.split()[-1] for line in listing.splitlines() if line.strip()]
