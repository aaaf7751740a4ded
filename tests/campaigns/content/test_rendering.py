"""Rendering a campaign: MJML once, placeholders for the reader, escaping, overrides."""

from __future__ import annotations

import codecs
import html
from pathlib import Path

import pytest
from sqlmodel import Session

from campaigns.content.rendering import render_campaign
from campaigns.models import Campaign, CampaignStatus, Snippet
from newsletter.errors import TemplateError
from newsletter.mail import personalise
from newsletter.settings import Settings
from newsletter.templating import brand_context
from tests.support.content import (
    elements,
    insert_raw_snippet,
    make_campaign,
    make_snippet,
    shipped_template,
    with_templates,
)


@pytest.fixture
def issue(session: Session, settings: Settings) -> tuple[Campaign, list[Snippet]]:
    snippets = [
        make_snippet(
            session,
            settings,
            title="Calf cramps & sleep",
            category="leg cramps",
            image_url="https://img.example.com/calf.jpg",
            image_alt="A stretched calf",
        ),
        make_snippet(
            session,
            settings,
            title="Sciatica basics",
            category="sciatica",
            image_url="https://img.example.com/nerve.jpg",
        ),
    ]
    return make_campaign(session, snippets, week="2026-W48"), snippets


def test_render_stores_html_and_text_on_the_campaign(
    session: Session, settings: Settings, issue: tuple[Campaign, list[Snippet]]
) -> None:
    campaign, _ = issue
    rendered = render_campaign(session, settings=settings, campaign=campaign)
    assert (campaign.html, campaign.text) == (rendered.html, rendered.text)
    assert (rendered.subject, rendered.preheader) == ("Test issue", "Preheader text")


def test_per_recipient_values_are_placeholders(
    session: Session, settings: Settings, issue: tuple[Campaign, list[Snippet]]
) -> None:
    rendered = render_campaign(session, settings=settings, campaign=issue[0])
    hrefs = [a.get("href") for tag, a in elements(rendered.html) if tag == "a"]
    assert "[%unsubscribe_url%]" in hrefs
    assert "[%preferences_url%]" in hrefs
    # The greeting is one per-recipient value ("Hello Jane," / "Hello,"), never "Hello, ".
    assert '<p style="margin:0 0 8px 0;">[%greeting_html%]</p>' in rendered.html
    assert "\n[%greeting%]\n" in rendered.text
    assert "Hello" not in rendered.html and "Hello" not in rendered.text
    assert "Unsubscribe: [%unsubscribe_url%]" in rendered.text


def test_personalising_is_substitution_of_the_one_rendering(
    session: Session, settings: Settings, issue: tuple[Campaign, list[Snippet]]
) -> None:
    rendered = render_campaign(session, settings=settings, campaign=issue[0])
    values = {
        "unsubscribe_url": "https://u.example/1",
        "preferences_url": "https://p.example/1",
        "name": "Sam",
        "name_html": "Sam",
        "greeting": "Hello Sam,",
        "greeting_html": "Hello Sam,",
    }
    mail = personalise(rendered.html, values)
    assert "[%" not in mail
    assert 'href="https://u.example/1"' in mail
    restored = (
        mail.replace("https://u.example/1", "[%unsubscribe_url%]")
        .replace("https://p.example/1", "[%preferences_url%]")
        .replace(">Hello Sam,<", ">[%greeting_html%]<")
    )
    assert restored == rendered.html


def test_html_is_accessible(
    session: Session, settings: Settings, issue: tuple[Campaign, list[Snippet]]
) -> None:
    rendered = render_campaign(session, settings=settings, campaign=issue[0])
    tags = elements(rendered.html)
    assert ("html", "en") in [(t, a.get("lang")) for t, a in tags if t == "html"]
    alts = [a.get("alt") for t, a in tags if t == "img"]
    assert alts == ["A stretched calf", "Sciatica basics"]  # the title stands in for no alt
    assert [t for t, _ in tags].count("h2") == 2


def test_footer_carries_disclaimer_address_reason_and_preheader(
    session: Session, settings: Settings, issue: tuple[Campaign, list[Snippet]]
) -> None:
    rendered = render_campaign(session, settings=settings, campaign=issue[0])
    visible = " ".join(html.unescape(rendered.html).split())
    for wanted in (
        settings.disclaimer,
        settings.postal_address,
        "Preheader text",
        "You are receiving this email because you subscribed",
    ):
        assert wanted in visible


def test_text_part_lists_every_link_unescaped(
    session: Session, settings: Settings, issue: tuple[Campaign, list[Snippet]]
) -> None:
    campaign, snippets = issue
    rendered = render_campaign(session, settings=settings, campaign=campaign)
    for snippet in snippets:
        assert f"Read the article: {snippet.url}" in rendered.text
    assert "Calf cramps & sleep" in rendered.text
    assert "<" not in rendered.text


HOSTILE_TITLE = '<script>alert("t")</script>Title'
HOSTILE_SUMMARY = '"><img src=x onerror=alert(1)> summary'


def test_hostile_content_never_becomes_markup_or_a_live_link(
    session: Session, settings: Settings
) -> None:
    hostile = insert_raw_snippet(
        session,
        title=HOSTILE_TITLE,
        summary=HOSTILE_SUMMARY,
        url="javascript:alert(2)",
        image_url="javascript:alert(3)",
        image_alt='" onload="alert(4)',
        category="x",
    )
    quoted = insert_raw_snippet(
        session,
        image_url="https://img.example.com/a.png",
        image_alt='" onerror="alert(5)',
        category="y",
    )
    campaign = make_campaign(session, [hostile, quoted])
    rendered = render_campaign(session, settings=settings, campaign=campaign)
    tags = elements(rendered.html)
    assert "script" not in [t for t, _ in tags]
    for tag, attrs in tags:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        for name in ("href", "src"):
            assert not (attrs.get(name) or "").lower().startswith("javascript"), (tag, attrs)
    assert [a["alt"] for t, a in tags if t == "img"] == ['" onerror="alert(5)']
    visible = html.unescape(rendered.html)
    assert HOSTILE_TITLE in visible and HOSTILE_SUMMARY in visible  # shown as text
    assert "javascript:" not in rendered.text


def test_a_user_template_wins_file_by_file(
    session: Session, settings: Settings, issue: tuple[Campaign, list[Snippet]], tmp_path: Path
) -> None:
    card = shipped_template("email/partials/snippet_card.mjml.j2").replace(
        "Read the article", "Continue reading"
    )
    custom = with_templates(
        settings, tmp_path / "mine", {"email/partials/snippet_card.mjml.j2": card}
    )
    rendered = render_campaign(session, settings=custom, campaign=issue[0])
    assert "Continue reading" in rendered.html
    assert "Read the article" not in rendered.html
    assert "Manage your preferences" in rendered.html  # footer still the shipped one


def test_template_syntax_error_names_template_and_line(
    session: Session, settings: Settings, issue: tuple[Campaign, list[Snippet]], tmp_path: Path
) -> None:
    broken = '{% extends "email/layout.mjml.j2" %}\n{% block content %}\n{% if %}\n{% endblock %}'
    custom = with_templates(settings, tmp_path / "mine", {"email/weekly.mjml.j2": broken})
    with pytest.raises(TemplateError) as caught:
        render_campaign(session, settings=custom, campaign=issue[0])
    assert (caught.value.template, caught.value.line) == ("email/weekly.mjml.j2", 3)


def test_undefined_variable_in_a_partial_names_the_partial_and_line(
    session: Session, settings: Settings, issue: tuple[Campaign, list[Snippet]], tmp_path: Path
) -> None:
    card = (
        "      <mj-section><mj-column>\n<mj-text>{{ snippet.no_such_field }}</mj-text>"
        "</mj-column></mj-section>\n"
    )
    custom = with_templates(
        settings, tmp_path / "mine", {"email/partials/snippet_card.mjml.j2": card}
    )
    with pytest.raises(TemplateError, match="no_such_field") as caught:
        render_campaign(session, settings=custom, campaign=issue[0])
    assert (caught.value.template, caught.value.line) == ("email/partials/snippet_card.mjml.j2", 2)


def test_mjml_error_names_the_template_and_where_nesting_breaks(
    session: Session, settings: Settings, issue: tuple[Campaign, list[Snippet]], tmp_path: Path
) -> None:
    card = "<mj-section><mj-column><mj-text>unclosed</mj-column></mj-section>\n"
    custom = with_templates(
        settings, tmp_path / "mine", {"email/partials/snippet_card.mjml.j2": card}
    )
    with pytest.raises(TemplateError, match=r"MJML error: .*<mj-text> is open since line \d+"):
        render_campaign(session, settings=custom, campaign=issue[0])


def test_a_campaign_that_is_sending_keeps_its_stored_content(
    session: Session, settings: Settings, issue: tuple[Campaign, list[Snippet]]
) -> None:
    campaign, _ = issue
    campaign.html, campaign.text = "<p>as sent</p>", "as sent"
    campaign.status = CampaignStatus.SENDING
    rendered = render_campaign(session, settings=settings, campaign=campaign)
    assert (rendered.html, rendered.text) == ("<p>as sent</p>", "as sent")


def test_a_light_brand_colour_gets_dark_header_text(sqlite_settings: Settings) -> None:
    light = brand_context(sqlite_settings.model_copy(update={"brand_color": "#ffe066"}))
    dark = brand_context(sqlite_settings)
    assert (light["color"], light["on_color"]) == ("#ffe066", "#111111")
    assert dark["on_color"] == "#ffffff"


def test_a_brand_colour_that_is_not_hex_cannot_inject_css(sqlite_settings: Settings) -> None:
    hostile = sqlite_settings.model_copy(
        update={"brand_color": "red;}</style><script>x()</script>"}
    )
    assert brand_context(hostile)["color"] == "#1f5f8b"


def _overrides_as_bytes(folder: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_template_overrides_saved_with_a_utf8_bom_render_without_it(
    session: Session, settings: Settings, issue: tuple[Campaign, list[Snippet]], tmp_path: Path
) -> None:
    bom = codecs.BOM_UTF8
    _overrides_as_bytes(
        tmp_path / "mine",
        {
            name: bom + shipped_template(name).replace("Unsubscribe", "Leave").encode()
            for name in (
                "email/weekly.mjml.j2",
                "email/weekly.txt.j2",
                "email/partials/footer.mjml.j2",
            )
        },
    )
    custom = settings.model_copy(update={"templates_dir": tmp_path / "mine"})
    rendered = render_campaign(session, settings=custom, campaign=issue[0])
    assert "\ufeff" not in rendered.html and "\ufeff" not in rendered.text
    assert rendered.text.startswith("View this issue in your browser: ")  # no BOM first
    assert "Leave: [%unsubscribe_url%]" in rendered.text
    assert ">Leave</a>" in rendered.html


def test_a_template_override_in_utf16_without_a_bom_names_the_encoding(
    session: Session, settings: Settings, issue: tuple[Campaign, list[Snippet]], tmp_path: Path
) -> None:
    source = shipped_template("email/weekly.txt.j2").encode("utf-16-le")
    _overrides_as_bytes(tmp_path / "mine", {"email/weekly.txt.j2": source})
    custom = settings.model_copy(update={"templates_dir": tmp_path / "mine"})
    with pytest.raises(TemplateError) as caught:
        render_campaign(session, settings=custom, campaign=issue[0])
    assert caught.value.template == "email/weekly.txt.j2"
    assert "looks like UTF-16" in str(caught.value)
    assert "save it as UTF-8" in str(caught.value)


READERS_VALUES = {
    "unsubscribe_url": "https://news.example/unsubscribe/TOKEN-U",
    "preferences_url": "https://news.example/preferences/TOKEN-P",
    "name": "Sam",
    "name_html": "Sam",
    "greeting": "Hello Sam,",
    "greeting_html": "Hello Sam,",
}


@pytest.fixture
def placeholder_snippet(session: Session) -> Campaign:
    """A snippet at rest whose every field names a per-reader placeholder (a feed's, say)."""
    snippet = insert_raw_snippet(
        session,
        title="Tips for [%name%]",
        summary="Read [%greeting%] and [%unsubscribe_url%]",
        url="https://blog.example.com/a/[%unsubscribe_url%]",
        image_url="https://img.example.com/p.png?who=[%name%]",
        image_alt="[%preferences_url%]",
        author="[%name_html%]",
        category="back pain",
    )
    return make_campaign(session, [snippet])


def test_a_snippets_placeholders_are_not_filled_with_the_readers_values(
    session: Session, settings: Settings, placeholder_snippet: Campaign
) -> None:
    rendered = render_campaign(session, settings=settings, campaign=placeholder_snippet)
    for part in (rendered.html, rendered.text):
        copy = personalise(part, READERS_VALUES)
        shown = html.unescape(copy).replace("\u2060", "")  # the joiner is invisible
        assert "Tips for [%name%]" in shown and "Tips for Sam" not in shown
        assert "Read [%greeting%] and [%unsubscribe_url%]" in shown


def test_a_snippets_link_never_carries_the_readers_tokens_to_its_site(
    session: Session, settings: Settings, placeholder_snippet: Campaign
) -> None:
    rendered = render_campaign(session, settings=settings, campaign=placeholder_snippet)
    copy = personalise(rendered.html, READERS_VALUES)
    links = [a.get("href") or a.get("src") or "" for _, a in elements(copy)]
    article = [link for link in links if "blog.example.com" in link]
    image = [link for link in links if "img.example.com" in link]
    assert article == ["https://blog.example.com/a/%5B%25unsubscribe_url%25%5D"] * len(article)
    assert article and image == ["https://img.example.com/p.png?who=%5B%25name%25%5D"]
