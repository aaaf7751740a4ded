"""Marking accepted rows sent: one range update for a whole batch, never across a split."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from campaigns.delivery.ledger_batches import LedgerReader, record_accepted
from campaigns.delivery.providers.base import UNSIGNED, BatchResult
from campaigns.delivery.recipient_links import RecipientLinks
from campaigns.models import Delivery, DeliveryStatus
from newsletter.mail import UNSUBSCRIBE_URL
from newsletter.settings import Settings
from subscribers.models import Subscriber
from tests.support.delivery import as_job, queued_rows


def test_a_split_job_accepted_in_one_request_marks_only_its_own_rows(
    session: Session, engine: Engine
) -> None:
    # Tracked and plain readers of one batch interleave: rows 1, 3, 5 in one job, 2, 4, 6
    # in the other. The first job's one request id must not mark the second's rows sent.
    campaign_id, rows = queued_rows(session, engine, 6)
    tracked = rows[0::2]
    result = BatchResult(request_ids=True)
    result.accept([r.id or 0 for r in tracked], "request-1")
    sent = record_accepted(
        session, campaign_id=campaign_id, job=as_job(tracked), result=result, ranged=False
    )
    session.commit()
    session.expire_all()
    statuses = {r.id: r.status for r in session.exec(select(Delivery)).all()}
    assert sent == 3
    assert [statuses[r.id] for r in rows] == [DeliveryStatus.SENT, DeliveryStatus.QUEUED] * 3


def test_a_whole_batch_accepted_in_one_request_is_one_range_update(
    session: Session, engine: Engine
) -> None:
    campaign_id, rows = queued_rows(session, engine, 6)
    result = BatchResult(request_ids=True)
    result.accept([r.id or 0 for r in rows], "request-1")
    assert record_accepted(session, campaign_id=campaign_id, job=as_job(rows), result=result) == 6


def test_a_whole_batch_under_two_request_ids_marks_each_request_its_own_id(
    session: Session, engine: Engine
) -> None:
    campaign_id, rows = queued_rows(session, engine, 6)
    result = BatchResult(request_ids=True)
    result.accept([r.id or 0 for r in rows[:4]], "request-1")
    result.accept([r.id or 0 for r in rows[4:]], "request-2")
    assert record_accepted(session, campaign_id=campaign_id, job=as_job(rows), result=result) == 6
    session.commit()
    session.expire_all()
    ids = [r.provider_message_id for r in session.exec(select(Delivery).order_by(Delivery.id))]
    assert ids == ["request-1"] * 4 + ["request-2"] * 2


def test_a_batch_with_one_rejection_marks_only_the_accepted_rows_sent(
    session: Session, engine: Engine
) -> None:
    campaign_id, rows = queued_rows(session, engine, 6)
    result = BatchResult(request_ids=True)
    result.accept([r.id or 0 for r in rows[:5]], "request-1")
    result.reject([rows[5].id or 0], "refused")
    assert record_accepted(session, campaign_id=campaign_id, job=as_job(rows), result=result) == 5
    session.commit()
    session.expire_all()
    assert session.get(Delivery, rows[5].id).status == DeliveryStatus.QUEUED


def test_a_reader_for_a_provider_that_signs_leaves_the_links_to_it(
    session: Session, engine: Engine, settings: Settings
) -> None:
    campaign_id, _ = queued_rows(session, engine, 6)
    reader = LedgerReader(
        session,
        campaign_id=campaign_id,
        links=RecipientLinks(settings),
        batch_size=10,
        sign_links=False,
    )
    batch = reader.next_batch() or []
    keys = dict(session.execute(sa.select(Subscriber.id, Subscriber.link_key)).all())
    assert len(batch) == 6 and all(r.values is UNSIGNED for r in batch)
    assert [r.link_key for r in batch] == [keys[r.subscriber_id] for r in batch]


def test_a_reader_that_signs_gives_each_recipient_their_links(
    session: Session, engine: Engine, settings: Settings
) -> None:
    campaign_id, _ = queued_rows(session, engine, 6)
    reader = LedgerReader(
        session, campaign_id=campaign_id, links=RecipientLinks(settings), batch_size=10
    )
    batch = reader.next_batch() or []
    assert len(batch) == 6
    assert all("/unsubscribe/" in r.values[UNSUBSCRIBE_URL] for r in batch)


def test_a_block_reader_passes_the_signing_choice_on(
    session: Session, engine: Engine, settings: Settings
) -> None:
    from campaigns.delivery.workers.batch_send import Block, BlockReader

    campaign_id, rows = queued_rows(session, engine, 6)
    block = Block(campaign_id, rows[0].id or 0, rows[-1].id or 0)
    reader = BlockReader(
        session, block=block, links=RecipientLinks(settings), size=10, sign_links=False
    )
    batch = reader.next_batch() or []
    assert len(batch) == 6 and all(r.values is UNSIGNED for r in batch)
