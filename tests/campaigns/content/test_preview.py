"""Preview: the files a marketer opens, the warnings, and real screenshots in Chromium."""

from __future__ import annotations

import email
import email.policy
import struct
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.content.preview import CHROMIUM_ARGS, write_preview
from campaigns.models import Campaign
from newsletter.settings import Settings
from tests.support.content import make_campaign, make_snippet, shipped_template, with_templates


@pytest.fixture
def campaign(session: Session, settings: Settings) -> Campaign:
    snippets = [
        make_snippet(
            session,
            settings,
            category="a",
            title="Stretch " + "x" * 70,
            url="https://blog.example.com/" + "very-long-path-segment-" * 8,
            image_url="https://img.example.com/a.png",
            image_alt="A stretch",
        ),
        make_snippet(session, settings, category="b"),
    ]
    return make_campaign(session, snippets, week="2026-W48", subject="Weekly & more")


def png_width(path: Path) -> int:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">I", header[16:20])[0]


def test_preview_writes_personalised_html_text_and_eml(
    session: Session, settings: Settings, campaign: Campaign, tmp_path: Path
) -> None:
    out = tmp_path / "preview"
    result = write_preview(
        session, settings=settings, campaign=campaign, out_dir=out, chromium_path=None
    )
    assert [p.name for p in result.files] == [
        "email.html",
        "email.txt",
        "email.eml",
        "email-unnamed.html",
        "email-unnamed.txt",
        "email-unnamed.eml",
    ]
    html = (out / "email.html").read_text()
    text = (out / "email.txt").read_text()
    assert "[%" not in html and "[%" not in text
    assert 'href="http://127.0.0.1:8000/unsubscribe/preview"' in html
    assert "Hello Alex,\n" in text
    message = email.message_from_bytes(
        (out / "email.eml").read_bytes(), policy=email.policy.default
    )
    assert isinstance(message, EmailMessage)
    assert message["Subject"] == "Weekly & more"
    assert message["List-Unsubscribe"] == "<http://127.0.0.1:8000/unsubscribe/preview>"
    assert message.get_body(("plain",)) is not None and message.get_body(("html",)) is not None


def test_preview_shows_a_reader_without_a_name_too(
    session: Session, settings: Settings, campaign: Campaign, tmp_path: Path
) -> None:
    write_preview(
        session, settings=settings, campaign=campaign, out_dir=tmp_path, chromium_path=None
    )
    named_text = (tmp_path / "email.txt").read_text()
    named_html = (tmp_path / "email.html").read_text()
    text = (tmp_path / "email-unnamed.txt").read_text()
    html = (tmp_path / "email-unnamed.html").read_text()
    assert "\nHello Alex,\n" in named_text and ">Hello Alex,</p>" in named_html
    assert "\nHello,\n" in text and ">Hello,</p>" in html
    for body in (named_text, named_html, text, html):
        assert "Hello, " not in body and "[%" not in body
    message = email.message_from_bytes(
        (tmp_path / "email-unnamed.eml").read_bytes(), policy=email.policy.default
    )
    assert message["To"] == "reader@example.com"
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n") == text  # type: ignore[union-attr]


def test_without_chromium_screenshots_are_skipped_with_a_note(
    session: Session, settings: Settings, campaign: Campaign, tmp_path: Path
) -> None:
    result = write_preview(
        session,
        settings=settings,
        campaign=campaign,
        out_dir=tmp_path,
        chromium_path=str(tmp_path / "no-chromium"),
    )
    assert result.notes == [f"screenshots skipped: no Chromium at {tmp_path / 'no-chromium'}"]
    assert not (tmp_path / "mobile.png").exists()


def test_preview_warns_when_html_would_be_clipped(
    session: Session, settings: Settings, campaign: Campaign, tmp_path: Path
) -> None:
    small = settings.model_copy(update={"html_size_limit_bytes": 5_000})
    result = write_preview(
        session, settings=small, campaign=campaign, out_dir=tmp_path, chromium_path=None
    )
    assert len(result.warnings) == 1
    assert "over the 5000-byte limit" in result.warnings[0]


def test_preview_warns_about_an_image_without_alt(
    session: Session, settings: Settings, campaign: Campaign, tmp_path: Path
) -> None:
    card = shipped_template("email/partials/snippet_card.mjml.j2").replace(
        'alt="{{ snippet.image_alt or snippet.title }}" ', ""
    )
    custom = with_templates(
        settings, tmp_path / "mine", {"email/partials/snippet_card.mjml.j2": card}
    )
    result = write_preview(
        session, settings=custom, campaign=campaign, out_dir=tmp_path / "o", chromium_path=None
    )
    assert len(result.warnings) == 1
    assert "image 'https://img.example.com/a.png' has no alt text" in result.warnings[0]


@pytest.mark.browser
def test_screenshots_are_600_and_375_wide_and_mobile_does_not_overflow(
    sqlite_settings: Settings, sqlite_engine: Engine, tmp_path: Path, chromium_path: str
) -> None:
    from playwright.sync_api import sync_playwright

    with Session(sqlite_engine, expire_on_commit=False) as session:
        snippets = [
            make_snippet(
                session,
                sqlite_settings,
                category="a",
                title="Stretch" + "x" * 70,
                url="https://blog.example.com/" + "long-segment-" * 12,
                image_url="https://img.example.com/a.png",
                image_alt="A stretch",
            ),
            make_snippet(session, sqlite_settings, category="b"),
        ]
        campaign = make_campaign(session, snippets, week="2026-W48")
        result = write_preview(
            session,
            settings=sqlite_settings,
            campaign=campaign,
            out_dir=tmp_path,
            chromium_path=chromium_path,
        )
    assert png_width(tmp_path / "desktop.png") == 600
    assert png_width(tmp_path / "mobile.png") == 375
    assert png_width(tmp_path / "desktop-unnamed.png") == 600
    assert png_width(tmp_path / "mobile-unnamed.png") == 375
    assert [p.name for p in result.files][-4:] == [
        "desktop.png",
        "mobile.png",
        "desktop-unnamed.png",
        "mobile-unnamed.png",
    ]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 375, "height": 700})
        page.route(
            "**/*",
            lambda route: (
                route.abort() if route.request.url.startswith("http") else route.continue_()
            ),
        )
        page.goto((tmp_path / "email.html").as_uri())
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        browser.close()
    assert scroll_width <= 375
    assert result.mobile_scroll_width == scroll_width
    assert result.warnings == []
