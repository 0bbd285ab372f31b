"""The benchmark harness stays out of the compiler's core: only `propc bench`'s entry
(propc/cli.py) imports the `propc.bench` package, and the harness lives in it alone
(no `bench*` modules left beside the compiler's)."""
from __future__ import annotations

from test_layering import ROOT, imported_modules


def test_only_the_command_line_imports_the_bench():
    offenders = []
    for path in sorted((ROOT / "propc").rglob("*.py")):
        if "bench" in path.relative_to(ROOT / "propc").parts or path.name == "cli.py":
            continue
        offenders += [f"{path.relative_to(ROOT)}:{line} imports {name}"
                      for name, line in imported_modules(path)
                      if name == "propc.bench" or name.startswith("propc.bench.")]
    assert offenders == []


def test_the_harness_is_one_subpackage():
    strays = [p.name for p in (ROOT / "propc").glob("bench*.py")]
    assert strays == []
    assert (ROOT / "propc" / "bench" / "__init__.py").is_file()
