"""Images on our own site ("/static/content/images/x.jpg") follow NEWSLETTER_BASE_URL
when rendered, so a new port or host never breaks them (campaigns/content/snippets.py)."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from campaigns.content.preflight import preflight
from campaigns.content.rendering import render_campaign
from campaigns.content.snippet_import import import_snippets
from campaigns.content.web_version import web_html
from campaigns.models import Snippet
from newsletter.errors import InvalidInput
from newsletter.settings import Settings
from tests.support.content import CONTENT_DIR, elements, make_campaign, make_snippet

PATH = "/static/content/images/knee-to-chest.jpg"


def test_an_image_on_our_site_renders_against_the_base_url(
    session: Session, settings: Settings
) -> None:
    moved = settings.model_copy(update={"base_url": "https://news.example.org:8443/"})
    campaign = make_campaign(session, [make_snippet(session, moved, image_url=PATH)])
    render_campaign(session, settings=moved, campaign=campaign)
    wanted = "https://news.example.org:8443" + PATH
    assert wanted in [a.get("src") for t, a in elements(campaign.html or "") if t == "img"]
    assert f'src="{wanted}"' in web_html(moved, campaign)  # the archive page too


def test_an_image_on_another_site_without_a_scheme_is_refused(
    session: Session, settings: Settings
) -> None:
    with pytest.raises(InvalidInput, match="field 'image_url'"):
        make_snippet(session, settings, image_url="//evil.example/x.jpg")


def test_the_sample_snippets_keep_their_images_as_paths_on_our_site(
    session: Session, settings: Settings
) -> None:
    report = import_snippets(session, settings=settings, source=str(CONTENT_DIR / "snippets"))
    assert report.problems == []
    images = [s.image_url for s in session.exec(select(Snippet)).all() if s.image_url]
    assert images and all(i.startswith("/static/content/images/") for i in images)


def test_preflight_takes_an_image_on_our_site_for_an_absolute_url(
    session: Session, settings: Settings
) -> None:
    snippet = make_snippet(session, settings, image_url=PATH, image_alt="A stretch")
    report = preflight(session, settings=settings, campaign=make_campaign(session, [snippet]))
    assert [f.code for f in report.findings if f.code.startswith("image")] == []
