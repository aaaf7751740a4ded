"""``NEWSLETTER_SMTP_URL`` read once: host, port, login, TLS (see ``providers.smtp``)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from newsletter.errors import ConfigError

_TRUE = {"1", "true", "yes", "on"}


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
