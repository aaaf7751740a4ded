"""The one error hierarchy of the service.

Doors catch :class:`NewsletterError` and show its message; anything else is a bug and
keeps its traceback::

    NewsletterError
    ├── ConfigError               a setting is missing or invalid
    ├── DatabaseError             the database cannot be reached or migrated
    ├── NotFound                  an id, address or token names nothing
    ├── InvalidInput              bad user input (carries where: file, line, field)
    │   ├── InvalidEmail
    │   ├── ImportProblem         one bad row or entry of an import
    │   ├── PayloadTooLarge       a request body over its size limit (HTTP 413)
    │   ├── ChallengeFailed       a form's proof of work is missing, wrong, expired or used
    │   └── FetchFailed           a URL we were given cannot be fetched (carries broken)
    │       ├── FetchRefused      its address or a redirect's scheme is not allowed
    │       ├── FetchTimedOut     the fetch's one deadline ran out
    │       └── FetchTooLarge     the answer is over its size limit
    ├── TokenError                a signed link that does not verify
    │   ├── TokenExpired
    │   └── TokenInvalid          tampered, wrong purpose, or unknown key
    ├── ConsentError              the consent rules forbid this change
    │   └── Suppressed            the address is on the suppression list: no mail may start
    ├── StateError                an illegal state transition (HTTP 409)
    │   ├── StatusChanged         the status changed under us (a concurrent request won)
    │   └── CampaignLocked        the campaign is sending or went out: its content is fixed
    ├── RateLimited               too many tries from one client (carries retry_after)
    ├── AccessError               the console's sign-in and roles (issue 14)
    │   ├── LoginFailed           wrong email or password, or a disabled user
    │   ├── NotSignedIn           no console session, or it expired (pages redirect)
    │   └── PermissionDenied      the user's role does not allow this, or a bad CSRF token
    ├── TemplateError             Jinja2 or MJML failed (carries template and line)
    ├── ContentError              not enough snippets, preflight failed
    ├── SchedulerError            another instance is active, lease lost
    └── ProviderError             the email provider refused or failed (status, response)
        ├── ProviderAuthError     401/403, bad login or TLS: stop the campaign
        ├── ProviderRejected      400: this batch is bad, the campaign goes on
        └── ProviderUnavailable   429/5xx/timeout: retry later
"""

from __future__ import annotations


class NewsletterError(Exception):
    """Base of every expected error; its message is meant for a human."""


class ConfigError(NewsletterError):
    pass


class DatabaseError(NewsletterError):
    pass


class NotFound(NewsletterError):
    pass


class LinkNotFound(NotFound):
    """Issue 15: a click or pixel link that is not one we made (tampered, foreign, or a
    link number outside its campaign): answered 404, never redirected."""


class PageNotFound(NotFound):
    """A public page that does not exist, such as an archive issue not published (issue
    15): 404 on pages too, where a dead signed link's NotFound answers 400."""


class InvalidInput(NewsletterError):
    """Bad input, one line: ``where`` (file and line), ``field``; ``advised`` when the
    message already says what to do, so a door adds no advice of its own."""

    def __init__(
        self,
        message: str,
        *,
        where: str | None = None,
        field: str | None = None,
        advised: bool = False,
    ) -> None:
        self.where = where
        self.field = field
        self.advised = advised
        prefix = ", ".join(p for p in (where, f"field {field!r}" if field else None) if p)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.reason = message


class InvalidEmail(InvalidInput):
    pass


class ImportProblem(InvalidInput):
    pass


class PayloadTooLarge(InvalidInput):
    """A request body over its limit, refused before it is read whole (RFC 9110 15.5.14)."""


class ChallengeFailed(InvalidInput):
    """The sign-up form's proof of work (ALTCHA) did not verify: missing, tampered,
    wrong, expired, or already used once."""


class FetchFailed(InvalidInput):
    """A URL someone named (a feed, an image or link of an issue) could not be fetched:
    no such host, refused connection, TLS, or a broken answer. ``broken`` is True when the
    server answered something that is not HTTP (another method may fare better)."""

    def __init__(self, message: str, *, where: str | None = None, broken: bool = False) -> None:
        super().__init__(message, where=where)
        self.broken = broken


class FetchRefused(FetchFailed):
    """The fetch policy forbids it (``newsletter.net``): the host resolves only to loopback,
    private, link-local or other non-public addresses, or a redirect leaves http(s)."""


class FetchTimedOut(FetchFailed):
    """The one deadline of a whole fetch ran out (connect, redirects, headers and body)."""


class FetchTooLarge(FetchFailed):
    """The answer is larger than the caller's limit (by Content-Length or bytes read)."""


class TokenError(NewsletterError):
    pass


class TokenExpired(TokenError):
    pass


class TokenInvalid(TokenError):
    pass


class ConsentError(NewsletterError):
    pass


class StateError(NewsletterError):
    pass


class RateLimited(NewsletterError):
    """Too many tries from one client in a window; ``retry_after`` is in seconds
    (what an HTTP door sends as ``Retry-After``, RFC 9110 10.2.3)."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class AccessError(NewsletterError):
    """Who may use the marketer's console, and for what (issue 14)."""


class LoginFailed(AccessError):
    """Wrong email or password, or a disabled user: one message for all three, so a
    login form does not tell which addresses have an account."""


class NotSignedIn(AccessError):
    """No console session, or it expired or does not verify: sign in again."""


class PermissionDenied(AccessError):
    """Signed in, but the role does not allow this (or a form's CSRF token is wrong)."""


class Suppressed(ConsentError):
    """An operator's act (``subscribers add``, an import) would mail a suppressed address."""


class StatusChanged(StateError):
    """A compare-and-set status change found another status than the one it read."""


class CampaignLocked(StateError):
    """An edit of a campaign whose content is fixed: it is sending, sent, paused mid-send,
    failed mid-send or cancelled (issue 14). The message says why and what to do instead."""


class TemplateError(NewsletterError):
    def __init__(self, message: str, *, template: str | None = None, line: int | None = None):
        self.template = template
        self.line = line
        where = template or "<template>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")


class ContentError(NewsletterError):
    pass


class SchedulerError(NewsletterError):
    pass


class ProviderError(NewsletterError):
    def __init__(
        self, message: str, *, status: int | None = None, response: str | None = None
    ) -> None:
        self.status = status
        self.response = response
        super().__init__(message if status is None else f"{message} (HTTP {status})")


class ProviderAuthError(ProviderError):
    pass


class ProviderConfigError(ProviderAuthError, ConfigError):
    """The provider's settings cannot work with what the server offers (credentials for an
    SMTP server without AUTH): stops the campaign at once, no retries (issue 15)."""


class ProviderRejected(ProviderError):
    pass


class ProviderUnavailable(ProviderError):
    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        response: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, status=status, response=response)


class HeaderInjection(ContentError):
    """A header value or display name holds a line break or another control character:
    written out, it could end the header and start one of the sender's choosing."""
