"""The sending process of one benchmark run: assemble, render, queue, send, each timed.

Run by :mod:`bench.run` as ``python -m bench.stages`` with the run's settings as JSON
on stdin; prints its figures as one JSON line on stdout. It is its own process so that
its peak RSS (``ru_maxrss``) is the pipeline's alone, not the generator's or the
conductor's. The stages call the service's own functions, the ones the scheduler and
``newsletter campaigns send`` call; nothing here is a benchmark-only shortcut.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlmodel import Session

from newsletter import db
from newsletter.settings import Settings


def rss_mb() -> float:
    """Peak RSS of this process so far, in MB (Linux reports ru_maxrss in KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def cpu_seconds(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return round(usage.ru_utime + usage.ru_stime, 3)


def helper_cpu_seconds() -> float:
    """CPU seconds of the ended helper processes of a shared send (``send_processes``)."""
    return cpu_seconds(resource.RUSAGE_CHILDREN)


def server_cpu_seconds(session: Session) -> float | None:
    """CPU seconds so far of the PostgreSQL backend serving ``session`` (None on SQLite).

    The server runs on this machine (the benchmark's peers are all on 127.0.0.1), so its
    backend process is readable in /proc: the sender's own CPU leaves out the server's
    share of the work, which is where PostgreSQL and SQLite differ.
    """
    if session.get_bind().dialect.name != "postgresql":
        return None
    pid = session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:  # another host, or no permission: not measured
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime, stime


def run_stages(settings: Settings) -> dict[str, Any]:
    from campaigns.content.assembly import assemble_week
    from campaigns.content.rendering import render_campaign
    from campaigns.delivery.ledger import queue_deliveries
    from campaigns.delivery.sending import send_campaign
    from campaigns.models import Campaign

    engine = db.get_engine(settings.database_url)
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}
    helper_cpu: dict[str, float] = {}  # the helper processes of a shared send
    rss_after: dict[str, float] = {"start": rss_mb()}

    def timed(stage: str, work: Callable[[], Any]) -> Any:
        """Wall and CPU seconds of one stage (CPU too: the machine may be shared)."""
        started, cpu_started, helpers_started = (
            time.perf_counter(),
            cpu_seconds(),
            helper_cpu_seconds(),
        )
        value = work()
        seconds[stage] = time.perf_counter() - started
        cpu[stage] = round(cpu_seconds() - cpu_started, 3)
        helper_cpu[stage] = round(helper_cpu_seconds() - helpers_started, 3)
        rss_after[stage] = rss_mb()
        return value

    def assemble() -> int:
        with db.session_scope(engine) as session:
            issue = assemble_week(session, settings=settings, actor="bench")
            assert issue.campaign.id is not None
            return issue.campaign.id

    campaign_id = timed("assemble", assemble)

    def render() -> int:
        with db.session_scope(engine) as session:
            campaign = session.get(Campaign, campaign_id)
            assert campaign is not None
            return len(render_campaign(session, settings=settings, campaign=campaign).html)

    html_bytes = timed("render", render)

    server_cpu: dict[str, float] = {}

    def server_share(stage: str, session: Session, before: float | None) -> None:
        after = server_cpu_seconds(session)
        if before is not None and after is not None:
            server_cpu[stage] = round(after - before, 3)

    def queue() -> int:
        with db.session_scope(engine) as session:
            before = server_cpu_seconds(session)
            campaign = session.get(Campaign, campaign_id)
            assert campaign is not None
            queued = queue_deliveries(session, campaign=campaign)
            session.commit()
            server_share("queue", session, before)
            return queued

    queued = timed("queue", queue)

    def send() -> dict[str, Any]:
        with Session(engine, expire_on_commit=False) as session:
            before = server_cpu_seconds(session)
            session.commit()
            report = send_campaign(session, settings=settings, campaign_id=campaign_id)
            server_share("send", session, before)
            return report.as_dict()

    report = timed("send", send)
    return {
        "campaign_id": campaign_id,
        "queued": queued,
        "html_bytes": html_bytes,
        "send_report": report,
        "seconds": seconds,
        "cpu_seconds_per_stage": cpu,
        # PostgreSQL: the backend's CPU seconds for the stage (same connection throughout).
        "server_cpu_seconds_per_stage": server_cpu,
        "rss_mb_after": rss_after,
        "peak_rss_mb": rss_mb(),
        "helper_cpu_seconds_per_stage": helper_cpu,
        # The largest helper's peak (ru_maxrss of the ended children); 0 without helpers.
        "helper_peak_rss_mb": round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
        ),
        "cpu_seconds": cpu_seconds(),
    }


def main() -> None:
    values = json.loads(sys.stdin.read())
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    figures = run_stages(settings)
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
