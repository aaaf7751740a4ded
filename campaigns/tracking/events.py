"""Provider events in the field's words: one kind enum, one reason enum, one event shape.

The vocabulary is django-anymail's (``anymail.signals.EventType`` and ``RejectReason``),
so tracking and reports never read a vendor's nouns. Each provider's webhook module maps
its payload into :class:`NormalisedEvent` (SendGrid:
``campaigns.delivery.providers.sendgrid_events``, with its mapping table); the vendor's
event name is always kept (``raw_event``), and an event we do not know becomes
:attr:`EventKind.UNKNOWN` rather than an error, so a new event type never makes the
provider retry a batch forever.

What our rules need beyond the kind travels as flags: ``machine`` (an open by a privacy
proxy or a click by a link scanner, not a person) and ``reject_reason`` (why a message
bounced or was rejected; a ``blocked`` bounce is a soft one,
:attr:`NormalisedEvent.soft_bounce`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    """What happened to a message (anymail's EventType); stored in ``tracking_event.kind``."""

    QUEUED = "queued"  # the provider has it and will try to send it
    SENT = "sent"  # the provider handed it on (may or may not be delivered)
    REJECTED = "rejected"  # refused before sending (a known bad or suppressed address)
    FAILED = "failed"  # the provider could not send it (its own error)
    BOUNCED = "bounced"  # the receiving server refused it; soft or hard: reject_reason
    DEFERRED = "deferred"  # the receiving server said later; the provider retries
    DELIVERED = "delivered"
    OPENED = "opened"  # by a person, or by a machine: the ``machine`` flag
    CLICKED = "clicked"
    COMPLAINED = "complained"  # the recipient marked it as spam
    UNSUBSCRIBED = "unsubscribed"  # through the provider's own link or list
    SUBSCRIBED = "subscribed"  # back on a provider's list (never brings anyone back here)
    UNKNOWN = "unknown"


class RejectReason(StrEnum):
    """Why a message bounced or was rejected (anymail's RejectReason)."""

    INVALID = "invalid"  # the address cannot exist
    BOUNCED = "bounced"  # the address bounced (now, or before: suppressed by the provider)
    TIMED_OUT = "timed_out"
    BLOCKED = "blocked"  # refused for now (mailbox full, reputation): a soft bounce
    SPAM = "spam"  # the address reported spam before
    UNSUBSCRIBED = "unsubscribed"  # the address unsubscribed before
    OTHER = "other"


@dataclass(frozen=True)
class NormalisedEvent:
    """One provider event, vendor-neutral; ``payload`` keeps the event exactly as received."""

    provider: str
    kind: EventKind
    raw_event: str
    event_id: str
    occurred_at: datetime
    email: str | None = None
    # Our own ids, sent as the message's metadata and echoed back; None when absent.
    campaign_id: int | None = None
    subscriber_id: int | None = None
    delivery_id: int | None = None
    # The provider's message id (SendGrid: X-Message-Id, the part before the first dot).
    message_id: str | None = None
    # An open by a proxy (Apple Mail Privacy Protection) or a click by a scanner, not a
    # person (issue 15: the rules are campaigns.tracking.classify's).
    machine: bool = False
    reject_reason: RejectReason | None = None  # for BOUNCED and REJECTED
    reason: str | None = None  # the provider's or the receiving server's words
    url: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)

    @property
    def soft_bounce(self) -> bool:
        """A bounce the receiving server called temporary: counted, not stopped at once."""
        return self.kind is EventKind.BOUNCED and self.reject_reason is RejectReason.BLOCKED
