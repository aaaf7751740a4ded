"""Choose the email provider named by ``NEWSLETTER_PROVIDER``, fit for the mail it sends.

Every copy of a campaign carries a per-reader one-click unsubscribe link
(``List-Unsubscribe`` with ``List-Unsubscribe-Post``) built on ``NEWSLETTER_BASE_URL``.
RFC 8058 section 3.1 requires that URI to be HTTPS, and mailbox providers ignore one
that is not, so real sending (SendGrid, SMTP) with an ``http://`` base URL is refused
here, where the provider for a send is built: every path (CLI, API, scheduler,
test-send) gets the same one-line ConfigError. The file outbox and the demo may keep
``http://127.0.0.1``: their mail never reaches a mailbox provider.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from campaigns.delivery.providers.base import Provider
from newsletter.errors import ConfigError
from newsletter.settings import Settings

REAL_PROVIDERS = frozenset({"sendgrid", "smtp"})


def check_one_click_links(settings: Settings) -> None:
    """Raise ConfigError naming NEWSLETTER_BASE_URL when real mail would carry http links."""
    if settings.provider not in REAL_PROVIDERS:
        return
    scheme = urlsplit(settings.base_url.strip()).scheme.lower()
    if scheme != "https":
        raise ConfigError(
            f"NEWSLETTER_BASE_URL must be an https:// address to send through "
            f"{settings.provider}: one-click unsubscribe links must be HTTPS (RFC 8058); "
            f"it is {settings.base_url!r}"
        )


def make_sending_provider(settings: Settings) -> Provider:
    """The configured provider for sending a campaign (or a test copy of one): ConfigError
    when real mail would carry http links (:func:`check_one_click_links`)."""
    check_one_click_links(settings)
    return make_provider(settings)


def make_provider(settings: Settings) -> Provider:
    """The configured provider, ready to send; the caller closes it (it is a context manager)."""
    name = settings.provider
    if name == "outbox":
        from campaigns.delivery.providers.outbox import OutboxProvider

        return OutboxProvider(settings.outbox_dir)
    if name == "sendgrid":
        from campaigns.delivery.providers.sendgrid import SendGridProvider

        return SendGridProvider.from_settings(settings)
    if name == "smtp":
        from campaigns.delivery.providers.smtp import SmtpProvider

        return SmtpProvider.from_settings(settings)
    raise ConfigError(
        f"NEWSLETTER_PROVIDER={name!r} is not a provider we know; use outbox, sendgrid or smtp"
    )
