"""Queue mode in one process: hand a send over, run a worker until the queue is empty.
Real procrastinate on PostgreSQL, the real sendgrid client against the fake server."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns import actions, jobs
from campaigns.delivery.ledger import delivery_counts
from campaigns.delivery.workers.batch_send import Block, send_block
from campaigns.delivery.workers.handover import hand_over, queued_blocks
from campaigns.delivery.workers.queue import run_worker
from campaigns.models import CampaignStatus
from newsletter import db, leases
from newsletter.clock import utcnow
from newsletter.errors import StateError
from newsletter.settings import Settings
from tests.support.content import make_campaign as content_campaign
from tests.support.content import make_snippet
from tests.support.delivery import make_campaign
from tests.support.fake_sendgrid import FakeSendGrid
from tests.support.workers import queued_list, status_of

pytestmark = pytest.mark.postgres
SUBSCRIBERS = 600
BLOCK = 200


@pytest.fixture
def queued(postgres_url: str, tmp_path: Path, fake: FakeSendGrid) -> Settings:
    return queued_list(postgres_url, tmp_path, fake, subscribers=SUBSCRIBERS, block=BLOCK)


def _campaign(settings: Settings) -> tuple[Engine, int]:
    engine = db.get_engine(settings.database_url)
    with Session(engine) as session:
        campaign_id = make_campaign(session).id
    assert campaign_id is not None
    return engine, campaign_id


def _hand_over(engine: Engine, settings: Settings, campaign_id: int):
    with Session(engine) as session:
        return hand_over(session, settings=settings, campaign_id=campaign_id, preflight=False)


def test_the_last_block_finishes_the_campaign(queued: Settings, fake: FakeSendGrid):
    engine, campaign_id = _campaign(queued)
    handed = _hand_over(engine, queued, campaign_id)
    assert (handed.status, handed.deferred, handed.queued) == ("sending", 4, SUBSCRIBERS)
    run_worker(queued, wait=False)
    assert status_of(engine, campaign_id) == "sent"
    assert fake.recipients == SUBSCRIBERS and fake.duplicates() == {}


def test_handing_over_again_queues_no_block_twice(queued: Settings):
    engine, campaign_id = _campaign(queued)
    first = _hand_over(engine, queued, campaign_id)
    again = _hand_over(engine, queued, campaign_id)
    assert (again.deferred, again.pending) == (0, first.deferred)


def test_a_block_held_by_a_live_worker_is_not_sent_by_another(queued: Settings, fake: FakeSendGrid):
    engine, campaign_id = _campaign(queued)
    _hand_over(engine, queued, campaign_id)
    block = Block.numbered(campaign_id, 1, BLOCK)
    with engine.begin() as connection:  # this process is alive: its lease is not taken over
        assert leases.take(connection, holder=leases.instance_id(), ttl_seconds=60,
                           name=block.name)  # fmt: skip
    with pytest.raises(StateError, match="another worker"):
        send_block(queued, block)
    assert fake.attempts == 0


def test_a_paused_campaign_sends_no_further_block_and_resumes_from_the_ledger(
    queued: Settings, fake: FakeSendGrid
):
    engine, campaign_id = _campaign(queued)
    _hand_over(engine, queued, campaign_id)
    assert send_block(queued, Block.numbered(campaign_id, 0, BLOCK)) is not None
    with Session(engine) as session:
        actions.pause(session, settings=queued, campaign_id=campaign_id, actor="test")
        session.commit()
    run_worker(queued, wait=False)  # the other blocks' jobs end without sending
    sent_before_resume = fake.recipients
    with Session(engine) as session:
        assert queued_blocks(session, settings=queued, campaign_id=campaign_id) != []
        actions.resume(session, settings=queued, campaign_id=campaign_id, actor="test")
        session.commit()
    assert _hand_over(engine, queued, campaign_id).deferred == 3  # re-queued from the ledger
    run_worker(queued, wait=False)
    assert sent_before_resume == BLOCK - 1  # block 0 holds ids 1..199
    assert status_of(engine, campaign_id) == "sent" and fake.duplicates() == {}


def test_a_provider_auth_error_fails_the_campaign(queued: Settings, fake: FakeSendGrid):
    engine, campaign_id = _campaign(queued)
    _hand_over(engine, queued, campaign_id)
    fake.fail_next(401, count=20)
    run_worker(queued, wait=False)
    assert status_of(engine, campaign_id) == "failed"
    with Session(engine) as session:
        assert delivery_counts(session, campaign_id=campaign_id).queued == SUBSCRIBERS


def test_the_dispatch_hands_a_due_campaign_to_the_workers(queued: Settings, fake: FakeSendGrid):
    engine = db.get_engine(queued.database_url)
    with Session(engine, expire_on_commit=False) as session:  # content that passes preflight
        snippets = [make_snippet(session, queued, category="back-pain") for _ in range(3)]
        campaign = content_campaign(session, snippets, status=CampaignStatus.SCHEDULED)
        campaign.scheduled_at = utcnow() - timedelta(minutes=1)
        session.add(campaign)
        session.commit()
    campaign_id = campaign.id
    assert campaign_id is not None
    note = jobs.dispatch(queued, utcnow())
    assert "handed to the workers: 4 blocks queued" in note.detail  # ids 1..600 from block 0
    assert fake.attempts == 0  # nothing sent in the scheduler's process
    run_worker(queued, wait=False)
    assert status_of(engine, campaign_id) == "sent" and fake.recipients == SUBSCRIBERS


def test_a_hand_over_counts_the_live_workers(queued: Settings):
    engine, campaign_id = _campaign(queued)
    assert _hand_over(engine, queued, campaign_id).workers == 0  # none started here
    with engine.begin() as connection:  # a worker's start, as procrastinate records it
        connection.exec_driver_sql("SELECT procrastinate_register_worker_v1()")
    assert _hand_over(engine, queued, campaign_id).workers == 1


def test_a_row_late_in_its_block_names_that_block(queued: Settings):
    engine, campaign_id = _campaign(queued)
    _hand_over(engine, queued, campaign_id)
    with engine.begin() as connection:  # all sent but id 150: block 0 (ids 0..199) alone
        connection.exec_driver_sql("UPDATE delivery SET status = 'sent' WHERE id <> 150")
    with Session(engine) as session:
        blocks = queued_blocks(session, settings=queued, campaign_id=campaign_id)
    assert blocks == [Block.numbered(campaign_id, 0, BLOCK)]


def test_a_stop_asked_after_the_last_batch_still_finishes_the_campaign(
    queued: Settings, fake: FakeSendGrid
):
    one_batch = queued.model_copy(update={"worker_batch_size": 5000, "sendgrid_batch_size": 1000})
    engine, campaign_id = _campaign(one_batch)
    _hand_over(engine, one_batch, campaign_id)
    report = send_block(one_batch, Block.numbered(campaign_id, 0, 5000), should_stop=lambda: True)
    assert report is not None and report.queued == 0
    assert status_of(engine, campaign_id) == "sent" and fake.recipients == SUBSCRIBERS
