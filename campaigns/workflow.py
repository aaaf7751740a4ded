"""The campaign state machine: every allowed transition, in one table, each one logged.

draft -> scheduled -> sending -> sent, with paused, cancelled and failed on the side.
Anything not in :data:`TRANSITIONS` is a :class:`StateError` (HTTP 409 at the API).
"""

from __future__ import annotations

from sqlmodel import Session

from campaigns.models import Campaign, CampaignLog, CampaignStatus
from newsletter.db import utcnow
from newsletter.errors import StateError

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
    """Move ``campaign`` to ``to`` and log it; the caller commits."""
    current = CampaignStatus(campaign.status)
    if to not in TRANSITIONS[current]:
        raise StateError(
            f"campaign {campaign.id} cannot go from {current.value} to {to.value}"
        )
    now = utcnow()
    campaign.status = to
    if to is S.SENDING and campaign.started_at is None:
        campaign.started_at = now
    if to in (S.SENT, S.CANCELLED, S.FAILED):
        campaign.finished_at = now
    if to is S.FAILED:
        campaign.error = reason or campaign.error
    session.add(campaign)
    session.add(
        CampaignLog(
            campaign_id=campaign.id, from_status=current, to_status=to, actor=actor,
            reason=reason, at=now,
        )
    )
    return campaign
