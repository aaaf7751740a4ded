"""The shape of an outgoing email, and the one way we turn it into RFC 5322 bytes.

Both rooms send mail (subscribers: confirmations; campaigns: the newsletter), so the
message type and the :class:`Mailer` protocol live on the ground floor. Providers in
``campaigns/providers`` implement the protocol; doors hand one to ``subscribers``.

Per-recipient values are written into rendered content as placeholders (``[%key%]``)
and filled in by cheap substitution, so MJML runs once per campaign, not per recipient.
"""

from __future__ import annotations

import email.policy
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Protocol

from newsletter.clock import utcnow
from newsletter.settings import Settings

# Placeholder keys, filled per recipient. ``name_html`` is the HTML-escaped name for the
# HTML part; ``name`` the raw one for the text part (SendGrid substitutes both parts alike).
UNSUBSCRIBE_URL = "unsubscribe_url"
PREFERENCES_URL = "preferences_url"
NAME = "name"
NAME_HTML = "name_html"
PLACEHOLDER_KEYS = (UNSUBSCRIBE_URL, PREFERENCES_URL, NAME, NAME_HTML)

# Newsletter headers per RFC 8058 (one-click) and RFC 2919 (List-Id).
ONE_CLICK = "List-Unsubscribe=One-Click"


def placeholder(key: str) -> str:
    return f"[%{key}%]"


def personalise(content: str, values: Mapping[str, str]) -> str:
    """Fill placeholders; unknown keys stay as they are."""
    for key, value in values.items():
        content = content.replace(placeholder(key), value)
    return content


def list_id(settings: Settings) -> str:
    """The RFC 2919 List-Id of the newsletter; every message of the list carries the same one."""
    return f"{settings.newsletter_name} <weekly.{settings.list_id_domain}>"


def list_headers(*, unsubscribe_url: str, list_id: str) -> dict[str, str]:
    return {
        "List-Unsubscribe": f"<{unsubscribe_url}>",
        "List-Unsubscribe-Post": ONE_CLICK,
        "List-Id": list_id,
    }


@dataclass(frozen=True)
class OutgoingMessage:
    """One email to one recipient, fully personalised."""

    to_email: str
    subject: str
    html: str
    text: str
    from_email: str
    from_name: str | None = None
    to_name: str | None = None
    reply_to: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    # Opaque ids only (SendGrid keeps them forever and cannot redact them).
    custom_args: Mapping[str, str] = field(default_factory=dict)
    categories: tuple[str, ...] = ()


class Mailer(Protocol):
    """Sends one transactional message; returns the provider's message id."""

    def send_message(self, message: OutgoingMessage) -> str: ...


def build_mime(message: OutgoingMessage, *, message_id_domain: str | None = None) -> bytes:
    """RFC 5322 bytes with CRLF line ends: exactly what an SMTP DATA command carries."""
    mime = EmailMessage(policy=email.policy.SMTP)
    mime["From"] = Address(display_name=message.from_name or "", addr_spec=message.from_email)
    mime["To"] = Address(display_name=message.to_name or "", addr_spec=message.to_email)
    mime["Subject"] = message.subject
    mime["Date"] = format_datetime(utcnow())
    domain = message_id_domain or message.from_email.rpartition("@")[2]
    mime["Message-ID"] = make_msgid(domain=domain)
    if message.reply_to:
        mime["Reply-To"] = message.reply_to
    for name, value in message.headers.items():
        mime[name] = value
    mime.set_content(message.text, subtype="plain", charset="utf-8")
    mime.add_alternative(message.html, subtype="html", charset="utf-8")
    return mime.as_bytes()
