"""Real mail carries only working one-click links (issue 12.6).

RFC 8058 requires the one-click unsubscribe URI to be HTTPS; mailbox providers ignore
one that is not. A send through SendGrid or SMTP with an ``http://`` NEWSLETTER_BASE_URL
is refused before anything is queued, leased or sent, in one line naming the setting,
on every path that sends (the CLI's `campaigns send` and `test-send`, the scheduler's job,
the API's scheduled campaigns all reach ``send_campaign`` / ``test_send``, which build
the provider with ``make_sending_provider``). The outbox and the demo keep http://127.0.0.1.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from campaigns.delivery import sending
from campaigns.delivery.ledger import delivery_counts
from campaigns.delivery.providers.factory import make_sending_provider
from campaigns.delivery.providers.sendgrid import SendGridProvider
from campaigns.delivery.sending import send_campaign
from campaigns.models import Campaign, Delivery
from newsletter import db
from newsletter.errors import ConfigError
from newsletter.models import Lease
from newsletter.settings import Settings
from tests.conftest import make_settings
from tests.support.delivery import API_KEY, add_subscribers, make_campaign
from tests.support.fake_sendgrid import FakeSendGrid
from tests.support.servers import free_port

NEWSLETTER = str(Path(sys.executable).parent / "newsletter")
REFUSAL = "NEWSLETTER_BASE_URL must be an https:// address to send through"


def real(settings: Settings, provider: str, fake: FakeSendGrid, base_url: str) -> Settings:
    return make_settings(
        settings.database_url,
        Path(settings.outbox_dir).parent,
        provider=provider,
        base_url=base_url,
        sendgrid_api_key=API_KEY,
        sendgrid_api_host=fake.url,
        smtp_url=f"smtp://127.0.0.1:{free_port()}",  # nothing listens: nothing may try
    )


@pytest.mark.parametrize("provider", ["sendgrid", "smtp"])
@pytest.mark.parametrize("base_url", ["http://127.0.0.1:8000", "http://news.example.com"])
def test_a_real_send_with_an_http_base_url_is_refused_and_touches_nothing(
    settings: Settings,
    engine: Engine,
    session: Session,
    fake: FakeSendGrid,
    provider: str,
    base_url: str,
) -> None:
    add_subscribers(engine, 5)
    campaign = make_campaign(session)
    cfg = real(settings, provider, fake, base_url)
    with pytest.raises(ConfigError) as raised:
        send_campaign(session, settings=cfg, campaign_id=campaign.id, preflight=False)
    message = str(raised.value)
    assert message.startswith(REFUSAL) and "RFC 8058" in message and base_url in message
    assert "\n" not in message
    assert fake.attempts == 0
    session.expire_all()
    assert session.get(Campaign, campaign.id).status == "scheduled"
    assert session.exec(select(func.count()).select_from(Delivery)).one() == 0
    assert session.exec(select(func.count()).select_from(Lease)).one() == 0


@pytest.mark.parametrize("provider", ["sendgrid", "smtp"])
def test_a_test_send_with_an_http_base_url_is_refused(
    settings: Settings, engine: Engine, session: Session, fake: FakeSendGrid, provider: str
) -> None:
    campaign = make_campaign(session)
    cfg = real(settings, provider, fake, "http://news.example.com")
    with pytest.raises(ConfigError, match=REFUSAL):
        sending.test_send(session, settings=cfg, campaign_id=campaign.id, to_email="me@example.com")
    assert fake.attempts == 0


def test_the_factory_refuses_http_for_real_mail_and_builds_with_https(
    sqlite_settings: Settings, fake: FakeSendGrid
) -> None:
    with pytest.raises(ConfigError, match=REFUSAL):
        make_sending_provider(real(sqlite_settings, "sendgrid", fake, "http://x.example.com"))
    cfg = real(sqlite_settings, "sendgrid", fake, "https://news.example.com")
    with make_sending_provider(cfg) as provider:
        assert isinstance(provider, SendGridProvider)


def test_a_real_send_with_an_https_base_url_goes_out(
    settings: Settings, engine: Engine, session: Session, fake: FakeSendGrid
) -> None:
    add_subscribers(engine, 5)
    campaign = make_campaign(session)
    cfg = real(settings, "sendgrid", fake, "https://news.example.com")
    report = send_campaign(session, settings=cfg, campaign_id=campaign.id, preflight=False)
    assert (report.status, report.sent) == ("sent", 5)
    personalization = fake.requests[0]["personalizations"][0]
    assert personalization["headers"]["List-Unsubscribe"].startswith(
        "<https://news.example.com/unsubscribe/"
    )


def test_the_outbox_keeps_http_127_0_0_1(
    settings: Settings, engine: Engine, session: Session
) -> None:
    add_subscribers(engine, 3)
    campaign = make_campaign(session)
    assert settings.provider == "outbox" and settings.base_url == "http://127.0.0.1:8000"
    report = send_campaign(session, settings=settings, campaign_id=campaign.id, preflight=False)
    assert (report.status, report.sent) == ("sent", 3)
    assert delivery_counts(session, campaign_id=campaign.id).sent == 3


@pytest.mark.parametrize("command", [["send"], ["test-send", "--to", "me@example.com"]])
def test_the_cli_says_it_in_one_line(
    sqlite_settings: Settings, sqlite_engine: Engine, tmp_path: Path, command: list[str]
) -> None:
    with Session(sqlite_engine) as session:
        campaign_id = make_campaign(session).id
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update(
        NEWSLETTER_DATABASE_URL=sqlite_settings.database_url,
        NEWSLETTER_PROVIDER="smtp",
        NEWSLETTER_SMTP_URL=f"smtp://127.0.0.1:{free_port()}",
        NEWSLETTER_BASE_URL="http://news.example.com",
        NEWSLETTER_SECRET_KEY="test-secret-key-0123456789abcdef",
        NEWSLETTER_POSTAL_ADDRESS="Pain Relief Weekly, 12 Test Street, Springfield, USA",
    )
    result = subprocess.run(
        [NEWSLETTER, "campaigns", command[0], str(campaign_id), *command[1:]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "NEWSLETTER_BASE_URL" in lines[0], result.stderr
    db.dispose_engine(sqlite_settings.database_url)
