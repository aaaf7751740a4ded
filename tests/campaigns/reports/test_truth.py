"""A campaign's report tells the truth (issue 13.6), over real HTTP under uvicorn on
SQLite and PostgreSQL: readers who leave through the issue's own RFC 8058 one-click link
are counted as that issue's unsubscribes, and with the outbox (no events come back)
opens and clicks read "n/a" while deliveries are sent less bounced and rejected (issue
15.7) and the chart shows what was sent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from campaigns.content.assembly import assemble_week
from campaigns.delivery.sending import send_campaign
from campaigns.models import Delivery
from campaigns.reports.exports import write_campaign_report
from campaigns.reports.figures import campaign_report, campaign_timeline, report_csv
from newsletter.settings import Settings
from subscribers.models import ConsentEvent, Subscriber
from subscribers.tokens import Purpose, Tokens
from tests.support.content import make_snippet
from tests.support.servers import free_port, live_server
from tests.support.subscribers import make_subscriber, messages_to
from tests.support.tracking import apply, sg_event
from web.app import create_app

READERS = ("ann@example.com", "bob@example.com", "cy@example.com")


@pytest.fixture
def cfg(settings: Settings, engine: Engine) -> Iterator[Settings]:
    port = free_port()
    cfg = settings.model_copy(update={"base_url": f"http://127.0.0.1:{port}"})
    with live_server(create_app(cfg), port):
        yield cfg


def send_issue(session: Session, cfg: Settings) -> int:
    for address in READERS:
        make_subscriber(session, address)
    for n in range(cfg.snippets_per_issue):
        make_snippet(session, cfg, title=f"Article {n}", category=f"topic-{n}")
    session.commit()
    campaign = assemble_week(session, settings=cfg, day=date(2026, 11, 23)).campaign
    session.commit()
    assert campaign.id is not None
    send_campaign(session, settings=cfg, campaign_id=campaign.id)
    return campaign.id


def one_click(cfg: Settings, address: str) -> httpx.Response:
    """The mailbox provider's RFC 8058 POST to the List-Unsubscribe URL of the issue."""
    [message] = messages_to(cfg, address)
    url = str(message["List-Unsubscribe"]).strip().strip("<>")
    assert url.startswith(f"{cfg.base_url}/unsubscribe/")
    return httpx.post(
        url,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


def test_the_issues_own_link_counts_as_its_unsubscribe(
    cfg: Settings, session: Session, tmp_path: Path
) -> None:
    campaign_id = send_issue(session, cfg)
    response = one_click(cfg, "bob@example.com")
    assert response.status_code == 200
    assert one_click(cfg, "bob@example.com").status_code == 200  # twice: one person
    session.expire_all()
    details = session.exec(
        select(ConsentEvent.detail).where(ConsentEvent.to_status == "unsubscribed")
    ).all()
    assert details == [{"one_click": True, "campaign_id": campaign_id}]

    report = campaign_report(session, campaign_id=campaign_id)
    assert (report.figure("sent").count, report.figure("unsubscribes").count) == (3, 1)
    # Issue 15.7: delivered is sent less bounced and rejected, for every provider.
    assert report.figure("unsubscribes").rate == 0.333333
    assert report.figure("unsubscribes").of == "delivered"

    data = report.to_dict()
    assert data["provider_events"] is False
    assert data["figures"]["delivered"] == {"count": 3, "rate": 1.0}
    for name in ("unique_opens", "machine_opens", "unique_clicks"):
        assert data["figures"][name] == {"count": None, "rate": None}, name
    assert data["figures"]["unsubscribes"] == {"count": 1, "rate": 0.333333}

    lines = report_csv(report).splitlines()
    assert f"{campaign_id},delivered,Delivered,3,1.000000,sent" in lines
    assert f"{campaign_id},unique_opens,Unique opens (people),n/a,,delivered" in lines
    assert f"{campaign_id},unsubscribes,Unsubscribes,1,0.333333,delivered" in lines
    assert f"{report.figure('unique_opens').count:,}" == "n/a"  # what a text table prints

    timeline = campaign_timeline(session, campaign_id=campaign_id)
    assert timeline.provider_events is False
    assert set(timeline.series) == {"sent", "bounces", "unsubscribes"}
    assert (sum(timeline.series["sent"]), sum(timeline.series["unsubscribes"])) == (3, 1)
    files = write_campaign_report(
        session, campaign_id=campaign_id, chart_file=tmp_path / "chart.png"
    )
    assert files.chart is not None and files.chart.stat().st_size > 10_000


def test_a_link_of_another_issue_counts_for_that_issue_only(
    cfg: Settings, session: Session
) -> None:
    campaign_id = send_issue(session, cfg)
    ann = make_subscriber(session, "dee@example.com")
    # A link signed for another campaign (say, last week's issue) is that issue's.
    token = Tokens(cfg).make(Purpose.UNSUBSCRIBE, ann, campaign_id=campaign_id + 100)
    response = httpx.post(
        f"{cfg.base_url}/unsubscribe/{token}",
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert campaign_report(session, campaign_id=campaign_id).figure("unsubscribes").count == 0


def test_with_provider_events_a_person_is_counted_once(cfg: Settings, session: Session) -> None:
    """SendGrid reports events: figures are counts again, and a reader who left by the
    link and whom the provider reported too is one unsubscribe."""
    campaign_id = send_issue(session, cfg)
    rows = session.exec(select(Delivery).where(Delivery.campaign_id == campaign_id)).all()
    email_of = {d.id: session.get(Subscriber, d.subscriber_id).email for d in rows}
    apply(session, cfg, *(sg_event("delivered", d, email_of[d.id]) for d in rows))
    assert one_click(cfg, "ann@example.com").status_code == 200
    assert one_click(cfg, "bob@example.com").status_code == 200
    bob = next(d for d in rows if email_of[d.id] == "bob@example.com")
    apply(session, cfg, sg_event("unsubscribe", bob, "bob@example.com"))
    session.expire_all()
    report = campaign_report(session, campaign_id=campaign_id)
    assert report.provider_events is True
    assert (report.figure("delivered").count, report.figure("unsubscribes").count) == (3, 2)
    assert report.to_dict()["figures"]["unsubscribes"] == {"count": 2, "rate": 0.666667}
    timeline = campaign_timeline(session, campaign_id=campaign_id)
    assert sum(timeline.series["delivered"]) == 3
