"""The console's report page room (campaigns/reports/overview.py): top links by people,
a link scanner's clicks counted apart (issue 15, point 2). The dashboard and pages are
tested over HTTP in tests/web/console/test_reports.py."""

from __future__ import annotations

from sqlmodel import Session

from campaigns.models import CampaignStatus
from campaigns.reports.overview import LinkClicks, dashboard, top_links
from newsletter.settings import Settings
from tests.support.delivery import make_campaign
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


def test_with_nothing_scheduled_the_dashboard_names_the_newest_draft(
    session: Session, settings: Settings
) -> None:
    """A marketer's review: 'No issue is scheduled' with no way to this week's draft."""
    make_campaign(session, status=CampaignStatus.DRAFT, subject="Older draft")
    newest = make_campaign(session, status=CampaignStatus.DRAFT, subject="This week")
    board = dashboard(session, settings=settings)
    assert board.next_issue is None
    assert board.draft is not None and (board.draft.id, board.draft.subject) == (
        newest.id,
        "This week",
    )


def test_a_scheduled_issue_leaves_the_draft_unnamed(session: Session, settings: Settings) -> None:
    make_campaign(session, status=CampaignStatus.DRAFT, subject="Draft")
    make_campaign(session, status=CampaignStatus.SCHEDULED, subject="Next")
    board = dashboard(session, settings=settings)
    assert board.next_issue is not None and board.draft is None
