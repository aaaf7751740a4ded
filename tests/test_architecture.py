"""The house's shape, checked: what import-linter cannot see, and the size of a module."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOORS = {"cli", "web"}
MAX_LINES = 400


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_the_scheduler_door_imports_no_other_door() -> None:
    assert _imported_roots(ROOT / "scheduler.py") & DOORS == set()


def test_no_module_outside_tests_and_migrations_passes_400_lines() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    too_long = {
        name: count
        for name in tracked
        if not name.startswith("tests/") and "/migrations/" not in name
        for count in [len((ROOT / name).read_text(encoding="utf-8").splitlines())]
        if count > MAX_LINES
    }
    assert too_long == {}
