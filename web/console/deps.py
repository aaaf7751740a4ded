"""What every console route shares: the signed-in user, roles, CSRF, and page rendering.

Sessions are a signed cookie (itsdangerous, the app's secret key with a purpose-bound
salt, so no other signed value of the service passes for one): ``{"u": user id, "c":
CSRF token, "e": session epoch}`` with its signing time. The epoch must be the user's
current one (newsletter.accounts.session_epoch): sign-out and disabling replace it, so a
copied cookie is refused from then on, not only dropped by this browser. HttpOnly (no
script reads it), SameSite=Lax (no other site's form posts with it), Secure when the base
URL is https, path ``/admin``, and it expires after ``console_session_hours``. The user
is read again on each request, so a disabled user is out at their next click.

CSRF: each session has its own random token, put in every form as the hidden input
``csrf_token`` and compared in constant time on every POST (OWASP CSRF Prevention Cheat
Sheet, "synchronizer token pattern"). The sign-in form, which has no session yet, uses a
token kept in a short-lived signed cookie of its own (login CSRF).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, Response
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from campaigns import weekly_plan
from newsletter import accounts, db
from newsletter.accounts import ConsoleUser, Role
from newsletter.errors import NotSignedIn, PermissionDenied
from newsletter.settings import Settings
from newsletter.templating import Templates, brand_context
from web.console.refusals import NOTHING
from web.deps import SettingsDep
from web.responses import NO_STORE

PREFIX = "/admin"
LOGIN_PATH = f"{PREFIX}/login"
SESSION_COOKIE = "newsletter_console"
LOGIN_CSRF_COOKIE = "newsletter_console_login"
SESSION_SALT = "newsletter.console.session"
LOGIN_SALT = "newsletter.console.login-csrf"
LOGIN_CSRF_SECONDS = 3600
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class NavItem:
    label: str
    href: str
    role: Role = Role.viewer


NAV = (
    NavItem("Dashboard", f"{PREFIX}/"),
    NavItem("Snippets", f"{PREFIX}/snippets"),
    NavItem("Campaigns", f"{PREFIX}/campaigns"),
    NavItem("Subscribers", f"{PREFIX}/subscribers"),
    NavItem("Reports", f"{PREFIX}/reports"),
    NavItem("Audit log", f"{PREFIX}/audit", Role.owner),
    NavItem("Webhooks", f"{PREFIX}/webhooks", Role.owner),  # issue 16
)


@dataclass(frozen=True)
class ConsoleSession:
    user_id: int
    csrf_token: str
    epoch: str


def _serializer(settings: Settings, salt: str) -> URLSafeTimedSerializer:
    # itsdangerous signs with the last key and verifies with every one (key rotation).
    return URLSafeTimedSerializer(list(reversed(settings.secret_keys)), salt=salt)


def session_seconds(settings: Settings) -> int:
    return int(settings.console_session_hours * 3600)


def _secure(settings: Settings) -> bool:
    return settings.base_url.lower().startswith("https://")


def start_session(response: Response, settings: Settings, user: ConsoleUser, epoch: str) -> None:
    """Set the session cookie of ``user`` (a new CSRF token with it, and the user's
    current session ``epoch``) on ``response``."""
    assert user.id is not None
    value = _serializer(settings, SESSION_SALT).dumps(
        {"u": user.id, "c": secrets.token_urlsafe(32), "e": epoch}
    )
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=session_seconds(settings),
        path=PREFIX,
        secure=_secure(settings),
        httponly=True,
        samesite="lax",
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=PREFIX)


def end_session(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path=PREFIX, secure=_secure(settings), httponly=True, samesite="lax"
    )


def read_session(request: Request, settings: Settings) -> ConsoleSession | None:
    """The request's verified, unexpired session; None when absent, tampered or old."""
    value = request.cookies.get(SESSION_COOKIE)
    if not value:
        return None
    try:
        data = _serializer(settings, SESSION_SALT).loads(value, max_age=session_seconds(settings))
    except (SignatureExpired, BadSignature):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("u"), int):
        return None
    if not isinstance(data.get("c"), str) or not isinstance(data.get("e"), str):
        return None
    return ConsoleSession(user_id=data["u"], csrf_token=data["c"], epoch=data["e"])


def current_user(request: Request, settings: SettingsDep) -> ConsoleUser:
    """The signed-in, active user; NotSignedIn otherwise (the error map sends a browser
    to the sign-in page with 303). Read in a session of its own, so the route's session
    can open its write transaction itself (db.begin_write)."""
    console = read_session(request, settings)
    if console is None:
        raise NotSignedIn("please sign in")
    with db.session_scope(request.app.state.engine) as session:
        user = session.get(ConsoleUser, console.user_id)
        epoch = accounts.session_epoch(session, console.user_id)
    if user is None or not user.active or not hmac.compare_digest(epoch, console.epoch):
        raise NotSignedIn("please sign in")
    request.state.console_user = user
    request.state.console_session = console
    return user


CurrentUser = Annotated[ConsoleUser, Depends(current_user)]


def require_role(role: Role) -> Callable[[ConsoleUser], ConsoleUser]:
    """A dependency: the signed-in user when their role is ``role`` or stronger;
    PermissionDenied (403) otherwise."""

    def allowed(user: CurrentUser) -> ConsoleUser:
        if not user.can(role):
            raise PermissionDenied(f"this needs the {role.value} role; you are {user.role}")
        return user

    return allowed


EditorUser = Annotated[ConsoleUser, Depends(require_role(Role.editor))]
OwnerUser = Annotated[ConsoleUser, Depends(require_role(Role.owner))]


def same_token(sent: object, expected: str) -> bool:
    """Constant-time comparison of a posted token with the expected one."""
    if not isinstance(sent, str) or not sent or not expected:
        return False
    return hmac.compare_digest(sent.encode(), expected.encode())


FILE_FORM_SLACK = 64 * 1024  # a multipart body's fields and boundaries beside its file
# The largest console form as a browser posts it: a snippet's summary of 20,000 characters
# in a script other than Latin is 60,000 bytes of UTF-8, each byte "%XX" in the body.
FORM_BYTES = 256 * 1024


async def posted_token(request: Request) -> object:
    """The form's ``csrf_token`` field (urlencoded or multipart); None when there is none.
    Its size was checked before (web/console/limits.py)."""
    try:
        form = await request.form()
    except (MultiPartException, StarletteHTTPException):
        return None  # an unreadable body has no token: refused by the caller
    return form.get(CSRF_FIELD)


async def check_csrf(request: Request, user: CurrentUser) -> None:
    """PermissionDenied (403) unless the POST's ``csrf_token`` is this session's."""
    console: ConsoleSession = request.state.console_session
    if not same_token(await posted_token(request), console.csrf_token):
        raise PermissionDenied("the form's security token is missing or out of date; reload")


CsrfDep = Annotated[None, Depends(check_csrf)]


def login_csrf(request: Request, settings: Settings) -> str:
    """The sign-in form's token: the one in the request's login cookie, or a new one
    (``request.state.new_login_csrf`` then holds the cookie value to set)."""
    serializer = _serializer(settings, LOGIN_SALT)
    value = request.cookies.get(LOGIN_CSRF_COOKIE)
    if value:
        try:
            token = serializer.loads(value, max_age=LOGIN_CSRF_SECONDS)
            if isinstance(token, str):
                return token
        except (SignatureExpired, BadSignature):
            pass
    token = secrets.token_urlsafe(32)
    request.state.new_login_csrf = serializer.dumps(token)
    return token


def keep_login_csrf(request: Request, response: Response, settings: Settings) -> None:
    """Set the login CSRF cookie when :func:`login_csrf` made a new token."""
    value = getattr(request.state, "new_login_csrf", None)
    if value:
        response.set_cookie(
            LOGIN_CSRF_COOKIE,
            value,
            max_age=LOGIN_CSRF_SECONDS,
            path=PREFIX,
            secure=_secure(settings),
            httponly=True,
            samesite="lax",
        )


def templates_for(request: Request) -> Templates:
    templates = getattr(request.app.state, "console_templates", None)
    if templates is None:
        settings: Settings = request.app.state.settings
        templates = Templates(settings)
        # Times are stored in UTC and shown in the list's time zone (NEWSLETTER_TIMEZONE).
        templates.html_env.filters["local"] = lambda value: local_time(value, settings)
        request.app.state.console_templates = templates
    return templates


def local_time(value: datetime | str | None, settings: Settings) -> str:
    """A UTC instant (or its ISO 8601 text) as people read it: "2026-12-01 09:00 EST"."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return weekly_plan.format_local(value, settings) or "—"


def nav_for(request: Request, user: ConsoleUser | None) -> list[dict[str, Any]]:
    """The navigation this user may see, the current section marked."""
    if user is None:
        return []
    path = request.url.path.rstrip("/") or "/"
    items = []
    for item in NAV:
        if not user.can(item.role):
            continue
        href = item.href.rstrip("/")
        current = path == href if href == PREFIX else path.startswith(href)
        items.append({"label": item.label, "href": item.href, "current": current})
    return items


def render(
    request: Request,
    template: str,
    *,
    http_status: int = 200,
    http_headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A console page: ``template`` with ``user``, ``csrf_token``, ``nav``, ``brand`` and
    ``can_edit``/``is_owner`` added to ``context``; never cached. (``http_status`` and
    ``http_headers`` are named so that a template may have its own ``status``.)"""
    settings: Settings = request.app.state.settings
    user: ConsoleUser | None = getattr(request.state, "console_user", None)
    console: ConsoleSession | None = getattr(request.state, "console_session", None)
    values = {
        "user": user,
        "csrf_token": console.csrf_token if console else "",
        "nav": nav_for(request, user),
        "brand": brand_context(settings),
        "can_edit": bool(user and user.can(Role.editor)),
        "is_owner": bool(user and user.can(Role.owner)),
        "title": "",
        "refused": NOTHING,
        **context,
    }
    html = templates_for(request).render_page(template, values)
    return HTMLResponse(html, status_code=http_status, headers={**NO_STORE, **(http_headers or {})})
