"""The shape of an outgoing email, and the one way we turn it into RFC 5322 bytes.

Both rooms send mail (subscribers: confirmations; campaigns: the newsletter), so the
message type and the :class:`Mailer` protocol live on the ground floor. Providers in
``campaigns/delivery/providers`` implement the protocol; doors hand one to ``subscribers``.

Per-recipient values are written into rendered content as placeholders (``[%key%]``)
and filled in by cheap substitution, so MJML runs once per campaign, not per recipient.

One encoder, :class:`MimeTemplate`, writes every message we produce: a campaign's copies
(SMTP and the outbox alike, so the outbox holds byte for byte what SMTP carries) and
single messages (:func:`build_mime`). The MIME structure is built once as
quoted-printable bytes with holes where placeholders were. Each hole starts and ends on
a soft line break, so a recipient's value is QP-encoded on its own (a few dozen bytes,
in C) and spliced in; no ``email.message`` per recipient. Lines end in CRLF; body lines
stay within 76 columns and header lines are folded (RFC 5322 2.2.3), so no line comes
near the 998 limit (RFC 5322 2.1.1).
"""

from __future__ import annotations

import binascii
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import format_datetime, make_msgid
from html import escape
from typing import Protocol, TypeVar
from urllib.parse import quote

from newsletter.clock import utcnow
from newsletter.errors import ContentError
from newsletter.headers import (  # re-exported: the one way to write a header
    address_header as address_header,
)
from newsletter.headers import check_header_text as check_header_text
from newsletter.headers import encoded_words as encoded_words
from newsletter.headers import fold, one_line, safe_display_name
from newsletter.headers import header_value as header_value
from newsletter.settings import Settings

# Placeholder keys, filled per recipient. ``name_html`` is the HTML-escaped name for the
# HTML part; ``name`` the raw one for the text part (SendGrid substitutes both parts alike).
# ``greeting`` / ``greeting_html`` read naturally with or without a name ("Hello Jane," /
# "Hello,"): templates greet with them, since a reader without a name got "Hello, ".
UNSUBSCRIBE_URL = "unsubscribe_url"
PREFERENCES_URL = "preferences_url"
NAME = "name"
NAME_HTML = "name_html"
GREETING = "greeting"
GREETING_HTML = "greeting_html"
PLACEHOLDER_KEYS = (UNSUBSCRIBE_URL, PREFERENCES_URL, NAME, NAME_HTML, GREETING, GREETING_HTML)
# The keys whose values come from the reader's name alone (see personal_values).
PERSONAL_KEYS = (NAME, NAME_HTML, GREETING, GREETING_HTML)

# Issue 15: tracked content (campaigns.tracking.links) carries one hole per reader,
# ``track``: the reader's signed token inside every /r/ link and the /o/ pixel. A reader
# who asked not to be tracked gets the campaign's plain variant, which has no hole.
TRACK = "track"

# Newsletter headers per RFC 8058 (one-click) and RFC 2919 (List-Id).
ONE_CLICK = "List-Unsubscribe=One-Click"

T = TypeVar("T", bound=str)


def placeholder(key: str) -> str:
    return f"[%{key}%]"


_WORD_JOINER = "\u2060"  # invisible, and no line may break at it (Unicode UAX #14)


def inert(text: T) -> T:
    """``text`` with each placeholder (``[%name%]``...) made literal: a word joiner after
    its "[", which no reader sees and neither our fill nor SendGrid's substitution
    matches. For data shown in an issue (a snippet's title, summary, author) and a
    reader's name: it is not a template, and a placeholder in it would be filled with
    the reader's name or link. In any case ("[%NAME%]"): a template's ``lower`` filter,
    or a provider matching without case, would make a live one of it (a review's find).
    Keeps the type: a ``Markup`` stays one (only an invisible character was added)."""
    if "[%" not in text:
        return text
    made = ANY_CASE_HOLE.sub(lambda match: "[" + _WORD_JOINER + match.group(0)[1:], text)
    return type(text)(made)  # type: ignore[return-value]


def inert_url(url: T) -> T:
    """A link with each placeholder percent-encoded (``%5B%25name%25%5D``, RFC 3986 2.1):
    the characters as written, so the reader's tokens never go to the link's site."""
    if "[%" not in url:
        return url
    made = ANY_CASE_HOLE.sub(lambda match: quote(match.group(0), safe=""), url)
    return type(url)(made)  # type: ignore[return-value]


def greeting(name: str | None) -> str:
    """'Hello Jane,' for a reader with a name, 'Hello,' for one without (never 'Hello, ')."""
    name = " ".join((name or "").split())  # no line break of a name reaches the body
    return f"Hello {name}," if name else "Hello,"


def personal_values(name: str | None) -> dict[str, str]:
    """The values of ``PERSONAL_KEYS`` for a reader's name (None or blank: no name).
    A placeholder in the name stays text (:func:`inert`): SendGrid may substitute
    within a substituted value, which would put the reader's link in their greeting."""
    name = inert(one_line(name or ""))  # a stored name never adds a line to the body either
    text = f"Hello {name}," if name else "Hello,"  # greeting(name); one_line did its part
    if _HTML_SPECIAL.search(name) is None:  # nearly every name: escaping changes nothing
        return {NAME: name, NAME_HTML: name, GREETING: text, GREETING_HTML: text}
    return {
        NAME: name,
        NAME_HTML: escape(name),
        GREETING: text,
        GREETING_HTML: escape(text),
    }


_HTML_SPECIAL = re.compile("[&<>\"']")  # what html.escape(quote=True) replaces


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
    # Opaque ids that tracking events echo back (django-anymail's "metadata"); a provider
    # may keep them for good and be unable to redact them, so never an address or a name.
    metadata: Mapping[str, str] = field(default_factory=dict)
    categories: tuple[str, ...] = ()


class Mailer(Protocol):
    """Sends one transactional message; returns the provider's message id."""

    def send_message(self, message: OutgoingMessage) -> str: ...


def build_mime(
    message: OutgoingMessage,
    *,
    message_id: str | None = None,
    message_id_domain: str | None = None,
) -> bytes:
    """RFC 5322 bytes with CRLF line ends: exactly what an SMTP DATA command carries.

    ``message_id`` (without angle brackets) defaults to a fresh one at ``message_id_domain``
    (the sender's domain unless given). Raises ContentError for a header line over 998.
    """
    template = MimeTemplate(
        subject=message.subject,
        html=message.html,
        text=message.text,
        from_email=message.from_email,
        from_name=message.from_name,
        reply_to=message.reply_to,
        headers=message.headers,
        holes=False,
    )
    domain = message_id_domain or template.domain
    return template.render(
        message.to_email,
        message.to_name,
        {},
        date=format_datetime(utcnow()),
        message_id=message_id or make_msgid(domain=domain).strip("<>"),
    )


# ---------------------------------------------------------------- the encoder

HOLE = re.compile(r"\[%(" + "|".join(re.escape(k) for k in (*PLACEHOLDER_KEYS, TRACK)) + r")%\]")
ANY_CASE_HOLE = re.compile(HOLE.pattern, re.IGNORECASE)  # what inert() neutralises
_SOFT_BREAK = b"=\r\n"
MAX_LINE = 998


def qp(value: str) -> bytes:
    """Quoted-printable, CRLF line ends, soft breaks at 76 columns (binascii, in C)."""
    data = value.replace("\r\n", "\n").encode("utf-8")
    return binascii.b2a_qp(data, istext=True).replace(b"\n", b"\r\n")


def stuff(data: bytes) -> bytes:
    """Dot-stuffing (RFC 5321 4.5.2) of bytes that start at the beginning of a line."""
    data = data.replace(b"\r\n.", b"\r\n..")
    return b"." + data if data.startswith(b".") else data


def wire(data: bytes) -> bytes:
    """A whole message as DATA sends it: dot-stuffed, ended by the end-of-data line."""
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return stuff(data) + b".\r\n"


class MimeTemplate:
    """A message as bytes with holes; ``render`` fills one recipient's values.

    ``headers`` are the same for every copy, in order. With ``holes`` the placeholders
    of subject and bodies are filled per recipient and ``personal_unsubscribe`` adds each
    recipient's ``List-Unsubscribe`` from their values (RFC 8058); without, the text is
    taken literally (a single, already personalised message). ``label`` names the message
    in errors. Raises ContentError for a header line over 998 characters.
    """

    def __init__(
        self,
        *,
        subject: str,
        html: str,
        text: str,
        from_email: str,
        from_name: str | None = None,
        reply_to: str | None = None,
        headers: Mapping[str, str] | None = None,
        holes: bool = True,
        personal_unsubscribe: bool = False,
        boundary: str | None = None,
        label: str = "message",
    ) -> None:
        boundary = boundary or f"=_nl_{uuid.uuid4().hex}"
        self.domain = from_email.rpartition("@")[2] or "localhost"
        self.holes = holes
        self.personal_unsubscribe = personal_unsubscribe
        self.subject_holes = holes and bool(HOLE.search(subject))
        self.subject = subject
        head = [address_header("From", from_name, from_email)]
        if self.subject_holes:
            check_header_text("Subject", subject)
        else:
            head.append(header_value("Subject", subject))
        if reply_to:
            head.append(address_header("Reply-To", None, reply_to))
        head.append("MIME-Version: 1.0")
        head.append(fold("Content-Type", f'multipart/alternative; boundary="{boundary}"'))
        head.extend(header_value(name, value) for name, value in (headers or {}).items())
        self.head = ("\r\n".join(head) + "\r\n").encode("utf-8")
        for line in self.head.split(b"\r\n"):
            if len(line) > MAX_LINE:
                raise ContentError(
                    f"{label}: header line longer than {MAX_LINE} "
                    f"characters (RFC 5322 2.1.1): {line[:60]!r}..."
                )
        self.pieces = self._body(boundary, text, html)
        self.keys = tuple(sorted({p for p in self.pieces if isinstance(p, str)}))
        # The same, dot-stuffed for the wire and ended by the end-of-data line, so a
        # recipient's message needs no 36 KB search for CRLF "." (about 30 µs). Static
        # pieces never start a line with ".": the first starts with CRLF, the others
        # with a soft line break; values are stuffed one by one in ``render``.
        wire_pieces = [stuff(p) if isinstance(p, bytes) else p for p in self.pieces]
        wire_pieces[-1] = wire_pieces[-1] + b".\r\n"  # the last piece is the closing boundary
        self.wire_pieces = wire_pieces

    def _body(self, boundary: str, text: str, html: str) -> list[bytes | str]:
        """The two parts as QP bytes and hole names, neighbouring bytes merged."""
        pieces: list[bytes | str] = [b"\r\n"]
        for subtype, part in (("plain", text), ("html", html)):
            pieces.append(
                f'--{boundary}\r\nContent-Type: text/{subtype}; charset="utf-8"\r\n'
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n".encode()
            )
            pieces.extend(self._holes(part) if self.holes else [qp(part)])
            pieces.append(b"\r\n")
        pieces.append(f"--{boundary}--\r\n".encode())
        merged: list[bytes | str] = []
        for piece in pieces:
            if isinstance(piece, bytes) and merged and isinstance(merged[-1], bytes):
                merged[-1] = merged[-1] + piece
            else:
                merged.append(piece)
        return merged

    @staticmethod
    def _holes(text: str) -> list[bytes | str]:
        """QP pieces; every hole sits between soft line breaks so values splice in."""
        out: list[bytes | str] = []
        position = 0
        for match in HOLE.finditer(text):
            static = qp(text[position : match.start()])
            out.append(static if not static or static.endswith(b"\r\n") else static + _SOFT_BREAK)
            out.append(match.group(1))
            out.append(_SOFT_BREAK)
            position = match.end()
        out.append(qp(text[position:]))
        return out

    def render(
        self,
        to_email: str,
        to_name: str | None,
        values: Mapping[str, str],
        *,
        date: str,
        message_id: str,
        wire: bool = False,
    ) -> bytes:
        """One recipient's message; ``wire``: dot-stuffed and ended by "." as DATA sends it.

        Values made without the greeting keys get them from ``to_name`` (personal_values).
        """
        if GREETING not in values:
            values = {**personal_values(to_name), **values}
        encoded = {key: qp(values.get(key, "")) for key in self.keys}
        pieces = self.pieces
        if wire:
            pieces = self.wire_pieces
            for key, value in encoded.items():
                if value.startswith(b".") or b"\r\n." in value:
                    encoded[key] = stuff(value)
        to = address_header("To", safe_display_name(to_name), to_email)
        head = [f"Date: {date}\r\nMessage-ID: <{message_id}>\r\n{to}\r\n"]
        if self.personal_unsubscribe:
            unsubscribe = f"<{values[UNSUBSCRIBE_URL]}>"
            head.append(header_value("List-Unsubscribe", unsubscribe) + "\r\n")
        if self.subject_holes:
            # A value goes into the subject on one line: a stored name never breaks it.
            subject = HOLE.sub(
                lambda m: one_line(values[m.group(1)]) if m.group(1) in values else m.group(0),
                self.subject,
            )
            head.append(header_value("Subject", subject) + "\r\n")
        body = b"".join(p if isinstance(p, bytes) else encoded[p] for p in pieces)
        return "".join(head).encode("utf-8") + self.head + body
