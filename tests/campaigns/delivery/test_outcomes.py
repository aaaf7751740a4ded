"""record_outcome: which recipients of a batch go back for another try."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from campaigns.delivery.ledger import queue_deliveries
from campaigns.delivery.outcomes import record_outcome
from campaigns.delivery.providers.base import BatchResult, Recipient
from campaigns.models import CampaignStatus, Delivery
from newsletter.settings import Settings
from tests.support.delivery import add_subscribers, make_campaign


def _job(session: Session, engine: Engine) -> tuple[int, list[Recipient]]:
    add_subscribers(engine, 4)
    campaign = make_campaign(session, status=CampaignStatus.SENDING)
    queue_deliveries(session, campaign=campaign)
    session.commit()
    rows = session.exec(select(Delivery).order_by(Delivery.id)).all()
    job = [
        Recipient(r.id or 0, r.subscriber_id or 0, f"r{r.id}@example.com", None, {}) for r in rows
    ]
    return campaign.id or 0, job


def test_a_batch_answered_whole_leaves_nobody_to_retry(
    session: Session, engine: Engine, settings: Settings
) -> None:
    campaign_id, job = _job(session, engine)
    result = BatchResult(request_ids=True)
    result.accept([r.delivery_id for r in job], "request-1")
    tally = record_outcome(session, settings, campaign_id=campaign_id, job=job, result=result)
    assert (tally.sent, tally.retry) == (4, [])


def test_a_recipient_the_provider_did_not_answer_is_retried(
    session: Session, engine: Engine, settings: Settings
) -> None:
    campaign_id, job = _job(session, engine)
    result = BatchResult(request_ids=True)
    result.accept([r.delivery_id for r in job[:3]], "request-1")
    tally = record_outcome(session, settings, campaign_id=campaign_id, job=job, result=result)
    assert tally.sent == 3 and tally.retry == [job[3]]


def test_deferred_recipients_are_retried_and_the_accepted_are_not(
    session: Session, engine: Engine, settings: Settings
) -> None:
    campaign_id, job = _job(session, engine)
    result = BatchResult(request_ids=True)
    result.accept([r.delivery_id for r in job[:2]], "request-1")
    result.defer([r.delivery_id for r in job[2:]], "busy")
    tally = record_outcome(session, settings, campaign_id=campaign_id, job=job, result=result)
    assert tally.sent == 2 and tally.retry == job[2:]
