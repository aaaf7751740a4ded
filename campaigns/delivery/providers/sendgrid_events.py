"""SendGrid's Event Webhook: check the signature and the timestamp's age, parse a batch.

Everything SendGrid-shaped about tracking is here: the signature check, the mapping
table from SendGrid's event names to our vocabulary (``campaigns.tracking.events``), the
field names of an event (our custom args are ``sendgrid.ARG_*``) and which of them name a
person (``PERSONAL_FIELDS``, scrubbed on erasure).

The signature is ECDSA P-256 over ``timestamp + raw body``, checked by the ``sendgrid``
library's :class:`EventWebhook`. The library does not look at the timestamp's age, so a
captured batch could be replayed forever; we refuse timestamps outside a tolerance.

Parsing never fails on a single event: a malformed or unknown one is normalised to
``UNKNOWN`` and logged, because SendGrid retries a rejected batch for up to 72 hours and
one bad event must not hold back the others. Only a body that is not a JSON array is
refused (400), and one with more events than a request may carry (413).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from sendgrid.helpers.eventwebhook import EventWebhook, EventWebhookHeader

from campaigns.delivery.providers.sendgrid import ARG_CAMPAIGN, ARG_DELIVERY, ARG_SUBSCRIBER
from campaigns.tracking.events import EventKind, NormalisedEvent, RejectReason
from newsletter.clock import utcnow
from newsletter.errors import (
    ConfigError,
    InvalidInput,
    PayloadTooLarge,
    TokenExpired,
    TokenInvalid,
)

log = logging.getLogger(__name__)

PROVIDER = "sendgrid"
SIGNATURE_HEADER = EventWebhookHeader.SIGNATURE
TIMESTAMP_HEADER = EventWebhookHeader.TIMESTAMP
RAW_EVENT_MAX = 50  # TrackingEvent.raw_event's length
# Fields of a SendGrid event that identify a person (its Event Webhook reference).
PERSONAL_FIELDS = ("email", "ip", "useragent")

K, R = EventKind, RejectReason

# The mapping table. SendGrid's event name -> our kind, as django-anymail's SendGrid
# tracking webhook maps it (anymail/webhooks/sendgrid.py).
# Soft bounces are ``bounced`` with a flag, not ``deferred``: anymail maps both kinds of
# SendGrid bounce to BOUNCED (SendGrid's own ``deferred`` is a delay it keeps retrying).
# The bounce's ``type`` becomes the reject reason (``BOUNCE_TYPES``): "blocked", which
# SendGrid calls a temporary refusal, is a soft bounce (reject_reason ``blocked``,
# NormalisedEvent.soft_bounce), any other type a hard one. A drop is ``rejected``, its
# ``reason`` mapped by ``DROP_REASONS`` to what it says about the address.
EVENT_KINDS: dict[str, EventKind] = {
    "processed": K.QUEUED,
    "deferred": K.DEFERRED,
    "delivered": K.DELIVERED,
    "bounce": K.BOUNCED,
    "dropped": K.REJECTED,
    "open": K.OPENED,
    "click": K.CLICKED,
    "spamreport": K.COMPLAINED,
    "unsubscribe": K.UNSUBSCRIBED,
    "group_unsubscribe": K.UNSUBSCRIBED,
    "group_resubscribe": K.SUBSCRIBED,
}
BOUNCE_TYPES: dict[str, RejectReason] = {"bounce": R.BOUNCED, "blocked": R.BLOCKED}
# Why SendGrid dropped a message (its words, lower-cased); anything else is OTHER.
DROP_REASONS: dict[str, RejectReason] = {
    "bounced address": R.BOUNCED,
    "invalid": R.INVALID,
    "spam reporting address": R.SPAM,
    "unsubscribed address": R.UNSUBSCRIBED,
}


def classify(
    event: str, type_: str | None = None, reason: str | None = None
) -> tuple[EventKind, RejectReason | None]:
    """Our kind and reject reason for a SendGrid event name, bounce type and drop reason.

    By the table above (``EVENT_KINDS``; a soft bounce is ``bounced`` / ``blocked``),
    matched without regard to case or surrounding blanks; an unknown name is UNKNOWN, an
    unknown bounce type a hard bounce.
    """
    kind = EVENT_KINDS.get(event.strip().lower(), K.UNKNOWN)
    if kind is K.BOUNCED:
        return kind, BOUNCE_TYPES.get(_key(type_), R.BOUNCED)
    if kind is K.REJECTED:
        return kind, DROP_REASONS.get(_key(reason), R.OTHER)
    return kind, None


def _key(value: str | None) -> str:
    return value.strip().lower() if isinstance(value, str) else ""


class SignatureVerifier:
    """Holds the parsed public key of one configuration; build once per app."""

    def __init__(self, public_key: str, *, tolerance_seconds: int) -> None:
        self.tolerance_seconds = tolerance_seconds
        self._webhook = EventWebhook()
        self._key = _load_key(public_key)

    def check(
        self,
        *,
        payload: bytes,
        signature: str | None,
        timestamp: str | None,
        now: float | None = None,
    ) -> None:
        """Raise TokenInvalid (missing/wrong) or TokenExpired (stale); return when genuine."""
        if not signature or not timestamp:
            raise TokenInvalid(
                f"webhook signature missing: {SIGNATURE_HEADER} and {TIMESTAMP_HEADER} are required"
            )
        try:
            body = payload.decode("utf-8")
            genuine = self._webhook.verify_signature(body, signature, timestamp, self._key)
        except (UnicodeDecodeError, binascii.Error, ValueError, InvalidSignature):
            genuine = False
        if not genuine:
            raise TokenInvalid("webhook signature does not verify")
        try:
            sent_at = int(timestamp.strip())
        except ValueError as err:
            raise TokenInvalid(f"webhook timestamp {timestamp!r} is not a number") from err
        age = (time.time() if now is None else now) - sent_at
        if abs(age) > self.tolerance_seconds:
            raise TokenExpired(
                f"webhook timestamp is {int(age)} s away from now; "
                f"tolerance is {self.tolerance_seconds} s"
            )


def _load_key(public_key: str) -> ec.EllipticCurvePublicKey:
    """SendGrid shows the key as base64 DER; a full PEM block is accepted too."""
    text = public_key.strip()
    if not text.startswith("-----BEGIN"):
        text = "-----BEGIN PUBLIC KEY-----\n" + text + "\n-----END PUBLIC KEY-----"
    try:
        key = load_pem_public_key(text.encode("utf-8"))
    except (ValueError, UnsupportedAlgorithm) as err:
        raise ConfigError(
            f"NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY is not a valid public key: {err}"
        ) from err
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ConfigError("NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY is not an elliptic-curve key")
    return key


def sign_payload(private_key: ec.EllipticCurvePrivateKey, payload: bytes, timestamp: str) -> str:
    """What SendGrid does on its side; tests and the demo use it to make signed batches."""
    signature = private_key.sign(timestamp.encode("utf-8") + payload, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode("ascii")


def parse_batch(body: bytes, *, max_events: int | None = None) -> list[NormalisedEvent]:
    """Normalise every event of a batch; InvalidInput when the body is not a JSON array,
    PayloadTooLarge (413) when it holds more than ``max_events`` events."""
    try:
        data = json.loads(body, parse_constant=_no_constant)
    except (ValueError, RecursionError) as err:  # JSONDecodeError and UnicodeError included
        raise InvalidInput(f"request body is not JSON: {err}") from err
    if not isinstance(data, list):
        raise InvalidInput("request body is not a JSON array of events")
    if max_events is not None and len(data) > max_events:
        raise PayloadTooLarge(f"event batch of {len(data)} events; at most {max_events} are taken")
    return [normalise_event(item) for item in data]


def _no_constant(name: str) -> None:
    """NaN and Infinity are not JSON; the database's JSON column would refuse them later."""
    raise ValueError(f"{name} is not allowed")


def normalise_event(item: Any) -> NormalisedEvent:
    """One SendGrid event in our terms; never raises (odd input becomes UNKNOWN)."""
    if not isinstance(item, Mapping):
        log.warning("sendgrid webhook: event is not an object: %.200r", item)
        return NormalisedEvent(
            provider=PROVIDER,
            kind=K.UNKNOWN,
            raw_event="",
            event_id=_fallback_id(item),
            occurred_at=utcnow(),
            payload={"value": item},
        )
    raw = item.get("event")
    raw_event = raw[:RAW_EVENT_MAX] if isinstance(raw, str) else ""
    reason = _text(item.get("reason")) or _text(item.get("response"))
    kind, reject_reason = classify(raw_event, _text(item.get("type")), reason)
    if kind is K.UNKNOWN:
        log.warning("sendgrid webhook: unknown event type %r", raw_event)
    event_id = _text(item.get("sg_event_id"))
    return NormalisedEvent(
        provider=PROVIDER,
        kind=kind,
        raw_event=raw_event,
        event_id=event_id[:200] if event_id else _fallback_id(item),
        occurred_at=_occurred_at(item.get("timestamp")),
        email=(_text(item.get("email")) or "").strip().lower() or None,
        campaign_id=_int(item.get(ARG_CAMPAIGN)),
        subscriber_id=_int(item.get(ARG_SUBSCRIBER)),
        delivery_id=_int(item.get(ARG_DELIVERY)),
        message_id=_message_id(item.get("sg_message_id")),
        machine=kind is K.OPENED and item.get("sg_machine_open") in (True, "true"),
        reject_reason=reject_reason,
        reason=reason,
        url=_text(item.get("url")),
        payload=dict(item),
    )


def _fallback_id(item: Any) -> str:
    """A stable id for an event without sg_event_id, so a retried batch still dedupes."""
    canonical = json.dumps(item, sort_keys=True, default=str, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _message_id(value: Any) -> str | None:
    """``<X-Message-Id>.filterdrecv-...`` -> the X-Message-Id we stored when sending."""
    text = _text(value)
    if not text:
        return None
    return text.split(".", 1)[0] or None


def _occurred_at(value: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return utcnow()


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**31 else None  # an id column is a 32-bit integer


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
