"""Smoke tests of the benchmark's imports stage: tiny sizes, the real imports, verified.

Like the send stage, the imports stage must not report figures it has not checked: the
import's own counts and the rows in the database must be the file's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.imports import _problems, write_csv, write_feed
from newsletter.settings import PROJECT_ROOT

SIZE = 120


def run_bench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_the_imports_stage_reports_verified_figures_per_kind(tmp_path: Path) -> None:
    out = tmp_path / "imports.json"
    process = run_bench("--sizes", str(SIZE), "--json", str(out), env={"BENCH_STAGE": "imports"})
    assert process.returncode == 0, process.stderr
    assert "rows/s" in process.stdout and "verified" in process.stdout
    results = json.loads(out.read_text())
    assert [(r["kind"], r["size"], r["database"]) for r in results] == [
        ("csv", SIZE, "sqlite"),
        ("feed", SIZE, "sqlite"),
    ]
    for result in results:
        assert result["verified"] is True, result["problems"]
        assert result["rows_per_second"] > 0
        assert 20 < result["peak_rss_mb"] < 1000
        assert result["peak_rss_mb"] >= result["rss_mb_start"]
    csv, feed = (r["report"] for r in results)
    assert (csv["rows"], csv["active"], csv["pending"]) == (SIZE, SIZE - 6, 6)
    assert (feed["created"], feed["problems"]) == (SIZE, 0)


def test_the_imports_stage_runs_on_postgresql(tmp_path: Path) -> None:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("TEST_DATABASE_URL is not set: the PostgreSQL case needs a real server")
    out = tmp_path / "imports.json"
    process = run_bench(
        "--stage", "imports", "--sizes", "50", "--kinds", "feed,csv",
        "--database-url", url, "--json", str(out),
    )  # fmt: skip
    assert process.returncode == 0, process.stderr
    results = json.loads(out.read_text())
    assert [(r["kind"], r["database"], r["verified"]) for r in results] == [
        ("feed", "postgresql", True),
        ("csv", "postgresql", True),
    ]


def test_a_run_that_does_not_add_up_is_not_verified() -> None:
    report = {"created": 9, "updated": 0, "unchanged": 1, "problems": 0, "first_problems": []}
    assert _problems("feed", 10, 0, report, stored=9) == [
        "created: 9, expected 10",
        "unchanged: 1, expected 0",
        "the database holds 9 rows, expected 10",
    ]


def test_the_generated_files_hold_what_they_say(tmp_path: Path) -> None:
    consented = write_csv(tmp_path / "s.csv", 45)
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert (len(lines), consented) == (46, 42)  # a header; rows 0, 20 and 40 lack proof
    write_feed(tmp_path / "f.xml", 7)
    assert (tmp_path / "f.xml").read_text().count("<item>") == 7


def test_an_unknown_import_kind_is_refused() -> None:
    process = run_bench("--stage", "imports", "--kinds", "xls", "--sizes", "1")
    assert process.returncode == 2
    assert "import kinds are csv, feed" in process.stderr
