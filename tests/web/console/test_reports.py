"""The console's dashboard and reports (web/console/dashboard.py, reports.py; their
rooms in campaigns/reports/overview.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.models import Campaign, CampaignStatus
from campaigns.tracking.events import EventKind
from campaigns.tracking.hit_writer import Hit, HitWriter
from newsletter.accounts import Role
from newsletter.clock import utcnow
from newsletter.settings import Settings
from tests.support.console import VIEWER, add_user, console_client, sign_in
from tests.support.subscribers import AppSlot
from tests.support.tracking import (
    add_campaign,
    add_delivery,
    add_subscriber,
    apply,
    engagement,
    later,
    sg_event,
)

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def site(
    sqlite_settings: Settings, sqlite_engine: Engine, console_server: tuple[AppSlot, str]
) -> Iterator[httpx.Client]:
    add_user(sqlite_engine, VIEWER, Role.viewer)
    with console_client(console_server, sqlite_settings) as client:
        sign_in(client, VIEWER)
        yield client


@pytest.fixture
def sent(sqlite_settings: Settings, sqlite_engine: Engine) -> int:
    """A sent campaign to two people through SendGrid: both delivered, Ann opened it by
    hand and clicked one link twice, Bob's mail was opened by a privacy proxy and its
    link followed by a scanner (issue 15, point 2: counted apart)."""
    with Session(sqlite_engine, expire_on_commit=False) as session:
        campaign = add_campaign(session, subject="Five stretches for sciatica")
        ann, bob = (
            add_subscriber(session, "ann@example.com"),
            add_subscriber(session, "bob@example.com"),
        )
        d1 = add_delivery(session, campaign, ann, message_id="m1")
        d2 = add_delivery(session, campaign, bob, message_id="m2")
        url = "https://example.com/stretches"
        apply(
            session,
            sqlite_settings,
            sg_event("delivered", d1, "ann@example.com"),
            sg_event("delivered", d2, "bob@example.com"),
            sg_event("open", d1, "ann@example.com", at=later(5)),
            sg_event("open", d2, "bob@example.com", at=later(1), sg_machine_open=True),
            sg_event("click", d1, "ann@example.com", at=later(6), url=url),
            sg_event("click", d1, "ann@example.com", at=later(7), url=url),
        )
        engagement(session, sqlite_settings, d2, "clicked", machine=True, at=later(1), url=url)
        assert campaign.id is not None
        return campaign.id


def test_a_report_shows_delivery_human_and_machine_opens_and_clicks_and_top_links(
    site: httpx.Client, sent: int
) -> None:
    assert f'href="/admin/reports/{sent}"' in site.get("/admin/reports").text
    page = site.get(f"/admin/reports/{sent}")
    assert page.status_code == 200
    text = " ".join(page.text.split())
    assert "<dt>Delivered</dt><dd>2 <small>100.0% of sent</small>" in text
    assert "<dt>Unique opens (people)</dt><dd>1 <small>50.0% of delivered</small>" in text
    assert "<dt>Machine opens (privacy proxies)</dt><dd>1 <small>50.0% of delivered</small>" in text
    assert "<dt>Unique clicks (people)</dt><dd>1 <small>50.0% of delivered</small>" in text
    assert "<dt>Machine clicks (link scanners)</dt><dd>1 <small>50.0% of delivered</small>" in text
    assert (
        '<td>https://example.com/stretches</td><td class="num">2</td><td class="num">1</td>'
        '<td class="num">1</td>' in text
    )


def test_a_report_downloads_as_csv_and_draws_its_chart(site: httpx.Client, sent: int) -> None:
    csv = site.get(f"/admin/reports/{sent}/report.csv")
    assert csv.headers["content-disposition"].startswith("attachment;")
    assert f"{sent},unique_clicks,Unique clicks (people),1,0.500000,delivered" in csv.text
    assert f"{sent},machine_clicks,Machine clicks (link scanners),1,0.500000,delivered" in csv.text
    chart = site.get(f"/admin/reports/{sent}/chart.png")
    assert chart.headers["content-type"] == "image/png" and chart.content.startswith(PNG)
    assert site.get("/admin/reports/999999").status_code == 404


def test_an_outbox_report_with_our_own_tracking_counts_opens_and_delivered_as_sent(
    site: httpx.Client, sqlite_settings: Settings, sqlite_engine: Engine
) -> None:
    """No provider event comes back; our /o/ pixel saw Ann open (hit writer, provider
    "newsletter"): delivered is still what was sent, and opens are counts, not n/a."""
    with Session(sqlite_engine, expire_on_commit=False) as session:
        campaign = add_campaign(session, subject="Leg cramps at night")
        ann = add_delivery(session, campaign, add_subscriber(session, "ann@example.com"))
        add_delivery(session, campaign, add_subscriber(session, "bob@example.com"))
    writer = HitWriter(sqlite_engine, sqlite_settings)
    writer.add(
        [
            Hit(EventKind.OPENED, ann.campaign_id, ann.subscriber_id, None, None, later(65),
                "GET", "Mozilla/5.0 Firefox/133.0", "203.0.113.7", None)
        ]
    )  # fmt: skip
    assert writer.flush(everything=True) == 1
    text = " ".join(site.get(f"/admin/reports/{campaign.id}").text.split())
    assert "<dt>Delivered</dt><dd>2 <small>100.0% of sent</small>" in text
    assert "<dt>Unique opens (people)</dt><dd>1 <small>50.0% of delivered</small>" in text
    assert "This provider reports no deliveries back (outbox or SMTP)" in text
    assert "opens and clicks are our own tracking" in text and "are n/a" not in text


def test_the_dashboard_shows_the_next_issue_in_the_lists_time_zone_and_the_last_results(
    site: httpx.Client, sent: int, sqlite_engine: Engine
) -> None:
    when = (utcnow() + timedelta(days=2)).replace(hour=14, minute=0, second=0, microsecond=0)
    with Session(sqlite_engine) as session:
        session.add(
            Campaign(
                subject="Leg cramps at night", status=CampaignStatus.SCHEDULED, scheduled_at=when
            )
        )
        session.add(Campaign(subject="Held back", status=CampaignStatus.PAUSED))
        session.add(
            Campaign(subject="Broken", status=CampaignStatus.DRAFT, error="2 images lack alt text")
        )
        session.commit()
    text = " ".join(site.get("/admin/").text.split())
    assert "Leg cramps at night" in text
    assert f"Sends <strong>{when:%Y-%m-%d} 14:00 UTC</strong>" in text  # tests run in UTC
    assert "Five stretches for sciatica" in text and "Full report" in text
    assert "“Held back” is paused" in text
    assert "“Broken” failed preflight: 2 images lack alt text" in text
    assert "No scheduler is running" in text
    assert site.get("/admin/reports/growth.png").content.startswith(PNG)
