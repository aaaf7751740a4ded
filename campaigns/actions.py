"""What marketers do with campaigns: create, list, show, schedule, pause, resume, cancel.

The CLI and the HTTP API both call these functions, so both enforce the same rules: every
state change goes through :func:`campaigns.workflow.transition` and is logged with who
and why. Times are stored in UTC and shown in the newsletter's time zone as well.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel
from sqlmodel import Session, col, select

from campaigns import weekly_plan, workflow
from campaigns.delivery.ledger import delivery_counts
from campaigns.models import (
    Campaign,
    CampaignArchiveExclusion,
    CampaignLog,
    CampaignSnippet,
    CampaignStatus,
    Snippet,
)
from newsletter.clock import as_utc, utcnow
from newsletter.errors import HeaderInjection, InvalidInput, NotFound, StateError
from newsletter.headers import check_header_text
from newsletter.settings import Settings

S = CampaignStatus
# A time a little in the past is "now" typed slowly, not a mistake.
PAST_TOLERANCE = timedelta(minutes=1)


class Progress(BaseModel):
    queued: int = 0
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    total: int = 0


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
    )


def get_campaign(session: Session, *, campaign_id: int, lock: bool = False) -> Campaign:
    """The campaign, fresh from the database (row-locked on PostgreSQL when ``lock``);
    NotFound "campaign <id> does not exist" otherwise. The one lookup by id: the CLI, the
    API, the jobs and the demo all use it."""
    query = select(Campaign).where(Campaign.id == campaign_id)
    if lock:
        query = query.with_for_update()
    campaign = session.exec(query.execution_options(populate_existing=True)).first()
    if campaign is None:
        raise NotFound(f"campaign {campaign_id} does not exist")
    return campaign


def progress(session: Session, *, campaign_id: int) -> Progress:
    """Delivery counts by status: how far a send has got (the ledger's one count)."""
    return Progress(**delivery_counts(session, campaign_id=campaign_id).as_dict())


def list_campaigns(
    session: Session,
    *,
    settings: Settings,
    status: CampaignStatus | None = None,
    limit: int = 100,
) -> list[CampaignView]:
    """Newest first."""
    query = select(Campaign).order_by(col(Campaign.id).desc()).limit(limit)
    if status is not None:
        query = query.where(Campaign.status == status.value)
    return [view(c, settings=settings) for c in session.exec(query).all()]


def show(session: Session, *, settings: Settings, campaign_id: int) -> CampaignDetail:
    campaign = get_campaign(session, campaign_id=campaign_id)
    snippet_ids = session.exec(
        select(CampaignSnippet.snippet_id)
        .where(CampaignSnippet.campaign_id == campaign_id)
        .order_by(col(CampaignSnippet.position))
    ).all()
    log = session.exec(
        select(CampaignLog)
        .where(CampaignLog.campaign_id == campaign_id)
        .order_by(col(CampaignLog.id))
    ).all()
    return CampaignDetail(
        **view(campaign, settings=settings).model_dump(),
        snippet_ids=list(snippet_ids),
        progress=progress(session, campaign_id=campaign_id),
        in_archive=session.get(CampaignArchiveExclusion, campaign_id) is None,
        log=[
            LogEntry(
                at=entry.at,
                from_status=entry.from_status,
                to_status=entry.to_status,
                actor=entry.actor,
                reason=entry.reason,
            )
            for entry in log
        ],
    )


def _refuse_controls(**fields: str) -> None:
    """InvalidInput naming the first field whose text newsletter.mail would refuse."""
    for name, value in fields.items():
        try:
            check_header_text("Subject", value)
        except HeaderInjection:
            raise InvalidInput(
                f"the {name} contains a control character (a line break ends a header, "
                "RFC 5322 2.2); use plain text on one line",
                field=name,
            ) from None


def create_from_snippets(
    session: Session,
    *,
    settings: Settings,
    snippet_ids: list[int],
    subject: str,
    preheader: str = "",
    actor: str,
) -> CampaignView:
    """An ad-hoc draft campaign with these snippets, in this order.

    Raises InvalidInput (field "subject"/"preheader") for an empty subject or a control
    character (CR, LF, ...) in either: a line break ends a header (RFC 5322 2.2).
    """
    if not subject.strip():
        raise InvalidInput("a campaign needs a subject", field="subject")
    _refuse_controls(subject=subject, preheader=preheader)
    if not snippet_ids:
        raise InvalidInput("a campaign needs at least one snippet", field="snippet_ids")
    if len(set(snippet_ids)) != len(snippet_ids):
        raise InvalidInput("a snippet is listed twice", field="snippet_ids")
    found = set(session.exec(select(Snippet.id).where(col(Snippet.id).in_(snippet_ids))).all())
    missing = [i for i in snippet_ids if i not in found]
    if missing:
        raise NotFound(f"snippets do not exist: {', '.join(map(str, missing))}")
    campaign = Campaign(subject=subject.strip(), preheader=preheader.strip(), created_by=actor)
    session.add(campaign)
    session.flush()
    for position, snippet_id in enumerate(snippet_ids):
        session.add(
            CampaignSnippet(campaign_id=campaign.id, snippet_id=snippet_id, position=position)
        )
    session.add(
        CampaignLog(
            campaign_id=campaign.id,
            from_status=None,
            to_status=S.DRAFT,
            actor=actor,
            reason=f"created from snippets {', '.join(map(str, snippet_ids))}",
        )
    )
    session.flush()
    return view(campaign, settings=settings)


def schedule(
    session: Session,
    *,
    settings: Settings,
    campaign_id: int,
    at_utc: datetime,
    actor: str,
    reason: str = "",
    now: datetime | None = None,
) -> CampaignView:
    """Queue a draft or paused campaign for ``at_utc``, or move a scheduled one."""
    at = as_utc(at_utc)
    if at < (now or utcnow()) - PAST_TOLERANCE:
        raise InvalidInput(f"{weekly_plan.format_local(at, settings)} is in the past", field="at")
    campaign = get_campaign(session, campaign_id=campaign_id, lock=True)
    when = f"for {at.isoformat()} ({weekly_plan.format_local(at, settings)})"
    if campaign.status == S.SCHEDULED:
        campaign.scheduled_at = at
        session.add(campaign)
        workflow.log_event(
            session, campaign=campaign, actor=actor, reason=reason or f"rescheduled {when}"
        )
    else:
        if campaign.status == S.PAUSED and campaign.started_at is not None:
            raise StateError(f"campaign {campaign_id} was paused while sending; resume it instead")
        workflow.transition(
            session,
            campaign=campaign,
            to=S.SCHEDULED,
            actor=actor,
            reason=reason or f"scheduled {when}",
        )
        campaign.scheduled_at = at
        session.add(campaign)
    session.flush()
    return view(campaign, settings=settings)


def pause(
    session: Session, *, settings: Settings, campaign_id: int, actor: str, reason: str = ""
) -> CampaignView:
    """Hold a scheduled or sending campaign; a send loop stops before its next batch."""
    campaign = get_campaign(session, campaign_id=campaign_id, lock=True)
    workflow.transition(
        session, campaign=campaign, to=S.PAUSED, actor=actor, reason=reason or "paused"
    )
    session.flush()
    return view(campaign, settings=settings)


def resume(
    session: Session, *, settings: Settings, campaign_id: int, actor: str, reason: str = ""
) -> CampaignView:
    """Undo a pause: back to scheduled, or to sending (the dispatcher picks it up)."""
    campaign = get_campaign(session, campaign_id=campaign_id, lock=True)
    if campaign.status != S.PAUSED:
        raise StateError(f"campaign {campaign_id} is {campaign.status}, not paused")
    target = S.SENDING if campaign.started_at is not None else S.SCHEDULED
    workflow.transition(
        session, campaign=campaign, to=target, actor=actor, reason=reason or "resumed"
    )
    session.flush()
    return view(campaign, settings=settings)


def cancel(
    session: Session, *, settings: Settings, campaign_id: int, actor: str, reason: str = ""
) -> CampaignView:
    """Stop a campaign for good; deliveries already sent stay sent."""
    campaign = get_campaign(session, campaign_id=campaign_id, lock=True)
    workflow.transition(
        session, campaign=campaign, to=S.CANCELLED, actor=actor, reason=reason or "cancelled"
    )
    session.flush()
    return view(campaign, settings=settings)


def due_campaigns(session: Session, *, now: datetime) -> list[Campaign]:
    """Scheduled campaigns whose time has come, oldest first."""
    return list(
        session.exec(
            select(Campaign)
            .where(Campaign.status == S.SCHEDULED, col(Campaign.scheduled_at) <= now)
            .order_by(col(Campaign.scheduled_at), col(Campaign.id))
        ).all()
    )


def sending_campaigns(session: Session) -> list[Campaign]:
    """Campaigns left in 'sending' (a send loop was interrupted, or resume was asked)."""
    return list(
        session.exec(
            select(Campaign).where(Campaign.status == S.SENDING).order_by(col(Campaign.id))
        ).all()
    )
