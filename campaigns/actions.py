"""What marketers do with campaigns: create, list, show, schedule, pause, resume, cancel.

The CLI, the HTTP API and the console call these functions, so all enforce the same
rules: every state change goes through :func:`campaigns.workflow.transition` and is
logged with who and why, in the campaign's log and in the audit log (newsletter.audit).
Times are stored in UTC and shown in the newsletter's time zone as well.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlmodel import Session, col, select

from campaigns import weekly_plan, workflow
from campaigns.delivery import waves
from campaigns.models import (
    Campaign,
    CampaignArchiveExclusion,
    CampaignLog,
    CampaignSnippet,
    CampaignStatus,
    CampaignTrackingOff,
    Snippet,
)
from campaigns.views import CampaignDetail, CampaignView, LogEntry, progress, view
from newsletter import audit
from newsletter.clock import as_utc, utcnow
from newsletter.errors import HeaderInjection, InvalidInput, NotFound, StateError
from newsletter.headers import check_header_text
from newsletter.settings import Settings

S = CampaignStatus


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
    # Imported here: both modules look campaigns up with get_campaign from this one.
    from campaigns import resends, subject_tests

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
        subject_test=subject_tests.describe(session, campaign_id=campaign_id),
        resend=resends.describe(session, campaign_id=campaign_id),
        waves=waves.views(session, campaign_id=campaign_id),
    )


def refuse_controls(**fields: str) -> None:
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
    refuse_controls(subject=subject, preheader=preheader)
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
    audit.record(
        session,
        actor,
        "campaign.create",
        "campaign",
        campaign.id,
        after={"subject": campaign.subject, "snippet_ids": snippet_ids},
    )
    return view(campaign, settings=settings)


def _audited(
    session: Session, *, actor: str, action: str, campaign: Campaign, before: dict[str, object]
) -> None:
    """The audit log's entry for a change of status or time (newsletter.audit)."""
    after = {"status": campaign.status, "scheduled_at": campaign.scheduled_at}
    audit.record(session, actor, f"campaign.{action}", "campaign", campaign.id, before, after)


def _state(campaign: Campaign) -> dict[str, object]:
    return {"status": campaign.status, "scheduled_at": campaign.scheduled_at}


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
    at = weekly_plan.schedulable(at_utc, settings, now=now or utcnow())
    campaign = get_campaign(session, campaign_id=campaign_id, lock=True)
    before = _state(campaign)
    when = f"for {at.isoformat()} ({weekly_plan.format_local(at, settings)})"
    if campaign.started_at is None:  # one instant for everyone: no local-time waves
        waves.drop_waves(session, campaign_id=campaign_id)
    _to_scheduled(
        session,
        campaign,
        at=at,
        actor=actor,
        reason=reason or f"scheduled {when}",
        moved=reason or f"rescheduled {when}",
    )
    session.flush()
    _audited(session, actor=actor, action="schedule", campaign=campaign, before=before)
    return view(campaign, settings=settings)


def _to_scheduled(
    session: Session, campaign: Campaign, *, at: datetime, actor: str, reason: str, moved: str
) -> None:
    """Scheduled for ``at``: a move for a scheduled campaign, else the transition."""
    if campaign.status == S.SCHEDULED:
        campaign.scheduled_at = at
        session.add(campaign)
        workflow.log_event(session, campaign=campaign, actor=actor, reason=moved)
    else:
        if campaign.status == S.PAUSED and campaign.started_at is not None:
            raise StateError(f"campaign {campaign.id} was paused while sending; resume it instead")
        workflow.transition(session, campaign=campaign, to=S.SCHEDULED, actor=actor, reason=reason)
        campaign.scheduled_at = at
        session.add(campaign)


def _check_local_date(on: date | None, now: datetime) -> None:
    """A date some calendar shows now or later (UTC-12 is 12 hours behind; a past date
    would send every zone at once, as late), within the schedule horizon."""
    if on is not None and on < (now - timedelta(hours=12)).date():
        raise InvalidInput(
            f"{on.isoformat()} is in the past; pick today or a later date",
            field="on",
            advised=True,
        )
    if on is not None and on > (now + weekly_plan.SCHEDULE_HORIZON).date():
        raise InvalidInput(
            f"{on.isoformat()} is too far ahead; {weekly_plan.TOO_FAR}", field="on", advised=True
        )


def schedule_local(
    session: Session,
    *,
    settings: Settings,
    campaign_id: int,
    local_time: str,
    late: str = waves.Late.NEXT_DAY.value,
    on: date | None = None,
    actor: str,
    now: datetime | None = None,
) -> CampaignDetail:
    """Send at ``local_time`` ("HH:MM") in each reader's zone (issue 16).

    One wave per distinct UTC instant (campaigns.delivery.waves); the campaign is
    scheduled for the first, and the scheduler releases the others when they come.
    ``on`` is the date in each zone's calendar (default: each zone's date now); ``late``
    ("now" or "next-day") is for zones whose hour has already passed. Raises InvalidInput
    (fields local_time, late, on: past or over ten years ahead), NotFound, StateError (it
    has started sending, or cannot be scheduled from its state).
    """
    at = waves.parse_local_time(local_time)
    try:
        policy = waves.Late(late)
    except ValueError:
        raise InvalidInput(f"{late!r} is not one of: now, next-day", field="late") from None
    now = as_utc(now or utcnow())
    _check_local_date(on, now)
    campaign = get_campaign(session, campaign_id=campaign_id, lock=True)
    if campaign.started_at is not None:
        raise StateError(f"campaign {campaign_id} has started sending; it cannot be planned again")
    before = _state(campaign)
    planned = waves.replace_waves(
        session, settings=settings, campaign=campaign, at=at, late=policy, now=now, day=on
    )
    zones = sum(len(w.zones) for w in planned)
    reason = (
        f"scheduled at {at:%H:%M} local time{f' on {on.isoformat()}' if on else ''}: "
        f"{len(planned)} wave(s) for {zones} zone(s), late zones {policy.value}"
    )
    _to_scheduled(
        session, campaign, at=planned[0].release_at, actor=actor, reason=reason, moved=reason
    )
    session.flush()
    _audited(session, actor=actor, action="schedule-local", campaign=campaign, before=before)
    return show(session, settings=settings, campaign_id=campaign_id)


def pause(
    session: Session, *, settings: Settings, campaign_id: int, actor: str, reason: str = ""
) -> CampaignView:
    """Hold a scheduled or sending campaign; a send loop stops before its next batch."""
    campaign = get_campaign(session, campaign_id=campaign_id, lock=True)
    before = _state(campaign)
    workflow.transition(
        session, campaign=campaign, to=S.PAUSED, actor=actor, reason=reason or "paused"
    )
    session.flush()
    _audited(session, actor=actor, action="pause", campaign=campaign, before=before)
    return view(campaign, settings=settings)


def resume(
    session: Session, *, settings: Settings, campaign_id: int, actor: str, reason: str = ""
) -> CampaignView:
    """Undo a pause: back to scheduled, or to sending (the dispatcher picks it up)."""
    campaign = get_campaign(session, campaign_id=campaign_id, lock=True)
    if campaign.status != S.PAUSED:
        raise StateError(f"campaign {campaign_id} is {campaign.status}, not paused")
    target = S.SENDING if campaign.started_at is not None else S.SCHEDULED
    before = _state(campaign)
    workflow.transition(
        session, campaign=campaign, to=target, actor=actor, reason=reason or "resumed"
    )
    session.flush()
    _audited(session, actor=actor, action="resume", campaign=campaign, before=before)
    return view(campaign, settings=settings)


def cancel(
    session: Session, *, settings: Settings, campaign_id: int, actor: str, reason: str = ""
) -> CampaignView:
    """Stop a campaign for good; deliveries already sent stay sent."""
    campaign = get_campaign(session, campaign_id=campaign_id, lock=True)
    before = _state(campaign)
    workflow.transition(
        session, campaign=campaign, to=S.CANCELLED, actor=actor, reason=reason or "cancelled"
    )
    session.flush()
    _audited(session, actor=actor, action="cancel", campaign=campaign, before=before)
    return view(campaign, settings=settings)


def track(
    session: Session, *, settings: Settings, campaign_id: int, on: bool, actor: str
) -> CampaignView:
    """Issue 15: switch our click and open tracking for one campaign (logged). A sent or
    cancelled campaign's links are out already: StateError. A paused send resumes with
    the new choice for the readers not yet sent to."""
    campaign = get_campaign(session, campaign_id=campaign_id, lock=True)
    if campaign.status in (S.SENT, S.CANCELLED):
        raise StateError(f"campaign {campaign_id} is {campaign.status}; its links are out")
    off = session.get(CampaignTrackingOff, campaign_id)
    if (off is None) != on:
        if on:
            session.delete(off)
        else:
            session.add(CampaignTrackingOff(campaign_id=campaign_id))
        status, reason = campaign.status, f"tracking {'on' if on else 'off'}"
        session.add(
            CampaignLog(
                campaign_id=campaign_id,
                from_status=status,
                to_status=status,
                actor=actor,
                reason=reason,
            )
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


def send_now(session: Session, *, settings: Settings, campaign_id: int, actor: str) -> CampaignView:
    """Hand a draft, scheduled or paused (not yet started) campaign to the scheduler for
    now (issue 14): it is scheduled at this moment, and the next dispatch (every
    ``dispatch_interval_seconds``) runs preflight and sends it. The web doors never send
    in-request: a send to a large list outlives a request, and the scheduler holds the
    lease that keeps one sender per campaign. Raises StateError, NotFound."""
    now = utcnow()
    return schedule(
        session,
        settings=settings,
        campaign_id=campaign_id,
        at_utc=now,
        actor=actor,
        reason="send now",
        now=now,
    )
