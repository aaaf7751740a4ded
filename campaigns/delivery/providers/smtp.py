"""SMTP: one RFC 5322 message per recipient over a reused connection per sending thread.

Speed: the message is pre-rendered once per campaign (``newsletter.mail.MimeTemplate``,
the encoder the outbox writes with too) and each recipient's values are spliced into
the bytes. smtplib waits for a reply after every
command, four round trips per message. When the server advertises PIPELINING (RFC 2920)
one write carries a message's end (pre-stuffed bytes and ".") and the next message's
MAIL, RCPT and DATA, and the four replies are read in order: one round trip per message,
about half the CPU. Servers without PIPELINING get the commands one at a time. smtplib
still does the connection, EHLO, STARTTLS and AUTH (the envelope and its replies:
``smtp_replies``). DKIM (dkimpy) signs each message when configured; it costs
milliseconds per message, far more than building it. The send loop has a batch's messages
made (``prepare``) on its own thread while the batch before is on the wire, so the
sending thread's time is the server's round trips, not our rendering behind them.

``NEWSLETTER_SMTP_URL``: ``smtp://user:pass@host:587?starttls=1`` (STARTTLS),
``smtps://user:pass@host:465`` (implicit TLS), ``smtp://host:25`` (plain, for a local
relay). ``verify=0`` skips certificate checks (a local test relay only);
``NEWSLETTER_SMTP_CA_FILE`` trusts a private CA instead.
"""

from __future__ import annotations

import contextlib
import secrets
import smtplib
import socket
import ssl
import threading
from collections.abc import Sequence
from email.utils import format_datetime, make_msgid
from pathlib import Path

from campaigns.delivery.providers.base import (
    BatchResult,
    BulkContent,
    Prepared,
    Provider,
    Recipient,
    SendStatus,
    made_for,
)
from campaigns.delivery.providers.smtp_config import SmtpConfig
from campaigns.delivery.providers.smtp_replies import (
    MESSAGE,
    Item,
    Refusal,
    envelope,
    envelope_refusal,
    record_reply,
)
from newsletter.clock import utcnow
from newsletter.errors import (
    ConfigError,
    ProviderAuthError,
    ProviderConfigError,
    ProviderRejected,
    ProviderUnavailable,
)
from newsletter.mail import MimeTemplate, OutgoingMessage, build_mime, wire
from newsletter.settings import Settings

__all__ = ["DKIM_HEADERS", "SmtpConfig", "SmtpProvider"]

DKIM_HEADERS = [  # what DKIM signs: the headers a receiver shows or acts on
    *b"From To Subject Date Message-ID MIME-Version Content-Type".split(),
    *b"List-Id List-Unsubscribe List-Unsubscribe-Post".split(),
]


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
        ca_file: Path | None = None,
    ) -> None:
        self.config = config
        self.timeout = timeout
        self.batch_size = batch_size
        self.dkim = (dkim_domain, dkim_selector, dkim_key) if dkim_key else None
        self.tls_context = self._tls_context(config, ca_file)
        self._local = threading.local()
        self._connections: list[smtplib.SMTP] = []
        self._lock = threading.Lock()
        self._template: tuple[BulkContent, MimeTemplate] | None = None

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
            ca_file=settings.smtp_ca_file,
        )

    # ------------------------------------------------------------ connections

    @staticmethod
    def _tls_context(config: SmtpConfig, ca_file: Path | None) -> ssl.SSLContext | None:
        """Built once: loading the system CAs costs milliseconds per connection otherwise."""
        if not (config.implicit_tls or config.starttls):
            return None
        try:
            context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
        except (OSError, ssl.SSLError) as err:
            raise ConfigError(f"NEWSLETTER_SMTP_CA_FILE {ca_file}: {err}") from err
        if not config.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        try:
            if cfg.implicit_tls:
                conn: smtplib.SMTP = smtplib.SMTP_SSL(
                    cfg.host, cfg.port, timeout=self.timeout, context=self.tls_context
                )
            else:
                conn = smtplib.SMTP(cfg.host, cfg.port, timeout=self.timeout)
            # We write whole command groups and messages; never wait for an ACK to send.
            with contextlib.suppress(OSError):
                conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.ehlo()
            if cfg.starttls:
                if not conn.has_extn("starttls"):
                    conn.close()
                    raise ProviderAuthError(
                        f"the SMTP server {cfg.host}:{cfg.port} does not offer STARTTLS; we "
                        "will not send in clear (use ?starttls=0 only for a local relay)"
                    )
                conn.starttls(context=self.tls_context)
                conn.ehlo()
            if cfg.username and not conn.has_extn("auth"):
                conn.close()
                raise ProviderConfigError(
                    f"the SMTP server {cfg.host}:{cfg.port} offers no AUTH, but "
                    "NEWSLETTER_SMTP_URL names a user: remove the user and password, or "
                    "point it at the server's submission port"
                )
            if cfg.username:
                conn.login(cfg.username, cfg.password or "")
        except smtplib.SMTPAuthenticationError as err:
            raise ProviderAuthError(
                f"the SMTP server {cfg.host} refused our login: {err.smtp_error!r}",
                status=err.smtp_code,
            ) from err
        except ssl.SSLCertVerificationError as err:
            # Retrying will not help: stop the campaign and say how to fix it.
            raise ProviderAuthError(
                f"the certificate of SMTP server {cfg.host}:{cfg.port} did not verify "
                f"({err.verify_message}); set NEWSLETTER_SMTP_CA_FILE to trust a private CA"
            ) from err
        except (smtplib.SMTPException, OSError) as err:
            raise ProviderUnavailable(
                f"cannot reach SMTP server {cfg.host}:{cfg.port}: {err}"
            ) from err
        with self._lock:
            self._connections.append(conn)
        return conn

    def _connection(self) -> tuple[smtplib.SMTP, bool]:
        """This thread's connection, and whether it was opened just now."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            return conn, False
        conn = self._local.conn = self._connect()
        return conn, True

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

    def _deliver(self, items: Sequence[Item]) -> BatchResult:
        """Send (delivery id, address, wire bytes, message id, envelope sender) items over
        this thread's connection.

        With PIPELINING the end of one message and the next MAIL, RCPT, DATA go in one
        write (RFC 2920 3.1 allows it): one round trip per message. Each reply is recorded
        as soon as it is read, so a connection lost half-way keeps what was accepted.
        """
        result = BatchResult()
        conn, fresh = self._connection()
        index, sent_ahead = 0, False  # sent_ahead: items[index]'s commands already went out
        while index < len(items):
            _id, address, data, _mid, sender = items[index]
            pipelined = conn.has_extn("pipelining")
            body_sent = False
            try:
                commands = envelope(conn, sender, address)
                if isinstance(commands, tuple):  # never reaches the wire
                    refusal: Refusal | None = commands
                else:
                    refusal = envelope_refusal(conn, commands, pipelined=pipelined, sent=sent_ahead)
                sent_ahead = False
                if refusal is not None:
                    record_reply(result, items[index], refusal)
                    index += 1
                    continue
                message = data
                following = (
                    envelope(conn, items[index + 1][4], items[index + 1][1])
                    if pipelined and index + 1 < len(items)
                    else None
                )
                if isinstance(following, bytes):
                    message += following
                body_sent = True
                conn.send(message)
                code, reply = conn.getreply()
                record_reply(result, items[index], (MESSAGE, code, reply.decode(errors="replace")))
                index += 1
                sent_ahead = isinstance(following, bytes)
            except ProviderAuthError:
                self._drop()  # replies may still be due on it
                raise
            except (smtplib.SMTPException, OSError) as err:
                self._drop()
                if index == 0 and not fresh and not body_sent:
                    # A reused connection the server closed while idle: nothing left us, so
                    # one fresh connection cannot send anybody twice.
                    conn, fresh = self._connection()
                    continue
                if not result.settled:
                    raise ProviderUnavailable(f"SMTP connection failed: {err}") from err
                result.defer((rest[0] for rest in items[index:]), f"SMTP connection failed: {err}")
                return result
        if result.statuses and not result.settled:
            raise ProviderUnavailable(next(iter(result.deferred.values())))
        return result

    def send_batch(self, content: BulkContent, recipients: Sequence[Recipient]) -> BatchResult:
        return self._deliver(self._items(content, recipients))

    def prepare(
        self, content: BulkContent, recipients: Sequence[Recipient]
    ) -> Prepared[list[Item]]:
        """The batch's messages as wire bytes (personalised, DKIM-signed), made on the send
        loop's thread while the batch before is on the wire: the sending thread then only
        writes and reads replies, and the making no longer waits behind the server's."""
        return Prepared.making(recipients, lambda: self._items(content, recipients))

    def send_prepared(
        self, content: BulkContent, recipients: Sequence[Recipient], prepared: object | None
    ) -> BatchResult:
        """:meth:`send_batch` with the messages :meth:`prepare` made of ``recipients``."""
        items = made_for(prepared, recipients, lambda: self._items(content, recipients))
        return self._deliver(items)

    def _items(self, content: BulkContent, recipients: Sequence[Recipient]) -> list[Item]:
        """Each recipient's message, rendered from the campaign's template (made once)."""
        cached = self._template  # one read: prepare and a retry may run in two threads
        if cached is None or cached[0] is not content:
            cached = self._template = (content, content.mime_template())
        template = cached[1]
        date = format_datetime(utcnow())
        items = []
        # 64 random bits of its own in each Message-ID: a bounce that quotes it proves it
        # saw this message (campaigns.tracking.bounces), not just one of the batch. Drawn
        # for the whole batch at once: one getrandom call per message was 10 µs each.
        nonces = secrets.token_hex(8 * len(recipients))
        for number, recipient in enumerate(recipients):
            nonce = nonces[16 * number : 16 * number + 16]
            message_id = f"{content.campaign_id}.{recipient.delivery_id}.{nonce}@{template.domain}"
            to = (recipient.email, recipient.name, recipient.values)
            if self.dkim is None:
                data = template.render(*to, date=date, message_id=message_id, wire=True)
            else:
                data = wire(self._sign(template.render(*to, date=date, message_id=message_id)))
            sender = recipient.return_path or content.from_email
            items.append((recipient.delivery_id, recipient.email, data, message_id, sender))
        return items

    def send_message(self, message: OutgoingMessage) -> str:
        domain = message.from_email.rpartition("@")[2] or "localhost"
        message_id = make_msgid(domain=domain).strip("<>")
        data = self._sign(build_mime(message, message_id=message_id))
        item = (0, message.to_email, wire(data), message_id, message.from_email)
        status = self._deliver([item]).statuses[0]
        if status.status is SendStatus.REJECTED:
            raise ProviderRejected(f"the SMTP server refused {message.to_email}: {status.reason}")
        if status.status is SendStatus.TRANSIENT:
            raise ProviderUnavailable(f"{message.to_email} put off: {status.reason}")
        return message_id
