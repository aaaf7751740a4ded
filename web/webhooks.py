"""``POST /webhooks/sendgrid``: SendGrid's signed event batches (delivered, bounce, open...).

The signature (ECDSA over timestamp + raw body) is checked before the batch is parsed;
without a public key events cannot be trusted, so production refuses to start unless
unsigned webhooks are allowed explicitly. A forged or stale batch answers 403, one that
is not a JSON array 400, one over ``webhook_max_bytes`` 413 (web/errors.py); SendGrid
retries anything but a 2xx for up to 72 hours.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from campaigns.delivery.providers import sendgrid_events
from campaigns.tracking import effects as tracking
from campaigns.tracking.events import NormalisedEvent
from newsletter.errors import ConfigError
from newsletter.settings import Settings
from web.bodies import read_body
from web.deps import SessionDep, SettingsDep

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


def verifier_for(settings: Settings) -> sendgrid_events.SignatureVerifier | None:
    """The signature check of this configuration; None when unsigned events are taken.

    Raises ConfigError in production without a public key unless
    ``NEWSLETTER_ALLOW_UNSIGNED_WEBHOOKS`` says so.
    """
    if settings.sendgrid_webhook_public_key:
        return sendgrid_events.SignatureVerifier(
            settings.sendgrid_webhook_public_key,
            tolerance_seconds=settings.sendgrid_webhook_tolerance_seconds,
        )
    if settings.environment == "production" and not settings.allow_unsigned_webhooks:
        raise ConfigError(
            "NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY is not set: in production the SendGrid "
            "event webhook must be signed (or set NEWSLETTER_ALLOW_UNSIGNED_WEBHOOKS=true "
            "to accept unsigned events knowingly)"
        )
    return None


async def batch_body(request: Request, settings: SettingsDep) -> bytes:
    """The raw body, which the signature covers; PayloadTooLarge past the limit."""
    return await read_body(request, limit=settings.webhook_max_bytes, what="event batch")


def signed_events(
    request: Request, body: Annotated[bytes, Depends(batch_body)]
) -> list[NormalisedEvent]:
    """The batch's events once its signature checks out: TokenError when it is missing,
    wrong or stale, InvalidInput when the body is not a JSON array."""
    verifier = request.app.state.webhook_verifier
    if verifier is not None:
        verifier.check(
            payload=body,
            signature=request.headers.get(sendgrid_events.SIGNATURE_HEADER),
            timestamp=request.headers.get(sendgrid_events.TIMESTAMP_HEADER),
        )
    return sendgrid_events.parse_batch(body)


@router.post("/sendgrid")
def sendgrid_batch(
    events: Annotated[list[NormalisedEvent], Depends(signed_events)],
    session: SessionDep,
    settings: SettingsDep,
) -> dict[str, int]:
    """Apply the batch; counts of received, applied, duplicate, unmatched... events."""
    return tracking.apply_events(session, settings=settings, events=events).to_dict()
