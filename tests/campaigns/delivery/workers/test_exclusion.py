"""Queue mode against the inline sender and against its own loose ends: one sender of a
campaign's rows at a time, and no send followed or left 'sending' for ever.
Real procrastinate on PostgreSQL, the real sendgrid client against the fake server."""

from __future__ import annotations

import logging
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.delivery import send_lease
from campaigns.delivery.sending import send_campaign
from campaigns.delivery.workers import queue
from campaigns.delivery.workers.batch_send import Block, send_block
from campaigns.delivery.workers.handover import follow, hand_over
from campaigns.delivery.workers.queue import ensure_schema, run_worker
from campaigns.models import Campaign
from newsletter import db, leases
from newsletter.clock import utcnow
from newsletter.errors import ConfigError, StateError
from newsletter.models import Lease
from newsletter.settings import Settings
from tests.support.delivery import make_campaign
from tests.support.fake_sendgrid import FakeSendGrid
from tests.support.workers import queued_list, status_of

pytestmark = pytest.mark.postgres
SUBSCRIBERS = 400
BLOCK = 200
OTHER_HOST = "elsewhere:4242:1:abcdef"  # a live holder on another host: never taken over


@pytest.fixture
def queued(postgres_url: str, tmp_path: Path, fake: FakeSendGrid) -> Settings:
    return queued_list(postgres_url, tmp_path, fake, subscribers=SUBSCRIBERS, block=BLOCK)


def _handed(settings: Settings) -> tuple[Engine, int]:
    engine = db.get_engine(settings.database_url)
    with Session(engine) as session:
        campaign_id = make_campaign(session).id
        assert campaign_id is not None
        hand_over(session, settings=settings, campaign_id=campaign_id, preflight=False)
    return engine, campaign_id


def test_an_inline_send_of_a_campaign_in_the_workers_hands_is_refused(
    queued: Settings, fake: FakeSendGrid
):
    engine, campaign_id = _handed(queued)
    inline = queued.model_copy(update={"sender": "inline"})
    with Session(engine) as session, pytest.raises(StateError, match="handed to the workers"):
        send_campaign(session, settings=inline, campaign_id=campaign_id, preflight=False)
    assert fake.attempts == 0


def test_a_block_waits_while_an_inline_sender_holds_the_campaign(
    queued: Settings, fake: FakeSendGrid
):
    engine, campaign_id = _handed(queued)
    with engine.begin() as connection:
        assert leases.take(connection, holder=OTHER_HOST, ttl_seconds=60,
                           name=send_lease.lease_name(campaign_id))  # fmt: skip
    block = Block.numbered(campaign_id, 1, BLOCK)
    with pytest.raises(StateError, match="sent inline"):
        send_block(queued, block)
    assert fake.attempts == 0
    assert leases.current(engine, name=block.name) is None  # its own lease given back


def test_an_expired_block_lease_does_not_keep_the_campaign_sending(queued: Settings):
    engine, campaign_id = _handed(queued)
    now = utcnow()  # a worker SIGKILLed after its block's last batch: its lease outlived it
    with Session(engine) as session:
        session.add(Lease(name=f"send:{campaign_id}:b9000-9199", holder=OTHER_HOST,
                          acquired_at=now - timedelta(minutes=2),
                          expires_at=now - timedelta(minutes=1)))  # fmt: skip
        session.commit()
    run_worker(queued, wait=False)
    assert status_of(engine, campaign_id) == "sent"


def test_a_worker_that_cannot_send_fails_the_campaign_with_the_reason(queued: Settings):
    engine, campaign_id = _handed(queued)
    unfit = queued.model_copy(update={"base_url": "http://news.example.com"})
    run_worker(unfit, wait=False)
    assert status_of(engine, campaign_id) == "failed"
    with Session(engine) as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None and "https://" in (campaign.error or "")


def test_following_a_send_nobody_sends_stops_with_one_line(queued: Settings):
    engine, campaign_id = _handed(queued)  # and no worker runs
    with Session(engine) as session, pytest.raises(StateError, match="no worker is running"):
        follow(session, settings=queued, campaign_id=campaign_id, give_up_seconds=0.5,
               poll_seconds=0.05)  # fmt: skip
    assert status_of(engine, campaign_id) == "sending"  # left for the dispatch to queue again


def test_an_expected_error_of_a_job_is_logged_without_its_traceback():
    try:
        raise StateError("send:1:b0-199 is being sent by another worker")
    except StateError:
        record = logging.LogRecord("procrastinate.worker", logging.INFO, __file__, 1,
                                   "Job %s ended with status: Error, to retry", ("42",),
                                   sys.exc_info())  # fmt: skip
    assert queue.OneLineErrors().filter(record) and record.exc_info is None
    assert record.getMessage() == (
        "Job 42 ended with status: Error, to retry: send:1:b0-199 is being sent by another worker"
    )


def test_a_queue_schema_older_than_procrastinate_is_refused_in_one_line(queued: Settings):
    ensure_schema(queued)
    with db.get_engine(queued.database_url).begin() as connection:
        connection.exec_driver_sql("DROP FUNCTION procrastinate_retry_job_v2")
    with pytest.raises(ConfigError, match="procrastinate_retry_job_v2"):
        ensure_schema(queued)
