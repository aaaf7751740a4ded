"""Issue 15 helpers: a sent issue with our tracked links, and reading them out of the mail."""

from __future__ import annotations

import re
from email.message import EmailMessage

from sqlmodel import Session

from campaigns.delivery.sending import send_campaign
from campaigns.models import Campaign, CampaignTrackingOff
from newsletter.settings import Settings
from subscribers.models import Subscriber
from subscribers.preferences import update_preferences
from tests.support.content import make_campaign, make_snippet
from tests.support.subscribers import html_of, make_subscriber, outbox, text_of

REDIRECT = re.compile(r"https?://[^\s\"'<>]+/r/[A-Za-z0-9._-]+/\d+")
PIXEL = re.compile(r'<img src="(https?://[^"]+/o/[A-Za-z0-9._-]+)"')


def sent_issue(
    session: Session,
    settings: Settings,
    *,
    readers: int = 2,
    links: int = 3,
    urls: list[str] | None = None,
    tracking: bool = True,
    do_not_track: tuple[int, ...] = (),
) -> tuple[Campaign, list[Subscriber]]:
    """A weekly issue of ``links`` articles sent through the outbox to ``readers`` readers
    (reader<i>@example.com), those numbered in ``do_not_track`` having asked not to be
    tracked on the preferences page."""
    snippets = (
        [make_snippet(session, settings, url=u) for u in urls]
        if urls
        else [make_snippet(session, settings) for _ in range(links)]
    )
    campaign = make_campaign(session, snippets, week="2026-W49")
    if not tracking:
        session.add(CampaignTrackingOff(campaign_id=campaign.id))
    session.commit()
    people = [make_subscriber(session, f"reader{i}@example.com") for i in range(readers)]
    for i in do_not_track:
        update_preferences(
            session, settings=settings, subscriber_id=people[i].id or 0, topics=[],
            topics_consent=False, do_not_track=True,
        )  # fmt: skip
    session.commit()
    report = send_campaign(
        session, settings=settings, campaign_id=campaign.id, provider=outbox(settings),
        preflight=False,
    )  # fmt: skip
    assert report.sent == readers, report
    return campaign, people


def redirects(message: EmailMessage, *, html: bool = False) -> list[str]:
    """The /r/ links of a message's text (or HTML) part, in order, each once."""
    body = html_of(message) if html else text_of(message)
    return list(dict.fromkeys(REDIRECT.findall(body)))


def pixel(message: EmailMessage) -> str | None:
    found = PIXEL.search(html_of(message))
    return found.group(1) if found else None
