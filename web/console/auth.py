"""Sign-in and sign-out of the console: ``GET/POST /admin/login``, ``POST /admin/logout``.

Sign-in tries are counted per client (an IPv4 address, an IPv6 /64: one customer's
allocation, RFC 6177) and per email as authenticate reads it (accounts.login_key, so
look-alike spellings of one address share a count): ``console_login_limit`` per
``console_login_window_seconds``, in the database like every limit. A try is counted
BEFORE its password is checked, so tries sent at once cannot all pass a count that only
sees finished ones; over the limit, it is refused with 429 and no password is checked.
A successful sign-in counts too (the limiter cannot take a hit back): a user who signs
in more than the limit within the window waits like a guesser.

Sign-out replaces the user's session epoch, so the old cookie is refused everywhere.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from newsletter import accounts
from newsletter.errors import LoginFailed, PermissionDenied, RateLimited
from subscribers.ratelimit import RateLimiter
from web.console.deps import (
    PREFIX,
    CsrfDep,
    CurrentUser,
    end_session,
    keep_login_csrf,
    login_csrf,
    read_session,
    render,
    same_token,
    start_session,
)
from web.deps import ClientDep, SessionDep, SettingsDep

router = APIRouter()

HOME = f"{PREFIX}/"


def _login_page(
    request: Request, settings: SettingsDep, *, email: str = "", error: str = "", status: int = 200
) -> Response:
    token = login_csrf(request, settings)
    response = render(
        request,
        "console/login.html.j2",
        http_status=status,
        title="Log in",
        login_csrf=token,
        email=email,
        error=error,
    )
    keep_login_csrf(request, response, settings)
    return response


@router.get("/login")
def login_form(request: Request, settings: SettingsDep) -> Response:
    if read_session(request, settings) is not None:
        return RedirectResponse(HOME, status_code=303)
    return _login_page(request, settings)


IPV6_CLIENT_PREFIX = 64  # RFC 6177: an end site gets a /64 at least; its hosts pick the rest


def client_key(ip: str | None) -> str:
    """The per-client limit key: the IPv4 address, or the /64 holding an IPv6 one."""
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return f"ip:{ip or 'unknown'}"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"ip:{address.ipv4_mapped}"
        return f"ip:{ipaddress.ip_network(f'{address}/{IPV6_CLIENT_PREFIX}', strict=False)}"
    return f"ip:{address}"


def _count_try(limiter: RateLimiter, keys: list[str]) -> None:
    """Count one sign-in try under every key; RateLimited when any key is over. A try
    refused by one key keeps its count under the keys before it: with tries arriving at
    once, fewer than the limit may pass, never more."""
    waits = [w for w in (limiter.hit(key) for key in keys) if w is not None]
    if waits:
        raise RateLimited("too many failed sign-ins; try again later", retry_after=max(waits))


@router.post("/login")
def login(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    client: ClientDep,
    email: Annotated[str, Form(max_length=400)] = "",
    password: Annotated[str, Form(max_length=2000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    cookie_token = login_csrf(request, settings)
    if not same_token(csrf_token, cookie_token) or getattr(request.state, "new_login_csrf", None):
        raise PermissionDenied("the sign-in form is out of date; reload the page and try again")
    limiter: RateLimiter = request.app.state.console_login_limiter
    _count_try(limiter, [client_key(client.ip), f"email:{accounts.login_key(email)}"])
    try:
        user, epoch = accounts.sign_in(session, email, password)
    except LoginFailed as err:
        return _login_page(request, settings, email=email, error=str(err), status=401)
    response = RedirectResponse(HOME, status_code=303)
    start_session(response, settings, user, epoch)
    return response


@router.post("/logout")
def logout(
    user: CurrentUser, _csrf: CsrfDep, session: SessionDep, settings: SettingsDep
) -> Response:
    assert user.id is not None
    accounts.end_sessions(session, user.id)
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    end_session(response, settings)
    return response
