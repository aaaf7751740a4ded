"""The console's report page room (campaigns/reports/overview.py): top links by people,
a link scanner's clicks counted apart (issue 15, point 2). The dashboard and pages are
tested over HTTP in tests/web/console/test_reports.py."""

from __future__ import annotations

from sqlmodel import Session

from campaigns.reports.overview import LinkClicks, top_links
from newsletter.settings import Settings
from tests.support.tracking import add_campaign, add_delivery, add_subscriber, engagement, later

A, B, C = "https://example.com/a", "https://example.com/b", "https://example.com/c"


def test_top_links_rank_human_clicks_with_machine_clicks_apart(
    session: Session, settings: Settings
) -> None:
    """A scanner follows A, B and C in both messages; Ann clicks B twice and A once,
    Bob clicks B: B leads with 3 clicks by 2 people; C, which only the scanner
    followed, is not a top link."""
    campaign = add_campaign(session)
    ann, bob = (
        add_delivery(session, campaign, add_subscriber(session, f"{n}@example.com"))
        for n in ("ann", "bob")
    )
    for delivery in (ann, bob):
        for url in (A, B, C):
            engagement(session, settings, delivery, "clicked", machine=True, url=url)
    for delivery, url, minutes in ((ann, B, 3), (ann, A, 4), (ann, B, 5), (bob, B, 6)):
        engagement(session, settings, delivery, "clicked", at=later(minutes), url=url)
    assert top_links(session, campaign_id=campaign.id) == [
        LinkClicks(url=B, clicks=3, people=2, machine_clicks=2),
        LinkClicks(url=A, clicks=1, people=1, machine_clicks=2),
    ]
