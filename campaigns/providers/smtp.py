"""SMTP: one RFC 5322 message per recipient over a reused connection per sending thread.

Speed: the MIME structure is built once per campaign (:class:`MimeTemplate`) as
quoted-printable bytes with holes where placeholders were. Each hole starts and ends
on a soft line break, so a recipient's value is QP-encoded on its own (a few dozen
bytes, in C) and spliced in; no ``email.message`` per recipient. DKIM (dkimpy) signs each
message when configured; it costs milliseconds per message, far more than building it.

``NEWSLETTER_SMTP_URL``: ``smtp://user:pass@host:587?starttls=1`` (STARTTLS),
``smtps://user:pass@host:465`` (implicit TLS), ``smtp://host:25`` (plain, for a local
relay). ``verify=0`` skips certificate checks (a local test relay only).
"""

from __future__ import annotations

import binascii
import contextlib
import re
import smtplib
import ssl
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email.header import Header
from email.utils import format_datetime, formataddr
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from campaigns.providers.base import BulkContent, Provider, Recipient
from campaigns.providers.partial import PartialBatchResult
from newsletter.db import utcnow
from newsletter.errors import (
    ConfigError,
    ProviderAuthError,
    ProviderRejected,
    ProviderUnavailable,
)
from newsletter.mail import (
    ONE_CLICK,
    PLACEHOLDER_KEYS,
    UNSUBSCRIBE_URL,
    OutgoingMessage,
    build_mime,
)
from newsletter.settings import Settings

_HOLE = re.compile(r"\[%(" + "|".join(re.escape(k) for k in PLACEHOLDER_KEYS) + r")%\]")
_SOFT_BREAK = b"=\r\n"
_TRUE = {"1", "true", "yes", "on"}
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


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str | None
    password: str | None
    implicit_tls: bool
    starttls: bool
    verify: bool

    @classmethod
    def parse(cls, url: str) -> SmtpConfig:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigError(
                "NEWSLETTER_SMTP_URL must look like smtp://user:pass@host:587?starttls=1 "
                f"or smtps://user:pass@host:465 (got scheme {parts.scheme!r})"
            )
        query = {k: v[-1].lower() for k, v in parse_qs(parts.query).items()}
        implicit = parts.scheme == "smtps"
        try:
            port = parts.port or (465 if implicit else 25)
        except ValueError as err:
            raise ConfigError(f"NEWSLETTER_SMTP_URL has an invalid port: {err}") from err
        return cls(
            host=parts.hostname,
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            implicit_tls=implicit,
            starttls=not implicit and query.get("starttls", "1" if port == 587 else "0") in _TRUE,
            verify=query.get("verify", "1") in _TRUE,
        )


def _qp(value: str) -> bytes:
    """Quoted-printable, CRLF line ends, soft breaks at 76 columns (binascii, in C)."""
    data = value.replace("\r\n", "\n").encode("utf-8")
    return binascii.b2a_qp(data, istext=True).replace(b"\n", b"\r\n")


def _header(value: str) -> str:
    if value.isascii():
        return value
    return Header(value, "utf-8").encode(linesep="\r\n")


class MimeTemplate:
    """A campaign's message as bytes with holes; ``render`` fills one recipient's values."""

    def __init__(self, content: BulkContent, *, boundary: str | None = None) -> None:
        self.content = content
        boundary = boundary or f"=_nl_{uuid.uuid4().hex}"
        self.domain = content.from_email.rpartition("@")[2] or "localhost"
        subject = ("[TEST] " if content.test else "") + content.subject
        self.subject_holes = bool(_HOLE.search(subject))
        self.subject = subject
        head = [
            f"From: {formataddr((content.from_name or '', content.from_email), 'utf-8')}",
            *([] if self.subject_holes else [f"Subject: {_header(subject)}"]),
            "MIME-Version: 1.0",
            f'Content-Type: multipart/alternative; boundary="{boundary}"',
            f"List-Id: {content.list_id}",
            f"List-Unsubscribe-Post: {ONE_CLICK}",
        ]
        if content.reply_to:
            head.append(f"Reply-To: {content.reply_to}")
        if content.test:
            head.append("X-Newsletter-Test: yes")
        self.head = ("\r\n".join(head) + "\r\n").encode("utf-8")
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

    @staticmethod
    def _holes(text: str) -> list[bytes | str]:
        """QP pieces; every hole sits between soft line breaks so values splice in."""
        out: list[bytes | str] = []
        position = 0
        for match in _HOLE.finditer(text):
            static = _qp(text[position : match.start()])
            out.append(static if not static or static.endswith(b"\r\n") else static + _SOFT_BREAK)
            out.append(match.group(1))
            out.append(_SOFT_BREAK)
            position = match.end()
        out.append(_qp(text[position:]))
        return out

    def render(self, recipient: Recipient, *, date: str, message_id: str) -> bytes:
        values = recipient.values
        encoded = {key: _qp(values.get(key, "")) for key in self.keys}
        to = formataddr((recipient.name or "", recipient.email), "utf-8")
        head = [
            f"Date: {date}\r\nMessage-ID: <{message_id}>\r\nTo: {to}\r\n"
            f"List-Unsubscribe: <{values[UNSUBSCRIBE_URL]}>\r\n"
        ]
        if self.subject_holes:
            subject = _HOLE.sub(lambda m: values.get(m.group(1), m.group(0)), self.subject)
            head.append(f"Subject: {_header(subject)}\r\n")
        body = b"".join(p if isinstance(p, bytes) else encoded[p] for p in self.pieces)
        return "".join(head).encode("utf-8") + self.head + body


class SmtpProvider(Provider):
    name = "smtp"

    def __init__(
        self,
        config: SmtpConfig,
        *,
        timeout: float = 30.0,
        batch_size: int = 100,
        dkim_domain: str | None = None,
        dkim_selector: str | None = None,
        dkim_key: bytes | None = None,
    ) -> None:
        self.config = config
        self.timeout = timeout
        self.batch_size = batch_size
        self.dkim = (dkim_domain, dkim_selector, dkim_key) if dkim_key else None
        self._local = threading.local()
        self._connections: list[smtplib.SMTP] = []
        self._lock = threading.Lock()
        self._template: MimeTemplate | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpProvider:
        key = None
        if settings.dkim_key_file:
            domain = settings.require("dkim_domain")
            settings.require("dkim_selector")
            try:
                key = Path(settings.dkim_key_file).read_bytes()
            except OSError as err:
                raise ConfigError(
                    f"NEWSLETTER_DKIM_KEY_FILE {settings.dkim_key_file}: {err.strerror}"
                ) from err
        else:
            domain = None
        return cls(
            SmtpConfig.parse(settings.require("smtp_url")),
            timeout=settings.smtp_timeout_seconds,
            batch_size=settings.smtp_batch_size,
            dkim_domain=domain,
            dkim_selector=settings.dkim_selector,
            dkim_key=key,
        )

    # ------------------------------------------------------------ connections

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        context = ssl.create_default_context()
        if not cfg.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        try:
            if cfg.implicit_tls:
                conn: smtplib.SMTP = smtplib.SMTP_SSL(
                    cfg.host, cfg.port, timeout=self.timeout, context=context
                )
            else:
                conn = smtplib.SMTP(cfg.host, cfg.port, timeout=self.timeout)
            conn.ehlo()
            if cfg.starttls:
                conn.starttls(context=context)
                conn.ehlo()
            if cfg.username:
                conn.login(cfg.username, cfg.password or "")
        except smtplib.SMTPAuthenticationError as err:
            raise ProviderAuthError(
                f"the SMTP server {cfg.host} refused our login: {err.smtp_error!r}",
                status=err.smtp_code,
            ) from err
        except (smtplib.SMTPException, OSError) as err:
            raise ProviderUnavailable(
                f"cannot reach SMTP server {cfg.host}:{cfg.port}: {err}"
            ) from err
        with self._lock:
            self._connections.append(conn)
        return conn

    def _connection(self) -> smtplib.SMTP:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def _drop(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._lock:
                if conn in self._connections:
                    self._connections.remove(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def close(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()

    # ------------------------------------------------------------ sending

    def _sign(self, data: bytes) -> bytes:
        if self.dkim is None:
            return data
        import dkim

        domain, selector, key = self.dkim
        signature = dkim.sign(
            data,
            (selector or "").encode(),
            (domain or "").encode(),
            key,
            include_headers=DKIM_HEADERS,
            linesep=b"\r\n",
        )
        return signature + data

    def _transmit(self, conn: smtplib.SMTP, sender: str, to: str, data: bytes) -> tuple[int, str]:
        """MAIL, RCPT, DATA for one message; (code, text) of the first refusal or the end."""
        code, reply = conn.mail(sender)
        if code != 250:
            conn.rset()
            return code, f"MAIL FROM refused: {reply.decode(errors='replace')}"
        code, reply = conn.rcpt(to)
        if code not in (250, 251):
            conn.rset()
            return code, f"RCPT TO refused: {reply.decode(errors='replace')}"
        conn.putcmd("data")
        code, reply = conn.getreply()
        if code != 354:
            conn.rset()
            return code, f"DATA refused: {reply.decode(errors='replace')}"
        # Dot-stuffing (RFC 5321 4.5.2); our lines are CRLF already.
        conn.send(data.replace(b"\r\n.", b"\r\n..") + b".\r\n")
        code, reply = conn.getreply()
        return code, reply.decode(errors="replace")

    def _deliver(
        self, items: Sequence[tuple[int, str, bytes, str]], sender: str
    ) -> PartialBatchResult:
        """Send (delivery id, address, bytes, message id) items over this thread's connection."""
        result = PartialBatchResult()
        conn = self._connection()
        for index, (delivery_id, address, data, message_id) in enumerate(items):
            try:
                code, text = self._transmit(conn, sender, address, data)
            except (smtplib.SMTPException, OSError) as err:
                self._drop()
                if not result.message_ids and not result.failed:
                    raise ProviderUnavailable(f"SMTP connection failed: {err}") from err
                for rest in items[index:]:
                    result.deferred[rest[0]] = f"SMTP connection failed: {err}"
                return result
            if code == 250:
                result.message_ids[delivery_id] = message_id
            elif code in (530, 535) and not result.message_ids:
                raise ProviderAuthError(
                    f"the SMTP server wants authentication: {text}", status=code
                )
            elif 500 <= code < 600:
                result.failed[delivery_id] = f"{code} {text}"
            else:
                result.deferred[delivery_id] = f"{code} {text}"
        if result.deferred and not result.message_ids and not result.failed:
            raise ProviderUnavailable(next(iter(result.deferred.values())))
        return result

    def send_batch(
        self, content: BulkContent, recipients: Sequence[Recipient]
    ) -> PartialBatchResult:
        template = self._template
        if template is None or template.content is not content:
            template = self._template = MimeTemplate(content)
        date = format_datetime(utcnow())
        nonce = uuid.uuid4().hex[:16]
        items = []
        for recipient in recipients:
            message_id = f"{content.campaign_id}.{recipient.delivery_id}.{nonce}@{template.domain}"
            data = self._sign(template.render(recipient, date=date, message_id=message_id))
            items.append((recipient.delivery_id, recipient.email, data, message_id))
        return self._deliver(items, content.from_email)

    def send_message(self, message: OutgoingMessage) -> str:
        data = self._sign(build_mime(message))
        match = re.search(rb"^Message-ID: <([^>]+)>", data, re.MULTILINE | re.IGNORECASE)
        message_id = match.group(1).decode() if match else uuid.uuid4().hex
        result = self._deliver([(0, message.to_email, data, message_id)], message.from_email)
        if 0 in result.failed:
            raise ProviderRejected(
                f"the SMTP server refused {message.to_email}: {result.failed[0]}"
            )
        return message_id
