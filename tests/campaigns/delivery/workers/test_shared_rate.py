"""One provider rate limit for every worker: measured at the fake SendGrid server, whose
request times are the only clock that sees all workers together."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.delivery.workers.batch_send import live_workers
from campaigns.delivery.workers.handover import hand_over
from campaigns.delivery.workers.queue import ensure_schema
from campaigns.delivery.workers.shared_rate import SharedPacer
from newsletter.settings import Settings
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
RATE = 200  # messages per second, for all workers together
SUBSCRIBERS = 500
BLOCK = 50


def busiest_second(accepted_at: list[tuple[float, int]]) -> int:
    """The most recipients the server accepted within any one second."""
    return max(
        sum(n for t, n in accepted_at if start <= t < start + 1.0) for start, _ in accepted_at
    )


def test_two_workers_share_one_rate_limit(
    postgres_url: str, pg_engine: Engine, fake: FakeSendGrid, tmp_path: Path
):
    settings = queue_settings(
        postgres_url, tmp_path, fake, send_rate_per_second=RATE, worker_batch_size=BLOCK
    )
    add_subscribers(pg_engine, SUBSCRIBERS)
    with Session(pg_engine) as session:
        campaign_id = make_campaign(session).id
    assert campaign_id is not None
    ensure_schema(settings)  # its tables there before we count the workers in them
    workers = start_workers(settings, 2, tmp_path)
    try:  # both registered before the hand-over, or one alone may send everything
        wait_for(lambda: _live(pg_engine, settings) == 2, 30, "both workers registered")
        with Session(pg_engine) as session:
            hand_over(session, settings=settings, campaign_id=campaign_id, preflight=False)
        wait_for(lambda: status_of(pg_engine, campaign_id) == "sent", 60, "the campaign's end")
    finally:
        stop_workers(workers)
    logs = [(tmp_path / f"worker{i}.log").read_text() for i in range(2)]
    assert all("Starting job" in log for log in logs), "both workers took blocks"
    assert fake.recipients == SUBSCRIBERS
    # Each worker paced alone would allow RATE, so about 2 * RATE together. Shared: RATE per
    # second plus the batch that may start at a window's edge, and one more for the jitter
    # between the database's clock and the requests' arrival (still well under 2 * RATE).
    busiest = busiest_second(fake.accepted_at)
    print(f"\nbusiest second at the server: {busiest} (limit {RATE}/s, batches <= {BLOCK})")
    assert busiest <= RATE + 2 * BLOCK


def test_a_second_taker_waits_for_what_the_first_took(pg_engine: Engine):
    first = SharedPacer(pg_engine, name="sendgrid", rate=100)
    second = SharedPacer(pg_engine, name="sendgrid", rate=100)
    assert first.reserve(100) == 0.0  # an idle limit: at once
    assert 0.0 < second.reserve(100) <= 1.0  # after the first's second of the limit


def test_a_retry_held_back_takes_a_slot_no_sooner_than_its_retry_after(pg_engine: Engine):
    pacer = SharedPacer(pg_engine, name="sendgrid", rate=100)
    assert pacer.reserve(100, delay=3.0) > 2.0  # a 429 said "in 3 s": its slot is then
    assert pacer.reserve(100) > 3.0  # the next batch after it, not inside its second


def _live(engine: Engine, settings: Settings) -> int:
    with Session(engine) as session:
        return live_workers(session, seconds=settings.worker_stalled_seconds)
