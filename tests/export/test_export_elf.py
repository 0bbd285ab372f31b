"""What an exported library is as a file: position independent without text
relocations, only NAME_* symbols exported, nothing of propc left undefined, only
libc/libm needed; the object file links statically; `cpu="x86-64-v2"` code has
no AVX instructions and still computes the right numbers."""
from __future__ import annotations

import re
import shutil
import subprocess

import llvmlite.binding as llvm
import numpy as np
import pytest

import propc as pc

import export_models as models
from export_harness import CC, build_driver, dynamic_symbols, run_driver
from tolerances import tolerance

pytestmark = pytest.mark.skipif(CC is None or shutil.which("readelf") is None
                                 or shutil.which("nm") is None,
                                 reason="needs cc, readelf and nm")


@pytest.fixture(scope="module")
def forward_export(tmp_path_factory):
    directory = tmp_path_factory.mktemp("forward")
    params, x, _ = models.inputs()
    files = pc.export(models.forward, params, x, path=str(directory), name="mlp")
    return str(directory), files


def _dynamic_section(library: str) -> str:
    return subprocess.run(["readelf", "-d", library], capture_output=True, text=True,
                          check=True).stdout


def test_shared_library_has_no_text_relocations_and_needs_only_libc_libm(forward_export):
    _, files = forward_export
    dynamic = _dynamic_section(files.library)
    assert "TEXTREL" not in dynamic
    needed = set(re.findall(r"\(NEEDED\).*\[(.+)\]", dynamic))
    assert needed and needed <= {"libc.so.6", "libm.so.6"}, needed


def test_only_prefixed_symbols_are_exported(forward_export):
    _, files = forward_export
    defined = dynamic_symbols(files.library, defined=True)
    assert set(defined) == {"mlp_run", "mlp_workspace_bytes", "mlp_abi_version", "mlp_ir_hash"}
    undefined = dynamic_symbols(files.library, defined=False)
    assert not [name for name in undefined if "propc" in name or "GOMP" in name], undefined


def test_object_file_globals_are_prefixed_and_it_links_statically(forward_export):
    directory, files = forward_export
    listing = subprocess.run(["nm", "--extern-only", "--defined-only", files.object],
                             capture_output=True, text=True, check=True).stdout
    names = [line.split()[-1] for line in listing.splitlines() if line.strip()]
    assert names and all(name.startswith("mlp_") for name in names), names
    params, x, _ = models.inputs()
    program = build_driver(directory, "mlp", static=True)
    assert "mlp.so" not in subprocess.run(["readelf", "-d", program], capture_output=True,
                                          text=True, check=True).stdout
    from_c = run_driver(program, directory, models.flat((params, x)), "mlp")
    expected = pc.compile(models.forward)(params, x)
    assert np.array_equal(from_c[0], expected)


def _instructions(path: str) -> list[str]:
    """The disassembled instruction lines of the code sections (objdump -d)."""
    text = subprocess.run(["objdump", "-d", "--no-show-raw-insn", path], capture_output=True,
                          text=True, check=True).stdout
    return [line.split("\t", 1)[1] for line in text.splitlines()
            if re.match(r"^\s+[0-9a-f]+:\t", line)]


def _uses_avx(instructions: list[str]) -> bool:
    """VEX/EVEX-encoded code: ymm/zmm registers or a v-prefixed SIMD mnemonic."""
    return any(re.search(r"%[yz]mm", line) or re.match(r"v[a-z]", line.split()[0])
               for line in instructions if line.split())


@pytest.mark.skipif(shutil.which("objdump") is None, reason="needs objdump")
def test_x86_64_v2_export_has_no_avx_and_is_correct(tmp_path, forward_export):
    if not llvm.get_default_triple().startswith("x86_64"):
        pytest.skip("x86-64 levels only")
    from propc.export_cli import main
    source = tmp_path / "model_file.py"
    source.write_text("import propc as pc\n\n\ndef f(x, w):\n"
                      "    return pc.nn.softmax(pc.tanh(x @ w) * 2.0)\n")
    directory = tmp_path / "v2"
    assert main([f"{source}:f", "--arg", "f32[40,24]", "--arg", "f32[24,33]",
                 "-o", str(directory), "--cpu", "x86-64-v2", "--name", "v2"]) == 0
    assert not _uses_avx(_instructions(str(directory / "v2.so")))
    if llvm.get_host_cpu_features().get("avx2", False):
        # the check can see AVX: this machine's own export uses it
        assert _uses_avx(_instructions(forward_export[1].library))
    rng = np.random.default_rng(3)
    x = rng.standard_normal((40, 24)).astype(np.float32)
    w = rng.standard_normal((24, 33)).astype(np.float32)
    got = pc.load_exported(str(directory))(x, w)
    expected = pc.interpret(lambda x, w: pc.nn.softmax(pc.tanh(x @ w) * 2.0))(x, w)
    rtol, atol = tolerance("numpy", np.float32)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol)


def test_threaded_export_needs_libgomp_and_computes_the_same(tmp_path):
    """threads=2: the 33 MFLOP product runs as a libgomp team (GOMP_parallel, libgomp
    needed, still only NAME_* exported); a C program and load_exported get exactly
    what pc.compile gets."""
    from codegen.threads.host import load_gomp
    if not load_gomp():
        pytest.skip("needs libgomp")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((128, 256)).astype(np.float32)
    w = rng.standard_normal((256, 512)).astype(np.float32)

    def layer(x, w):
        return pc.tanh(x @ w)

    files = pc.export(layer, x, w, path=str(tmp_path), name="layer", threads=2)
    needed = set(re.findall(r"\(NEEDED\).*\[(.+)\]", _dynamic_section(files.library)))
    assert "libgomp.so.1" in needed and needed <= {"libc.so.6", "libm.so.6", "libgomp.so.1"}
    assert "GOMP_parallel" in " ".join(dynamic_symbols(files.library, defined=False))
    assert all(name.startswith("layer_") for name in dynamic_symbols(files.library, True))
    expected = pc.compile(layer)(x, w)
    assert np.array_equal(pc.load_exported(files.library)(x, w), expected)
    from_c = run_driver(build_driver(str(tmp_path), "layer"), str(tmp_path), [x, w], "layer")
    assert np.array_equal(from_c[0], expected)
