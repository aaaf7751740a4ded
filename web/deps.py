"""What routes share, as ``Annotated`` dependencies (the full-stack-fastapi-template way).

A route names what it needs (``session: SessionDep``) and these functions say where it
comes from: the app's settings and engine (``app.state``, set by ``web.app.create_app``),
the request's database session, a mailer (or a queue that sends after the response), the
client's address, the pages, a verified link or API token, the database-kept rate
limits. Errors raised here go to the one error map (web/errors.py) like any other: a
dependency never builds a response.
"""

from __future__ import annotations

import hmac
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import BackgroundTasks, Depends, FastAPI, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.delivery.providers.base import Provider
from campaigns.delivery.providers.factory import make_provider
from newsletter import api_tokens, db
from newsletter.api_tokens import ApiTokenPublic
from newsletter.errors import ProviderError, TokenInvalid
from newsletter.mail import Mailer, OutgoingMessage
from newsletter.settings import Settings
from subscribers import forms
from subscribers.pages import Pages
from subscribers.ratelimit import RateLimiter
from subscribers.tokens import LinkClaim, Purpose
from web.clients import client_ip

log = logging.getLogger(__name__)


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]


def get_session(engine: EngineDep) -> Iterator[Session]:
    """One session per request: committed when the route returns, rolled back on error."""
    with db.session_scope(engine) as session:
        yield session


# scope="function": the session commits before the response is sent, so a client's next
# request always sees its own change (the default scope would commit after sending), and
# a commit that fails is answered as a failure, never as done.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


def get_mailer(settings: SettingsDep) -> Iterator[Mailer]:
    """The configured provider (outbox, SendGrid or SMTP), closed after the request."""
    with make_provider(settings) as mailer:
        yield mailer


MailerDep = Annotated[Mailer, Depends(get_mailer)]


class MailQueue:
    """A :class:`Mailer` that keeps each message to send after the response.

    Why: sending takes time (a provider's API, an SMTP dialogue) and only a new or pending
    address gets a confirmation, so a sign-up that sent in-request was answered slower for
    an unknown address than for a known one, telling which addresses are subscribed.
    """

    def __init__(self) -> None:
        self.messages: list[OutgoingMessage] = []

    def send_message(self, message: OutgoingMessage) -> str:
        """Queue ``message``; the id is ours, as the provider's is not known yet."""
        self.messages.append(message)
        return f"queued-{uuid.uuid4().hex}"


def send_queued(provider: Provider, queue: MailQueue, engine: Engine) -> None:
    """Send what a request queued, after its answer went out (a background task).

    A message the provider refuses is logged, and the sign-up it belonged to is undone
    (:func:`subscribers.forms.confirmation_not_sent`) so the reader can try again at once.
    """
    with provider:
        for message in queue.messages:
            try:
                provider.send_message(message)
            except ProviderError as err:
                log.warning("queued confirmation could not be sent: %s", err)
                with db.session_scope(engine) as session:
                    forms.confirmation_not_sent(session, email=message.to_email)


def get_mail_queue(
    settings: SettingsDep, engine: EngineDep, background: BackgroundTasks
) -> MailQueue:
    """A mailer that sends after the response; the provider is made now, so a setting it
    lacks still fails the request (ConfigError, 503) rather than the background task."""
    queue = MailQueue()
    background.add_task(send_queued, make_provider(settings), queue, engine)
    return queue


QueuedMailerDep = Annotated[Mailer, Depends(get_mail_queue)]


@dataclass(frozen=True)
class Client:
    """Who sent the request, as recorded with consent: IP address and User-Agent."""

    ip: str | None
    user_agent: str | None


def get_client(request: Request) -> Client:
    """The TCP peer, or the forwarded client when the peer is a trusted proxy
    (web/clients.py, ``NEWSLETTER_TRUSTED_PROXIES``)."""
    peer = request.client.host if request.client else None
    ip = client_ip(
        peer, request.headers.getlist("x-forwarded-for"), request.app.state.trusted_proxies
    )
    return Client(ip=ip, user_agent=request.headers.get("user-agent"))


ClientDep = Annotated[Client, Depends(get_client)]


def pages_for(app: FastAPI) -> Pages:
    """The app's page renderer, built on first use: it needs the secret key, which an
    app serving only the API or webhooks may not have."""
    pages = getattr(app.state, "pages", None)
    if pages is None:
        pages = app.state.pages = Pages(app.state.settings)
    return pages


def get_pages(request: Request) -> Pages:
    return pages_for(request.app)


PagesDep = Annotated[Pages, Depends(get_pages)]


def _checked(engine: Engine, pages: Pages, purpose: Purpose, token: str) -> LinkClaim:
    """The claim of a link made for the person who holds its id now (Tokens.check), read
    in a session of its own: the route's session opens its write transaction itself
    (db.begin_write), never after a read made here."""
    with Session(engine) as session:
        return pages.tokens.check(session, purpose, token)


def unsubscribe_claim(token: str, pages: PagesDep, engine: EngineDep) -> LinkClaim:
    """Whose unsubscribe link this is and the issue it came in; TokenError when it does
    not verify or names someone who is no longer that person."""
    return _checked(engine, pages, Purpose.UNSUBSCRIBE, token)


UnsubscribeClaimDep = Annotated[LinkClaim, Depends(unsubscribe_claim)]


def unsubscribe_link(claim: UnsubscribeClaimDep) -> int:
    """The subscriber id an unsubscribe link names (see unsubscribe_claim)."""
    return claim.subscriber_id


def preferences_link(token: str, pages: PagesDep, engine: EngineDep) -> int:
    """The subscriber id a preferences link names; TokenError when it does not verify
    or names someone who is no longer that person."""
    return _checked(engine, pages, Purpose.PREFERENCES, token).subscriber_id


UnsubscribeLinkDep = Annotated[int, Depends(unsubscribe_link)]
PreferencesLinkDep = Annotated[int, Depends(preferences_link)]


def signup_rate_limit(request: Request, client: ClientDep) -> None:
    """Count a sign-up post from the client's IP in the database (one count for every
    worker); RateLimited when over ``signup_limit_per_hour`` per
    ``signup_limit_window_seconds``."""
    limiter: RateLimiter = request.app.state.signup_limiter
    limiter.check(client.ip or "unknown", what="sign-ups from one network")


def my_data_rate_limit(request: Request, subscriber_id: PreferencesLinkDep) -> None:
    """Count a data download or deletion for the link's subscriber; RateLimited when over
    ``my_data_limit_per_hour``."""
    limiter: RateLimiter = request.app.state.my_data_limiter
    limiter.check(str(subscriber_id), what="requests for this person's data")


bearer = HTTPBearer(
    auto_error=False, description="A token from `newsletter api-tokens create NAME`."
)


def api_token(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
) -> ApiTokenPublic:
    """The API token of an ``Authorization: Bearer`` header (RFC 6750); TokenError when
    it is missing, wrong or revoked (the error map answers 401)."""
    if credentials is None:
        raise TokenInvalid("missing bearer token")
    token = api_tokens.verify(session, token=credentials.credentials)
    session.commit()  # last_used_at, even when the request then fails
    return token


ApiTokenDep = Annotated[ApiTokenPublic, Depends(api_token)]


def api_actor(token: ApiTokenDep) -> str:
    """Who an API change is logged as, in campaign logs and the audit log:
    ``api-token:<token name>``."""
    return f"api-token:{token.name}"


ActorDep = Annotated[str, Depends(api_actor)]


# --- /metrics (issue 17 point 2) ---
metrics_bearer = HTTPBearer(
    auto_error=False, scheme_name="MetricsBearer", description="NEWSLETTER_METRICS_TOKEN"
)


def metrics_access(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(metrics_bearer)],
) -> None:
    """With NEWSLETTER_METRICS_TOKEN set, a scrape must bring it as a bearer token (RFC
    6750); TokenInvalid otherwise (401). Compared in constant time."""
    expected = settings.metrics_token
    if not expected:
        return
    given = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise TokenInvalid("missing or wrong metrics token")


MetricsAccessDep = Annotated[None, Depends(metrics_access)]
