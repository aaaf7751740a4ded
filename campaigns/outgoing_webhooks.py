"""Outgoing webhooks (issue 16 point 4): endpoints, each endpoint's delivery log, and
delivering what is due.

Events are queued where they happen (newsletter.webhook_outbox.emit, in the transaction
of the change) and delivered later by campaigns/webhook_delivery.py, which writes the
log read here. What the doors call: add, list, enable, remove, log (``newsletter webhooks``,
``/api/webhooks``), and :func:`deliver` for ``webhooks deliver``.

Endpoint URLs are https (an http one only for 127.0.0.1 or localhost, when
``webhook_allow_local`` is on); deliveries go through newsletter/net.py's address policy,
so a URL that resolves to a private address is refused at delivery time too.
"""

from __future__ import annotations

import base64
import ipaddress
import secrets
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from campaigns.webhook_delivery import BATCH, LOCAL_HOSTS, DeliveryReport, deliver_due
from newsletter import audit, db
from newsletter.errors import InvalidInput, NotFound, StateError
from newsletter.headers import check_url_text
from newsletter.net import address_refusal
from newsletter.settings import Settings
from newsletter.webhook_outbox import WebhookAttempt, WebhookEndpoint, WebhookEvent, WebhookMessage

EVENTS = tuple(e.value for e in WebhookEvent)
EventName = WebhookEvent  # what the API's schema lists as the allowed event names


class EndpointView(BaseModel):
    id: int
    url: str
    events: list[str]  # [] = every event
    created_at: datetime
    disabled_at: datetime | None
    disabled_reason: str | None
    failing_since: datetime | None


class AttemptView(BaseModel):
    id: int
    message_id: int
    msg_id: str
    event_type: str
    at: datetime
    status_code: int | None
    outcome: str  # delivered, retrying, failed, disabled
    error: str
    duration_ms: int


# ---------------------------------------------------------------- endpoints


def new_secret() -> str:
    """A signing secret in the specification's form: ``whsec_`` and base64 of 24 random
    bytes (192 bits; the specification asks for 24 to 64)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def check_url(settings: Settings, url: str) -> str:
    """``url`` in one spelling (:func:`_one_spelling`), or InvalidInput: https with a host,
    http only for a local host when NEWSLETTER_WEBHOOK_ALLOW_LOCAL is on; no user:password
    (it would be logged)."""
    url = check_url_text(url.strip())
    parts = urlsplit(url)
    try:
        host = parts.hostname
        parts.port  # noqa: B018  (a malformed port raises here)
    except ValueError:
        raise InvalidInput("not a valid URL (its port)", field="url") from None
    if len(url) > 2000 or not host or parts.scheme.lower() not in ("http", "https"):
        raise InvalidInput("give an https:// URL with a host, at most 2000 characters", field="url")
    if parts.username or parts.password:
        raise InvalidInput("put no user name or password in the URL", field="url")
    local = host.lower().rstrip(".") in LOCAL_HOSTS
    if parts.scheme.lower() == "http" and not (local and settings.webhook_allow_local):
        raise InvalidInput(
            "must be https:// (http:// only for 127.0.0.1 or localhost, with "
            "NEWSLETTER_WEBHOOK_ALLOW_LOCAL)",
            field="url",
        )
    _refuse_unreachable(host, allow_local=local and settings.webhook_allow_local)
    return _one_spelling(url)


def _refuse_unreachable(host: str, *, allow_local: bool) -> None:
    """What delivery would refuse (newsletter.net's address policy), refused at once: a
    marketer's review added https://127.0.0.1:9/in and saw only failures later. A name
    is checked when delivered (it resolves then); an address and 'localhost' here."""
    if allow_local:
        return
    if host.lower().rstrip(".") == "localhost":
        refusal: str | None = "this machine"
    else:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return
        refusal = address_refusal(address, allow_private=False, allow_link_local=False)
    if refusal is not None:
        raise InvalidInput(
            f"{host} is {refusal}: webhooks go to public addresses; a receiver on 127.0.0.1 "
            "or localhost needs NEWSLETTER_WEBHOOK_ALLOW_LOCAL",
            field="url",
        )


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _one_spelling(url: str) -> str:
    """The URL as one endpoint is written whatever its spelling (RFC 3986 6.2.2-6.2.3):
    scheme and host in lower case, no port that is the scheme's own, "/" for no path, no
    fragment (never sent), no final dot on the host name (the same host). Path and query
    are the receiver's and stay as given."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), (parts.hostname or "").rstrip(".")  # FQDN's dot
    host = f"[{host}]" if ":" in host else host  # an IPv6 address keeps its brackets
    port = parts.port
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def check_events(events: list[str]) -> list[str]:
    """The event names, each once, in the order given; InvalidInput names an unknown one."""
    chosen: list[str] = []
    for name in (e.strip() for e in events):
        if name not in EVENTS:
            raise InvalidInput(
                f"unknown event {name!r}; one of: {', '.join(EVENTS)}", field="events"
            )
        if name not in chosen:
            chosen.append(name)
    return chosen


def _view(endpoint: WebhookEndpoint) -> EndpointView:
    assert endpoint.id is not None
    return EndpointView(
        id=endpoint.id,
        url=endpoint.url,
        events=list(endpoint.events or []),
        created_at=endpoint.created_at,
        disabled_at=endpoint.disabled_at,
        disabled_reason=endpoint.disabled_reason,
        failing_since=endpoint.failing_since,
    )


def _audited(session: Session, actor: str, action: str, view: EndpointView) -> None:
    """Issue 14's rule: every change from the console or the API is in the audit log
    (the URL and events, never the secret)."""
    after = {"url": view.url, "events": view.events, "disabled_at": view.disabled_at}
    audit.record(session, actor, f"webhook.{action}", "webhook_endpoint", view.id, after=after)


def add_endpoint(
    session: Session, *, settings: Settings, url: str, events: list[str], actor: str
) -> tuple[EndpointView, str]:
    """A new endpoint for ``events`` (empty: all); returns it and its signing secret.
    ``actor`` is who the audit log names.

    Raises InvalidInput for a URL :func:`check_url` refuses, one that is already an
    endpoint (a form sent twice made two, with two secrets), or an unknown event name.
    """
    url, chosen = check_url(settings, url), check_events(events)
    _one_add_at_a_time(session)
    rows = session.exec(select(WebhookEndpoint.id, WebhookEndpoint.url)).all()
    # Compared in one spelling: an endpoint stored before URLs were kept in one (adds are
    # rare and endpoints few, so all of them are read).
    same = next((id_ for id_, other in rows if _one_spelling(other) == url), None)
    if same is not None:
        raise InvalidInput(f"{url} is already endpoint {same}", field="url")
    endpoint = WebhookEndpoint(url=url, events=chosen, secret=new_secret())
    session.add(endpoint)
    session.flush()
    view = _view(endpoint)
    _audited(session, actor, "add", view)
    return view, endpoint.secret


def _one_add_at_a_time(session: Session) -> None:
    """Two adds at once (a double click) must not both find the URL new: SQLite's write
    lock first; on PostgreSQL a table lock that conflicts with itself (adds are rare)."""
    db.begin_write(session)
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("LOCK TABLE webhook_endpoint IN SHARE ROW EXCLUSIVE MODE"))


def _endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise NotFound(f"no webhook endpoint with id {endpoint_id}")
    return endpoint


def list_endpoints(session: Session) -> list[EndpointView]:
    rows = session.exec(select(WebhookEndpoint).order_by(col(WebhookEndpoint.id))).all()
    return [_view(e) for e in rows]


def remove_endpoint(session: Session, *, endpoint_id: int, actor: str) -> EndpointView:
    """Delete the endpoint, its undelivered messages and its log; NotFound if none."""
    endpoint = _endpoint(session, endpoint_id)
    view = _view(endpoint)
    for table in (WebhookAttempt, WebhookMessage):
        session.execute(sa.delete(table).where(col(table.endpoint_id) == endpoint_id))
    session.delete(endpoint)
    session.flush()
    _audited(session, actor, "remove", view)
    return view


def enable_endpoint(session: Session, *, endpoint_id: int, actor: str) -> EndpointView:
    """Enable a disabled endpoint again (its receiver is fixed): the messages it missed
    while disabled are tried at the next delivery. NotFound, or StateError if enabled."""
    endpoint = _endpoint(session, endpoint_id)
    if endpoint.disabled_at is None:
        raise StateError(f"webhook endpoint {endpoint_id} is not disabled")
    endpoint.disabled_at = endpoint.disabled_reason = endpoint.failing_since = None
    session.add(endpoint)
    session.flush()
    view = _view(endpoint)
    _audited(session, actor, "enable", view)
    return view


def delivery_log(session: Session, *, endpoint_id: int, limit: int = 100) -> list[AttemptView]:
    """The endpoint's latest attempts, newest first; NotFound for an unknown endpoint."""
    _endpoint(session, endpoint_id)
    rows = session.exec(
        select(WebhookAttempt, WebhookMessage.msg_id, WebhookMessage.event_type)
        .join(WebhookMessage, col(WebhookMessage.id) == col(WebhookAttempt.message_id))
        .where(WebhookAttempt.endpoint_id == endpoint_id)
        .order_by(col(WebhookAttempt.at).desc(), col(WebhookAttempt.id).desc())
        .limit(max(1, min(limit, 1000)))
    ).all()
    return [
        AttemptView(
            id=a.id or 0,
            message_id=a.message_id,
            msg_id=msg_id,
            event_type=event_type,
            at=a.at,
            status_code=a.status_code,
            outcome=a.outcome,
            error=a.error,
            duration_ms=a.duration_ms,
        )
        for a, msg_id, event_type in rows
    ]


def deliver(engine: Engine, *, settings: Settings, now: datetime | None = None) -> DeliveryReport:
    """Deliver what is due until nothing due is left (a round at most BATCH each);
    stops after a round that delivered nothing, so a dead receiver does not spin."""
    total = DeliveryReport()
    while True:
        report = deliver_due(engine, settings=settings, now=now)
        total.delivered += report.delivered
        total.retrying += report.retrying
        total.failed += report.failed
        total.disabled += report.disabled
        if report.tried < BATCH:
            return total
