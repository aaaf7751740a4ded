"""Provider events in our own words: one kind enum, one mapping table, one event shape.

In the style of django-anymail's tracking webhooks: each provider's payload is normalised
into :class:`NormalisedEvent` so tracking and reports never read vendor field names. The
vendor's event name is always kept (``raw_event``) and an event we do not know becomes
:attr:`EventKind.UNKNOWN` rather than an error, so a new SendGrid event type never makes
the provider retry a batch forever.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    PROCESSED = "processed"
    DELIVERED = "delivered"
    DEFERRED = "deferred"
    OPEN = "open"
    CLICK = "click"
    BOUNCE_HARD = "bounce_hard"
    BOUNCE_SOFT = "bounce_soft"
    DROPPED = "dropped"
    SPAM_REPORT = "spam_report"
    UNSUBSCRIBE = "unsubscribe"
    GROUP_UNSUBSCRIBE = "group_unsubscribe"
    GROUP_RESUBSCRIBE = "group_resubscribe"
    UNKNOWN = "unknown"


# SendGrid (event, type) -> our kind. ``type`` only matters for bounces: "bounce" is a
# permanent rejection, "blocked" a temporary one (SendGrid's own wording). A key with
# ``None`` is the kind for any type not listed.
SENDGRID_EVENT_KINDS: dict[tuple[str, str | None], EventKind] = {
    ("processed", None): EventKind.PROCESSED,
    ("delivered", None): EventKind.DELIVERED,
    ("deferred", None): EventKind.DEFERRED,
    ("open", None): EventKind.OPEN,
    ("click", None): EventKind.CLICK,
    ("bounce", "bounce"): EventKind.BOUNCE_HARD,
    ("bounce", "blocked"): EventKind.BOUNCE_SOFT,
    ("bounce", None): EventKind.BOUNCE_HARD,
    ("dropped", None): EventKind.DROPPED,
    ("spamreport", None): EventKind.SPAM_REPORT,
    ("unsubscribe", None): EventKind.UNSUBSCRIBE,
    ("group_unsubscribe", None): EventKind.GROUP_UNSUBSCRIBE,
    ("group_resubscribe", None): EventKind.GROUP_RESUBSCRIBE,
}


def sendgrid_kind(event: str, type_: str | None = None) -> EventKind:
    """Our kind for a SendGrid event name (and bounce type); UNKNOWN for anything else."""
    name = event.strip().lower()
    subtype = type_.strip().lower() if isinstance(type_, str) else None
    return (
        SENDGRID_EVENT_KINDS.get((name, subtype))
        or SENDGRID_EVENT_KINDS.get((name, None))
        or EventKind.UNKNOWN
    )


@dataclass(frozen=True)
class NormalisedEvent:
    """One provider event, vendor-neutral; ``payload`` keeps the event exactly as received."""

    provider: str
    kind: EventKind
    raw_event: str
    event_id: str
    occurred_at: datetime
    email: str | None = None
    # Our sending's own ids, echoed back by the provider (custom_args); None when absent.
    campaign_id: int | None = None
    subscriber_id: int | None = None
    delivery_id: int | None = None
    # The provider's message id (SendGrid: X-Message-Id, the part before the first dot).
    message_id: str | None = None
    machine: bool = False  # an open by a proxy (Apple Mail Privacy Protection), not a person
    reason: str | None = None
    url: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)
