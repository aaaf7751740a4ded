"""``/api/campaigns/{id}/report``: delivery and engagement figures of a campaign."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from campaigns.reports.figures import campaign_report as build_report
from web.api.common import NOT_FOUND, CampaignId
from web.deps import SessionDep

router = APIRouter(prefix="/campaigns", tags=["campaigns"])


@router.get(
    "/{campaign_id}/report",
    responses=NOT_FOUND,
    summary="Delivery and engagement figures of a campaign",
)
def campaign_report(campaign_id: CampaignId, session: SessionDep) -> dict[str, Any]:
    """The figures of `newsletter campaigns report`: counts, rates and warnings."""
    return build_report(session, campaign_id=campaign_id).to_dict()
