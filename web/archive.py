"""The public archive (issue 15): ``GET /archive/`` (paginated listing), ``GET
/archive/feed.atom`` (Atom, RFC 4287) and ``GET /archive/{slug}`` (an issue's web version).

What is listed and what a page holds is the campaigns room's rule (campaigns/archive.py).
Pages are public and cacheable for a few minutes (no tokens in them). An issue's page is
the email's own HTML, styled inline by MJML: its Content-Security-Policy allows inline
styles and the issue's image hosts, and still no script at all.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from campaigns import archive
from web.deps import SessionDep, SettingsDep
from web.security import BASE_POLICY, policy

router = APIRouter(tags=["archive"], include_in_schema=False)
PUBLIC_CACHE = {"Cache-Control": "public, max-age=300"}
# The page has no script and no form; inline styles are MJML's (the email's own).
ISSUE_POLICY = {
    **BASE_POLICY,
    "script-src": "'none'",
    "style-src": "'unsafe-inline'",
    "form-action": "'none'",
}

Page = Annotated[int, Query(ge=1, le=1_000_000, description="1-based page number")]


@router.get("/archive")
def archive_root() -> RedirectResponse:
    """Relative, so never built from the Host header."""
    return RedirectResponse("/archive/", status_code=308)


@router.get("/archive/")
def archive_index(session: SessionDep, settings: SettingsDep, page: Page = 1) -> HTMLResponse:
    html = archive.archive_page(session, settings=settings, page=page)
    return HTMLResponse(html, headers=PUBLIC_CACHE)


@router.get("/archive/feed.atom")
def archive_feed(session: SessionDep, settings: SettingsDep) -> Response:
    body = archive.atom_feed(session, settings=settings)
    return Response(body, media_type=f"{archive.ATOM_TYPE}; charset=utf-8", headers=PUBLIC_CACHE)


@router.get("/archive/{slug}")
def archive_issue(slug: str, session: SessionDep, settings: SettingsDep) -> Response:
    found = archive.issue_page(session, settings=settings, slug_text=slug)
    if found.redirect_to:
        return RedirectResponse(found.redirect_to, status_code=301)
    images = " ".join(["'self'", "data:", *found.image_origins])
    csp = policy({**ISSUE_POLICY, "img-src": images})
    headers = {**PUBLIC_CACHE, "Content-Security-Policy": csp}
    return HTMLResponse(found.html, headers=headers)
