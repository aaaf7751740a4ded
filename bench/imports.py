"""The imports stage: N subscribers from a CSV file and N snippets from one RSS feed.

``python -m bench --stage imports --sizes 1000000`` (or ``make bench BENCH_STAGE=imports
SIZES=1000000``). For each size and kind, a file is generated in a temporary folder (not
timed as the import), a fresh database is made (:mod:`bench.databases`), and the import
runs in a child process (:mod:`bench.import_stage`) so its peak RSS is its own. A run is
verified before it is reported: the import's counts are the file's, nothing was skipped,
and the database holds N new rows.

``python -m bench.imports FILE.json [...]`` prints the README's table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.databases import dialect_name, fresh_database
from newsletter import db
from newsletter.settings import PROJECT_ROOT

KINDS = ("csv", "feed")
CHILD_TIMEOUT = 6 * 3600
WRITE_BATCH = 10_000
PENDING_EVERY = 20  # one row in 20 has no consent proof: imported as pending
CATEGORIES = ("back-pain", "sciatica", "leg-cramps", "neck-pain")
SUMMARY = (
    "Gentle stretches for the calf and hamstring, held for thirty seconds each, ease "
    "night-time cramps for most people; see a physician if they keep waking you."
)


def write_csv(path: Path, size: int) -> int:
    """N subscriber rows with the import's columns; returns how many have consent proof."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("email,name,consented_at,source,ip\n")
        for start in range(0, size, WRITE_BATCH):
            out.write(
                "".join(
                    f"reader{n:09d}@example.com,Reader {n},"
                    f"{'' if n % PENDING_EVERY == 0 else '2026-03-01T10:00:00Z'},"
                    f"spring fair,192.0.2.{n % 250}\n"
                    for n in range(start, min(start + WRITE_BATCH, size))
                )
            )
    return size - len(range(0, size, PENDING_EVERY))


def write_feed(path: Path, size: int) -> None:
    """One RSS 2.0 feed of N items, each a realistic snippet (about 500 bytes)."""
    with path.open("w", encoding="utf-8") as out:
        out.write(
            '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0"><channel>'
            "<title>Pain Relief Blog</title><link>https://blog.painrelief.example/</link>"
            "<description>Articles</description>\n"
        )
        for start in range(0, size, WRITE_BATCH):
            out.write(
                "".join(
                    f"<item><title>Article {n}: easing cramps &amp; stiffness</title>"
                    f"<link>/articles/{n}</link><description>&lt;p&gt;{SUMMARY}&lt;/p&gt;"
                    f"</description><category>{CATEGORIES[n % 4]}</category>"
                    f"<pubDate>Mon, 02 Nov 2026 10:00:00 GMT</pubDate></item>\n"
                    for n in range(start, min(start + WRITE_BATCH, size))
                )
            )
        out.write("</channel></rss>\n")


def _run_child(spec: dict[str, Any]) -> dict[str, Any]:
    process = subprocess.run(
        [sys.executable, "-m", "bench.import_stage"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    if process.returncode != 0:
        raise RuntimeError(
            f"the import process failed (exit {process.returncode}):\n{process.stderr[-4000:]}"
        )
    return json.loads(process.stdout.strip().splitlines()[-1])


def _stored(url: str, kind: str) -> int:
    table = "subscriber" if kind == "csv" else "snippet"
    with db.get_engine(url).connect() as connection:
        return connection.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


def _problems(
    kind: str, size: int, consented: int, report: dict[str, Any], stored: int
) -> list[str]:
    if kind == "csv":
        expected = {"rows": size, "active": consented, "pending": size - consented}
        expected |= {"unchanged": 0, "suppressed": 0, "problems": 0}
    else:
        expected = {"created": size, "updated": 0, "unchanged": 0, "problems": 0}
    problems = [
        f"{key}: {report[key]}, expected {value}"
        for key, value in expected.items()
        if report[key] != value
    ]
    if report["first_problems"]:
        problems.append(f"first problems: {report['first_problems']}")
    if stored != size:
        problems.append(f"the database holds {stored} rows, expected {size}")
    return problems


def run_one(kind: str, size: int, database_url: str | None, workdir: Path) -> dict[str, Any]:
    path = workdir / f"{kind}-{size}.{'csv' if kind == 'csv' else 'xml'}"
    started = time.perf_counter()
    consented = 0
    if kind == "csv":
        consented = write_csv(path, size)
    else:
        write_feed(path, size)
    generate_seconds = time.perf_counter() - started
    file_bytes = path.stat().st_size
    try:
        with fresh_database(database_url, workdir, f"import-{kind}-{size}") as url:
            spec = {"kind": kind, "path": str(path), "database_url": url}
            child = _run_child(spec)
            stored = _stored(url, kind)
            db.dispose_engine(url)
    finally:
        path.unlink(missing_ok=True)
    problems = _problems(kind, size, consented, child["report"], stored)
    seconds = child["seconds"]
    return {
        "kind": kind,
        "size": size,
        "database": dialect_name(database_url),
        "file_mb": round(file_bytes / 1e6, 1),
        "generate_seconds": round(generate_seconds, 3),
        "seconds": seconds,
        "rows_per_second": round(size / seconds, 1) if seconds else 0.0,
        "cpu_seconds": child["cpu_seconds"],
        "peak_rss_mb": child["peak_rss_mb"],
        "rss_mb_start": child["rss_mb_start"],
        "report": child["report"],
        "verified": not problems,
        "problems": problems,
        "load_average_after": round(os.getloadavg()[0], 2),
    }


def header() -> str:
    return (
        f"{'database':<10} {'import':<6} {'rows':>10} {'file MB':>8} {'seconds':>8} "
        f"{'rows/s':>8} {'CPU s':>7} {'RSS MB':>7} {'start MB':>8}  verified"
    )


def line(r: dict[str, Any]) -> str:
    verified = "yes" if r["verified"] else "NO: " + "; ".join(r["problems"])
    return (
        f"{r['database']:<10} {r['kind']:<6} {r['size']:>10,} {r['file_mb']:>8,.1f} "
        f"{r['seconds']:>8.1f} {r['rows_per_second']:>8,.0f} {r['cpu_seconds']:>7.1f} "
        f"{r['peak_rss_mb']:>7.0f} {r['rss_mb_start']:>8.0f}  {verified}"
    )


def run_imports(
    sizes: list[int], kinds: list[str], database_url: str | None, echo: Any = print
) -> list[dict[str, Any]]:
    """Every (size, kind) in turn; prints a line as each one finishes."""
    echo(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    echo(header())
    results = []
    with tempfile.TemporaryDirectory(prefix="newsletter-bench-imports-") as folder:
        for size in sizes:
            for kind in kinds:
                results.append(run_one(kind, size, database_url, Path(folder)))
                echo(line(results[-1]))
    return results


def markdown(results: list[dict[str, Any]]) -> str:
    rows = [
        "| database | import | rows | file MB | seconds | rows/s | CPU s | peak RSS MB "
        "| RSS at start MB | load avg | verified |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in sorted(results, key=lambda r: (r["database"] != "sqlite", r["kind"], r["size"])):
        rows.append(
            f"| {r['database']} | {r['kind']} | {r['size']:,} | {r['file_mb']:,.0f} "
            f"| {r['seconds']:,.1f} | {r['rows_per_second']:,.0f} | {r['cpu_seconds']:,.1f} "
            f"| {r['peak_rss_mb']:.0f} | {r['rss_mb_start']:.0f} "
            f"| {r['load_average_after']:.1f} | {'yes' if r['verified'] else 'NO'} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    merged: list[dict[str, Any]] = []
    for name in sys.argv[1:]:
        merged.extend(json.loads(Path(name).read_text(encoding="utf-8")))
    print(markdown(merged))
