"""Issue 15: with our own tracking in the content, SendGrid's is turned off for that send."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session

from campaigns.delivery.sending import send_campaign
from newsletter.settings import Settings
from tests.conftest import make_settings
from tests.support.content import make_campaign, make_snippet
from tests.support.delivery import API_KEY
from tests.support.fake_sendgrid import FakeSendGrid
from tests.support.subscribers import make_subscriber, sqlite_only

OFF = {
    "click_tracking": {"enable": False, "enable_text": False},
    "open_tracking": {"enable": False},
}


def send(settings: Settings, session: Session, fake: FakeSendGrid, **overrides: object) -> dict:
    cfg = make_settings(
        settings.database_url, Path(settings.outbox_dir).parent, provider="sendgrid",
        base_url="https://news.example.com", sendgrid_api_key=API_KEY,
        sendgrid_api_host=fake.url, **overrides,
    )  # fmt: skip
    campaign = make_campaign(session, [make_snippet(session, cfg)], week="2026-W49")
    make_subscriber(session, "reader@example.com")
    send_campaign(session, settings=cfg, campaign_id=campaign.id or 0, preflight=False)
    assert len(fake.requests) == 1
    return fake.requests[0]


@sqlite_only
def test_our_tracking_turns_sendgrids_click_and_open_tracking_off(
    settings: Settings, session: Session, fake: FakeSendGrid
):
    body = send(settings, session, fake)
    assert body["tracking_settings"] == OFF
    token = body["personalizations"][0]["substitutions"]["[%track%]"]
    html = next(c["value"] for c in body["content"] if c["type"] == "text/html")
    assert len(token) <= 24 and "https://news.example.com/r/[%track%]/0" in html
    assert '<img src="https://news.example.com/o/[%track%]"' in html


@sqlite_only
def test_without_our_tracking_sendgrids_account_settings_apply(
    settings: Settings, session: Session, fake: FakeSendGrid
):
    body = send(settings, session, fake, tracking=False)
    assert "tracking_settings" not in body
    assert "[%track%]" not in body["personalizations"][0]["substitutions"]
