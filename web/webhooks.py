"""``POST /webhooks/sendgrid``: SendGrid's signed event batches (delivered, bounce, open...).

The route exists only when SendGrid sends our mail (``NEWSLETTER_PROVIDER=sendgrid``):
an SMTP or outbox deployment has no SendGrid events to take, needs no SendGrid key and
answers 404 there. Events can bounce, unsubscribe and suppress real people, so the
webhook trusts nobody by default: the signature (ECDSA over timestamp + raw body, SendGrid's
Signed Event Webhook) is checked before the batch is parsed, and without a public key
every batch is refused (403), whatever the environment, unless
``NEWSLETTER_ALLOW_UNSIGNED_WEBHOOKS=true`` says to take unsigned events; the app then
logs a loud warning at start. Production without a key refuses to start unless that
switch is on.

A forged or stale batch answers 403, one that is not a JSON array 400, one over
``webhook_max_bytes`` or ``webhook_max_events`` 413 (web/errors.py); SendGrid retries
anything but a 2xx for up to 72 hours.
"""

from __future__ import annotations

import logging
from typing import Annotated, Protocol

from fastapi import APIRouter, Depends, FastAPI, Request

from campaigns.delivery.gc_passes import fewer_gc_passes
from campaigns.delivery.providers import sendgrid_events
from campaigns.tracking import effects as tracking
from newsletter.errors import ConfigError, TokenInvalid
from newsletter.settings import Settings
from web.bodies import read_body
from web.deps import SessionDep, SettingsDep

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks", tags=["webhooks"])

NO_KEY = (
    "webhook events cannot be verified: NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY is not set "
    "(NEWSLETTER_ALLOW_UNSIGNED_WEBHOOKS=true takes unsigned events, for development only)"
)
UNSIGNED_WARNING = (
    "NEWSLETTER_ALLOW_UNSIGNED_WEBHOOKS=true: POST /webhooks/sendgrid takes UNSIGNED "
    "events, so anyone who can reach it can bounce, unsubscribe or suppress any subscriber. "
    "For development only: set NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY and turn the switch off."
)
IGNORED_WARNING = (
    "NEWSLETTER_ALLOW_UNSIGNED_WEBHOOKS=true is ignored: NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY "
    "is set, so every event batch must be signed; turn the switch off."
)


class Verifier(Protocol):
    def check(self, *, payload: bytes, signature: str | None, timestamp: str | None) -> None:
        """Return when the batch may be applied; raise TokenError (403) otherwise."""


class RefuseAll:
    """No public key and no permission to take unsigned events: nothing is trusted."""

    def check(self, *, payload: bytes, signature: str | None, timestamp: str | None) -> None:
        raise TokenInvalid(NO_KEY)


def verifier_for(settings: Settings) -> Verifier | None:
    """The signature check of this configuration; None when unsigned events are taken.

    Raises ConfigError in production without a public key unless
    ``NEWSLETTER_ALLOW_UNSIGNED_WEBHOOKS`` says so; warns (log, WARNING) whenever that
    switch is on.
    """
    if settings.sendgrid_webhook_public_key:
        if settings.allow_unsigned_webhooks:
            log.warning(IGNORED_WARNING)
        return sendgrid_events.SignatureVerifier(
            settings.sendgrid_webhook_public_key,
            tolerance_seconds=settings.sendgrid_webhook_tolerance_seconds,
        )
    if settings.allow_unsigned_webhooks:
        log.warning(UNSIGNED_WARNING)
        return None
    if settings.environment == "production":
        raise ConfigError(
            "NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY is not set: in production the SendGrid "
            "event webhook must be signed (or set NEWSLETTER_ALLOW_UNSIGNED_WEBHOOKS=true "
            "to accept unsigned events knowingly)"
        )
    return RefuseAll()


def mount(app: FastAPI, settings: Settings) -> None:
    """Add the SendGrid event webhook to ``app`` when SendGrid sends our mail.

    Raises ConfigError as :func:`verifier_for` does.
    """
    if settings.provider != "sendgrid":
        return
    app.state.webhook_verifier = verifier_for(settings)
    app.include_router(router)


async def batch_body(request: Request, settings: SettingsDep) -> bytes:
    """The raw body, which the signature covers; PayloadTooLarge past the limit."""
    return await read_body(request, limit=settings.webhook_max_bytes, what="event batch")


def signed_body(request: Request, body: Annotated[bytes, Depends(batch_body)]) -> bytes:
    """The raw body once its signature checks out: TokenError (403) when it is missing,
    wrong or stale."""
    verifier: Verifier | None = request.app.state.webhook_verifier
    if verifier is not None:
        verifier.check(
            payload=body,
            signature=request.headers.get(sendgrid_events.SIGNATURE_HEADER),
            timestamp=request.headers.get(sendgrid_events.TIMESTAMP_HEADER),
        )
    return body


@router.post("/sendgrid")
def sendgrid_batch(
    body: Annotated[bytes, Depends(signed_body)],
    session: SessionDep,
    settings: SettingsDep,
) -> dict[str, int]:
    """Apply the batch; counts of received, applied, duplicate, unmatched... events.

    InvalidInput (400) when the body is not a JSON array, PayloadTooLarge (413) when it
    holds more than ``webhook_max_events``. A batch of 100,000 events allocates millions
    of small objects: the cyclic collector runs rarely meanwhile (``fewer_gc_passes``).
    """
    with fewer_gc_passes():
        events = sendgrid_events.parse_batch(body, max_events=settings.webhook_max_events)
        return tracking.apply_events(session, settings=settings, events=events).to_dict()
