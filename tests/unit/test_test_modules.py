"""The test tree has no __init__.py files, so pytest imports each test module
by its basename (the default "prepend" import mode): two modules with one
basename in different directories stop the whole run at collection
("import file mismatch"). That happened once in CI (test_versions_canary_dhcp)."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_module_has_a_basename_of_its_own():
    by_name: dict[str, list[str]] = defaultdict(list)
    for path in TESTS.rglob("*.py"):
        if path.name != "conftest.py":
            by_name[path.name].append(str(path.relative_to(TESTS)))
    clashes = {name: paths for name, paths in by_name.items() if len(paths) > 1}
    assert clashes == {}
