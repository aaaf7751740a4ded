"""Three ``newsletter worker`` processes, one SIGKILLed while the provider holds its batch:
everyone gets the campaign exactly once, except that batch (at most twice), and the
campaign finishes. Real procrastinate, the real sendgrid client, the fake SendGrid server."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.delivery.ledger import delivery_counts
from campaigns.delivery.workers.batch_send import Block
from campaigns.delivery.workers.handover import hand_over
from newsletter import leases
from newsletter.holders import Holder
from tests.support.delivery import add_subscribers, make_campaign
from tests.support.fake_sendgrid import FakeSendGrid
from tests.support.workers import (
    queue_settings,
    start_workers,
    status_of,
    stop_workers,
    wait_for,
)

# serial: the kill/stop timing and the shared rate are measured in wall time, so they
# run alone (`make test`'s second pytest), never beside another xdist worker.
pytestmark = [pytest.mark.postgres, pytest.mark.serial]
SUBSCRIBERS = 3000
BATCH = 250  # ids per block and recipients per request: a block is one request


def holder_of(engine: Engine, campaign_id: int, email: str) -> int:
    """The pid of the worker whose block holds ``email``'s delivery."""
    with engine.connect() as connection:
        delivery_id = connection.execute(
            sa.text(
                "SELECT d.id FROM delivery d JOIN subscriber s ON s.id = d.subscriber_id "
                "WHERE d.campaign_id = :c AND s.email = :e"
            ),
            {"c": campaign_id, "e": email},
        ).scalar_one()
        block = Block.numbered(campaign_id, delivery_id // BATCH, BATCH)
        held = leases.current(connection, name=block.name)
    assert held is not None
    holder = Holder.parse(held.holder)
    assert holder is not None
    return holder.pid


def test_a_killed_worker_costs_at_most_its_batch_in_flight(
    postgres_url: str, pg_engine: Engine, fake: FakeSendGrid, tmp_path: Path
):
    settings = queue_settings(
        postgres_url, tmp_path, fake, worker_batch_size=BATCH, sendgrid_batch_size=BATCH
    )
    add_subscribers(pg_engine, SUBSCRIBERS)
    with Session(pg_engine) as session:
        campaign_id = make_campaign(session).id
    fake.hold_after(5, 60)  # accept the 5th request, then keep its answer back
    workers = start_workers(settings, 3, tmp_path)
    try:
        with Session(pg_engine) as session:
            handed = hand_over(session, settings=settings, campaign_id=campaign_id, preflight=False)
        assert handed.deferred == SUBSCRIBERS // BATCH + 1  # ids 1..3000 in blocks from 0
        assert fake.held.wait(30), "no worker reached the 5th request"
        in_flight = {p["to"][0]["email"] for p in fake.requests[4]["personalizations"]}
        pid = holder_of(pg_engine, campaign_id, next(iter(in_flight)))
        victim = next(w for w in workers if w.pid == pid)
        os.kill(pid, signal.SIGKILL)
        victim.wait(10)
        wait_for(lambda: status_of(pg_engine, campaign_id) == "sent", 30, "the campaign's end")
    finally:
        stop_workers(workers)
    everyone = {f"user{i}@example.com" for i in range(1, SUBSCRIBERS + 1)}
    assert set(fake.deliveries) == everyone
    assert set(fake.duplicates()) <= in_flight and max(fake.deliveries.values()) <= 2
    with Session(pg_engine) as session:
        counts = delivery_counts(session, campaign_id=campaign_id)
    assert (counts.sent, counts.queued) == (SUBSCRIBERS, 0)
