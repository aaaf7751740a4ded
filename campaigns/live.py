"""A send's progress as people follow it live: counts, rate, expected finish, who started it.

The console's Server-Sent Events stream and its refreshable page read
:func:`live_progress` about once a second, whoever started the send (the console, the
API, the CLI or the scheduler): the ledger's counts (``views.progress``) are the truth,
and the campaign log says who moved the campaign to ``sending``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from campaigns import actions, views, weekly_plan
from campaigns.models import CampaignLog, CampaignStatus
from newsletter.clock import as_utc, utcnow
from newsletter.settings import Settings

S = CampaignStatus
FINISHED = frozenset({S.SENT, S.CANCELLED, S.FAILED})


@dataclass(frozen=True)
class LiveProgress:
    """Counts by delivery status; ``rate`` in recipients per second since the send started,
    ``expected_finish`` (UTC, and local in ``expected_finish_local``) at that rate;
    ``percent`` of the ledger done (sent, failed or skipped); ``finished`` when no more
    will change (sent, cancelled or failed)."""

    campaign_id: int
    status: str
    queued: int
    sent: int
    failed: int
    skipped: int
    total: int
    percent: float
    rate: float | None
    expected_finish: datetime | None
    expected_finish_local: str | None
    started_at: datetime | None
    started_by: str | None
    scheduled_by: str | None
    finished: bool

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("expected_finish", "started_at"):
            data[key] = None if data[key] is None else as_utc(data[key]).isoformat()
        return data


def started_by(session: Session, *, campaign_id: int) -> str | None:
    """Who first moved the campaign to ``sending``: ``console:<email>``, ``api:<token>``,
    ``cli`` or ``scheduler`` (the actor of that log row)."""
    return session.exec(
        select(CampaignLog.actor)
        .where(CampaignLog.campaign_id == campaign_id, CampaignLog.to_status == S.SENDING)
        .order_by(col(CampaignLog.id))
    ).first()


def scheduled_by(session: Session, *, campaign_id: int) -> str | None:
    """Who last scheduled the campaign (a console user, an API token, the CLI or the
    weekly job): the scheduler's dispatch starts the send, this is who asked for it."""
    return session.exec(
        select(CampaignLog.actor)
        .where(CampaignLog.campaign_id == campaign_id, CampaignLog.to_status == S.SCHEDULED)
        .order_by(col(CampaignLog.id).desc())
    ).first()


def live_progress(
    session: Session, *, settings: Settings, campaign_id: int, now: datetime | None = None
) -> LiveProgress:
    """The progress of one campaign now; NotFound when there is none."""
    campaign = actions.get_campaign(session, campaign_id=campaign_id)
    counts = views.progress(session, campaign_id=campaign_id)
    done = counts.sent + counts.failed + counts.skipped
    percent = round(100.0 * done / counts.total, 1) if counts.total else 0.0
    rate = finish = None
    if campaign.started_at is not None and done:
        end = campaign.finished_at or now or utcnow()
        seconds = max((as_utc(end) - as_utc(campaign.started_at)).total_seconds(), 0.001)
        rate = done / seconds
        if counts.queued and S(campaign.status) is S.SENDING:
            finish = as_utc(now or utcnow()) + timedelta(seconds=counts.queued / rate)
    return LiveProgress(
        campaign_id=campaign_id,
        status=campaign.status,
        queued=counts.queued,
        sent=counts.sent,
        failed=counts.failed,
        skipped=counts.skipped,
        total=counts.total,
        percent=percent,
        rate=None if rate is None else round(rate, 1),
        expected_finish=finish,
        expected_finish_local=weekly_plan.format_local(finish, settings),
        started_at=campaign.started_at,
        started_by=started_by(session, campaign_id=campaign_id),
        scheduled_by=scheduled_by(session, campaign_id=campaign_id),
        finished=S(campaign.status) in FINISHED,
    )
