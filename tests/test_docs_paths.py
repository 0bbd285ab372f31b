"""Every file or folder docs/ARCHITECTURE.md names by its path exists, so the map of
the code cannot silently drift from the code (a path with `*` must match something)."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "ARCHITECTURE.md"
# a path: at least one folder, then a file name ending in .py/.md/.h/.json or a folder
PATH = re.compile(r"(?<![\w./*-])((?:[A-Za-z_][\w*-]*/)+(?:[\w*-]+\.(?:py|md)|))(?![\w/*-])")
TOP_LEVEL = ("ir/", "codegen/", "propc/", "tests/", "docs/", "examples/", "tools/")


def named_paths(text: str) -> list[str]:
    return sorted({match for match in PATH.findall(text) if match.startswith(TOP_LEVEL)})


def test_the_path_finder_reads_paths_in_prose_and_code():
    text = ("see `ir/passes/cost.py`, codegen/plan/ and codegen/runtime/export*.py; "
            "not ir.passes.cost or propc[mpi] or a/b")
    assert named_paths(text) == ["codegen/plan/", "codegen/runtime/export*.py",
                                 "ir/passes/cost.py"]


def test_every_path_the_architecture_names_exists():
    paths = named_paths(DOC.read_text(encoding="utf-8"))
    assert len(paths) > 50
    missing = [p for p in paths if not (any(ROOT.glob(p)) if "*" in p else (ROOT / p).exists())]
    assert not missing, f"docs/ARCHITECTURE.md names paths that do not exist: {missing}"


def test_every_module_a_package_paragraph_names_is_in_that_package():
    """In "Packages, one paragraph each", a paragraph headed **`pkg/`...** names its
    modules by file name alone (`fusion.py`): each must be a file of `pkg/`."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Packages, one paragraph each", 1)[1].split("\n## ", 1)[0]
    checked, missing = 0, []
    for paragraph in section.split("\n\n"):
        head = re.match(r"\*\*`([\w/]+/)`", paragraph.strip())
        if head is None:
            continue
        for name in re.findall(r"`([\w]+\.py)`", paragraph):
            checked += 1
            if not (ROOT / head.group(1) / name).is_file():
                missing.append(head.group(1) + name)
    assert checked > 80
    assert not missing, f"docs/ARCHITECTURE.md names modules that do not exist: {missing}"
