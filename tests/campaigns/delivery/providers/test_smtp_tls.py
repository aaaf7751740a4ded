"""The smtp provider over TLS against aiosmtpd with a self-signed certificate made here."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaigns.delivery.providers.smtp import SmtpConfig, SmtpProvider
from newsletter.errors import ConfigError, ProviderAuthError
from tests.conftest import make_settings
from tests.support.delivery import content, recipient
from tests.support.smtp import Sink, running, self_signed, server_context


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path)


def test_starttls_then_login_delivers_with_a_trusted_private_ca(certificate):
    cert_file, key_file = certificate
    handler = Sink(pipelining=True)
    with running(
        handler,
        tls_context=server_context(cert_file, key_file),
        require_starttls=True,
        authenticator=handler.authenticate,
    ) as (_controller, port):
        url = f"smtp://ann:s3cret@127.0.0.1:{port}?starttls=1"
        with SmtpProvider(SmtpConfig.parse(url), timeout=5, ca_file=cert_file) as provider:
            result = provider.send_batch(content(), [recipient(1), recipient(2)])
    assert set(result.accepted) == {1001, 1002}
    assert handler.logins == [("ann", "s3cret", True)]
    assert [rcpts for _s, rcpts, _d in handler.messages] == [["r1@example.com"], ["r2@example.com"]]


def test_implicit_tls_delivers_with_a_trusted_private_ca(certificate):
    cert_file, key_file = certificate
    handler = Sink(pipelining=True)
    with running(handler, ssl_context=server_context(cert_file, key_file)) as (_c, port):
        url = f"smtps://127.0.0.1:{port}"
        with SmtpProvider(SmtpConfig.parse(url), timeout=5, ca_file=cert_file) as provider:
            result = provider.send_batch(content(), [recipient(1)])
    assert set(result.accepted) == {1001} and len(handler.messages) == 1


def test_an_untrusted_certificate_stops_with_the_setting_to_fix_it(certificate):
    cert_file, key_file = certificate
    handler = Sink()
    with running(handler, ssl_context=server_context(cert_file, key_file)) as (_c, port):
        provider = SmtpProvider(SmtpConfig.parse(f"smtps://127.0.0.1:{port}"), timeout=5)
        with pytest.raises(ProviderAuthError, match="NEWSLETTER_SMTP_CA_FILE"), provider:
            provider.send_batch(content(), [recipient(1)])
    assert handler.messages == []


def test_a_server_without_starttls_gets_nothing_in_clear():
    handler = Sink()
    with running(handler) as (_controller, port):
        provider = SmtpProvider(SmtpConfig.parse(f"smtp://127.0.0.1:{port}?starttls=1"), timeout=5)
        with pytest.raises(ProviderAuthError, match="STARTTLS"), provider:
            provider.send_batch(content(), [recipient(1)])
    assert handler.messages == []


def test_the_ca_file_setting_reaches_the_provider(certificate, tmp_path: Path):
    cert_file, key_file = certificate
    handler = Sink()
    with running(handler, ssl_context=server_context(cert_file, key_file)) as (_c, port):
        settings = make_settings(
            f"sqlite:///{tmp_path / 'x.db'}",
            tmp_path,
            provider="smtp",
            smtp_url=f"smtps://127.0.0.1:{port}",
            smtp_ca_file=cert_file,
        )
        with SmtpProvider.from_settings(settings) as provider:
            provider.send_batch(content(), [recipient(1)])
    assert len(handler.messages) == 1


def test_a_missing_ca_file_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="NEWSLETTER_SMTP_CA_FILE"):
        SmtpProvider(SmtpConfig.parse("smtps://mail.example.com"), ca_file=tmp_path / "missing.pem")
