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


# --------------------------------------------------------------------------------------
# no import cycles; codegen's subpackages layered (issue 15)

def _package_modules(package: str) -> dict[str, Path]:
    return {_module_name(path): path for path in _python_files(package)}


def _typing_only_imports(tree: ast.Module) -> set[int]:
    """ids of the import nodes under `if TYPE_CHECKING:`: they name types for
    annotations and never run, so they make no import cycle."""
    skipped = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING",
                                                                    "typing.TYPE_CHECKING"):
            skipped.update(id(inner) for part in node.body for inner in ast.walk(part))
    return skipped


def _import_edges(package: str, module_level_only: bool) -> dict[str, set[str]]:
    """module -> modules of the same package it imports. `from pkg import name` counts
    as importing pkg.name when that is a module, else pkg (its __init__)."""
    modules = _package_modules(package)
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        nodes = tree.body if module_level_only else list(ast.walk(tree))
        typing_only = _typing_only_imports(tree)
        for node in nodes:
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(node, path)
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules
                           else base for alias in node.names]
            else:
                continue
            edges[name].update(t for t in targets if t in modules and t != name)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_imports_for_annotations_only_are_no_edges():
    tree = ast.parse("from typing import TYPE_CHECKING\nimport a\n"
                     "if TYPE_CHECKING:\n    from b import c\nelse:\n    import d\n")
    skipped = _typing_only_imports(tree)
    names = [ast.unparse(node) for node in ast.walk(tree)
             if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in skipped]
    assert names == ["from typing import TYPE_CHECKING", "import a", "import d"]


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


# The lazy (in-function) imports that may close a cycle: STYLE.md section 2 allows the
# front end one, the language's own. The tracer type's operator methods (`x + y`,
# `x // y`, `x[i]`) are the NumPy-style functions, which make and return Tensors, so
# propc/tensor.py imports numpy_api, numpy_math and indexing on first use, inside a
# function. Nothing else: the commands import their shared pieces (propc/usage.py,
# propc/demo_common.py, propc/bench/environment.py), never each other both ways.
ALLOWED_LAZY_EDGES = {
    ("propc.tensor", "propc.numpy_api"),
    ("propc.tensor", "propc.numpy_math"),
    ("propc.tensor", "propc.indexing"),
}


@pytest.mark.parametrize("package", ["ir", "codegen", "propc"])
def test_no_import_cycle_inside_a_package(package):
    """Lazy imports included: no cycle may hide in a function, but for the allowed
    lazy edges above."""
    edges = _import_edges(package, module_level_only=False)
    for source, target in ALLOWED_LAZY_EDGES:
        edges.get(source, set()).discard(target)
    cycles = _cycles(edges)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_allowed_lazy_edges_are_lazy_and_needed():
    """Each allowed edge is an import inside a function (a module-level one would be a
    cycle at import time), and it does close a cycle (else it is not allowed any more)."""
    every = _import_edges("propc", module_level_only=False)
    module_level = _import_edges("propc", module_level_only=True)
    for source, target in sorted(ALLOWED_LAZY_EDGES):
        assert target in every[source] and target not in module_level[source], (source, target)
        others = {name: set(targets) for name, targets in every.items()}
        others[source] -= {edge for s, edge in ALLOWED_LAZY_EDGES if s == source}
        others[source].add(target)
        assert any(source in cycle and target in cycle for cycle in _cycles(others)), (
            f"{source} -> {target} closes no cycle: drop it from ALLOWED_LAZY_EDGES")


# which codegen subpackages each may import (top-level helper modules such as
# codegen.errors, codegen.registry, codegen.target and codegen.llvm_init are shared)
CODEGEN_LAYERS = {
    "plan": {"plan"},
    "emit": {"plan", "emit", "kernels", "threads"},
    "kernels": {"plan", "emit", "kernels", "threads", "runtime"},
    "threads": {"plan", "kernels", "threads", "runtime"},   # plan: the ThreadPlan it makes
    "runtime": {"plan", "emit", "kernels", "threads", "runtime"},
}
# what the rest of codegen may import of the threads package: the host's thread
# count and libgomp, the process-wide library's symbols, the threaded sgemm's sizes
THREADS_INTERFACE = {"codegen.threads.host", "codegen.threads.library",
                     "codegen.threads.sgemm"}
# plan may read the compile's options (a leaf of the stdlib only: its kernel switches)
PLAN_ALLOWED_TOP = {"codegen.errors", "codegen.options", "codegen.registry"}


def _codegen_imports():
    for path in _python_files("codegen"):
        parts = _module_name(path).split(".")
        sub = parts[1] if len(parts) > 2 or (path.name == "__init__.py" and len(parts) > 1) else None
        for name, line in imported_modules(path):
            yield path, sub, name, line


def test_codegen_subpackages_import_only_their_layers():
    bad = []
    for path, sub, name, line in _codegen_imports():
        target = name.split(".")
        if sub is None or target[0] != "codegen" or len(target) < 2:
            continue
        if target[1] in CODEGEN_LAYERS and target[1] not in CODEGEN_LAYERS[sub]:
            bad.append(f"{path.relative_to(ROOT)}:{line} ({sub}) imports {name}")
    assert not bad, "\n".join(bad)


def test_plan_is_pure_python():
    """Planning never needs LLVM: no llvmlite, and of codegen only plan, errors, the
    options and the registry."""
    bad = [f"{path.relative_to(ROOT)}:{line} imports {name}"
           for path, sub, name, line in _codegen_imports() if sub == "plan"
           and (name.split(".")[0] == "llvmlite"
                or (name.startswith("codegen") and not name.startswith("codegen.plan")
                    and name not in PLAN_ALLOWED_TOP))]
    assert not bad, "\n".join(bad)


def test_only_the_threads_interface_is_imported_from_outside_it():
    bad = [f"{path.relative_to(ROOT)}:{line} imports {name}"
           for path, sub, name, line in _codegen_imports()
           if sub != "threads" and name.startswith("codegen.threads.")
           and name not in THREADS_INTERFACE]
    assert not bad, "\n".join(bad)


# --------------------------------------------------------------------------------------
# codegen takes the environment from its options builder only (issue 15)

def nodes_in_functions(tree: ast.AST, function: str = "<module>"):
    """Every node below `tree`, depth first, with the name of the function it is in
    ("<module>" outside any; a def's own node is in the enclosing one)."""
    for child in ast.iter_child_nodes(tree):
        yield child, function
        inner = child.name if isinstance(child, (ast.FunctionDef,
                                                 ast.AsyncFunctionDef)) else function
        yield from nodes_in_functions(child, inner)


OPTIONS_BUILDER = ROOT / "codegen" / "options.py"
_ENV_NAMES = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def environment_uses(path: Path) -> list[int]:
    """Lines of `path` that touch the process environment: os.environ / os.getenv /
    os.putenv / os.unsetenv (any alias of os), or those names imported from os."""
    tree = ast.parse(path.read_text(), filename=str(path))
    os_names = {alias.asname or alias.name for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names if alias.name == "os"}
    lines = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr in _ENV_NAMES
                and isinstance(node.value, ast.Name) and node.value.id in os_names):
            lines.append(node.lineno)
        elif (isinstance(node, ast.ImportFrom) and node.module == "os"
              and any(alias.name in _ENV_NAMES for alias in node.names)):
            lines.append(node.lineno)
    return sorted(lines)


def test_the_environment_check_sees_reads_and_writes(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import os as o\nfrom os import getenv\nx = o.environ.get('A')\n"
                     "o.environ['B'] = '1'\ny = os_path = 1\n")
    assert environment_uses(probe) == [2, 3, 4]


def test_codegen_reads_the_environment_only_in_its_options_builder():
    assert environment_uses(OPTIONS_BUILDER), "the options builder reads the environment"
    bad = [f"{path.relative_to(ROOT)}:{line}" for path in _python_files("codegen")
           if path != OPTIONS_BUILDER for line in environment_uses(path)]
    assert not bad, "os.environ outside codegen/options.py:\n" + "\n".join(bad)


# ...and keeps no hidden state that decides what it compiles (issue 15): no module-level
# switch (a name bound to True/False, or rebound through `global`), no thread-local
# read while planning or emitting. Every setting is a CompileOptions field (or the
# ThreadPlan's, or the target's) passed down.

# (file, function) -> why a thread-local is right there
THREAD_LOCALS_ALLOWED = {
    # each Python thread calling one Executable gets its own argument block and
    # arena: per-call state of a compiled function, not a compile setting
    ("codegen/runtime/executable.py", "__init__"),
}


def hidden_state(path: Path) -> list[str]:
    """What in `path` could switch codegen behind its arguments' back: module-level
    names bound to a bool constant, `global` statements, and `threading.local`
    (any alias of threading, or `local` imported from it), each as
    "kind name line (in function)"."""
    tree = ast.parse(path.read_text(), filename=str(path))
    threading_names = {alias.asname or alias.name for node in ast.walk(tree)
                       if isinstance(node, ast.Import) for alias in node.names
                       if alias.name == "threading"}
    found = []
    for node in tree.body:
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else [])
        value = getattr(node, "value", None)
        if isinstance(value, ast.Constant) and isinstance(value.value, bool):
            found += [f"switch {ast.unparse(target)} {node.lineno} (in <module>)"
                      for target in targets]
    for node, function in nodes_in_functions(tree):
        if isinstance(node, ast.Global):
            found.append(f"global {','.join(node.names)} {node.lineno} (in {function})")
        elif (isinstance(node, ast.Attribute) and node.attr == "local"
              and isinstance(node.value, ast.Name) and node.value.id in threading_names):
            found.append(f"thread-local {ast.unparse(node)} {node.lineno} (in {function})")
        elif (isinstance(node, ast.ImportFrom) and node.module == "threading"
              and any(alias.name == "local" for alias in node.names)):
            found.append(f"thread-local import {node.lineno} (in {function})")
    return found


def test_the_hidden_state_check_sees_switches_globals_and_thread_locals(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import threading as t\nfrom threading import local\nUSE_X = True\n"
                     "COUNT = 3\n_STATE = t.local()\n"
                     "def flip():\n    global USE_X\n    USE_X = False\n")
    assert hidden_state(probe) == ["switch USE_X 3 (in <module>)",
                                   "thread-local import 2 (in <module>)",
                                   "thread-local t.local 5 (in <module>)",
                                   "global USE_X 7 (in flip)"]


def test_codegen_keeps_no_module_switches_or_thread_locals():
    bad = []
    allowed_seen = set()
    for path in _python_files("codegen"):
        relative = str(path.relative_to(ROOT))
        for item in hidden_state(path):
            function = item.rsplit("(in ", 1)[1].rstrip(")")
            if item.startswith("thread-local") and (relative, function) in THREAD_LOCALS_ALLOWED:
                allowed_seen.add((relative, function))
            else:
                bad.append(f"{relative}: {item}")
    assert not bad, "hidden state in codegen (make it an option or argument):\n" + "\n".join(bad)
    assert allowed_seen == THREAD_LOCALS_ALLOWED, "an allowed thread-local is gone: drop it"


# CompileOptions are built once, at the edge, and passed down (issue 15): only the
# compile entry points call the options builder; nothing below them does.

# file -> the functions in it that may call `from_environment`
OPTIONS_EDGE = {
    "codegen/runtime/executable.py": {"edge_options"},  # codegen's public compile functions
    "propc/compile.py": {"_executable", "pass_runners"},  # propc's compile entry
    "propc/bench/compile.py": {"measure"},              # the bench's library warm-up
}


def builder_calls(path: Path, name: str = "from_environment") -> list[tuple[str, int]]:
    """(enclosing function, line) of every call of `name` (plain or as an attribute)
    in `path`; "<module>" for calls outside any function."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node, function in nodes_in_functions(tree):
        if isinstance(node, ast.Call):
            called = node.func
            called_name = called.id if isinstance(called, ast.Name) else getattr(
                called, "attr", None)
            if called_name == name:
                found.append((function, node.lineno))
    return found


def test_the_builder_call_check_sees_calls_and_their_function(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import codegen.options as o\nx = o.from_environment()\n"
                     "def f():\n    return from_environment().debug\n")
    assert builder_calls(probe) == [("<module>", 2), ("f", 4)]


def test_compile_options_are_built_only_at_the_edge():
    bad = []
    for package in ("codegen", "propc"):
        for path in _python_files(package):
            relative = str(path.relative_to(ROOT))
            if relative == "codegen/options.py":
                continue
            allowed = OPTIONS_EDGE.get(relative, set())
            bad += [f"{relative}:{line} (in {function})"
                    for function, line in builder_calls(path) if function not in allowed]
    assert not bad, "from_environment() below the edge:\n" + "\n".join(bad)
    for relative, functions in OPTIONS_EDGE.items():
        found = {function for function, _ in builder_calls(ROOT / relative)}
        assert found == functions, f"{relative}: the edge calls are in {found}"


# --------------------------------------------------------------------------------------
# codegen's per-primitive tables: one Registry type, refusing duplicates (issue 15)

def test_codegen_tables_are_registries_that_refuse_a_second_entry():
    import codegen
    from codegen.emit.elementwise import EMITTERS
    from codegen.plan.views import VIEWS
    from codegen.registry import Registry
    for table in (codegen.LOWERINGS, EMITTERS, VIEWS):
        assert isinstance(table, Registry)
        name = next(iter(table))
        with pytest.raises(ValueError, match="registered twice"):
            table.add(name, table[name])
        with pytest.raises(ValueError, match="registered twice"):
            table.update({name: table[name]})
    fresh = Registry("probe")
    fresh.register("a", "b")(len)
    assert dict(fresh) == {"a": len, "b": len}
