"""Sign-in and sign-out of the console: ``GET/POST /admin/login``, ``POST /admin/logout``.

Failed sign-ins are counted per client IP and per email (``console_login_limit`` per
``console_login_window_seconds``, in the database like every limit); once either is
over, tries are refused with 429 before the password is even checked, so guessing
gains nothing from going on. A successful sign-in counts nothing.
"""

from __future__ import annotations

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


def _limited(limiter: RateLimiter, keys: list[str]) -> None:
    """RateLimited when any key is over its failed sign-ins."""
    waits = [w for w in (limiter.wait(key) for key in keys) if w is not None]
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
    keys = [f"ip:{client.ip or 'unknown'}", f"email:{email.strip().lower()}"]
    _limited(limiter, keys)
    try:
        user = accounts.authenticate(session, email, password)
    except LoginFailed as err:
        for key in keys:
            limiter.hit(key)
        return _login_page(request, settings, email=email, error=str(err), status=401)
    response = RedirectResponse(HOME, status_code=303)
    start_session(response, settings, user)
    return response


@router.post("/logout")
def logout(_user: CurrentUser, _csrf: CsrfDep, settings: SettingsDep) -> Response:
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    end_session(response, settings)
    return response
