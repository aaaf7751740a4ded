"""A Markdown summary keeps its paragraphs, lists and links in the email's HTML and text
parts and on the archive page (campaigns/content/summaries.py through rendering)."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from campaigns.content import snippet_library as library
from campaigns.content.rendering import RenderedIssue, render_campaign
from campaigns.content.web_version import web_html
from campaigns.models import Campaign, Snippet
from campaigns.tracking.links import compile_links
from newsletter.settings import Settings
from tests.support.content import elements, make_campaign

ARTICLE = "https://blog.example.com/articles/stretches-md"
SUMMARY = f"""Start slowly.

Then:

- cat-cow on hands and knees
- a gentle *pelvic* tilt
- a short walk ([how](https://example.com/walk))

See [the article]({ARTICLE}). Stop if pain shoots down your leg."""


@pytest.fixture
def issue(session: Session, settings: Settings) -> tuple[Campaign, Snippet]:
    snippet = library.create_snippet(
        session,
        settings=settings,
        data={"title": "Stretches", "summary": SUMMARY, "url": ARTICLE},
        actor="jane@example.com",
    ).snippet
    return make_campaign(session, [snippet]), snippet


def _rendered(session: Session, settings: Settings, campaign: Campaign) -> RenderedIssue:
    return render_campaign(session, settings=settings, campaign=campaign)


def test_the_html_part_shows_the_summary_s_paragraphs_list_and_links(
    session: Session, settings: Settings, issue: tuple[Campaign, Snippet]
) -> None:
    html = _rendered(session, settings, issue[0]).html
    assert "<ul><li>cat-cow on hands and knees</li>" in html
    assert "<li>a gentle <em>pelvic</em> tilt</li>" in html
    assert '<a href="https://example.com/walk" rel="noopener noreferrer">how</a>' in html
    assert "<p>Start slowly.</p><p>Then:</p>" in html


def test_the_text_part_shows_paragraphs_list_items_and_links_as_text_and_url(
    session: Session, settings: Settings, issue: tuple[Campaign, Snippet]
) -> None:
    text = _rendered(session, settings, issue[0]).text
    assert (
        "Start slowly.\n\nThen:\n\n- cat-cow on hands and knees\n- a gentle pelvic tilt\n"
        "- a short walk (how (https://example.com/walk))\n\n"
        f"See the article ({ARTICLE}). Stop\nif pain shoots down your leg."
    ) in text


def test_the_archive_page_shows_the_summary_as_the_email_does(
    session: Session, settings: Settings, issue: tuple[Campaign, Snippet]
) -> None:
    campaign = issue[0]
    _rendered(session, settings, campaign)
    preview = library.markdown_preview(SUMMARY)  # what the console shows
    assert preview.replace("\n", "") in web_html(settings, campaign)


def test_an_article_link_in_a_summary_is_tracked_and_another_is_left_alone(
    session: Session, settings: Settings, issue: tuple[Campaign, Snippet]
) -> None:
    campaign = issue[0]
    _rendered(session, settings, campaign)
    compiled = compile_links(session, settings=settings, campaign=campaign, tracked=True)
    hrefs = [a.get("href") or "" for t, a in elements(compiled.html) if t == "a"]
    assert "https://example.com/walk" in hrefs
    assert ARTICLE not in " ".join(hrefs)  # every article link, the summary's too, tracked
    assert hrefs.count("https://example.com/walk") == 1


def test_a_summary_link_cannot_smuggle_attributes_or_markup(
    session: Session, settings: Settings
) -> None:
    snippet = library.create_snippet(
        session,
        settings=settings,
        data={
            "title": "Hostile",
            "summary": '[x](https://e.com/"onmouseover="alert(1)) <b style="x">y</b> '
            "[u]([%unsubscribe_url%])",
            "url": "https://blog.example.com/articles/hostile-md",
        },
        actor="a",
    ).snippet
    html = _rendered(session, settings, make_campaign(session, [snippet])).html
    for tag, attrs in elements(html):
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
    assert html.count("[%unsubscribe_url%]") == 1  # the footer's own
    assert "&lt;b style" in html


def test_the_archive_page_leaves_out_why_a_subscriber_gets_the_email(
    session: Session, settings: Settings, issue: tuple[Campaign, Snippet]
) -> None:
    campaign = issue[0]
    email = _rendered(session, settings, campaign).html
    assert "You are receiving this email because" in email
    page = web_html(settings, campaign)
    assert "You are receiving this email" not in page
    assert settings.postal_address in page  # the rest of the footer stays
