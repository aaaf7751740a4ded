"""The events stage: SendGrid's Event Webhook at volume, through the real app.

Run by :mod:`bench.run` as ``python -m bench.events`` after a SendGrid run, in its own
process (its memory is not the sender's), with the run's settings as JSON on stdin. It
reads the recipients the run sent and builds one SendGrid-shaped event for each, as
SendGrid posts them (our custom args echoed as strings, its message id, a unique
``sg_event_id``): delivered 60%, open 25% (a fifth of them machine opens), click 10%,
processed 4%, soft bounce 0.5%, spam report 0.5%. It signs the batch with a fresh P-256
key the way SendGrid does, serves the service's own app (``web.app.create_app``, the
SendGrid provider, that key) with uvicorn on 127.0.0.1, and POSTs the events in requests
of at most ``--per-request`` events to ``/webhooks/sendgrid``. Timed: from the first
request sent to the last answer read (signature check, parsing, applying, commit), in
wall seconds and in this process's CPU seconds (the machine may be shared).

Verified before anything is reported: every event applied once (no duplicate, failure
or unmatched event), one ``tracking_event`` row each, the ledger's counters and the
suppression list as the events say. Prints its figures as one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import base64
import json
import resource
import socket
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from campaigns.delivery.providers.sendgrid import ARG_CAMPAIGN, ARG_DELIVERY, ARG_SUBSCRIBER
from campaigns.delivery.providers.sendgrid_events import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    sign_payload,
)
from campaigns.models import Delivery, TrackingEvent
from newsletter import db
from newsletter.settings import Settings
from subscribers.models import Subscriber, Suppression

PER_REQUEST = 100_000
# Per 1000 recipients: the kind of the one event each gets.
MIX = (
    [("delivered", {})] * 600
    + [("open", {})] * 200
    + [("open", {"sg_machine_open": True})] * 50
    + [("click", {"url": "https://painrelief.example.com/articles/1"})] * 100
    + [("processed", {})] * 40
    + [("bounce", {"type": "blocked", "reason": "452 4.2.2 mailbox full"})] * 5
    + [("spamreport", {})] * 5
)


def sent_recipients(settings: Settings) -> list[tuple[int, int, int, str, str]]:
    """(delivery id, campaign id, subscriber id, address, message id) of every row sent."""
    d, s = Delivery.__table__, Subscriber.__table__
    query = (
        sa.select(d.c.id, d.c.campaign_id, d.c.subscriber_id, s.c.email, d.c.provider_message_id)
        .join(s, s.c.id == d.c.subscriber_id)
        .where(d.c.status == "sent")
        .order_by(d.c.id)
    )
    with db.get_engine(settings.database_url).connect() as connection:
        return [tuple(row) for row in connection.execute(query)]  # type: ignore[misc]


def build_events(recipients: list[tuple[int, int, int, str, str]]) -> list[dict[str, Any]]:
    now = int(time.time())
    events = []
    for number, (delivery_id, campaign_id, subscriber_id, email, message_id) in enumerate(
        recipients
    ):
        kind, extra = MIX[number % len(MIX)]
        events.append(
            {
                "email": email,
                "timestamp": now - 60 + number % 60,
                "event": kind,
                "sg_event_id": f"bench-{number:09d}-{kind}",
                "sg_message_id": f"{message_id}.filterdrecv-5bd68b1c-1-64-{number % 97}",
                "category": ["newsletter"],
                ARG_CAMPAIGN: str(campaign_id),
                ARG_SUBSCRIBER: str(subscriber_id),
                ARG_DELIVERY: str(delivery_id),
                **extra,
            }
        )
    return events


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """The app under uvicorn on 127.0.0.1, in a thread."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/webhooks/sendgrid"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def post(url: str, key: ec.EllipticCurvePrivateKey, body: bytes) -> dict[str, int]:
    stamp = str(int(time.time()))
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign_payload(key, body, stamp),
            TIMESTAMP_HEADER: stamp,
        },
    )
    with urllib.request.urlopen(request, timeout=3600) as response:
        return json.loads(response.read())


def verify(settings: Settings, events: list[dict[str, Any]], answers: Counter[str]) -> list[str]:
    """What is wrong with the outcome, from the webhook's answers and the database."""
    count = len(events)
    problems = []
    expected = {"received": count, "applied": count}
    for key in ("duplicates", "unmatched", "unknown", "failed"):
        expected[key] = 0
    if dict(answers) != expected:
        problems.append(f"webhook answered {dict(answers)}, expected {expected}")
    kinds = Counter((e["event"], bool(e.get("sg_machine_open"))) for e in events)
    d, t = Delivery.__table__, TrackingEvent.__table__
    with db.get_engine(settings.database_url).connect() as connection:
        stored = connection.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
        opens, machine, clicks, delivered, complained = connection.execute(
            sa.select(
                sa.func.coalesce(sa.func.sum(d.c.open_count), 0),
                sa.func.coalesce(sa.func.sum(d.c.machine_open_count), 0),
                sa.func.coalesce(sa.func.sum(d.c.click_count), 0),
                sa.func.count(d.c.delivered_at),
                sa.func.count().filter(d.c.complained),
            )
        ).one()
        suppressed = connection.execute(
            sa.select(sa.func.count()).select_from(Suppression.__table__)
        ).scalar_one()
    figures = (stored, opens, machine, clicks, delivered, complained)
    wanted = (
        count,
        kinds[("open", False)],
        kinds[("open", True)],
        kinds[("click", False)],
        kinds[("delivered", False)],
        kinds[("spamreport", False)],
    )
    if figures != wanted:
        problems.append(f"ledger: (events, opens, machine opens, clicks, delivered, complained) "
                        f"= {figures}, expected {wanted}")  # fmt: skip
    if suppressed < kinds[("spamreport", False)]:
        problems.append(f"{suppressed} addresses suppressed, fewer than the complaints")
    return problems


def run(settings: Settings, per_request: int) -> dict[str, Any]:
    from web.app import create_app

    started = time.perf_counter()
    events = build_events(sent_recipients(settings))
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    bodies = [
        json.dumps(events[i : i + per_request]).encode() for i in range(0, len(events), per_request)
    ]
    build_seconds = time.perf_counter() - started
    cfg = settings.model_copy(
        update={
            "provider": "sendgrid",
            "sendgrid_webhook_public_key": base64.b64encode(public).decode(),
            "webhook_max_events": per_request,
            "webhook_max_bytes": max(len(b) for b in bodies) if bodies else 1024,
        }
    )
    answers: Counter[str] = Counter()
    with serving(create_app(cfg)) as url:
        started, cpu = time.perf_counter(), _cpu_seconds()
        for body in bodies:
            answers.update(post(url, key, body))
        seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    return {
        "events": len(events),
        "requests": len(bodies),
        "body_mb": round(sum(len(b) for b in bodies) / 1e6, 1),
        "seconds": round(seconds, 3),
        "events_per_second": round(len(events) / seconds, 1) if seconds else 0.0,
        # This process's CPU meanwhile: the app's (and the client's, a small part); on
        # PostgreSQL the server's own work is not in it.
        "cpu_seconds": round(cpu, 3),
        "build_seconds": round(build_seconds, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "problems": verify(cfg, events, answers),
    }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.events")
    parser.add_argument("--per-request", type=int, default=PER_REQUEST)
    args = parser.parse_args(argv)
    values = json.loads(sys.stdin.read())
    settings = Settings(_env_file=None, **values)  # type: ignore[call-arg]
    print(json.dumps(run(settings, args.per_request)), flush=True)


if __name__ == "__main__":
    main()
