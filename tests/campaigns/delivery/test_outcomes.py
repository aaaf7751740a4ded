"""record_outcome: which recipients of a batch go back for another try."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.delivery.outcomes import record_outcome
from campaigns.delivery.providers.base import BatchResult, Recipient
from newsletter.settings import Settings
from tests.support.delivery import as_job, queued_rows


def _job(session: Session, engine: Engine) -> tuple[int, list[Recipient]]:
    campaign_id, rows = queued_rows(session, engine, 4)
    return campaign_id, as_job(rows)


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
