"""The provider interface: what the send loop and sign-up need from an email service.

A provider sends a *batch* of one campaign (content rendered once, with placeholders,
plus per-recipient values) and single transactional messages. Every provider answers a
batch with the same typed :class:`BatchResult`: each recipient accepted (with a message
id), rejected or deferred (with a reason), as django-anymail's ``AnymailRecipientStatus``
reports it. Vendor quirks live in the implementation that handles them, never here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Generic, TypeVar

from campaigns.models import Campaign
from newsletter.errors import ContentError
from newsletter.mail import ONE_CLICK, MimeTemplate, OutgoingMessage, list_id
from newsletter.settings import Settings

TEST_PREFIX = "[TEST] "

# A recipient's values not made yet: the provider signs the links itself, from
# ``Recipient.link_key`` (``Provider.signs_links``: SendGrid built from the settings).
UNSIGNED: Mapping[str, str] = MappingProxyType({})


# Not frozen: a frozen dataclass sets each field through object.__setattr__, 1 µs per
# recipient of a million-recipient send (0.3 µs without); nothing changes one after it
# is made.
@dataclass(slots=True)
class Recipient:
    delivery_id: int
    subscriber_id: int
    email: str
    name: str | None
    # Placeholder values (newsletter.mail.PLACEHOLDER_KEYS) for this recipient.
    values: Mapping[str, str]
    # Issue 15: the reader asked not to be tracked: the send loop gives them the campaign's
    # plain variant (no tracking links, no pixel).
    plain: bool = False
    # Issue 15: the VERP envelope sender (campaigns.delivery.verp) when a bounce domain is set.
    return_path: str | None = None
    # The subscriber's link key (subscribers.models.new_link_key), for a provider that
    # signs the links itself (``values`` is then ``UNSIGNED``); the ledger reader always
    # sets it, a test copy has none.
    link_key: str = ""


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
    # Issue 15: our own click and open tracking is in the content; the provider's stays off.
    tracking: bool = False

    @property
    def subject_line(self) -> str:
        """The subject as sent: a test copy says so."""
        return TEST_PREFIX + self.subject if self.test else self.subject

    def shared_headers(self) -> dict[str, str]:
        """Headers every copy carries alike: RFC 2919 List-Id, and the test marker."""
        headers = {"List-Id": self.list_id}
        if self.test:
            headers["X-Newsletter-Test"] = "yes"
        return headers

    def mime_template(self) -> MimeTemplate:
        """The campaign as RFC 5322 bytes with holes (newsletter.mail's one encoder).

        Each copy gets its own ``List-Unsubscribe`` and the one-click POST of RFC 8058.
        """
        return MimeTemplate(
            subject=self.subject_line,
            html=self.html,
            text=self.text,
            from_email=self.from_email,
            from_name=self.from_name,
            reply_to=self.reply_to,
            headers={**self.shared_headers(), "List-Unsubscribe-Post": ONE_CLICK},
            personal_unsubscribe=True,
            label=f"campaign {self.campaign_id}",
        )


def bulk_content(settings: Settings, campaign: Campaign, *, test: bool = False) -> BulkContent:
    """A rendered campaign as providers send it; ContentError when it is not rendered."""
    if campaign.html is None or campaign.text is None:
        raise ContentError(f"campaign {campaign.id} has no rendered content")
    assert campaign.id is not None
    return BulkContent(
        campaign_id=campaign.id,
        subject=campaign.subject,
        html=campaign.html,
        text=campaign.text,
        from_email=settings.from_email,
        from_name=settings.from_name,
        reply_to=settings.reply_to,
        list_id=list_id(settings),
        test=test,
    )


class SendStatus(StrEnum):
    """What a provider did with one recipient (django-anymail's recipient status, reduced
    to the three the send loop acts on)."""

    ACCEPTED = "accepted"  # taken for delivery: anymail's "queued" / "sent"
    REJECTED = "rejected"  # refused for good (SMTP 5xx, a request SendGrid refused): failed
    DEFERRED = "deferred"  # not taken this time (connection lost, server busy): try again
    # Issue 15: the receiving server refused this recipient alone for now (SMTP 4yz to
    # RCPT or the message, RFC 5321 4.2.1): the ledger row waits on its own schedule.
    TRANSIENT = "transient"


ACCEPTED, REJECTED, DEFERRED = SendStatus.ACCEPTED, SendStatus.REJECTED, SendStatus.DEFERRED
TRANSIENT = SendStatus.TRANSIENT


@dataclass(frozen=True, slots=True)
class RecipientStatus:
    status: SendStatus
    message_id: str | None = None  # accepted: the provider's id, where it gives one
    reason: str | None = None  # rejected or deferred: why, in the provider's words
    # Issue 15: the receiving server's own reply ("550 5.1.1 User unknown"), when a
    # rejection came from it (a bounce) rather than from us or the provider's request.
    reply: str | None = None


@dataclass
class BatchResult:
    """Per delivery id, what a provider did with each recipient of a batch.

    ``request_ids``: True when a message id names a whole provider request shared by
    its recipients (SendGrid's X-Message-Id, up to 1000 of them), False when it names one
    message (SMTP, the outbox). ``retry_after``: seconds the provider asked us to wait
    before the deferred are tried again (Retry-After), if it did.

    Statuses are written through the methods only (``statuses`` reads them): the result
    knows which kinds and message ids it ever set, so the send loop reads a whole-batch
    answer (all accepted under one id: nearly every SendGrid batch) without passes over
    a thousand statuses.
    """

    request_ids: bool = False
    retry_after: float | None = None
    _statuses: dict[int, RecipientStatus] = field(default_factory=dict, repr=False)
    _kinds: set[SendStatus] = field(default_factory=set, repr=False, compare=False)
    _message_ids: set[str | None] = field(default_factory=set, repr=False, compare=False)

    @property
    def statuses(self) -> Mapping[int, RecipientStatus]:
        """Delivery id -> what became of that recipient (read-only)."""
        return MappingProxyType(self._statuses)

    def accept(self, delivery_ids: Iterable[int], message_id: str | None) -> None:
        self._statuses.update(dict.fromkeys(delivery_ids, RecipientStatus(ACCEPTED, message_id)))
        self._kinds.add(ACCEPTED)
        self._message_ids.add(message_id)

    def reject(self, delivery_ids: Iterable[int], reason: str) -> None:
        self._statuses.update(dict.fromkeys(delivery_ids, RecipientStatus(REJECTED, None, reason)))
        self._kinds.add(REJECTED)

    def defer(self, delivery_ids: Iterable[int], reason: str) -> None:
        self._statuses.update(dict.fromkeys(delivery_ids, RecipientStatus(DEFERRED, None, reason)))
        self._kinds.add(DEFERRED)

    def bounce(self, delivery_id: int, reason: str, reply: str) -> None:
        """The receiving server refused this recipient for good (SMTP 5yz): a bounce."""
        self._statuses[delivery_id] = RecipientStatus(REJECTED, None, reason, reply)
        self._kinds.add(REJECTED)

    def postpone(self, delivery_id: int, reason: str) -> None:
        """The receiving server refused this recipient for now (SMTP 4yz)."""
        self._statuses[delivery_id] = RecipientStatus(TRANSIENT, None, reason)
        self._kinds.add(TRANSIENT)

    def one_answer(self) -> tuple[bool, str | None]:
        """(True, the message id) when every status is "accepted" under that one id (a
        kind overwritten since still counts: the answer is then (False, None), which
        only costs the passes)."""
        if self._kinds == {ACCEPTED} and len(self._message_ids) == 1:
            return True, next(iter(self._message_ids))
        return False, None

    def has(self, status: SendStatus) -> bool:
        return status in self._kinds and any(s.status is status for s in self._statuses.values())

    @property
    def settled(self) -> bool:
        """Whether any recipient was accepted, rejected or put off by the receiving server:
        more than a whole-batch deferral."""
        return self.has(ACCEPTED) or self.has(REJECTED) or self.has(TRANSIENT)

    def _with(self, status: SendStatus) -> dict[int, RecipientStatus]:
        if status not in self._kinds:  # never set: no pass over the statuses
            return {}
        return {i: s for i, s in self._statuses.items() if s.status is status}

    @property
    def accepted(self) -> dict[int, str | None]:
        """Delivery id -> message id of every accepted recipient."""
        return {i: s.message_id for i, s in self._with(ACCEPTED).items()}

    @property
    def rejected(self) -> dict[int, str]:
        """Delivery id -> reason of every rejected recipient."""
        return {i: s.reason or "rejected" for i, s in self._with(REJECTED).items()}

    @property
    def deferred(self) -> dict[int, str]:
        """Delivery id -> reason of every deferred recipient."""
        return {i: s.reason or "deferred" for i, s in self._with(DEFERRED).items()}

    @property
    def transient(self) -> dict[int, str]:
        """Delivery id -> reason of every recipient the receiving server put off (4yz)."""
        return {i: s.reason or "deferred" for i, s in self._with(TRANSIENT).items()}

    @property
    def bounced(self) -> dict[int, str]:
        """Delivery id -> the receiving server's reply, of every rejection that was a bounce."""
        return {i: s.reply for i, s in self._with(REJECTED).items() if s.reply}


T = TypeVar("T")


@dataclass(frozen=True)
class Prepared(Generic[T]):
    """What a provider's :meth:`Provider.prepare` made of a batch (``made``), or the error
    making it raised (``error``, kept); ``source``: the recipients it was made of."""

    source: Sequence[Recipient]
    made: T | None = None
    error: Exception | None = None

    @classmethod
    def making(cls, recipients: Sequence[Recipient], make: Callable[[], T]) -> Prepared[T]:
        """``make()`` for ``recipients``, raising nothing: prepare runs on the send loop's
        thread while the batch before is in flight, and an error raised there would stop
        the loop before that batch is recorded (every resume would send it again)."""
        try:
            return cls(recipients, make())
        except Exception as err:  # kept; made_for raises it on the sending thread
            return cls(recipients, None, err)


def made_for(prepared: object | None, recipients: Sequence[Recipient], make: Callable[[], T]) -> T:
    """What ``prepared`` made of exactly ``recipients`` (its kept error raised here), or
    ``make()`` when it was made of other recipients or is None."""
    if not isinstance(prepared, Prepared) or prepared.source is not recipients:
        return make()
    if prepared.error is not None:
        raise prepared.error
    return prepared.made  # type: ignore[no-any-return]


class Provider(ABC):
    name: str
    batch_size: int = 100  # recipients the send loop hands over at once
    # True: give me recipients with ``values=UNSIGNED`` and their ``link_key``; I sign
    # their links myself (elsewhere than the send loop's thread).
    signs_links: bool = False

    @abstractmethod
    def send_batch(self, content: BulkContent, recipients: Sequence[Recipient]) -> BatchResult:
        """Send one batch and say what became of every recipient.

        Raises, with nothing sent: ProviderAuthError (stop the campaign),
        ProviderUnavailable (try the whole batch again later), ProviderRejected (the
        whole batch refused for good).
        """

    def prepare(self, content: BulkContent, recipients: Sequence[Recipient]) -> object | None:
        """The CPU work of a batch, done ahead: the send loop calls it on its own thread
        while the batch before is in flight, and hands the result to :meth:`send_prepared`
        (SendGrid's request bodies, SMTP's messages). Never raises: a provider returns
        :meth:`Prepared.making`, whose kept error :func:`made_for` raises where
        ``send_batch`` would have. None: nothing to do ahead (the default)."""
        return None

    def send_prepared(
        self, content: BulkContent, recipients: Sequence[Recipient], prepared: object | None
    ) -> BatchResult:
        """:meth:`send_batch` with what :meth:`prepare` made (None: not prepared)."""
        return self.send_batch(content, recipients)

    @abstractmethod
    def send_message(self, message: OutgoingMessage) -> str:
        """Send one transactional message; return the provider's message id."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> Provider:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
