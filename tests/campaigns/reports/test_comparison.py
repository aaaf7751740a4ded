"""The last issues compared (issue 15, point 7), on SQLite and PostgreSQL: rates of
delivered, human opens apart from machine ones, n/a where nothing counted opens, and
the same figures whether events came from SendGrid or only from our own ledger."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.models import Campaign, CampaignStatus
from campaigns.reports.charts import CHART_SIZE_PX, comparison_chart
from campaigns.reports.comparison import compare_issues
from newsletter.errors import InvalidInput
from newsletter.settings import Settings
from subscribers.models import Subscriber
from tests.campaigns.reports.test_charts import png_size
from tests.support.tracking import (
    T0,
    add_delivery,
    add_subscriber,
    apply,
    engagement,
    sg_event,
)


def issue(session: Session, week: int, *, status: CampaignStatus = CampaignStatus.SENT) -> Campaign:
    campaign = Campaign(
        subject=f"Issue of week {week}",
        week=f"2026-W{week:02d}",
        status=status.value,
        started_at=T0 + timedelta(weeks=week),
        finished_at=T0 + timedelta(weeks=week, minutes=5),
    )
    session.add(campaign)
    session.commit()
    return campaign


@pytest.fixture
def people(session: Session) -> list[Subscriber]:
    return [add_subscriber(session, f"p{n}@example.com") for n in range(5)]


def test_only_the_last_sent_issues_count_oldest_first(
    session: Session, people: list[Subscriber]
) -> None:
    for week in range(1, 15):
        issue(session, week)
    issue(session, 20, status=CampaignStatus.DRAFT)
    weeks = [i.week for i in compare_issues(session).issues]
    assert weeks == [f"2026-W{w:02d}" for w in range(3, 15)]
    assert [i.week for i in compare_issues(session, last=2).issues] == ["2026-W13", "2026-W14"]


def test_rates_are_of_delivered_from_provider_events(
    session: Session, settings: Settings, people: list[Subscriber]
) -> None:
    campaign = issue(session, 1)
    d = [add_delivery(session, campaign, p) for p in people]
    apply(
        session,
        settings,
        sg_event("open", d[0], "p0@example.com"),
        sg_event("open", d[0], "p0@example.com"),  # one person, twice
        sg_event("click", d[0], "p0@example.com"),
        sg_event("open", d[1], "p1@example.com", sg_machine_open=True),  # a machine
        sg_event("open", d[2], "p2@example.com"),
        sg_event("unsubscribe", d[2], "p2@example.com"),
        sg_event("bounce", d[4], "p4@example.com", type="bounce"),
    )
    (figures,) = compare_issues(session).issues
    assert (figures.sent, figures.delivered) == (5, 4)
    assert (figures.human_opens, figures.human_open_rate) == (2, 0.5)
    assert (figures.clicks, figures.click_rate) == (1, 0.25)
    assert (figures.unsubscribes, figures.unsubscribe_rate) == (1, 0.25)
    assert (figures.bounces, figures.bounce_rate) == (1, 0.2)  # of sent


def test_the_ledger_alone_gives_the_same_figures_as_provider_events(
    session: Session, settings: Settings, people: list[Subscriber]
) -> None:
    """SMTP or the outbox with our own tracking and bounce reading: no provider event,
    only the ledger, and the comparison reads the same."""
    by_events, by_ledger = issue(session, 1), issue(session, 2)
    ev = [add_delivery(session, by_events, p) for p in people[:4]]
    apply(
        session,
        settings,
        sg_event("open", ev[0], "p0@example.com"),
        sg_event("click", ev[0], "p0@example.com"),
        sg_event("bounce", ev[3], "p3@example.com", type="bounce"),
    )
    own = [add_delivery(session, by_ledger, p) for p in people[:4]]
    own[0].open_count, own[0].click_count, own[3].bounce = 1, 1, "hard"
    session.add_all(own)
    session.commit()
    first, second = compare_issues(session).to_dict()["issues"]  # type: ignore[misc]
    figures = ("delivered", "human_open_rate", "click_rate", "unsubscribes", "bounces")
    assert (
        [first[f] for f in figures] == [second[f] for f in figures] == [3, 0.333333, 0.333333, 0, 1]
    )


def test_the_click_rate_counts_people_never_link_scanners(
    session: Session, settings: Settings, people: list[Subscriber]
) -> None:
    """Issue 15.2: a scanner followed the links of four messages; one person clicked."""
    campaign = issue(session, 1)
    d = [add_delivery(session, campaign, p) for p in people[:4]]
    for delivery in d:
        engagement(session, settings, delivery, "clicked", machine=True)
    engagement(session, settings, d[0], "clicked", at=T0 + timedelta(minutes=5))
    (figures,) = compare_issues(session).issues
    assert (figures.delivered, figures.clicks, figures.click_rate) == (4, 1, 0.25)


def test_opens_nobody_could_count_are_not_available(
    session: Session, people: list[Subscriber]
) -> None:
    campaign = issue(session, 1)
    add_delivery(session, campaign, people[0])
    data = compare_issues(session).to_dict()
    (line,) = data["issues"]  # type: ignore[misc]
    assert (line["human_open_rate"], line["click_rate"], line["delivered"]) == (None, None, 1)
    assert data["rates_of"]["bounce_rate"] == "sent"  # type: ignore[index]


# Neither of these depends on the database: SQLite only.


def test_an_issue_count_out_of_range_is_refused(sqlite_engine: Engine) -> None:
    with Session(sqlite_engine) as session, pytest.raises(InvalidInput, match="not 0"):
        compare_issues(session, last=0)


def test_the_chart_is_a_png_of_the_usual_size(sqlite_engine: Engine, tmp_path: Path) -> None:
    with Session(sqlite_engine, expire_on_commit=False) as session:
        reader = add_subscriber(session, "p@example.com")
        for week in (1, 2, 3):
            add_delivery(session, issue(session, week), reader)
        path = comparison_chart(compare_issues(session), tmp_path / "compare.png")
    assert png_size(path) == CHART_SIZE_PX
