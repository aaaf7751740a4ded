"""Retake issue 16's console screenshots: a campaign's sending options and the webhooks page.

    .venv/bin/python docs/screenshots/take_sending.py

A throwaway SQLite database in a temporary directory, filled through the rooms and the
test helpers (200 readers, some in other time zones; a campaign sent at 07:00 local time;
a subject test waiting for its winner, with human clicks; a sent campaign with a resend;
three webhook endpoints, one disabled), the app on 127.0.0.1, Debian's chromium at
1280 px: ``sending-local-time-1280.png``, ``sending-subject-test-1280.png`` and
``webhooks-1280.png`` next to this file.
"""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa
from playwright.sync_api import Page, sync_playwright
from sqlmodel import Session, select

from campaigns import actions, outgoing_webhooks, subject_tests
from campaigns.delivery.sending import send_campaign
from campaigns.models import CampaignStatus, Delivery
from campaigns.variant_models import VariantDelivery
from newsletter import accounts, db
from newsletter.clock import utcnow
from newsletter.webhook_outbox import WebhookEndpoint
from subscribers.models import Subscriber
from tests.conftest import make_settings
from tests.support.delivery import add_subscribers, make_campaign
from tests.support.servers import live_server
from tests.support.tracking import engagement
from web.app import create_app

HERE = Path(__file__).resolve().parent
OWNER, PASSWORD = "owner@example.com", "screenshot password"
ZONES = ("Asia/Tokyo", "Europe/Berlin", "Europe/London", "America/New_York", "Australia/Sydney")


def fill(engine: sa.Engine, settings: object) -> dict[str, int]:
    add_subscribers(engine, 200)
    with Session(engine) as session:
        for reader in session.exec(select(Subscriber)):
            if reader.id and reader.id % 3:
                reader.timezone = ZONES[reader.id % len(ZONES)]
                session.add(reader)
        accounts.create_user(session, OWNER, accounts.Role.owner, PASSWORD)
        session.commit()
        local = make_campaign(session, status=CampaignStatus.DRAFT, subject="Five stretches")
        actions.schedule_local(
            session,
            settings=settings,
            campaign_id=local.id,
            local_time="07:00",
            on=date.today() + timedelta(days=7),
            actor=OWNER,
        )
        tested = make_campaign(session, status=CampaignStatus.DRAFT, subject="Weekly")
        subject_tests.create_test(
            session,
            campaign_id=tested.id,
            subjects=["Five stretches for sciatica", "Your back, in five minutes a day"],
            sample_percent=40,
            actor=OWNER,
        )
        session.commit()
        send_campaign(session, settings=settings, campaign_id=tested.id, preflight=False)
        for label, clicks in (("A", 6), ("B", 17)):
            sample = session.exec(
                select(Delivery)
                .join(VariantDelivery, VariantDelivery.delivery_id == Delivery.id)
                .where(VariantDelivery.campaign_id == tested.id, VariantDelivery.label == label)
            ).all()
            for delivery in sample[:clicks]:
                engagement(session, settings, delivery, "clicked")
            for delivery in sample[clicks : clicks + 12]:
                engagement(session, settings, delivery, "opened")
        for url in ("https://crm.example.com/hooks/newsletter", "https://hooks.example.org/t"):
            outgoing_webhooks.add_endpoint(
                session,
                settings=settings,
                url=url,
                events=["subscriber.unsubscribed"],
                actor=OWNER,
            )
        endpoint, _ = outgoing_webhooks.add_endpoint(
            session,
            settings=settings,
            url="https://old.example.net/webhook",
            events=[],
            actor=OWNER,
        )
        session.execute(
            sa.update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint.id)  # type: ignore[arg-type]
            .values(
                disabled_at=utcnow(),
                disabled_reason="every delivery failed for 5 days (last: HTTP 503)",
            )
        )
        session.commit()
        return {"local": local.id or 0, "tested": tested.id or 0}


def shoot(page: Page, url: str, name: str) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(url)
    tall = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": 1280, "height": tall})
    page.screenshot(path=HERE / name)


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="shots-"))
    settings = make_settings(f"sqlite:///{root / 'shots.db'}", root, timezone="America/New_York")
    engine = db.get_engine(settings.database_url)
    db.upgrade(engine)
    ids = fill(engine, settings)
    with live_server(create_app(settings)) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{base}/admin/login")
        page.get_by_label("Email").fill(OWNER)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{base}/admin/")
        for key, name in (("local", "local-time"), ("tested", "subject-test")):
            shoot(page, f"{base}/admin/campaigns/{ids[key]}/sending", f"sending-{name}-1280.png")
        shoot(page, f"{base}/admin/webhooks", "webhooks-1280.png")
        browser.close()


if __name__ == "__main__":
    main()
