"""The marketer's console under ``/admin/`` (issue 14): server-rendered pages and plain
HTML forms, one module per resource, all behind a signed-in session (web/console/deps.py).

Each route parses the request, calls one room function and renders a template of
``templates/console/``; errors go to the one map (web/errors.py), which answers a console
page, or the sign-in page for a request without a session.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from web.console import (
    audit,
    auth,
    campaigns,
    dashboard,
    progress,
    reports,
    sending_options,
    snippets,
    subscribers,
    webhooks,
)
from web.console.deps import PREFIX

router = APIRouter(prefix=PREFIX, include_in_schema=False, default_response_class=HTMLResponse)
router.include_router(auth.router)
router.include_router(dashboard.router)
router.include_router(snippets.router)
router.include_router(progress.router)
router.include_router(sending_options.router)  # issue 16
router.include_router(campaigns.router)
router.include_router(subscribers.router)
router.include_router(reports.router)
router.include_router(audit.router)
router.include_router(webhooks.router)  # issue 16


@router.get("")
def console_root() -> Response:
    """``/admin`` without its slash: to the dashboard (a path, never the Host header)."""
    return RedirectResponse(f"{PREFIX}/", status_code=308)
