"""The public archive over real HTTP (uvicorn): the listing, each issue's web version, the
Atom feed read back by feedparser, a campaign left out, and no reader's personal data.

Issues are really sent (the outbox provider) to a named reader, so the email that reader
got (with their name and signed links) is at hand to prove the web version holds none
of it. SQLite only: nothing here differs by database (the query is covered on both by
tests/campaigns/test_archive.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import feedparser
import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns import archive
from campaigns.content.web_version import issue_url, slug
from campaigns.delivery.sending import send_campaign
from campaigns.models import Campaign
from newsletter.settings import Settings
from tests.support.content import BASE_DAY, make_campaign, make_snippet
from tests.support.servers import live_server
from tests.support.subscribers import html_of, link, make_subscriber, messages, text_of, token_of
from web.app import create_app

READER = ("janet.reader@example.com", "Janet Quillfeather")


def sent(session: Session, settings: Settings, subject: str, *, day: int) -> Campaign:
    """A campaign really sent (outbox) to the subscribers there are, started ``day``
    days after BASE_DAY (the order the archive lists by)."""
    snippets = [
        make_snippet(session, settings, image_url="https://img.example.org/a.jpg", image_alt="A"),
        make_snippet(session, settings),
    ]
    campaign = make_campaign(session, snippets, subject=subject)
    session.commit()
    send_campaign(session, settings=settings, campaign_id=campaign.id, actor="test")
    campaign = session.get(Campaign, campaign.id)
    assert campaign is not None and campaign.status == "sent"
    campaign.started_at = BASE_DAY + timedelta(days=day)
    campaign.finished_at = campaign.started_at + timedelta(minutes=5)
    session.add(campaign)
    session.commit()
    return campaign


@pytest.fixture
def site(
    sqlite_settings: Settings, sqlite_engine: Engine
) -> Iterator[tuple[str, Session, Settings]]:
    settings = sqlite_settings.model_copy(update={"base_url": "https://news.example.com"})
    with Session(sqlite_engine, expire_on_commit=False) as session:
        make_subscriber(session, READER[0], name=READER[1])
        with live_server(create_app(settings)) as base:
            yield base, session, settings


def test_the_email_links_to_its_web_version_at_the_top_of_html_and_text(
    site: tuple[str, Session, Settings],
) -> None:
    _, session, settings = site
    campaign = sent(session, settings, "Five stretches for sciatica", day=0)
    (message,) = messages(settings)
    url = issue_url(settings, campaign)
    assert url == f"https://news.example.com/archive/{campaign.id}-five-stretches-for-sciatica"
    html = html_of(message)
    view = re.search(r'<a href="([^"]+)"[^>]*>View this issue in your browser</a>', html)
    assert view and view.group(1) == url
    assert html.index("View this issue in your browser") < html.index("Pain Relief Weekly</h1>")
    assert text_of(message).startswith(f"View this issue in your browser: {url}\r\n")


def test_the_web_version_holds_no_personal_data_of_the_reader(
    site: tuple[str, Session, Settings],
) -> None:
    base, session, settings = site
    campaign = sent(session, settings, "Five stretches for sciatica", day=0)
    (message,) = messages(settings)
    email_html = html_of(message)
    tokens = [token_of(link(message, kind)) for kind in ("unsubscribe", "preferences")]
    assert READER[1] in email_html and all(t in email_html for t in tokens)  # the email has them

    response = httpx.get(f"{base}/archive/{slug(campaign)}")
    assert response.status_code == 200
    page = response.text
    for personal in (READER[0], READER[1], "Janet", *tokens, "/unsubscribe/", "/preferences/"):
        assert personal not in page
    assert "[%" not in page  # no placeholder left unfilled
    assert "Hello," in page
    assert '<a href="https://news.example.com/subscribe"' in page
    assert ">All past issues</a>" in page and "View this issue in your browser" not in page
    assert "Five stretches for sciatica" in page


def test_an_issue_page_has_seo_basics_from_base_url_and_a_strict_csp(
    site: tuple[str, Session, Settings],
) -> None:
    base, session, settings = site
    campaign = sent(session, settings, "Five stretches for sciatica", day=0)
    url = issue_url(settings, campaign)
    response = httpx.get(f"{base}/archive/{slug(campaign)}", headers={"Host": "evil.example"})
    page = response.text
    assert f'<link rel="canonical" href="{url}">' in page
    assert '<meta name="description" content="Preheader text">' in page
    assert "<title>Five stretches for sciatica</title>" in page
    assert "evil.example" not in page
    csp = response.headers["content-security-policy"]
    assert "script-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "img-src 'self' data: https://img.example.org" in csp
    assert response.headers["x-content-type-options"] == "nosniff"


def test_an_old_slug_redirects_to_the_current_one_on_base_url(
    site: tuple[str, Session, Settings],
) -> None:
    base, session, settings = site
    campaign = sent(session, settings, "Five stretches for sciatica", day=0)
    response = httpx.get(
        f"{base}/archive/{campaign.id}-old-words", headers={"Host": "evil.example"}
    )
    assert (response.status_code, response.headers["location"]) == (
        301,
        issue_url(settings, campaign),
    )


def test_a_draft_or_unknown_issue_is_not_found(site: tuple[str, Session, Settings]) -> None:
    base, session, settings = site
    draft = make_campaign(session, [make_snippet(session, settings)], subject="Not yet")
    session.commit()
    for path in (f"/archive/{draft.id}-not-yet", "/archive/999999", "/archive/nothing"):
        response = httpx.get(f"{base}{path}")
        assert response.status_code == 404, path
        assert "<h1>This page does not exist</h1>" in response.text, path
        assert "Not yet" not in response.text  # the draft's subject is nobody's business


def test_the_listing_is_newest_first_and_links_its_atom_feed(
    site: tuple[str, Session, Settings],
) -> None:
    base, session, settings = site
    older = sent(session, settings, "Older issue", day=0)
    newer = sent(session, settings, "Newer issue", day=7)
    response = httpx.get(f"{base}/archive/")
    assert response.status_code == 200
    page = response.text
    assert (
        '<link rel="alternate" type="application/atom+xml" title="Pain Relief Weekly" '
        'href="https://news.example.com/archive/feed.atom">'
    ) in page
    assert '<link rel="canonical" href="https://news.example.com/archive/">' in page
    assert page.index(issue_url(settings, newer)) < page.index(issue_url(settings, older))
    assert '<time datetime="2026-11-08T09:00:00Z">November 8, 2026</time>' in page
    assert "Preheader text" in page
    assert 'content="index, follow"' in page


def test_the_listing_is_paginated(site: tuple[str, Session, Settings]) -> None:
    _, session, settings = site
    for day in range(3):
        sent(session, settings, f"Issue {day}", day=day)
    session.close()
    small = settings.model_copy(update={"archive_page_size": 2})
    with live_server(create_app(small)) as paged:
        first, second = httpx.get(f"{paged}/archive/"), httpx.get(f"{paged}/archive/?page=2")
        past = httpx.get(f"{paged}/archive/?page=3")
    assert "Issue 2" in first.text and "Issue 1" in first.text and "Issue 0" not in first.text
    assert "Page 1 of 2" in first.text and 'href="/archive/?page=2" rel="next"' in first.text
    assert "Issue 0" in second.text and "Issue 2" not in second.text
    assert past.status_code == 404


def test_the_atom_feed_reads_back_with_feedparser(site: tuple[str, Session, Settings]) -> None:
    base, session, settings = site
    older = sent(session, settings, "Older issue", day=0)
    newer = sent(session, settings, "Newer & better issue", day=7)
    response = httpx.get(f"{base}/archive/feed.atom")
    assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
    feed = feedparser.parse(response.content)
    assert not feed.bozo, feed.bozo_exception
    assert feed.version == "atom10"
    assert feed.feed.title == "Pain Relief Weekly"
    assert feed.feed.id == "https://news.example.com/archive/"
    assert feed.feed.author == "Pain Relief Weekly"
    assert feed.feed.updated == "2026-11-08T09:05:00Z"
    assert [e.title for e in feed.entries] == ["Newer & better issue", "Older issue"]
    entry = feed.entries[0]
    assert entry.link == issue_url(settings, newer)
    assert entry.id == f"tag:news.example.com,2026-11-08:campaign/{newer.id}"
    assert entry.summary == "Preheader text"
    assert "Hello," in entry.content[0].value and READER[1] not in entry.content[0].value
    assert feed.entries[1].link == issue_url(settings, older)


def test_a_campaign_left_out_is_absent_from_listing_and_feed(
    site: tuple[str, Session, Settings],
) -> None:
    base, session, settings = site
    kept = sent(session, settings, "Kept issue", day=0)
    hidden = sent(session, settings, "Hidden issue", day=7)
    archive.set_archived(session, campaign_id=hidden.id, included=False, actor="test")
    session.commit()
    listing = httpx.get(f"{base}/archive/").text
    feed = feedparser.parse(httpx.get(f"{base}/archive/feed.atom").content)
    assert "Hidden issue" not in listing and "Kept issue" in listing
    assert [e.title for e in feed.entries] == ["Kept issue"]
    # Its readers' "view in browser" links still open, but search engines are told off.
    page = httpx.get(f"{base}/archive/{slug(hidden)}")
    assert page.status_code == 200 and '<meta name="robots" content="noindex">' in page.text
    assert kept.id is not None
