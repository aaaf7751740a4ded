"""Every email footer: who sends it from where, the name once; the privacy notice linked.

Issue 13 item 10. The deploy example's address starts with the newsletter's name
(``Pain Relief Weekly, 12 Example Street, ...``) and the confirmation and welcome
footers printed ``{{ brand.name }} · {{ brand.postal_address }}``: the name twice.
"""

from __future__ import annotations

import html as html_lib
from pathlib import Path

import pytest
from sqlmodel import Session

from campaigns.content.rendering import render_campaign
from newsletter.settings import Settings
from newsletter.templating import postal_line
from subscribers.emails import confirmation_message, welcome_message
from subscribers.models import Subscriber
from tests.conftest import make_settings
from tests.support.content import elements, make_campaign, make_snippet

NAME = "Pain Relief Weekly"
PRIVACY = "https://painrelief.example/privacy"


def visible(markup: str) -> str:
    return " ".join(html_lib.unescape(markup).split())


def test_postal_line_names_the_sender_once() -> None:
    assert postal_line(NAME, "Pain Relief Weekly, 12 Example St") == (
        "Pain Relief Weekly, 12 Example St"
    )
    assert postal_line(NAME, "  pain relief weekly Ltd,\n 12 Example St ") == (
        "pain relief weekly Ltd, 12 Example St"
    )
    assert postal_line(NAME, "12 Example St") == "Pain Relief Weekly \u00b7 12 Example St"
    assert postal_line(NAME, None) == postal_line(NAME, " ") == ""


def subscriber_emails(settings: Settings) -> list[tuple[str, str]]:
    reader = Subscriber(id=5, email="ann@example.com", name=None, source="form")
    return [
        (m.text, m.html)
        for m in (confirmation_message(settings, reader), welcome_message(settings, reader))
    ]


def weekly(session: Session, settings: Settings) -> tuple[str, str]:
    campaign = make_campaign(session, [make_snippet(session, settings)])
    rendered = render_campaign(session, settings=settings, campaign=campaign)
    return rendered.text, rendered.html


@pytest.mark.parametrize(
    ("address", "line"),
    [
        ("Pain Relief Weekly, 12 Example Street, Springfield, USA", None),
        ("12 Example Street, Springfield, USA", "Pain Relief Weekly \u00b7 12 Example Street"),
    ],
)
def test_no_footer_repeats_the_name_and_each_shows_the_address(
    session: Session, settings: Settings, address: str, line: str | None
) -> None:
    cfg = settings.model_copy(update={"postal_address": address})
    for text, markup in [weekly(session, cfg), *subscriber_emails(cfg)]:
        for part in (text, visible(markup)):
            assert f"{NAME} \u00b7 {NAME}" not in part
            assert f"{NAME} \u00b7 {address}" not in part or not address.startswith(NAME)
            assert (line or address) in part
        footer = text.rstrip().splitlines()[-1]
        assert footer == (f"{NAME} \u00b7 {address}" if line else address)


def test_every_footer_links_the_privacy_notice_when_it_is_set(
    session: Session, settings: Settings
) -> None:
    cfg = settings.model_copy(update={"privacy_notice_url": PRIVACY})
    for text, markup in [weekly(session, cfg), *subscriber_emails(cfg)]:
        assert f"Privacy notice: {PRIVACY}" in text
        links = [(a.get("href"), tag) for tag, a in elements(markup) if tag == "a"]
        assert (PRIVACY, "a") in links
    for text, markup in [weekly(session, settings), *subscriber_emails(settings)]:
        assert "Privacy notice" not in text and "Privacy notice" not in markup


def test_a_privacy_notice_that_is_not_http_is_never_a_link(tmp_path: Path) -> None:
    cfg = make_settings("sqlite://", tmp_path, privacy_notice_url="javascript:alert(1)")
    for text, markup in subscriber_emails(cfg):
        assert "javascript:" not in text and "javascript:" not in markup
