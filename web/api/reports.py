"""``/api/campaigns/{id}/report``: delivery and engagement figures of a campaign;
``/api/reports/comparison``: the last issues compared (issue 15, point 7)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from campaigns.reports.comparison import DEFAULT_ISSUES, MAX_ISSUES, compare_issues
from campaigns.reports.figures import campaign_report as build_report
from web.api.common import NOT_FOUND, CampaignId
from web.deps import SessionDep

router = APIRouter(prefix="/campaigns", tags=["campaigns"])
comparison_router = APIRouter(prefix="/reports", tags=["campaigns"])


@router.get(
    "/{campaign_id}/report",
    responses=NOT_FOUND,
    summary="Delivery and engagement figures of a campaign",
)
def campaign_report(campaign_id: CampaignId, session: SessionDep) -> dict[str, Any]:
    """The figures of `newsletter campaigns report`: counts, rates and warnings."""
    return build_report(session, campaign_id=campaign_id).to_dict()


@comparison_router.get("/comparison", summary="The last sent issues compared, oldest first")
def comparison(
    session: SessionDep,
    last: Annotated[int, Query(ge=1, le=MAX_ISSUES)] = DEFAULT_ISSUES,
) -> dict[str, Any]:
    """Per issue: delivered, human open rate and click rate (of delivered; null when
    nothing could count opens), unsubscribes and bounces (`newsletter campaigns compare`)."""
    return compare_issues(session, last=last).to_dict()
