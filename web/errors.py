"""The one map from errors to HTTP statuses, and the one place that registers handlers.

Routes and dependencies raise; nothing else in the door turns an error into a status.
The status depends on the error's class (its most specific class in :data:`STATUSES`)
and on who asked, told apart by the path:

- ``api``: programs under ``/api/``, ``/healthz``, ``/readyz`` and the sign-up form's challenge
  (``/subscribe/challenge``, fetched by a script), answered ``{"detail": "<message>"}``;
- ``page``: people on the subscriber pages, answered with a page from
  :meth:`subscribers.pages.Pages.error`;
- ``webhook``: the email provider under ``/webhooks/``, answered like the API;
- ``console``: marketers under ``/admin/`` (issue 14), answered with a console page; a
  request without a session (NotSignedIn) is sent to the sign-in page with 303.

A server or database fault answers 503 (RFC 9110 15.6.4: try again later) with a short
body naming no host, URL or SQL; the log gets the reason. A broken constraint or bad
data (IntegrityError, DataError) is a bug that retrying will not fix: it keeps its
traceback (in the log) and answers 500.
"""

from __future__ import annotations

import logging
import re
from enum import StrEnum
from typing import NamedTuple
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from newsletter import job_runs
from newsletter.errors import (
    AccessError,
    ConfigError,
    ContentError,
    DatabaseError,
    InvalidInput,
    LinkNotFound,
    LoginFailed,
    NewsletterError,
    NotFound,
    NotSignedIn,
    PageNotFound,
    PayloadTooLarge,
    ProviderError,
    RateLimited,
    StateError,
    TokenError,
)
from subscribers.pages import CHALLENGE_URL
from subscribers.tokens import Purpose
from web.console.deps import LOGIN_PATH
from web.console.deps import PREFIX as CONSOLE_PREFIX
from web.console.deps import render as console_page
from web.console.refusals import Refused
from web.console.validation_lines import console_lines
from web.deps import pages_for
from web.health import PATH as HEALTH_PATH
from web.health import READY_PATH
from web.metrics import PATH as METRICS_PATH
from web.responses import page

log = logging.getLogger(__name__)

DATABASE_DOWN = "the database is unavailable; please try again later"
SERVICE_DOWN = "the service is unavailable; please try again later"


class Surface(StrEnum):
    API = "api"
    PAGE = "page"
    WEBHOOK = "webhook"
    CONSOLE = "console"


class Statuses(NamedTuple):
    """One error's status for each kind of caller."""

    api: int
    page: int
    webhook: int
    console: int


def _same(status: int) -> Statuses:
    return Statuses(status, status, status, status)


# The most specific class wins (method resolution order); None: a bug, answered 500.
STATUSES: dict[type[Exception], Statuses | None] = {
    # The bearer token (RFC 6750 3.1), a signed link, the webhook's signature.
    TokenError: Statuses(api=401, page=400, webhook=403, console=400),
    # The console (issue 14): no session sends a browser to sign in (RFC 9110 15.4.4).
    NotSignedIn: Statuses(api=401, page=401, webhook=401, console=303),
    LoginFailed: _same(401),
    AccessError: _same(403),
    # A page's ids come from signed links: a record gone means a dead link.
    NotFound: Statuses(api=404, page=400, webhook=404, console=404),
    LinkNotFound: _same(404),  # /r/...: not a link of ours; no redirect
    PageNotFound: _same(404),  # a public page (the archive), not a signed link
    StateError: _same(409),
    PayloadTooLarge: _same(413),
    # 422 where a JSON body parsed but says something impossible (as FastAPI's own
    # validation answers); 400 for a form or an event batch that cannot be read.
    InvalidInput: Statuses(api=422, page=400, webhook=400, console=400),
    RateLimited: _same(429),
    ProviderError: _same(503),
    ConfigError: _same(503),
    DatabaseError: _same(503),
    NewsletterError: _same(400),
    # Below our error tree: what SQLAlchemy raises when the database fails.
    IntegrityError: None,
    DataError: None,
    DBAPIError: _same(503),  # connection lost or refused, a missing table, a crashed server
    PoolTimeout: _same(503),  # no pooled connection came free in time
}

_HIDDEN = (DatabaseError, ConfigError, ProviderError, SQLAlchemyError)
# A page's path starts with the purpose of its link: /confirm/<token>, /unsubscribe/...
_PURPOSES = {purpose.value: purpose for purpose in Purpose}


def surface_of(request: Request) -> Surface:
    path = request.url.path
    if path.startswith("/api/") or path in (HEALTH_PATH, READY_PATH, CHALLENGE_URL, METRICS_PATH):
        return Surface.API
    if path.startswith("/webhooks/"):
        return Surface.WEBHOOK
    if path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/"):
        return Surface.CONSOLE
    return Surface.PAGE


def status_for(err: Exception, surface: Surface) -> int | None:
    """The status for ``err`` from :data:`STATUSES`; None when it is a bug (500)."""
    for kind in type(err).__mro__:
        if kind in STATUSES:
            statuses = STATUSES[kind]
            return None if statuses is None else getattr(statuses, surface.value)
    return None


def _headers(err: Exception, status: int) -> dict[str, str]:
    if isinstance(err, RateLimited):
        return {"Retry-After": str(max(1, int(err.retry_after)))}
    if status == 401:
        return {"WWW-Authenticate": "Bearer"}  # RFC 6750 3
    return {}


def _reason(err: Exception) -> str:
    """For the log: the driver's first line, never the SQL or its parameters."""
    if isinstance(err, DBAPIError) and err.orig is not None:
        lines = str(err.orig).strip().splitlines()
        return f"{type(err).__name__}: {lines[0] if lines else type(err.orig).__name__}"
    return f"{type(err).__name__}: {err}"


def _json(request: Request, err: Exception, status: int) -> Response:
    headers = _headers(err, status)
    if isinstance(err, _HIDDEN) and request.url.path == HEALTH_PATH:
        down = job_runs.SchedulerStatus(
            database_ok=False, active_instance=None, lease_expires_at=None, jobs=[]
        )
        return JSONResponse(down.model_dump(mode="json"), status, headers)
    if isinstance(err, (DatabaseError, SQLAlchemyError)):
        detail = DATABASE_DOWN
    elif isinstance(err, _HIDDEN):
        detail = SERVICE_DOWN
    else:
        detail = str(err)
    return JSONResponse({"detail": detail}, status, headers)


def _page(request: Request, err: Exception, status: int) -> Response:
    shown = err if isinstance(err, NewsletterError) else DatabaseError(DATABASE_DOWN)
    purpose = _PURPOSES.get(request.url.path.strip("/").split("/", 1)[0])
    try:
        pages = pages_for(request.app)
    except ConfigError:  # no secret key: no page can be rendered
        return PlainTextResponse(SERVICE_DOWN, 503)
    return page(pages.error(shown, purpose=purpose), status, _headers(err, status))


# What a marketer can do about a refused field (the room's reason says what is wrong).
CONSOLE_FIELD_ADVICE = {
    "to": "Type addresses such as you@example.com or Editor <ed@example.com>, separated by commas.",
    "at": "Pick a date and time in the future, then schedule again.",
}
# An operator's setting named in a room's message, said as a marketer can act on it.
_FILL_SETTING = re.compile(r",? or set NEWSLETTER_FILL_WITH_RESENT=true to reuse older ones\.?")
FILL_ADVICE = (
    ". To fill the issue with snippets sent before, ask whoever runs the newsletter to "
    "allow reusing older snippets."
)
# A campaign's state change refused (campaigns.workflow): what a marketer can do instead.
_TRANSITION = re.compile(r"cannot go from (\w+) to \w+")
TRANSITION_ADVICE = {
    "sent": "It has been sent: duplicate it to send the issue again.",
    "cancelled": "It was cancelled: duplicate it to send the issue again.",
    "failed": "Its page says why it failed; duplicate it to try again.",
}
NO_SUCH_PAGE = "There is no such page in the console. Check the address, or start again below."
NOT_A_PAGE = "This address is a button's, not a page. Go back and use the button on the page."


def _sentence(text: str) -> str:
    """``text`` as a sentence: a capital when it starts with a plain word ("longer than"),
    never on a name it starts with ("big.md: over 1,000,000 bytes"), and a full stop."""
    text = text.strip()
    if text.split(" ", 1)[0].rstrip(",:;").isalpha():
        text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def console_message(err: Exception) -> str:
    """The console's line for ``err``: the room's reason without the API's field prefix,
    with what to do, and no setting's name; the API keeps the message as it is."""
    return without_settings(_console_line(err))


# A service setting named in a room's message (for ops, in the CLI and the API's answer).
_SETTING = re.compile(r"\bNEWSLETTER_[A-Z0-9_]+")


def without_settings(text: str) -> str:
    """``text`` for a marketer: a setting's name said as who can change it."""
    return _SETTING.sub("a setting only whoever runs the newsletter can change", text)


def _console_line(err: Exception) -> str:
    if isinstance(err, (DatabaseError, SQLAlchemyError)):
        return _sentence(DATABASE_DOWN)
    if isinstance(err, _HIDDEN):
        return _sentence(SERVICE_DOWN)
    if isinstance(err, InvalidInput):  # the field's advice, unless the room gave its own
        advice = "" if err.advised else CONSOLE_FIELD_ADVICE.get(err.field or "", "")
        return " ".join(p for p in (_sentence(err.reason), advice) if p)
    if isinstance(err, StateError) and (moved := _TRANSITION.search(str(err))):
        return " ".join(p for p in (_sentence(str(err)), TRANSITION_ADVICE.get(moved[1], "")) if p)
    if isinstance(err, ContentError):
        return _sentence(_FILL_SETTING.sub(FILL_ADVICE, str(err)))
    return _sentence(str(err))


def refused_form(session: Session, form: str, err: InvalidInput, values: dict[str, str]) -> Refused:
    """``err`` for a console form drawn again with what was typed (web.console.refusals):
    the request's session rolled back first, as the error map's page would have it."""
    session.rollback()
    return Refused(form, console_message(err), err.field or "", values)


def back_path(request: Request) -> str:
    """The console page the marketer came from: the Referer's path (same origin only,
    never an open redirect) when the browser sent one, else the page above the one
    refused (``/admin/campaigns/3/schedule`` -> ``/admin/campaigns/3``; our pages send
    ``Referrer-Policy: no-referrer``), else the dashboard."""
    referer = request.headers.get("referer", "")
    try:
        parts = urlsplit(referer)
    except ValueError:
        parts = urlsplit("")
    same_origin = (parts.scheme, parts.netloc) == (request.url.scheme, request.url.netloc)
    if referer and same_origin and _console_path(parts.path):
        return parts.path + (f"?{parts.query}" if parts.query else "")
    parent = request.url.path.rstrip("/").rpartition("/")[0]
    while _console_path(parent + "/") and parent != CONSOLE_PREFIX:
        if _is_page(request, parent):  # not the address of a button (a POST-only route)
            return parent
        parent = parent.rpartition("/")[0]
    return f"{CONSOLE_PREFIX}/"


def _is_page(request: Request, path: str) -> bool:
    """Whether a GET of ``path`` reaches a route of the app (Starlette's own matching)."""
    scope = {"type": "http", "path": path, "method": "GET"}
    return any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes)


def _console_path(path: str) -> bool:
    """A console page's path we may link to: under /admin/, not sign-in, no tricks."""
    return (
        path.startswith(CONSOLE_PREFIX + "/")
        and not path.startswith(LOGIN_PATH)
        and "//" not in path
        and "\\" not in path
    )


def _console(request: Request, err: Exception, status: int) -> Response:
    """A console page saying what went wrong and what to do, with a link back to the page
    the marketer came from; to the sign-in page when not signed in (a relative Location:
    never built from the Host header)."""
    if status == 303:
        return RedirectResponse(LOGIN_PATH, status_code=303, headers={"Cache-Control": "no-store"})
    message = console_message(err)
    back = back_path(request)
    try:
        return console_page(
            request,
            "console/error.html.j2",
            http_status=status,
            http_headers=_headers(err, status) if status != 401 else None,
            title="Something went wrong" if status >= 500 else "Not done",
            message=message,
            status_code=status,
            back=back,
            back_label="Back to the dashboard" if back == f"{CONSOLE_PREFIX}/" else "Go back",
        )
    except NewsletterError:  # a template or setting fault: no page can be rendered
        return PlainTextResponse(message, status)


def answer(request: Request, err: Exception) -> Response:
    """The answer to ``err`` for this request's caller (an exception handler)."""
    surface = surface_of(request)
    status = status_for(err, surface)
    if status is None:
        raise err  # a bug: Starlette answers 500 and the server logs the traceback
    if status >= 500:
        log.warning("%s %s answered %d: %s", request.method, request.url.path, status, _reason(err))
    if surface is Surface.PAGE:
        return _page(request, err, status)
    if surface is Surface.CONSOLE:
        return _console(request, err, status)
    return _json(request, err, status)


def _where(loc: tuple[int | str, ...]) -> str:
    """FastAPI's error location as our messages name it: ``field 'subject'``,
    ``path 'campaign_id'``, ``query 'limit'``."""
    kind, *names = [str(part) for part in loc] or ["request"]
    name = ".".join(names)
    if kind == "body":
        return f"field {name!r}" if name else "the body"
    return f"{kind} {name!r}" if name else kind


async def invalid_request(request: Request, err: Exception) -> Response:
    """A request FastAPI could not validate: InvalidInput like any other, so the body has
    the API's one shape, ``{"detail": "<message>"}`` (documented as ErrorBody)."""
    assert isinstance(err, RequestValidationError)
    if surface_of(request) is Surface.CONSOLE and any(
        e["loc"][:1] == ("path",) for e in err.errors()
    ):
        return answer(request, NotFound(NO_SUCH_PAGE))  # /admin/campaigns/abc: no such page
    if surface_of(request) is Surface.CONSOLE:  # the labels and what to type (the module)
        return answer(request, InvalidInput(console_lines(err.errors())))
    problems = "; ".join(f"{_where(tuple(e['loc']))}: {e['msg']}" for e in err.errors()[:5])
    return answer(request, InvalidInput(problems or "the request is malformed"))


_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


def allowed_methods(request: Request, err: StarletteHTTPException) -> list[str]:
    """Every method the path takes: the refusing route names its own (``Allow``), and the
    OpenAPI document those of the other routes at the same path."""
    allow = (err.headers or {}).get("Allow", "")
    methods = {m.strip().upper() for m in allow.split(",") if m.strip()}
    for template, operations in request.app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            methods |= {m.upper() for m in operations if m in _METHODS}
    return sorted(methods)


async def http_error(request: Request, err: Exception) -> Response:
    """Starlette's own refusals (no such path, method not allowed) in the API's shape;
    a 405 names every method the path takes in ``Allow`` (RFC 9110 15.5.6)."""
    assert isinstance(err, StarletteHTTPException)
    console = surface_of(request) is Surface.CONSOLE
    if err.status_code == 404 and console:
        return _console(request, NotFound(NO_SUCH_PAGE), 404)
    headers = dict(err.headers or {})
    if err.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request, err))
        if console:  # a GET of a form's action: a page, not the API's JSON
            response = _console(request, StateError(NOT_A_PAGE), 405)
            response.headers["Allow"] = headers["Allow"]
            return response
    return JSONResponse({"detail": str(err.detail)}, err.status_code, headers)


def register(app: FastAPI) -> None:
    """Send every error class of :data:`STATUSES` to :func:`answer`, and FastAPI's and
    Starlette's own refusals to theirs."""
    for kind in STATUSES:
        app.add_exception_handler(kind, answer)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(StarletteHTTPException, http_error)
