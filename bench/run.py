"""The benchmark's conductor: per size and provider, a fresh database, a peer, a child.

For each (size, provider): a fresh database gets N subscribers (timed, but not a stage);
the fake SendGrid server or the SMTP sink starts in its own process; the four stages run
in a child process (:mod:`bench.stages`) so its peak RSS is the sending process's own.
Then the run is verified, from both ends, before anything is reported: the peer saw every
recipient exactly once, and the ledger says every one was sent and nobody else queued.
After a SendGrid run, SendGrid's events for it (one per recipient) go through the
service's webhook in another child (:mod:`bench.events`), verified the same way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from bench.databases import dialect_name, fresh_database
from bench.fake_sendgrid_server import FakeSendGridProcess
from bench.generate import populate
from bench.report import STAGES, header, line
from bench.smtp_sink import SmtpSinkProcess
from campaigns.delivery.ledger import delivery_counts
from campaigns.models import Delivery
from newsletter import db
from newsletter.settings import PROJECT_ROOT, Settings
from subscribers.models import Subscriber

PROVIDERS = ("sendgrid", "smtp")
API_KEY = "SG.bench-not-a-real-key"
CHILD_TIMEOUT = 3600


@dataclass(frozen=True)
class RunSpec:
    size: int
    provider: str
    database_url: str | None  # None: a SQLite file in a temporary folder
    overrides: dict[str, Any]  # extra settings for the sending process
    events: bool = True  # SendGrid runs: post the events back through the webhook


def bench_settings(database_url: str, workdir: Path, provider: str, peer_url: str) -> dict:
    """The settings of a benchmark run, as plain values a child process can rebuild."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "provider": provider,
        "outbox_dir": str(workdir / "outbox"),
        "secret_key": "bench-secret-key-0123456789abcdef",
        "postal_address": "Pain Relief Weekly, 12 Bench Street, Springfield, USA",
        "base_url": "https://painrelief.example.com",
        "from_email": "weekly@painrelief.example.com",
        "timezone": "UTC",
        "snippets_per_issue": 6,
    }
    if provider == "sendgrid":
        values.update(sendgrid_api_key=API_KEY, sendgrid_api_host=peer_url)
    else:
        values["smtp_url"] = peer_url
    return values


def _run_child(values: dict[str, Any], module: str = "bench.stages") -> dict[str, Any]:
    """Run the four stages (or the events stage) in a fresh interpreter; return its figures."""
    process = subprocess.run(
        [sys.executable, "-m", module],
        input=json.dumps(values),
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    if process.returncode != 0:
        raise RuntimeError(
            f"the sending process failed (exit {process.returncode}):\n{process.stderr[-4000:]}"
        )
    return json.loads(process.stdout.strip().splitlines()[-1])


def _ledger_problems(database_url: str, campaign_id: int, size: int) -> list[str]:
    """What the ledger says is wrong: anyone not sent, or a left-out subscriber queued."""
    engine = db.get_engine(database_url)
    delivery, subscriber = Delivery.__table__, Subscriber.__table__
    with Session(engine) as session:
        counts = delivery_counts(session, campaign_id=campaign_id)
        left_out = session.execute(
            sa.select(sa.func.count())
            .select_from(delivery.join(subscriber, subscriber.c.id == delivery.c.subscriber_id))
            .where(delivery.c.campaign_id == campaign_id, subscriber.c.email.like("left-out%"))
        ).scalar_one()
    problems = []
    if counts.sent != size:
        problems.append(f"ledger: {counts.sent} sent, expected {size}")
    others = {k: n for k, n in counts.as_dict().items() if n and k not in ("sent", "total")}
    if others:
        problems.append(f"ledger: also {others}")
    if left_out:
        problems.append(f"ledger: {left_out} subscribers who must be left out were queued")
    return problems


def _peer_problems(provider: str, stats: dict[str, Any], size: int) -> list[str]:
    problems = []
    if stats["distinct_recipients"] != size:
        problems.append(f"peer saw {stats['distinct_recipients']} distinct recipients, not {size}")
    if stats["duplicates"]:
        problems.append(f"peer saw {stats['duplicates']} duplicates")
    if provider == "sendgrid" and (stats["rejected"] or stats["invalid_after_accept"]):
        problems.append(
            f"fake SendGrid refused {stats['rejected']} requests, "
            f"{stats['invalid_after_accept']} malformed ({stats['errors']})"
        )
    return problems


def run_one(spec: RunSpec, workdir: Path) -> dict[str, Any]:
    label = f"{spec.provider}-{spec.size}"
    with fresh_database(spec.database_url, workdir, label) as url:
        started = time.perf_counter()
        population = populate(
            db.get_engine(url), settings=_settings_for_generation(url), size=spec.size
        )
        generate_seconds = time.perf_counter() - started
        db.dispose_engine(url)
        peer = FakeSendGridProcess(API_KEY) if spec.provider == "sendgrid" else SmtpSinkProcess()
        with peer:
            values = bench_settings(url, workdir, spec.provider, peer.url)
            values.update(spec.overrides)
            child = _run_child(values)
            stats = peer.stats()
        problems = _peer_problems(spec.provider, stats, spec.size)
        problems += _ledger_problems(url, child["campaign_id"], spec.size)
        db.dispose_engine(url)
        # SendGrid posts its events back: the webhook at volume, on the ledger just sent.
        wanted = spec.events and spec.provider == "sendgrid"
        events = _run_child(values, "bench.events") if wanted else None
        problems += events["problems"] if events else []
    seconds = {stage: round(child["seconds"][stage], 3) for stage in STAGES}
    total = sum(seconds.values())
    queue_send = seconds["queue"] + seconds["send"]
    requests = stats["requests"] if spec.provider == "sendgrid" else stats["messages"]
    peer_bytes = stats["body_bytes"] if spec.provider == "sendgrid" else stats["message_bytes"]
    return {
        "size": spec.size,
        "provider": spec.provider,
        "database": dialect_name(spec.database_url),
        "seconds": seconds,
        "generate_seconds": round(generate_seconds, 3),
        "queue_send_seconds": round(queue_send, 3),
        "recipients_per_second": round(spec.size / total, 1) if total else 0.0,
        "queue_send_recipients_per_second": round(spec.size / queue_send, 1) if queue_send else 0.0,
        "microseconds_per_recipient": round(queue_send / spec.size * 1e6, 2),
        "peak_rss_mb": child["peak_rss_mb"],
        "rss_mb_after": child["rss_mb_after"],
        "requests": requests,
        "average_request_kb": round(peer_bytes / requests / 1024, 1) if requests else 0.0,
        "peer_cpu_seconds": stats["cpu_seconds"],
        "sender_cpu_seconds": child["cpu_seconds"],
        "sender_cpu_seconds_per_stage": child["cpu_seconds_per_stage"],
        "server_cpu_seconds_per_stage": child.get("server_cpu_seconds_per_stage", {}),
        "helper_cpu_seconds_per_stage": child.get("helper_cpu_seconds_per_stage", {}),
        "helper_peak_rss_mb": child.get("helper_peak_rss_mb", 0.0),
        "sender_cpu_microseconds_per_recipient": round(
            (child["cpu_seconds_per_stage"]["queue"] + child["cpu_seconds_per_stage"]["send"])
            / spec.size
            * 1e6,
            2,
        ),
        "events": events,
        "queued": child["queued"],
        "send_report": child["send_report"],
        "exactly_once": not problems,
        "problems": problems,
        "ineligible_subscribers": population.ineligible,
        "load_average_after": round(os.getloadavg()[0], 2),
        "settings": dict(spec.overrides),
    }


def _settings_for_generation(url: str) -> Settings:
    return Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]


def run_all(
    sizes: list[int],
    providers: list[str],
    database_url: str | None,
    overrides: dict[str, Any] | None = None,
    echo: Any = print,
    events: bool = True,
) -> list[dict[str, Any]]:
    """Every (size, provider) run in turn; prints a line as each one finishes."""
    results = []
    echo(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    echo(header())
    with tempfile.TemporaryDirectory(prefix="newsletter-bench-") as folder:
        for size in sizes:
            for provider in providers:
                spec = RunSpec(size, provider, database_url, dict(overrides or {}), events)
                result = run_one(spec, Path(folder))
                results.append(result)
                echo(line(result))
    return results
