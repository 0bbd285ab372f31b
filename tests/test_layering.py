"""Imports point one way (SPEC.md): `propc -> ir`, `propc -> codegen -> ir`.

`ir` imports the standard library, numpy and itself only; `codegen` adds llvmlite and
`ir` but never `propc`; `propc`'s module-level imports stay within the runtime
dependencies (optional extras such as plotting may only be imported lazily inside a
function). Checked statically with `ast`, and dynamically in a fresh interpreter.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
STDLIB = set(sys.stdlib_module_names) | {"__future__"}

ALLOWED = {
    "ir": STDLIB | {"numpy", "ir"},
    "codegen": STDLIB | {"numpy", "llvmlite", "ir", "codegen"},
    "propc": STDLIB | {"numpy", "llvmlite", "ir", "codegen", "propc"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(node: ast.ImportFrom, path: Path) -> str:
    """The absolute module an ImportFrom names (relative imports resolved)."""
    if node.level == 0:
        return node.module or ""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    if node.level - 1 > len(package) - 1:
        return "<relative import above the top-level package>"
    base = package[:len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imported_modules(path: Path, module_level_only: bool = False) -> list[tuple[str, int]]:
    """(absolute module name, line) for every import in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    found = []
    for node in nodes:
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((_resolve(node, path), node.lineno))
    return found


def _python_files(package: str) -> list[Path]:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no .py files under {package}/"
    return files


@pytest.mark.parametrize("package", ["ir", "codegen"])
def test_package_imports_only_what_its_layer_allows(package):
    bad = [f"{path.relative_to(ROOT)}:{line} imports {name}"
           for path in _python_files(package)
           for name, line in imported_modules(path)
           if name.split(".")[0] not in ALLOWED[package]]
    assert not bad, "\n".join(bad)


def test_propc_module_level_imports_are_runtime_dependencies():
    bad = [f"{path.relative_to(ROOT)}:{line} imports {name}"
           for path in _python_files("propc")
           for name, line in imported_modules(path, module_level_only=True)
           if name.split(".")[0] not in ALLOWED["propc"]]
    assert not bad, "\n".join(bad)


def test_codegen_never_imports_propc():
    bad = [f"{path.relative_to(ROOT)}:{line} imports {name}"
           for path in _python_files("codegen")
           for name, line in imported_modules(path)
           if name.split(".")[0] == "propc"]
    assert not bad, "\n".join(bad)


def test_relative_imports_resolve_inside_the_package():
    """The resolver itself: `from ..x import y` in ir/passes/f.py means ir.x."""
    node = ast.parse("from ..types import DType").body[0]
    assert _resolve(node, ROOT / "ir" / "passes" / "cost.py") == "ir.types"
    node = ast.parse("from . import cost").body[0]
    assert _resolve(node, ROOT / "ir" / "passes" / "__init__.py") == "ir.passes"
    node = ast.parse("from ...propc import api").body[0]
    assert _resolve(node, ROOT / "ir" / "passes" / "cost.py").startswith("<")


@pytest.mark.parametrize("package,forbidden", [
    ("ir", ("propc", "codegen", "llvmlite")),
    ("codegen", ("propc",)),
])
def test_importing_a_package_loads_no_higher_layer(package, forbidden):
    script = (f"import {package}, sys; "
              f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {forbidden!r}); "
              f"assert not bad, bad")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
