"""``GET /admin/``: the dashboard: the next issue, the last one's results, the list's
growth and what needs attention (campaigns.reports.overview.dashboard)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from campaigns.reports import overview
from web.console.deps import CurrentUser, render
from web.deps import SessionDep, SettingsDep

router = APIRouter()


@router.get("/")
def dashboard(
    request: Request, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> Response:
    board = overview.dashboard(session, settings=settings)
    figures = {f.name: f for f in board.last_issue.figures} if board.last_issue else {}
    return render(
        request,
        "console/dashboard.html.j2",
        title="Dashboard",
        board=board,
        figures=figures,
        timezone=settings.timezone,
    )
