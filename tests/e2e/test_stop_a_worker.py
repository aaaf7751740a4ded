"""A ``newsletter worker`` stopped with SIGTERM mid-campaign (a deploy, systemd's stop):
its block ends after the batch in flight, goes back to the queue, and the next worker
finishes the campaign: everyone exactly once, the campaign 'sent'. Real procrastinate,
the real sendgrid client, the fake SendGrid server."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.delivery.ledger import delivery_counts
from campaigns.delivery.workers.handover import hand_over
from tests.support.delivery import add_subscribers, make_campaign
from tests.support.fake_sendgrid import FakeSendGrid
from tests.support.workers import queue_settings, start_workers, status_of, stop_workers, wait_for

# serial: the kill/stop timing and the shared rate are measured in wall time, so they
# run alone (`make test`'s second pytest), never beside another xdist worker.
pytestmark = [pytest.mark.postgres, pytest.mark.serial]
SUBSCRIBERS = 1000


def test_a_stopped_worker_hands_its_block_back_and_the_next_one_finishes(
    postgres_url: str, pg_engine: Engine, fake: FakeSendGrid, tmp_path: Path
):
    # One block for the whole campaign, paced to about 5 s: the stop lands mid-block.
    settings = queue_settings(postgres_url, tmp_path, fake, worker_batch_size=5000,
                              sendgrid_batch_size=100, send_rate_per_second=200)  # fmt: skip
    add_subscribers(pg_engine, SUBSCRIBERS)
    with Session(pg_engine) as session:
        campaign_id = make_campaign(session).id
    assert campaign_id is not None
    first = start_workers(settings, 1, tmp_path)
    second: list = []
    try:
        with Session(pg_engine) as session:
            hand_over(session, settings=settings, campaign_id=campaign_id, preflight=False)
        wait_for(lambda: fake.recipients >= 200, 30, "the first worker sending")
        first[0].send_signal(signal.SIGTERM)
        assert first[0].wait(20) == 0
        with Session(pg_engine) as session:
            left = delivery_counts(session, campaign_id=campaign_id).queued
        assert left > 0 and status_of(pg_engine, campaign_id) == "sending"  # it stopped early
        second = start_workers(settings, 1, tmp_path)
        wait_for(lambda: status_of(pg_engine, campaign_id) == "sent", 30, "the campaign's end")
    finally:
        stop_workers(first + second)
    assert set(fake.deliveries) == {f"user{i}@example.com" for i in range(1, SUBSCRIBERS + 1)}
    assert fake.duplicates() == {}  # the batch in flight was recorded before it stopped
