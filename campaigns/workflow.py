"""The campaign state machine: every allowed transition, in one table, each one logged.

draft -> scheduled -> sending -> sent, with paused, cancelled and failed on the side.
Anything not in :data:`TRANSITIONS` is a :class:`StateError` (HTTP 409 at the API).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session

from campaigns.models import Campaign, CampaignLog, CampaignStatus
from newsletter.clock import utcnow
from newsletter.errors import StateError
from newsletter.webhook_outbox import WebhookEvent, emit

S = CampaignStatus

TRANSITIONS: dict[CampaignStatus, frozenset[CampaignStatus]] = {
    S.DRAFT: frozenset({S.SCHEDULED, S.SENDING, S.CANCELLED}),
    S.SCHEDULED: frozenset({S.DRAFT, S.SENDING, S.PAUSED, S.CANCELLED}),
    S.SENDING: frozenset({S.SENT, S.PAUSED, S.CANCELLED, S.FAILED}),
    S.PAUSED: frozenset({S.SCHEDULED, S.SENDING, S.CANCELLED}),
    S.FAILED: frozenset({S.SENDING, S.CANCELLED}),
    S.SENT: frozenset(),
    S.CANCELLED: frozenset(),
}


def can_transition(current: str, target: str) -> bool:
    return CampaignStatus(target) in TRANSITIONS[CampaignStatus(current)]


def transition(
    session: Session,
    *,
    campaign: Campaign,
    to: CampaignStatus,
    actor: str,
    reason: str = "",
) -> Campaign:
    """Move ``campaign`` to ``to`` and log it; the caller commits.

    The change is a compare-and-set (``UPDATE ... WHERE status = <what we saw>``): when two
    processes race (an API pause against the send loop, two dispatchers), exactly one wins
    and the other gets a :class:`StateError` instead of silently overwriting.
    """
    current = CampaignStatus(campaign.status)
    if to not in TRANSITIONS[current]:
        raise StateError(f"campaign {campaign.id} cannot go from {current.value} to {to.value}")
    now = utcnow()
    values: dict[str, object] = {"status": to.value}
    if to is S.SENDING and campaign.started_at is None:
        values["started_at"] = now
    if to in (S.SENT, S.CANCELLED, S.FAILED):
        values["finished_at"] = now
    if to is S.FAILED:
        values["error"] = reason or campaign.error
    result = session.execute(
        sa.update(Campaign)
        .where(Campaign.id == campaign.id, Campaign.status == current.value)  # type: ignore[arg-type]
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.expire(campaign, ["status"])
        raise StateError(
            f"campaign {campaign.id} changed while going from {current.value} to "
            f"{to.value}; it is now {campaign.status}"
        )
    for key, value in values.items():
        set_committed_value(campaign, key, value)
    session.add(
        CampaignLog(
            campaign_id=campaign.id,
            from_status=current,
            to_status=to,
            actor=actor,
            reason=reason[:500],
            at=now,
        )
    )
    _announce(session, campaign, started="started_at" in values, at=now)
    return campaign


def _announce(session: Session, campaign: Campaign, *, started: bool, at: datetime) -> None:
    """Outgoing webhooks (issue 16 point 4), in the transition's transaction:
    ``campaign.sent`` when its first send begins, ``campaign.finished`` when a campaign
    that began sending ends for good (sent, or cancelled part-way; ``status`` says which).
    A failed send is not the end: it can be resumed."""
    if started:
        kind = WebhookEvent.CAMPAIGN_SENT
    elif campaign.status in (S.SENT, S.CANCELLED) and campaign.started_at is not None:
        kind = WebhookEvent.CAMPAIGN_FINISHED
    else:
        return
    emit(
        session,
        kind,
        {
            "campaign_id": campaign.id,
            "subject": campaign.subject,
            "status": campaign.status,
            "started_at": _iso(campaign.started_at),
            "finished_at": _iso(campaign.finished_at),
        },
        at=at,
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def log_event(session: Session, *, campaign: Campaign, actor: str, reason: str) -> None:
    """Log a change that keeps the state (a new time for a scheduled campaign)."""
    session.add(
        CampaignLog(
            campaign_id=campaign.id,
            from_status=campaign.status,
            to_status=campaign.status,
            actor=actor,
            reason=reason[:500],
            at=utcnow(),
        )
    )
