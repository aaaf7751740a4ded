"""SIGKILL the sender mid-send, run it again: nobody lost, nobody twice outside the window.

The documented window (campaigns/delivery/sending.py): a crash after the provider accepted a
batch and before its ledger commit re-sends that batch, and only that batch. The fake
SendGrid server lives in this process, so it outlives the killed sender and counts
every recipient it accepted.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.delivery import send_lease
from campaigns.delivery.ledger import delivery_counts
from campaigns.delivery.sending import send_campaign
from newsletter import leases
from newsletter.clock import utcnow
from newsletter.errors import StateError
from newsletter.holders import Holder
from newsletter.settings import Settings
from tests.conftest import make_settings
from tests.support.delivery import API_KEY, add_subscribers, make_campaign
from tests.support.fake_sendgrid import FakeSendGrid

# serial: a sender is killed mid-send and the take-over is timed in wall time; it runs
# alone (`make test`'s second pytest), never beside another xdist worker.
pytestmark = pytest.mark.serial

ROOT = Path(__file__).resolve().parents[2]
SUBSCRIBERS = 8000
BATCH = 1000
SENDER = """
import sys
from sqlmodel import Session
from newsletter import db
from newsletter.settings import load_settings
from campaigns.delivery.sending import send_campaign

cfg = load_settings()
with Session(db.get_engine(cfg.database_url)) as session:
    send_campaign(session, settings=cfg, campaign_id=int(sys.argv[1]), preflight=False)
"""


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with FakeSendGrid(API_KEY) as server:
        server.keep_bodies = True
        yield server


def start_sender(
    settings: Settings, fake: FakeSendGrid, campaign_id: int, cwd: Path, lease_seconds: int = 3
):
    env = {
        **os.environ,
        "NEWSLETTER_DATABASE_URL": settings.database_url,
        "NEWSLETTER_PROVIDER": "sendgrid",
        "NEWSLETTER_BASE_URL": "https://news.example.com",
        "NEWSLETTER_SENDGRID_API_KEY": API_KEY,
        "NEWSLETTER_SENDGRID_API_HOST": fake.url,
        "NEWSLETTER_SENDGRID_BATCH_SIZE": str(BATCH),
        "NEWSLETTER_SECRET_KEY": settings.secret_key or "",
        "NEWSLETTER_POSTAL_ADDRESS": settings.postal_address or "",
        "NEWSLETTER_LEASE_SECONDS": str(lease_seconds),
        "PYTHONPATH": str(ROOT),
    }
    return subprocess.Popen(
        [sys.executable, "-c", SENDER, str(campaign_id)],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def sender_settings(settings: Settings, fake: FakeSendGrid, lease_seconds: int = 3) -> Settings:
    return make_settings(
        settings.database_url,
        Path(settings.outbox_dir).parent,
        provider="sendgrid",
        base_url="https://news.example.com",
        sendgrid_api_key=API_KEY,
        sendgrid_api_host=fake.url,
        lease_seconds=lease_seconds,
    )


def resume(settings: Settings, fake: FakeSendGrid, engine: Engine, campaign_id: int):
    cfg = sender_settings(settings, fake)
    deadline = time.monotonic() + 15
    while True:  # the killed sender's lease has to expire first
        with Session(engine) as session:
            try:
                return send_campaign(
                    session, settings=cfg, campaign_id=campaign_id, preflight=False
                )
            except StateError:
                if time.monotonic() > deadline:
                    raise
        time.sleep(0.5)


def wait_for(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the sender did not get that far"
        time.sleep(0.005)


def kill(process: subprocess.Popen) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)
    output = process.stderr.read().decode()[-2000:]
    process.stderr.close()
    assert process.returncode == -signal.SIGKILL, output


def everyone() -> set[str]:
    return {f"user{i}@example.com" for i in range(1, SUBSCRIBERS + 1)}


def test_kill_while_the_provider_holds_a_batch_resends_only_that_batch(
    settings: Settings, engine: Engine, fake: FakeSendGrid, tmp_path: Path
):
    add_subscribers(engine, SUBSCRIBERS)
    with Session(engine) as session:
        campaign_id = make_campaign(session).id
    fake.hold_after(4, 20)  # accept the 4th request, then answer late: the worst moment
    process = start_sender(settings, fake, campaign_id, tmp_path)
    assert fake.held.wait(30), "the sender never reached the 4th request"
    kill(process)
    fake.hold = None
    in_flight = {p["to"][0]["email"] for p in fake.requests[3]["personalizations"]}
    report = resume(settings, fake, engine, campaign_id)
    print(f"\nwindow measured on {engine.dialect.name}: {len(fake.duplicates())} resent")
    assert report.status == "sent" and report.sent == SUBSCRIBERS - 3 * BATCH
    assert set(fake.deliveries) == everyone()
    assert set(fake.duplicates()) == in_flight and len(in_flight) == BATCH
    with Session(engine) as session:
        counts = delivery_counts(session, campaign_id=campaign_id)
    assert (counts.sent, counts.queued) == (SUBSCRIBERS, 0)


def test_kill_at_an_arbitrary_moment_loses_nobody(
    settings: Settings, engine: Engine, fake: FakeSendGrid, tmp_path: Path
):
    add_subscribers(engine, SUBSCRIBERS)
    with Session(engine) as session:
        campaign_id = make_campaign(session).id
    process = start_sender(settings, fake, campaign_id, tmp_path)
    wait_for(lambda: fake.accepted >= 3)
    kill(process)
    resume(settings, fake, engine, campaign_id)
    print(f"\nkilled after {fake.accepted} requests; {len(fake.duplicates())} resent")
    assert set(fake.deliveries) == everyone()
    assert len(fake.duplicates()) <= BATCH  # at most the one batch in flight
    with Session(engine) as session:
        assert delivery_counts(session, campaign_id=campaign_id).sent == SUBSCRIBERS


def test_a_sender_killed_on_this_host_is_taken_over_at_once(
    settings: Settings, engine: Engine, fake: FakeSendGrid, tmp_path: Path
):
    """Issue 13.8: the killed sender's lease (30 s) still runs, but its process is gone
    (and its pid not reused: the holder names the process's start time), so the next run
    takes the lease at once instead of refusing for 30 seconds."""
    add_subscribers(engine, SUBSCRIBERS)
    with Session(engine) as session:
        campaign_id = make_campaign(session).id
    process = start_sender(settings, fake, campaign_id, tmp_path, lease_seconds=30)
    wait_for(lambda: fake.accepted >= 2)
    kill(process)
    with engine.connect() as connection:
        held = leases.current(connection, name=send_lease.lease_name(campaign_id))
    assert held is not None
    holder = Holder.parse(held.holder)
    assert holder is not None
    assert (holder.host, holder.pid) == (socket.gethostname(), process.pid)
    assert holder.started is not None  # from /proc/<pid>/stat
    assert held.expires_at > utcnow() + timedelta(seconds=15)  # far from expired
    started = time.monotonic()
    with Session(engine) as session:
        report = send_campaign(  # once: no waiting, no retry
            session,
            settings=sender_settings(settings, fake, lease_seconds=30),
            campaign_id=campaign_id,
            preflight=False,
        )
    assert time.monotonic() - started < 15
    assert report.status == "sent"
    assert set(fake.deliveries) == everyone()
    assert len(fake.duplicates()) <= BATCH  # at most the one batch in flight
    with Session(engine) as session:
        assert delivery_counts(session, campaign_id=campaign_id).sent == SUBSCRIBERS
