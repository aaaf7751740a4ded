"""``/admin/reports``: the campaigns that have been sent, and each one's report with its
chart, human and machine opens apart, top links and a CSV download."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from campaigns.reports import overview
from campaigns.reports.figures import campaign_report, report_csv
from web.api.common import MAX_ID
from web.console.deps import CurrentUser, render
from web.deps import SessionDep, SettingsDep

router = APIRouter(prefix="/reports")

CampaignId = Annotated[int, Path(ge=1, le=MAX_ID)]
PNG_HEADERS = {"Cache-Control": "private, max-age=60"}


@router.get("")
def report_list(
    request: Request, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> Response:
    campaigns = overview.reportable(session, settings=settings)
    return render(request, "console/reports.html.j2", title="Reports", campaigns=campaigns)


@router.get("/growth.png")
def growth_png(user: CurrentUser, session: SessionDep) -> Response:
    return Response(overview.growth_chart_png(session), media_type="image/png", headers=PNG_HEADERS)


@router.get("/{campaign_id}")
def report(
    request: Request, user: CurrentUser, session: SessionDep, campaign_id: CampaignId
) -> Response:
    page = overview.campaign_page(session, campaign_id=campaign_id)
    return render(
        request,
        "console/report.html.j2",
        title=f"Report: {page.report.subject}",
        page=page,
        figures={f.name: f for f in page.report.figures},
    )


@router.get("/{campaign_id}/chart.png")
def chart_png(
    user: CurrentUser, session: SessionDep, settings: SettingsDep, campaign_id: CampaignId
) -> Response:
    png = overview.campaign_chart_png(session, settings=settings, campaign_id=campaign_id)
    return Response(png, media_type="image/png", headers=PNG_HEADERS)


@router.get("/{campaign_id}/report.csv")
def report_download(user: CurrentUser, session: SessionDep, campaign_id: CampaignId) -> Response:
    text = report_csv(campaign_report(session, campaign_id=campaign_id))
    headers = {
        "Content-Disposition": f'attachment; filename="campaign-{campaign_id}-report.csv"',
        "Cache-Control": "no-store",
    }
    return Response(text, media_type="text/csv; charset=utf-8", headers=headers)
