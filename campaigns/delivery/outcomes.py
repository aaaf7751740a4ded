"""A batch's outcome written to the ledger, and what the receiving server said told to tracking.

One function for the send loop and for the retry of deferred recipients
(``campaigns.delivery.deferrals``), so both record alike: accepted rows ``sent``;
rejected ones ``failed``; a rejection that came from the receiving server (an SMTP 5yz to
RCPT, DATA or the message) is also a bounce, applied through the very rules of a
provider's bounce event (``campaigns.tracking.effects``: a hard bounce stops the address
at once, soft ones after ``soft_bounce_limit`` in a row; ``status_codes`` says which is
which); a recipient the receiving server put off (4yz) is deferred on its own schedule;
what was not taken at all (a connection lost) is handed back for the caller to retry.
The caller commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlmodel import Session

from campaigns.delivery import deferrals
from campaigns.delivery.ledger_batches import record_accepted, record_failed
from campaigns.delivery.providers.base import BatchResult, Recipient
from campaigns.tracking.effects import apply_events
from campaigns.tracking.events import EventKind, NormalisedEvent
from campaigns.tracking.status_codes import reject_reason
from newsletter.clock import utcnow
from newsletter.settings import Settings

__all__ = ["Tally", "record_outcome", "reply_event"]


@dataclass
class Tally:
    """What one batch came to; ``retry``: recipients not taken at all (try them again)."""

    sent: int = 0
    failed: int = 0
    bounced: int = 0
    deferred: int = 0
    retry: list[Recipient] = field(default_factory=list)


def reply_event(campaign_id: int, recipient: Recipient, reply: str) -> NormalisedEvent:
    """The receiving server's refusal of one recipient as a ``bounced`` event.

    Its id names the delivery: a delivery is refused for good once, so the event is
    applied once however often the batch is recorded again.
    """
    return NormalisedEvent(
        provider="smtp",
        kind=EventKind.BOUNCED,
        raw_event="smtp reply",
        event_id=f"smtp-reply:{recipient.delivery_id}",
        occurred_at=utcnow(),
        email=recipient.email,
        campaign_id=campaign_id,
        subscriber_id=recipient.subscriber_id,
        delivery_id=recipient.delivery_id,
        reject_reason=reject_reason(reply),
        reason=reply[:500],
        payload={"reply": reply[:2000]},
    )


def record_outcome(
    session: Session,
    settings: Settings,
    *,
    campaign_id: int,
    job: Sequence[Recipient],
    result: BatchResult,
    ranged: bool = True,
) -> Tally:
    """Record ``result`` for the recipients of ``job``; see the module's docstring.
    ``ranged``: see :func:`campaigns.delivery.ledger_batches.record_accepted`."""
    tally = Tally()
    tally.sent = record_accepted(
        session, campaign_id=campaign_id, job=job, result=result, ranged=ranged
    )
    tally.failed = record_failed(session, errors=result.rejected)
    bounced = result.bounced
    if bounced:
        events = [
            reply_event(campaign_id, r, bounced[r.delivery_id])
            for r in job
            if r.delivery_id in bounced
        ]
        apply_events(session, settings=settings, events=events)
        tally.bounced = len(events)
    transient = result.transient
    if transient:
        deferred, failed = deferrals.postpone(session, settings, transient, campaign_id=campaign_id)
        tally.deferred += deferred
        tally.failed += failed
    statuses, deferred_now = result.statuses, result.deferred
    # Assumes a provider answers for the job's recipients only (every provider here
    # does): then as many statuses as recipients, none deferred, means every one was
    # answered (the common case: no pass over the job).
    if deferred_now or len(statuses) != len(job):
        tally.retry = [
            r for r in job if r.delivery_id in deferred_now or r.delivery_id not in statuses
        ]
    return tally
