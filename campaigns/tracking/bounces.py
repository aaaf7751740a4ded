"""Bounces from the bounce mailbox: read over IMAP, parsed, matched, told like any event.

With SMTP nobody reports a bounce to us: the receiving side mails a delivery status
notification (DSN, RFC 3464) or a home-made bounce to the message's envelope sender,
``bounces+TOKEN@<bounce domain>`` (``campaigns.delivery.verp``), whose mail lands in the
mailbox of ``NEWSLETTER_BOUNCE_IMAP_URL``. :func:`fetch_bounces` reads it:

1. **Which addresses failed**: GNU Mailman's detectors (``flufl.bounce``): RFC 3464 DSNs
   and the common non-standard bounces (Postfix, Exim, qmail, Exchange...), each address
   temporary (delayed) or permanent. A message they find nothing in (an auto-reply, a
   reader's answer) is not a bounce: left where it is, and counted.
2. **Hard or soft**: the address's ``Status`` in the DSN, else the first RFC 3463 code
   in the text, by the rule of the send (``status_codes``: 5.1.x hard, other 5.x.x and
   4.x.x soft); a permanent failure with no code at all is hard, a temporary one soft.
3. **Whose**: the VERP token the bounce was addressed to (``Delivered-To``,
   ``X-Original-To``, ``Envelope-To``, ``To``), checked against the subscriber's link key:
   the signed token names the delivery whatever address the report gives. Without one,
   the Message-ID of our message quoted in the report (``<campaign>.<delivery>.<nonce>@``,
   ``providers.smtp``, 64 random bits a message), which must equal that delivery's stored
   one exactly, and the failed address, which must be that delivery's. Neither:
   the bounce is about nobody we can prove, and changes nothing (anyone can mail a fake
   DSN to the bounce address).
4. **The effects**: ``bounced`` events through ``effects.apply_events``, the rules of
   every provider's events (a hard bounce stops the address at once, soft ones after
   ``soft_bounce_limit`` in a row). The event id is a hash of the message and address,
   so a message read twice counts once.
5. **Afterwards** the message is moved to ``NEWSLETTER_BOUNCE_PROCESSED_FOLDER`` (IMAP
   MOVE, RFC 6851, or COPY then ``\\Seen \\Deleted`` and EXPUNGE): the inbox holds only
   what is still to read or was not a bounce, and the processed ones stay for an
   operator to look at. The database is committed before the move, so a crash between
   the two reads the message again next time, and counts nothing twice.
"""

from __future__ import annotations

import email
import email.message
import email.policy
import hashlib
import hmac
import logging
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from email.utils import parseaddr, parsedate_to_datetime

import sqlalchemy as sa
from flufl.bounce import all_failures
from sqlmodel import Session

from campaigns.delivery.verp import Verp
from campaigns.models import Delivery
from campaigns.tracking.bounce_mailbox import Mailbox
from campaigns.tracking.effects import apply_events
from campaigns.tracking.events import EventKind, NormalisedEvent, RejectReason
from campaigns.tracking.status_codes import enhanced_code, reject_reason
from newsletter.clock import as_utc, utcnow
from newsletter.settings import Settings
from subscribers.models import Subscriber

__all__ = ["Bounce", "FetchReport", "fetch_bounces", "parse_bounce"]

log = logging.getLogger(__name__)
_ENVELOPE_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")
_OUR_MESSAGE_ID = re.compile(r"<?(\d{1,18})\.(\d{1,18})\.[0-9a-f]{16}@[^>\s]+>?")
_QUOTED_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)
_subscriber = Subscriber.__table__  # type: ignore[attr-defined]
_delivery = Delivery.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Bounce:
    """One failed address of a bounce message, and what the message says about whose."""

    address: str
    reason: RejectReason  # INVALID (hard) or BLOCKED (soft)
    status: str | None  # the RFC 3463 code, when the message gives one
    diagnostic: str | None
    verp: str | None  # the VERP address the bounce was delivered to
    message_id: str | None  # our Message-ID quoted in the bounce

    @property
    def hard(self) -> bool:
        return self.reason is RejectReason.INVALID


def _dsn_fields(message: email.message.Message) -> dict[str, tuple[str | None, str | None]]:
    """Per failed address of an RFC 3464 report: (Status, Diagnostic-Code)."""
    found: dict[str, tuple[str | None, str | None]] = {}
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status" or not part.is_multipart():
            continue
        for block in part.get_payload():
            status, diagnostic = block.get("Status"), block.get("Diagnostic-Code")
            for name in ("Original-Recipient", "Final-Recipient"):
                value = block.get(name)
                if value:
                    address = parseaddr(value.partition(";")[2].strip())[1].lower()
                    if address:
                        found.setdefault(
                            address, (status, diagnostic and " ".join(diagnostic.split()))
                        )
    return found


def _text(message: email.message.Message) -> str:
    """The bounce's human-readable parts, decoded (where non-standard bounces put codes)."""
    chunks = []
    for part in message.walk():
        if (
            part.get_content_maintype() == "text"
            and part.get_content_type() != "text/rfc822-headers"
        ):
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                chunks.append(payload.decode("utf-8", errors="replace"))
    return "\n".join(chunks)


def _verp_address(message: email.message.Message) -> str | None:
    for name in _ENVELOPE_HEADERS:
        for value in message.get_all(name, []):
            for _display, address in email.utils.getaddresses([value]):
                if Verp.claim(address) is not None:
                    return address.lower()
    return None


def _near(text: str, address: str) -> str | None:
    """The first RFC 3463 code on the lines that name ``address`` (or after it)."""
    lower = text.lower()
    at = lower.find(address)
    if at < 0:
        return enhanced_code(text)
    return enhanced_code(text[at : at + 600]) or enhanced_code(text)


def _our_message_id(raw: bytes) -> str | None:
    """The Message-ID of one of our messages quoted in the bounce (not the bounce's own)."""
    for found in _QUOTED_MESSAGE_ID.finditer(raw):
        value = found.group(1).decode("ascii", errors="replace").strip("<>")
        if _OUR_MESSAGE_ID.fullmatch(value):
            return value
    return None


def parse_bounce(raw: bytes) -> list[Bounce]:
    """The failed addresses of a bounce message; empty when it is not a bounce."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    temporary, permanent = all_failures(message)
    if not temporary and not permanent:
        return []
    dsn = _dsn_fields(message)
    text = _text(message)
    verp = _verp_address(message)
    message_id = _our_message_id(raw)
    found = []
    for address_bytes, is_permanent in [(a, False) for a in temporary] + [
        (a, True) for a in permanent
    ]:
        address = address_bytes.decode("ascii", errors="replace").lower()
        status, diagnostic = dsn.get(address, (None, None))
        code = enhanced_code(status or "") or _near(text, address)
        if code is not None:
            reason = reject_reason(code)
        else:
            reason = RejectReason.INVALID if is_permanent else RejectReason.BLOCKED
        found.append(Bounce(address, reason, code, diagnostic, verp, message_id))
    return found


def _occurred(raw: bytes) -> datetime:
    message = email.message_from_bytes(raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0] + b"\n\n")
    try:
        return as_utc(parsedate_to_datetime(message["Date"]))
    except (TypeError, ValueError, IndexError):
        return utcnow()


class Owners:
    """Decides whose delivery a bounce is about (rule 3 of the module's docstring)."""

    def __init__(self, session: Session, settings: Settings) -> None:
        self.session = session
        self.verp = Verp(settings)

    def ids(self, bounce: Bounce) -> dict[str, int | str | None] | None:
        """Event fields naming the delivery, or None when nothing proves whose it is."""
        claim = Verp.claim(bounce.verp) if bounce.verp else None
        if claim is not None:
            key = self.session.execute(
                sa.select(_subscriber.c.link_key).where(_subscriber.c.id == claim.subscriber_id)
            ).scalar_one_or_none()
            if key is not None and self.verp.verify(claim, key):
                # Signed by us for this person: whatever address the report names.
                return {
                    "campaign_id": claim.campaign_id,
                    "subscriber_id": claim.subscriber_id,
                    "email": None,
                }
            log.warning("bounces: a VERP token that does not verify: %s", bounce.verp)
        return self._by_message_id(bounce)

    def _by_message_id(self, bounce: Bounce) -> dict[str, int | str | None] | None:
        """The delivery whose stored Message-ID the bounce quotes exactly, or None.

        The campaign and delivery ids in it are guessable; the 64 random bits each message
        gets (providers.smtp) are not, so only the whole id, compared in constant time,
        proves the sender saw that message. SendGrid's and the outbox's ids never have
        our shape, so they never match here.
        """
        quoted = bounce.message_id or ""
        ours = _OUR_MESSAGE_ID.fullmatch(quoted)
        if ours is None:
            return None
        row = self.session.execute(
            sa.select(_delivery.c.campaign_id, _delivery.c.provider_message_id).where(
                _delivery.c.id == int(ours.group(2))
            )
        ).one_or_none()
        stored = (row.provider_message_id if row is not None else None) or ""
        if row is None or not hmac.compare_digest(stored.encode(), quoted.encode()):
            log.warning("bounces: a quoted Message-ID no delivery of ours has: %s", quoted)
            return None
        # The matcher checks that the failed address is that delivery's.
        return {
            "campaign_id": row.campaign_id,
            "delivery_id": int(ours.group(2)),
            "email": bounce.address,
        }


@dataclass
class FetchReport:
    """One reading of the bounce mailbox."""

    messages: int = 0
    bounces: int = 0  # failed addresses applied (new)
    hard: int = 0
    soft: int = 0
    duplicates: int = 0  # read before: nothing done again
    unmatched: int = 0  # a bounce about nobody we can prove
    not_bounces: int = 0  # left in the mailbox (auto-replies, answers)
    unreadable: int = 0  # left too: the parsers failed on it (logged)
    moved: int = 0
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _events(
    raw: bytes, bounces: list[Bounce], owners: Owners, report: FetchReport
) -> list[NormalisedEvent]:
    occurred = _occurred(raw)
    digest = hashlib.sha256(raw).hexdigest()[:32]
    events = []
    for bounce in bounces:
        ids = owners.ids(bounce)
        if ids is None:
            report.unmatched += 1
            continue
        event_id = "imap:" + hashlib.sha256(f"{digest}:{bounce.address}".encode()).hexdigest()[:40]
        events.append(
            NormalisedEvent(
                provider="imap",
                kind=EventKind.BOUNCED,
                raw_event="dsn" if bounce.status else "bounce",
                event_id=event_id,
                occurred_at=occurred,
                reject_reason=bounce.reason,
                reason=(bounce.diagnostic or bounce.status or "bounced")[:500],
                payload={"address": bounce.address, "status": bounce.status, "verp": bounce.verp},
                **ids,  # type: ignore[arg-type]
            )
        )
    return events


def fetch_bounces(
    session: Session, *, settings: Settings, mailbox: Mailbox | None = None
) -> FetchReport:
    """Read the bounce mailbox once (module docstring); commits after each message.

    Raises ConfigError (no or a malformed ``NEWSLETTER_BOUNCE_IMAP_URL``) and
    FetchFailed (the server cannot be reached or refused the login), one line each.
    """
    report = FetchReport()
    box = mailbox or Mailbox.from_settings(settings)  # its setting's errors first
    owners = Owners(session, settings)
    with box:
        for uid, raw in box.messages():
            report.messages += 1
            try:
                bounces = parse_bounce(raw)
            except Exception:  # a third-party parser on mail from anyone: never stop the run
                log.exception("bounces: message %s could not be parsed; left in place", uid)
                report.unreadable += 1
                continue
            if not bounces:
                report.not_bounces += 1
                continue
            events = _events(raw, bounces, owners, report)
            applied = apply_events(session, settings=settings, events=events)
            session.commit()
            report.duplicates += applied.duplicates
            report.unmatched += applied.unmatched
            new = applied.received - applied.duplicates
            report.bounces += new
            hard = sum(1 for e in events if e.reject_reason is RejectReason.INVALID)
            if new:
                report.hard += hard
                report.soft += len(events) - hard
            box.done(uid)
            report.moved += 1
    return report
