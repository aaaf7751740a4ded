"""The provider interface: what the send loop and sign-up need from an email service.

A provider sends a *batch* of one campaign (content rendered once, with placeholders,
plus per-recipient values) and single transactional messages. Vendor quirks live in the
implementation that handles them, never here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from newsletter.mail import OutgoingMessage

# SendGrid echoes custom_args beside its own event fields: our prefix keeps them apart.
CUSTOM_ARG_PREFIX = "nl_"
ARG_CAMPAIGN = f"{CUSTOM_ARG_PREFIX}campaign_id"
ARG_SUBSCRIBER = f"{CUSTOM_ARG_PREFIX}subscriber_id"
ARG_DELIVERY = f"{CUSTOM_ARG_PREFIX}delivery_id"


@dataclass(frozen=True, slots=True)
class Recipient:
    delivery_id: int
    subscriber_id: int
    email: str
    name: str | None
    # Placeholder values (newsletter.mail.PLACEHOLDER_KEYS) for this recipient.
    values: Mapping[str, str]


@dataclass(frozen=True)
class BulkContent:
    """One campaign's content, rendered once; placeholders are filled per recipient."""

    campaign_id: int
    subject: str
    html: str
    text: str
    from_email: str
    from_name: str | None
    reply_to: str | None
    list_id: str
    categories: tuple[str, ...] = ()
    test: bool = False


@dataclass
class BatchResult:
    """Provider message id per delivery id (SendGrid: one id for the whole request)."""

    message_ids: dict[int, str] = field(default_factory=dict)


class Provider(ABC):
    name: str

    @abstractmethod
    def send_batch(self, content: BulkContent, recipients: Sequence[Recipient]) -> BatchResult:
        """Send one batch; raise a ProviderError subclass on failure (nothing half-recorded)."""

    @abstractmethod
    def send_message(self, message: OutgoingMessage) -> str:
        """Send one transactional message; return the provider's message id."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> Provider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
