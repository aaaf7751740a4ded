"""``GET /admin/``: the dashboard."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from web.console.deps import CurrentUser, render

router = APIRouter()


@router.get("/")
def dashboard(request: Request, user: CurrentUser) -> Response:
    return render(request, "console/dashboard.html.j2", title="Dashboard")
