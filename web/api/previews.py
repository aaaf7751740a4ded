"""``/api/campaigns/{id}/preview``: the rendered email as a reader would see it."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from campaigns import actions
from campaigns.content.preview import sample_values
from campaigns.content.rendering import ensure_rendered
from newsletter.mail import personalise
from web.api.common import NOT_FOUND, CampaignId
from web.deps import SessionDep, SettingsDep

router = APIRouter(prefix="/campaigns", tags=["campaigns"])


@router.get(
    "/{campaign_id}/preview",
    response_class=HTMLResponse,
    responses=NOT_FOUND,
    summary="The rendered email as HTML, with sample reader values",
)
def preview_campaign(
    campaign_id: CampaignId, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    # Three room calls: campaigns has no one-call "preview HTML" function yet.
    campaign = actions.get_campaign(session, campaign_id=campaign_id)
    rendered = ensure_rendered(session, settings=settings, campaign=campaign)
    return HTMLResponse(personalise(rendered.html, sample_values(settings)))
