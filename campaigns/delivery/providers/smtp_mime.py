"""A campaign's RFC 5322 message as pre-rendered bytes with holes, filled per recipient.

The MIME structure is built once per campaign as quoted-printable bytes with holes where
placeholders were. Each hole starts and ends on a soft line break, so a recipient's value
is QP-encoded on its own (a few dozen bytes, in C) and spliced in; no ``email.message``
per recipient. Lines end in CRLF; body lines stay within 76 columns and header lines are
folded (RFC 5322 2.2.3), so no line comes near the 998 limit.
"""

from __future__ import annotations

import binascii
import re
import uuid
from email.header import Header

from campaigns.delivery.providers.base import BulkContent, Recipient
from newsletter.errors import ContentError
from newsletter.mail import ONE_CLICK, PLACEHOLDER_KEYS, UNSUBSCRIBE_URL

HOLE = re.compile(r"\[%(" + "|".join(re.escape(k) for k in PLACEHOLDER_KEYS) + r")%\]")
_SOFT_BREAK = b"=\r\n"
MAX_LINE = 998
_FOLD_AT = 78
_SPECIALS = re.compile(r'[][\\()<>@,:;".]')
_ESCAPES = re.compile(r'[\\"]')
DKIM_HEADERS = [
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"MIME-Version",
    b"Content-Type",
    b"List-Id",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
]


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


def fold(name: str, value: str) -> str:
    """``Name: value`` folded at spaces into lines of at most 78 characters where possible."""
    line = f"{name}: {value}"
    if len(line) <= _FOLD_AT and "\r" not in line and "\n" not in line:
        return line
    words = " ".join(line.split()).split(" ")  # no bare CR/LF may reach the wire
    lines = [words[0]]
    for word in words[1:]:
        if (
            len(lines[-1]) + 1 + len(word) > _FOLD_AT
            and len(lines) + len(lines[-1]) > len(name) + 2
        ):
            lines.append(" " + word)
        else:
            lines[-1] += " " + word
    return "\r\n".join(lines)


def header(name: str, value: str) -> str:
    """A header line: folded ASCII, or RFC 2047 encoded words of at most 75 characters."""
    if value.isascii():
        return fold(name, value)
    encoded = Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    return f"{name}: {encoded}"


def address(name: str | None, email: str, *, field: str = "To") -> str:
    """``Name <a@b>`` for From/To, the name as encoded words when it is not ASCII."""
    if not name:
        return email
    if name.isascii():  # formataddr's quoting, without its refusal of a UTF-8 address
        name = _ESCAPES.sub(r"\\\g<0>", name)
        return f'"{name}" <{email}>' if _SPECIALS.search(name) else f"{name} <{email}>"
    return Header(name, "utf-8", header_name=field).encode(linesep="\r\n") + f" <{email}>"


class MimeTemplate:
    """A campaign's message as bytes with holes; ``render`` fills one recipient's values."""

    def __init__(self, content: BulkContent, *, boundary: str | None = None) -> None:
        self.content = content
        boundary = boundary or f"=_nl_{uuid.uuid4().hex}"
        self.domain = content.from_email.rpartition("@")[2] or "localhost"
        subject = ("[TEST] " if content.test else "") + content.subject
        self.subject_holes = bool(HOLE.search(subject))
        self.subject = subject
        head = [
            fold("From", address(content.from_name, content.from_email, field="From")),
            *([] if self.subject_holes else [header("Subject", subject)]),
            "MIME-Version: 1.0",
            fold("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
            header("List-Id", content.list_id),
            f"List-Unsubscribe-Post: {ONE_CLICK}",
        ]
        if content.reply_to:
            head.append(fold("Reply-To", content.reply_to))
        if content.test:
            head.append("X-Newsletter-Test: yes")
        self.head = ("\r\n".join(head) + "\r\n").encode("utf-8")
        for line in self.head.split(b"\r\n"):
            if len(line) > MAX_LINE:
                raise ContentError(
                    f"campaign {content.campaign_id}: header line longer than {MAX_LINE} "
                    f"characters (RFC 5322 2.1.1): {line[:60]!r}..."
                )
        pieces: list[bytes | str] = [b"\r\n"]
        for subtype, text in (("plain", content.text), ("html", content.html)):
            pieces.append(
                f'--{boundary}\r\nContent-Type: text/{subtype}; charset="utf-8"\r\n'
                "Content-Transfer-Encoding: quoted-printable\r\n\r\n".encode()
            )
            pieces.extend(self._holes(text))
            pieces.append(b"\r\n")
        pieces.append(f"--{boundary}--\r\n".encode())
        # Merge neighbouring static pieces so rendering joins as few parts as possible.
        merged: list[bytes | str] = []
        for piece in pieces:
            if isinstance(piece, bytes) and merged and isinstance(merged[-1], bytes):
                merged[-1] = merged[-1] + piece
            else:
                merged.append(piece)
        self.pieces = merged
        self.keys = tuple(sorted({p for p in merged if isinstance(p, str)}))
        # The same, dot-stuffed for the wire and ended by the end-of-data line, so a
        # recipient's message needs no 36 KB search for CRLF "." (about 30 µs). Static
        # pieces never start a line with ".": the first starts with CRLF, the others
        # with a soft line break; values are stuffed one by one in ``render``.
        wire = [stuff(p) if isinstance(p, bytes) else p for p in merged]
        wire[-1] = wire[-1] + b".\r\n"  # the last piece is the closing boundary
        self.wire_pieces = wire

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
        self, recipient: Recipient, *, date: str, message_id: str, wire: bool = False
    ) -> bytes:
        """The message; ``wire``: dot-stuffed and ended by "." as DATA sends it."""
        values = recipient.values
        encoded = {key: qp(values.get(key, "")) for key in self.keys}
        pieces = self.pieces
        if wire:
            pieces = self.wire_pieces
            for key, value in encoded.items():
                if value.startswith(b".") or b"\r\n." in value:
                    encoded[key] = stuff(value)
        to = address(recipient.name, recipient.email)
        to = f"To: {to}" if len(to) < _FOLD_AT - 4 and "\n" not in to else fold("To", to)
        head = [
            f"Date: {date}\r\nMessage-ID: <{message_id}>\r\n{to}\r\n"
            f"List-Unsubscribe: <{values[UNSUBSCRIBE_URL]}>\r\n"
        ]
        if self.subject_holes:
            subject = HOLE.sub(lambda m: values.get(m.group(1), m.group(0)), self.subject)
            head.append(header("Subject", subject) + "\r\n")
        body = b"".join(p if isinstance(p, bytes) else encoded[p] for p in pieces)
        return "".join(head).encode("utf-8") + self.head + body
