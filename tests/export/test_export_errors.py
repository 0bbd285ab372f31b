"""Bad input to pc.export, `propc export` and propc.load_exported gives a clear
error: a missing argument spec, an unsupported dtype, an output directory that
cannot be written, a bad name or cpu, and files whose ABI version or IR hash do
not match their manifest."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import codegen.runtime.export_abi
import propc as pc
from propc import exported as loader
from propc.export_cli import main as export_main

from export_harness import CC

pytestmark = pytest.mark.skipif(CC is None, reason="needs a C compiler (cc or gcc)")


def double(x, y):
    return x * 2.0 + y


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny")
    pc.export(double, pc.ShapeDtype((3,)), pc.ShapeDtype((3,)), path=str(directory),
              name="tiny")
    return directory


def test_missing_argument_spec_names_the_parameter(tmp_path):
    with pytest.raises(TypeError, match=r"double\(x, y\) got 1 argument spec.*'y'"):
        pc.export(double, pc.ShapeDtype((3,)), path=str(tmp_path))
    assert not list(tmp_path.iterdir())


def test_unsupported_dtype(tmp_path, capsys):
    with pytest.raises(TypeError, match="float16"):
        pc.export(double, np.zeros(3, np.float16), np.zeros(3, np.float16), path=str(tmp_path))
    code = export_main([f"{__file__}:double", "--arg", "f16[3]", "--arg", "f32[3]",
                        "-o", str(tmp_path)])
    assert code == 2
    assert "f16[3]" in capsys.readouterr().err


def test_unwritable_output_directory(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    target = blocker / "out"
    with pytest.raises(OSError, match=r"cannot write to the output directory .*a_file/out"):
        pc.export(double, pc.ShapeDtype((3,)), pc.ShapeDtype((3,)), path=str(target))
    assert export_main([f"{__file__}:double", "--arg", "f32[3]", "--arg", "f32[3]",
                        "-o", str(target)]) == 2
    assert "a_file/out" in capsys.readouterr().err


def test_bad_name_and_cpu(tmp_path):
    with pytest.raises(ValueError, match="C identifier"):
        pc.export(double, pc.ShapeDtype((3,)), pc.ShapeDtype((3,)), path=str(tmp_path),
                  name="my-model")
    with pytest.raises(ValueError, match="unknown cpu 'pentium'.*x86-64-v2"):
        pc.export(double, pc.ShapeDtype((3,)), pc.ShapeDtype((3,)), path=str(tmp_path),
                  cpu="pentium")


def test_loader_speaks_the_backend_abi():
    assert loader.ABI_VERSION == codegen.runtime.export_abi.ABI_VERSION


def _copy(tiny, tmp_path):
    shutil.copytree(tiny, tmp_path / "copy")
    return tmp_path / "copy"


def _edit_manifest(directory, **changes):
    path = directory / "tiny.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


def test_hash_mismatch_between_library_and_manifest(tiny, tmp_path):
    directory = _copy(tiny, tmp_path)
    _edit_manifest(directory, ir_hash="0" * 64)
    with pytest.raises(ValueError, match="IR hash .*manifest says 0000"):
        pc.load_exported(str(directory / "tiny.so"))


def test_manifest_of_another_abi_version(tiny, tmp_path):
    directory = _copy(tiny, tmp_path)
    _edit_manifest(directory, abi_version=loader.ABI_VERSION + 1)
    with pytest.raises(ValueError, match="ABI version"):
        pc.load_exported(str(directory))


def test_library_of_another_abi_version(tmp_path, monkeypatch):
    monkeypatch.setattr(codegen.runtime.export_abi, "ABI_VERSION", loader.ABI_VERSION + 1)
    pc.export(double, pc.ShapeDtype((3,)), pc.ShapeDtype((3,)), path=str(tmp_path),
              name="tiny")
    with pytest.raises(ValueError, match="has ABI version 2, its manifest says 1"):
        pc.load_exported(str(tmp_path / "tiny.so"))


def test_library_without_manifest(tiny, tmp_path):
    shutil.copy(tiny / "tiny.so", tmp_path / "tiny.so")
    with pytest.raises(FileNotFoundError, match="no manifest"):
        pc.load_exported(str(tmp_path / "tiny.so"))


def test_exported_tiny_function_still_works(tiny):
    loaded = pc.load_exported(str(tiny))
    x, y = np.arange(3, dtype=np.float32), np.ones(3, np.float32)
    assert np.array_equal(loaded(x, y), x * 2.0 + y)
