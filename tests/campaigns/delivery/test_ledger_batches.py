"""Marking accepted rows sent: one range update for a whole batch, never across a split."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from campaigns.delivery.ledger import queue_deliveries
from campaigns.delivery.ledger_batches import record_accepted
from campaigns.delivery.providers.base import BatchResult, Recipient
from campaigns.models import CampaignStatus, Delivery, DeliveryStatus
from tests.support.delivery import add_subscribers, make_campaign


def _queued_rows(session: Session, engine: Engine) -> tuple[int, list[Delivery]]:
    add_subscribers(engine, 6)
    campaign = make_campaign(session, status=CampaignStatus.SENDING)
    queue_deliveries(session, campaign=campaign)
    session.commit()
    rows = session.exec(select(Delivery).order_by(Delivery.id)).all()
    return campaign.id or 0, list(rows)


def _job(rows: list[Delivery]) -> list[Recipient]:
    return [
        Recipient(r.id or 0, r.subscriber_id or 0, f"r{r.id}@example.com", None, {}) for r in rows
    ]


def test_a_split_job_accepted_in_one_request_marks_only_its_own_rows(
    session: Session, engine: Engine
) -> None:
    # Tracked and plain readers of one batch interleave: rows 1, 3, 5 in one job, 2, 4, 6
    # in the other. The first job's one request id must not mark the second's rows sent.
    campaign_id, rows = _queued_rows(session, engine)
    tracked = rows[0::2]
    result = BatchResult(request_ids=True)
    result.accept([r.id or 0 for r in tracked], "request-1")
    sent = record_accepted(
        session, campaign_id=campaign_id, job=_job(tracked), result=result, ranged=False
    )
    session.commit()
    session.expire_all()
    statuses = {r.id: r.status for r in session.exec(select(Delivery)).all()}
    assert sent == 3
    assert [statuses[r.id] for r in rows] == [DeliveryStatus.SENT, DeliveryStatus.QUEUED] * 3


def test_a_whole_batch_accepted_in_one_request_is_one_range_update(
    session: Session, engine: Engine
) -> None:
    campaign_id, rows = _queued_rows(session, engine)
    result = BatchResult(request_ids=True)
    result.accept([r.id or 0 for r in rows], "request-1")
    assert record_accepted(session, campaign_id=campaign_id, job=_job(rows), result=result) == 6
