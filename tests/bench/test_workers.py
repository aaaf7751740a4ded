"""Smoke test of ``python -m bench.workers``: a tiny size, a real worker, verified."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from newsletter.settings import PROJECT_ROOT


@pytest.mark.postgres
def test_the_workers_bench_reports_a_verified_row_per_worker_count(tmp_path: Path) -> None:
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        pytest.skip("TEST_DATABASE_URL is not set: queue mode needs PostgreSQL")
    out = tmp_path / "workers.json"
    process = subprocess.run(
        [sys.executable, "-m", "bench.workers", "--sizes", "300", "--workers", "1",
         "--database-url", url, "--json", str(out)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr[-3000:]
    (row,) = json.loads(out.read_text())
    assert (row["size"], row["workers"], row["exactly_once"]) == (300, 1, True), row["problems"]
    assert row["send_seconds"] > 0 and row["speed_up"] == 1.0
