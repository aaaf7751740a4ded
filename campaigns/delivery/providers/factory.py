"""Choose the email provider named by ``NEWSLETTER_PROVIDER``."""

from __future__ import annotations

from campaigns.delivery.providers.base import Provider
from newsletter.errors import ConfigError
from newsletter.settings import Settings


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
