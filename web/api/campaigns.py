"""``/api/campaigns``: list, create, show, edit, send, test-send, schedule, pause, resume,
cancel, track, archive, duplicate and re-assemble campaigns,
as ``newsletter campaigns`` does; every change is logged as ``api-token:<token name>``,
in the campaign's log and the audit log."""

from __future__ import annotations

from datetime import date
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from campaigns import actions, archive, editing, views, weekly_plan
from campaigns.delivery import proofs
from campaigns.models import CampaignStatus
from web.api.common import CHANGE, NOT_FOUND, CampaignId, RowId
from web.deps import ActorDep, SessionDep, SettingsDep

router = APIRouter(prefix="/campaigns", tags=["campaigns"])


class CampaignCreate(BaseModel):
    """A new draft: its subject and its snippets, in order (each once)."""

    subject: str = Field(min_length=1, max_length=300, pattern=r"\S")
    preheader: str = Field(default="", max_length=300)
    snippet_ids: list[RowId] = Field(min_length=1, json_schema_extra={"uniqueItems": True})


class ScheduleRequest(BaseModel):
    at: str = Field(
        description="ISO 8601; without an offset it is the newsletter's local time",
        examples=["2026-12-01T09:00", "2026-12-01T14:00:00Z"],
    )


class LocalScheduleRequest(BaseModel):
    """Issue 16: send at a wall time in each reader's time zone."""

    local_time: str = Field(description="HH:MM, 24-hour", examples=["07:00"], max_length=5)
    late: Literal["now", "next-day"] = Field(
        default="next-day",
        description="zones whose hour has passed: at once, or at that hour the next day",
    )
    on: date | None = Field(
        default=None, description="the date in each reader's calendar (default: their today)"
    )


class ChangeRequest(BaseModel):
    reason: str = Field(default="", max_length=500)


class ArchiveRequest(BaseModel):
    """Issue 15: whether the campaign is listed in the public archive and its feed."""

    in_archive: bool


class ArchiveState(BaseModel):
    campaign_id: int
    in_archive: bool
    changed: bool = Field(description="false when the campaign already was so")


@router.get(
    "",
    response_model=list[views.CampaignView],
    responses=NOT_FOUND,
    summary="List campaigns, newest first (optionally of one status)",
)
def list_campaigns(
    session: SessionDep,
    settings: SettingsDep,
    status: CampaignStatus | None = None,
    limit: int = 100,
) -> list[views.CampaignView]:
    """At most ``limit`` campaigns, clamped to 1..1000."""
    return actions.list_campaigns(
        session, settings=settings, status=status, limit=max(1, min(limit, 1000))
    )


@router.post(
    "",
    response_model=views.CampaignView,
    status_code=201,
    responses=NOT_FOUND,
    summary="Create a draft campaign from snippets, in the order given",
)
def create_campaign(
    body: CampaignCreate, session: SessionDep, settings: SettingsDep, actor: ActorDep
) -> views.CampaignView:
    return actions.create_from_snippets(
        session,
        settings=settings,
        snippet_ids=body.snippet_ids,
        subject=body.subject,
        preheader=body.preheader,
        actor=actor,
    )


@router.get(
    "/{campaign_id}",
    response_model=views.CampaignDetail,
    responses=NOT_FOUND,
    summary="A campaign with its delivery progress (queued/sent/skipped/failed) and log",
)
def show_campaign(
    campaign_id: CampaignId, session: SessionDep, settings: SettingsDep
) -> views.CampaignDetail:
    return actions.show(session, settings=settings, campaign_id=campaign_id)


@router.post(
    "/{campaign_id}/schedule",
    response_model=views.CampaignView,
    responses=CHANGE,
    summary="Schedule a draft or paused campaign, or move a scheduled one",
)
def schedule_campaign(
    campaign_id: CampaignId,
    body: ScheduleRequest,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
) -> views.CampaignView:
    return actions.schedule(
        session,
        settings=settings,
        campaign_id=campaign_id,
        at_utc=weekly_plan.parse_when(body.at, settings),
        actor=actor,
    )


@router.post(
    "/{campaign_id}/schedule-local",
    response_model=views.CampaignDetail,
    responses=CHANGE,
    summary="Schedule a campaign at a local time in each reader's zone (waves)",
)
def schedule_campaign_local(
    campaign_id: CampaignId,
    body: LocalScheduleRequest,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
) -> views.CampaignDetail:
    return actions.schedule_local(
        session,
        settings=settings,
        campaign_id=campaign_id,
        local_time=body.local_time,
        late=body.late,
        on=body.on,
        actor=actor,
    )


@router.post(
    "/{campaign_id}/pause",
    response_model=views.CampaignView,
    responses=CHANGE,
    summary="Pause a scheduled or sending campaign",
)
def pause_campaign(
    campaign_id: CampaignId,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
    body: ChangeRequest | None = None,
) -> views.CampaignView:
    return actions.pause(
        session,
        settings=settings,
        campaign_id=campaign_id,
        actor=actor,
        reason=body.reason if body else "",
    )


@router.post(
    "/{campaign_id}/resume",
    response_model=views.CampaignView,
    responses=CHANGE,
    summary="Resume a paused campaign",
)
def resume_campaign(
    campaign_id: CampaignId,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
    body: ChangeRequest | None = None,
) -> views.CampaignView:
    return actions.resume(
        session,
        settings=settings,
        campaign_id=campaign_id,
        actor=actor,
        reason=body.reason if body else "",
    )


@router.post(
    "/{campaign_id}/cancel",
    response_model=views.CampaignView,
    responses=CHANGE,
    summary="Cancel a campaign for good",
)
def cancel_campaign(
    campaign_id: CampaignId,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
    body: ChangeRequest | None = None,
) -> views.CampaignView:
    return actions.cancel(
        session,
        settings=settings,
        campaign_id=campaign_id,
        actor=actor,
        reason=body.reason if body else "",
    )


# ---------------------------------------------------------------- issue 14: editing


class CampaignEdit(BaseModel):
    """Any of the three; ``snippet_ids`` is the whole list in its new order."""

    subject: str | None = Field(default=None, max_length=300)
    preheader: str | None = Field(default=None, max_length=300)
    snippet_ids: list[RowId] | None = Field(
        default=None, min_length=1, json_schema_extra={"uniqueItems": True}
    )


class TestSendRequest(BaseModel):
    to: list[str] = Field(min_length=1, max_length=10, description="addresses to send a test to")


class TestSendResult(BaseModel):
    campaign_id: int
    sent_to: list[str]


@router.patch(
    "/{campaign_id}",
    response_model=views.CampaignView,
    responses=CHANGE,
    summary="Edit the subject, preheader or snippets (in order) of a campaign not yet sending",
)
def edit_campaign(
    campaign_id: CampaignId,
    body: CampaignEdit,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
) -> views.CampaignView:
    """409 with the reason when the campaign is sending, sent or otherwise fixed."""
    return editing.edit_campaign(
        session,
        settings=settings,
        campaign_id=campaign_id,
        actor=actor,
        subject=body.subject,
        preheader=body.preheader,
        snippet_ids_in_order=body.snippet_ids,
    )


@router.post(
    "/{campaign_id}/send",
    response_model=views.CampaignView,
    status_code=202,
    responses=CHANGE,
    summary="Send now: the scheduler's next dispatch runs preflight and sends it",
)
def send_campaign(
    campaign_id: CampaignId, session: SessionDep, settings: SettingsDep, actor: ActorDep
) -> views.CampaignView:
    """Accepted, not done: follow it with ``GET /api/campaigns/{id}`` (progress)."""
    return actions.send_now(session, settings=settings, campaign_id=campaign_id, actor=actor)


@router.post(
    "/{campaign_id}/test-send",
    response_model=TestSendResult,
    responses=CHANGE,
    summary="Send one copy marked as a test to each address given; records no delivery",
)
def test_send_campaign(
    campaign_id: CampaignId,
    body: TestSendRequest,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
) -> TestSendResult:
    sent = proofs.send_test_copies(
        session, settings=settings, campaign_id=campaign_id, addresses=body.to, actor=actor
    )
    return TestSendResult(campaign_id=campaign_id, sent_to=sent)


@router.post(
    "/{campaign_id}/duplicate",
    response_model=views.CampaignView,
    status_code=201,
    responses=NOT_FOUND,
    summary="A new draft with the same subject, preheader and snippets",
)
def duplicate_campaign(
    campaign_id: CampaignId, session: SessionDep, settings: SettingsDep, actor: ActorDep
) -> views.CampaignView:
    return editing.duplicate(session, settings=settings, campaign_id=campaign_id, actor=actor)


@router.post(
    "/{campaign_id}/reassemble",
    response_model=views.CampaignView,
    responses=CHANGE,
    summary="Pick the snippets again by the weekly rules",
)
def reassemble_campaign(
    campaign_id: CampaignId, session: SessionDep, settings: SettingsDep, actor: ActorDep
) -> views.CampaignView:
    return editing.reassemble(session, settings=settings, campaign_id=campaign_id, actor=actor)


class TrackingRequest(BaseModel):
    tracking: bool = Field(description="our click and open tracking links (issue 15)")


@router.post(
    "/{campaign_id}/tracking",
    response_model=views.CampaignView,
    responses=CHANGE,
    summary="Switch click and open tracking for a campaign not yet sent",
)
def track_campaign(
    campaign_id: CampaignId,
    body: TrackingRequest,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
) -> views.CampaignView:
    return actions.track(
        session, settings=settings, campaign_id=campaign_id, on=body.tracking, actor=actor
    )


@router.put(
    "/{campaign_id}/archive",
    response_model=ArchiveState,
    responses=NOT_FOUND,
    summary="Include a campaign in the public archive or leave it out",
)
def archive_campaign(
    campaign_id: CampaignId, body: ArchiveRequest, session: SessionDep, actor: ActorDep
) -> ArchiveState:
    """As `newsletter campaigns archive ID --include/--exclude`; logged with who."""
    state = archive.set_archived(
        session, campaign_id=campaign_id, included=body.in_archive, actor=actor
    )
    return ArchiveState(**state.to_dict())
