"""``/admin/webhooks``: outgoing webhook endpoints in the console (issue 16 point 4), as
``newsletter webhooks`` and ``/api/webhooks`` do: list, add, remove, enable, and each
endpoint's delivery log.

Owners only, reading included: an endpoint's URL is often a bearer secret of its own
(chat and automation services take any POST to their hook URL, signed or not), and the
log shows what our readers did; who can see them can spoof or learn that. The signing
secret is shown once, on the answer to the add form (never in a URL, never stored in the
page's history: console pages are ``no-store``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from campaigns import outgoing_webhooks
from newsletter.errors import InvalidInput
from web.console.deps import PREFIX, CsrfDep, OwnerUser, render
from web.console.refusals import NOTHING, Refused
from web.deps import SessionDep, SettingsDep
from web.errors import refused_form

router = APIRouter(prefix="/webhooks")

DONE = {
    "removed": "Endpoint removed, with its undelivered messages and its log.",
    "enabled": "Endpoint enabled: what it missed is delivered next.",
}


def _back(done: str) -> RedirectResponse:
    return RedirectResponse(f"{PREFIX}/webhooks?done={done}", status_code=303)


def _page(
    request: Request,
    endpoints: list[outgoing_webhooks.EndpointView],
    *,
    done: str = "",
    refused: Refused = NOTHING,
) -> HTMLResponse:
    return render(
        request,
        "console/webhooks.html.j2",
        http_status=400 if refused.form else 200,
        title="Webhooks",
        endpoints=endpoints,
        events=outgoing_webhooks.EVENTS,
        done=done,
        refused=refused,
    )


@router.get("")
def webhooks_page(
    request: Request,
    session: SessionDep,
    user: OwnerUser,
    done: Annotated[str, Query(max_length=40)] = "",
) -> HTMLResponse:
    """The endpoints (url, events, status, why disabled) and the add form."""
    endpoints = outgoing_webhooks.list_endpoints(session)
    return _page(request, endpoints, done=DONE.get(done, ""))


@router.post("")
def add_endpoint(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    user: OwnerUser,
    _: CsrfDep,
    url: Annotated[str, Form(max_length=2000)],
    event: Annotated[list[str], Form(max_length=20)] = [],  # noqa: B006 (FastAPI copies it)
) -> HTMLResponse:
    """A new endpoint; the answer is a page of its own with the signing secret, shown
    this once (a redirect would have to carry it in a URL or a cookie). The session
    commits before the answer is sent (web/deps.py), so a shown secret is a stored one."""
    try:
        created, secret = outgoing_webhooks.add_endpoint(
            session, settings=settings, url=url, events=event, actor=user.email
        )
    except InvalidInput as err:
        refused = refused_form(session, "add", err, {"url": url, "events": ",".join(event)})
        return _page(request, outgoing_webhooks.list_endpoints(session), refused=refused)
    return render(
        request,
        "console/webhooks_created.html.j2",
        title="Webhook endpoint added",
        created=created,
        secret=secret,
    )


@router.post("/{endpoint_id}/remove")
def remove_endpoint(endpoint_id: int, session: SessionDep, user: OwnerUser, _: CsrfDep) -> Response:
    outgoing_webhooks.remove_endpoint(session, endpoint_id=endpoint_id, actor=user.email)
    return _back("removed")


@router.post("/{endpoint_id}/enable")
def enable_endpoint(endpoint_id: int, session: SessionDep, user: OwnerUser, _: CsrfDep) -> Response:
    outgoing_webhooks.enable_endpoint(session, endpoint_id=endpoint_id, actor=user.email)
    return _back("enabled")


@router.get("/{endpoint_id}/log")
def delivery_log(
    endpoint_id: int, request: Request, session: SessionDep, user: OwnerUser
) -> HTMLResponse:
    """The endpoint's latest 100 attempts, newest first."""
    attempts = outgoing_webhooks.delivery_log(session, endpoint_id=endpoint_id, limit=100)
    return render(
        request,
        "console/webhooks_log.html.j2",
        title=f"Webhook endpoint {endpoint_id}: delivery log",
        endpoint_id=endpoint_id,
        attempts=attempts,
    )
