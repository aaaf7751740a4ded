"""The pydantic views of campaigns that the doors show: a campaign, its detail, its progress.

Kept apart from campaigns.actions (which changes campaigns) so that module stays short;
the CLI, the API, the console and the reports all build their answers from these.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import object_session
from sqlmodel import Session

from campaigns import weekly_plan
from campaigns.delivery.ledger import delivery_counts
from campaigns.delivery.waves import WaveView
from campaigns.models import Campaign, CampaignStatus, CampaignTrackingOff
from newsletter.settings import Settings


class Progress(BaseModel):
    queued: int = 0
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    total: int = 0
    deferred: int = 0  # issue 15: put off by the receiving server, tried again later


class CampaignView(BaseModel):
    """A campaign as people see it: UTC for machines, local time for readers."""

    id: int
    subject: str
    preheader: str
    week: str | None
    status: CampaignStatus
    scheduled_at: datetime | None
    scheduled_at_local: str | None
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    created_by: str
    error: str | None
    tracking: bool = True  # issue 15: our click and open tracking for this campaign


class LogEntry(BaseModel):
    at: datetime
    from_status: str | None
    to_status: str
    actor: str
    reason: str


class CampaignDetail(CampaignView):
    snippet_ids: list[int]
    progress: Progress
    log: list[LogEntry]
    # Issue 16: campaigns.subject_tests.describe and campaigns.resends.describe (or None).
    subject_test: dict[str, Any] | None = None
    resend: dict[str, Any] | None = None
    # Issue 16: the local-time waves, earliest first (empty: one send at scheduled_at).
    waves: list[WaveView] = []
    # Issue 15: listed in the public archive and its feed (``campaigns archive --exclude``).
    in_archive: bool = True


def view(campaign: Campaign, *, settings: Settings) -> CampaignView:
    assert campaign.id is not None
    return CampaignView(
        id=campaign.id,
        subject=campaign.subject,
        preheader=campaign.preheader,
        week=campaign.week,
        status=CampaignStatus(campaign.status),
        scheduled_at=campaign.scheduled_at,
        scheduled_at_local=weekly_plan.format_local(campaign.scheduled_at, settings),
        started_at=campaign.started_at,
        finished_at=campaign.finished_at,
        created_at=campaign.created_at,
        created_by=campaign.created_by,
        error=campaign.error,
        tracking=_tracking(campaign),
    )


def _tracking(campaign: Campaign) -> bool:
    """The campaign's own tracking switch (issue 15), read in the campaign's session."""
    session = object_session(campaign)
    return session is None or session.get(CampaignTrackingOff, campaign.id) is None


def progress(session: Session, *, campaign_id: int) -> Progress:
    """Delivery counts by status: how far a send has got (the ledger's one count)."""
    return Progress(**delivery_counts(session, campaign_id=campaign_id).as_dict())
