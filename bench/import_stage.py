"""One import of the imports stage, in its own process: a CSV of subscribers or a feed.

Run by :mod:`bench.imports` as ``python -m bench.import_stage`` with the run as JSON on
stdin (kind, file, database URL); prints one JSON line of figures on stdout. Its own
process, so ``ru_maxrss`` is the import's peak alone. It calls the functions the doors
call (``newsletter subscribers import``, ``newsletter snippets import``): the subscribers'
``csv_io.import_csv_file`` and ``snippet_import.import_snippets``, then commits.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

from sqlmodel import Session, func, select

from newsletter import db
from newsletter.settings import Settings


def rss_mb() -> float:
    """Peak RSS of this process so far, in MB (Linux reports ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return round(usage.ru_utime + usage.ru_stime, 3)


def settings_for(database_url: str, path: Path) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "secret_key": "bench-secret-key-0123456789abcdef",
        "base_url": "https://painrelief.example.com",
        "timezone": "UTC",
        "preflight_fetch": False,
    }
    # A CSV import may have a size limit of its own (NEWSLETTER_IMPORT_MAX_BYTES where
    # the setting exists): the benchmark's file is meant to be imported, however large.
    if "import_max_bytes" in Settings.model_fields:
        values["import_max_bytes"] = max(path.stat().st_size, 1)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def import_csv(session: Session, settings: Settings, path: Path) -> dict[str, Any]:
    from subscribers.csv_io import import_csv_file

    report = import_csv_file(
        session, settings=settings, mailer=None, path=path, send_confirmations=False
    )
    return {
        "rows": report.rows,
        "active": report.active,
        "pending": report.pending,
        "unchanged": report.unchanged,
        "suppressed": report.suppressed,
        "problems": len(report.problems),
        "first_problems": [str(p) for p in report.problems[:3]],
    }


def import_feed(session: Session, settings: Settings, path: Path) -> dict[str, Any]:
    from campaigns.content.snippet_import import import_snippets

    report = import_snippets(session, settings=settings, source=str(path))
    return {
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "problems": len(report.problems),
        "first_problems": report.problems[:3],
    }


def add_webhook_endpoints(session: Session) -> int:
    """``BENCH_WEBHOOK_ENDPOINTS`` endpoints wanting every event (issue 16.4: the import
    then writes a subscriber.created, and .confirmed for active rows, per endpoint);
    added before the clock starts. How many."""
    from newsletter.webhook_outbox import WebhookEndpoint

    count = int(os.environ.get("BENCH_WEBHOOK_ENDPOINTS") or 0)
    for n in range(count):
        session.add(WebhookEndpoint(url=f"https://hooks{n}.example.com/", secret="whsec_x"))
    session.commit()
    return count


def webhook_messages(session: Session) -> int:
    from newsletter.webhook_outbox import WebhookMessage

    return session.exec(select(func.count()).select_from(WebhookMessage)).one()


def run(spec: dict[str, Any]) -> dict[str, Any]:
    path = Path(spec["path"])
    settings = settings_for(spec["database_url"], path)
    work = import_csv if spec["kind"] == "csv" else import_feed
    engine = db.get_engine(settings.database_url)
    with Session(engine, expire_on_commit=False) as session:
        session.connection()  # connect (and import the driver) before the clock starts
        endpoints = add_webhook_endpoints(session) if spec["kind"] == "csv" else 0
        rss_start, cpu_start = rss_mb(), cpu_seconds()
        started = time.perf_counter()
        report = work(session, settings, path)
        session.commit()
        seconds = time.perf_counter() - started
        if endpoints:
            report["webhook_endpoints"] = endpoints
            report["webhook_messages"] = webhook_messages(session)
    db.dispose_engine(settings.database_url)
    return {
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu_seconds() - cpu_start, 3),
        "rss_mb_start": rss_start,
        "peak_rss_mb": rss_mb(),
        "report": report,
    }


def main() -> None:
    figures = run(json.loads(sys.stdin.read()))
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
