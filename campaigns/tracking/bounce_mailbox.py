"""The bounce mailbox over IMAP (RFC 9051 / 3501; stdlib imaplib): list, read, put away.

``NEWSLETTER_BOUNCE_IMAP_URL``: ``imaps://user:password@host:993/INBOX`` (implicit TLS),
``imap://user:password@host:143/INBOX`` (STARTTLS, required unless ``?starttls=0``, for
a server on this machine only), ``?verify=0`` to skip certificate checks (a test server).
The user and password are percent-decoded, the folder defaults to INBOX. Read messages go
to ``NEWSLETTER_BOUNCE_PROCESSED_FOLDER`` (created when missing): with MOVE (RFC 6851)
when offered, else COPY, ``\\Seen \\Deleted`` and EXPUNGE.
"""

from __future__ import annotations

import contextlib
import imaplib
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from newsletter.errors import ConfigError, FetchFailed
from newsletter.settings import Settings

__all__ = ["ImapConfig", "Mailbox"]

_TRUE = {"1", "true", "yes", "on"}
_LOCAL = {"127.0.0.1", "::1", "localhost"}


@dataclass(frozen=True)
class ImapConfig:
    host: str
    port: int
    user: str
    password: str
    folder: str
    implicit_tls: bool
    starttls: bool
    verify: bool

    @classmethod
    def parse(cls, url: str) -> ImapConfig:
        """Raises ConfigError naming the setting for anything it cannot use."""
        parts = urlsplit(url)
        name = "NEWSLETTER_BOUNCE_IMAP_URL"
        if parts.scheme not in ("imap", "imaps") or not parts.hostname:
            raise ConfigError(
                f"{name} must look like imaps://user:password@host:993/INBOX "
                f"(got scheme {parts.scheme!r})"
            )
        if not parts.username or parts.password is None:
            raise ConfigError(f"{name} needs a user and a password (imaps://user:password@...)")
        query = {k: v[-1].lower() for k, v in parse_qs(parts.query).items()}
        implicit = parts.scheme == "imaps"
        try:
            port = parts.port or (993 if implicit else 143)
        except ValueError as err:
            raise ConfigError(f"{name} has an invalid port: {err}") from err
        starttls = not implicit and query.get("starttls", "1") in _TRUE
        if not implicit and not starttls and parts.hostname not in _LOCAL:
            raise ConfigError(
                f"{name}: ?starttls=0 sends the password in clear; only for a server on "
                "this machine (127.0.0.1)"
            )
        return cls(
            host=parts.hostname,
            port=port,
            user=unquote(parts.username),
            password=unquote(parts.password),
            folder=unquote(parts.path.strip("/")) or "INBOX",
            implicit_tls=implicit,
            starttls=starttls,
            verify=query.get("verify", "1") in _TRUE,
        )


def _why(err: BaseException) -> str:
    """An imaplib error in words (it carries the server's bytes as they came)."""
    first = err.args[0] if err.args else None
    return first.decode(errors="replace") if isinstance(first, bytes) else str(err)


def _quoted(folder: str) -> str:
    """A mailbox name as an IMAP quoted string (imaplib sends arguments as given)."""
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Mailbox:
    """One session with the bounce mailbox: ``with Mailbox(...) as box: box.messages()``."""

    def __init__(self, config: ImapConfig, *, processed: str, timeout: float = 30.0) -> None:
        self.config = config
        self.processed = processed
        self.timeout = timeout
        self._imap: imaplib.IMAP4 | None = None
        self.moves = False  # whether the server offers MOVE (RFC 6851), known after login

    @classmethod
    def from_settings(cls, settings: Settings) -> Mailbox:
        config = ImapConfig.parse(settings.require("bounce_imap_url"))
        return cls(config, processed=settings.bounce_processed_folder)

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.config.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def __enter__(self) -> Mailbox:
        cfg = self.config
        where = f"the bounce mailbox {cfg.host}:{cfg.port}"
        try:
            if cfg.implicit_tls:
                imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    cfg.host, cfg.port, ssl_context=self._context(), timeout=self.timeout
                )
            else:
                imap = imaplib.IMAP4(cfg.host, cfg.port, timeout=self.timeout)
                if cfg.starttls:
                    imap.starttls(ssl_context=self._context())
            self._imap = imap
            imap.login(cfg.user, cfg.password)
            self._check(imap.select(_quoted(cfg.folder)), f"select {cfg.folder}")
            # Capabilities after login (RFC 9051 6.2.2: they may change with it).
            offered = b" ".join(self._check(imap.capability(), "capability") or [b""])
            self.moves = b"MOVE" in offered.upper().split()
            with contextlib.suppress(imaplib.IMAP4.error):
                imap.create(_quoted(self.processed))  # NO when it exists: fine
        except (imaplib.IMAP4.error, OSError) as err:
            self.close()
            raise FetchFailed(f"{where}: {_why(err)}") from err
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        imap, self._imap = self._imap, None
        if imap is None:
            return
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            if imap.state == "SELECTED":
                imap.close()  # expunges what was flagged \Deleted
            imap.logout()

    @staticmethod
    def _check(answer: tuple[str, list[object]], what: str) -> list[object]:
        status, data = answer
        if status != "OK":
            raise imaplib.IMAP4.error(f"{what}: {status} {data!r}")
        return data

    def messages(self) -> Iterator[tuple[bytes, bytes]]:
        """(uid, the message's bytes) of every undeleted message in the folder, oldest first."""
        imap = self._imap
        assert imap is not None
        try:
            data = self._check(imap.uid("SEARCH", "UNDELETED"), "search")
            uids = (data[0] or b"").split() if data else []
            for uid in uids:
                fetched = self._check(imap.uid("FETCH", uid, "(BODY.PEEK[])"), "fetch")
                raw = next((item[1] for item in fetched if isinstance(item, tuple)), None)
                if isinstance(raw, bytes):
                    yield uid, raw
        except (imaplib.IMAP4.error, OSError) as err:
            raise FetchFailed(f"the bounce mailbox {self.config.host}: {_why(err)}") from err

    def done(self, uid: bytes) -> None:
        """Put a read message away in the processed folder."""
        imap = self._imap
        assert imap is not None
        target = _quoted(self.processed)
        try:
            if self.moves:
                self._check(imap.uid("MOVE", uid, target), "move")
                return
            self._check(imap.uid("COPY", uid, target), "copy")
            self._check(imap.uid("STORE", uid, "+FLAGS.SILENT", r"(\Seen \Deleted)"), "flag")
        except (imaplib.IMAP4.error, OSError) as err:
            raise FetchFailed(f"the bounce mailbox {self.config.host}: {_why(err)}") from err
