"""Test modules are imported by basename (tests/ folders have no __init__.py), so two
test files with one name in different folders make pytest stop at collection."""
import collections
import pathlib


def test_test_module_basenames_are_unique():
    root = pathlib.Path(__file__).parent
    names = collections.Counter(path.name for path in root.rglob("*.py"))
    assert [name for name, count in names.items() if count > 1] == []
