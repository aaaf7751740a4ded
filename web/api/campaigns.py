"""``/api/campaigns``: list, create, show, schedule, pause, resume, cancel and archive campaigns,
as ``newsletter campaigns`` does; every change is logged as ``api:<token name>``."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from campaigns import actions, archive, weekly_plan
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
    response_model=list[actions.CampaignView],
    responses=NOT_FOUND,
    summary="List campaigns, newest first (optionally of one status)",
)
def list_campaigns(
    session: SessionDep,
    settings: SettingsDep,
    status: CampaignStatus | None = None,
    limit: int = 100,
) -> list[actions.CampaignView]:
    """At most ``limit`` campaigns, clamped to 1..1000."""
    return actions.list_campaigns(
        session, settings=settings, status=status, limit=max(1, min(limit, 1000))
    )


@router.post(
    "",
    response_model=actions.CampaignView,
    status_code=201,
    responses=NOT_FOUND,
    summary="Create a draft campaign from snippets, in the order given",
)
def create_campaign(
    body: CampaignCreate, session: SessionDep, settings: SettingsDep, actor: ActorDep
) -> actions.CampaignView:
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
    response_model=actions.CampaignDetail,
    responses=NOT_FOUND,
    summary="A campaign with its delivery progress (queued/sent/skipped/failed) and log",
)
def show_campaign(
    campaign_id: CampaignId, session: SessionDep, settings: SettingsDep
) -> actions.CampaignDetail:
    return actions.show(session, settings=settings, campaign_id=campaign_id)


@router.post(
    "/{campaign_id}/schedule",
    response_model=actions.CampaignView,
    responses=CHANGE,
    summary="Schedule a draft or paused campaign, or move a scheduled one",
)
def schedule_campaign(
    campaign_id: CampaignId,
    body: ScheduleRequest,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
) -> actions.CampaignView:
    return actions.schedule(
        session,
        settings=settings,
        campaign_id=campaign_id,
        at_utc=weekly_plan.parse_when(body.at, settings),
        actor=actor,
    )


@router.post(
    "/{campaign_id}/pause",
    response_model=actions.CampaignView,
    responses=CHANGE,
    summary="Pause a scheduled or sending campaign",
)
def pause_campaign(
    campaign_id: CampaignId,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
    body: ChangeRequest | None = None,
) -> actions.CampaignView:
    return actions.pause(
        session,
        settings=settings,
        campaign_id=campaign_id,
        actor=actor,
        reason=body.reason if body else "",
    )


@router.post(
    "/{campaign_id}/resume",
    response_model=actions.CampaignView,
    responses=CHANGE,
    summary="Resume a paused campaign",
)
def resume_campaign(
    campaign_id: CampaignId,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
    body: ChangeRequest | None = None,
) -> actions.CampaignView:
    return actions.resume(
        session,
        settings=settings,
        campaign_id=campaign_id,
        actor=actor,
        reason=body.reason if body else "",
    )


@router.post(
    "/{campaign_id}/cancel",
    response_model=actions.CampaignView,
    responses=CHANGE,
    summary="Cancel a campaign for good",
)
def cancel_campaign(
    campaign_id: CampaignId,
    session: SessionDep,
    settings: SettingsDep,
    actor: ActorDep,
    body: ChangeRequest | None = None,
) -> actions.CampaignView:
    return actions.cancel(
        session,
        settings=settings,
        campaign_id=campaign_id,
        actor=actor,
        reason=body.reason if body else "",
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
