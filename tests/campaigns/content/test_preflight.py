"""Preflight: what blocks a send, what only warns, and where each finding points."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session

from campaigns.content import snippet_library as library
from campaigns.content.html_checks import audit_html
from campaigns.content.preflight import Finding, claims_in, preflight, require_preflight
from campaigns.models import Campaign
from newsletter.errors import ContentError
from newsletter.settings import Settings
from tests.support.content import (
    insert_raw_snippet,
    make_campaign,
    make_snippet,
    shipped_template,
    with_templates,
)


@pytest.fixture
def campaign(session: Session, settings: Settings) -> Campaign:
    snippets = [make_snippet(session, settings, category=c) for c in ("a", "b", "c")]
    return make_campaign(session, snippets, week="2026-W48")


def codes(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.severity, f.code) for f in findings]


def test_a_clean_campaign_passes_and_is_rendered(
    session: Session, settings: Settings, campaign: Campaign
) -> None:
    report = preflight(session, settings=settings, campaign=campaign)
    assert (report.ok, report.findings) == (True, [])
    assert campaign.html and campaign.text


def test_claims_are_warnings_naming_the_snippet(session: Session, settings: Settings) -> None:
    bold = make_snippet(
        session,
        settings,
        title="A miracle stretch",
        summary="Guaranteed to help; 100% effective for most.",
    )
    report = preflight(session, settings=settings, campaign=make_campaign(session, [bold]))
    assert report.ok
    found = [(f.severity, f.snippet_id, f.snippet_title, f.field) for f in report.findings]
    assert found == [
        ("warning", bold.id, "A miracle stretch", "title"),
        ("warning", bold.id, "A miracle stretch", "summary"),
        ("warning", bold.id, "A miracle stretch", "summary"),
    ]
    assert str(report.findings[0]) == (
        f"warning: snippet {bold.id} 'A miracle stretch' (title): uses 'miracle': "
        "a health sender must not promise results unqualified"
    )


def test_claims_match_whole_words_only() -> None:
    words = ["cure", "100% effective"]
    assert claims_in("Procure a pillow; secure your back", words) == []
    assert claims_in("It is 100% Effective. A CURE!", words) == ["cure", "100% effective"]


def test_the_claims_list_is_configurable(session: Session, settings: Settings) -> None:
    snippet = make_snippet(session, settings, summary="This fixes everything.")
    cfg = settings.model_copy(update={"claims_words": ["fixes everything"]})
    report = preflight(session, settings=cfg, campaign=make_campaign(session, [snippet]))
    assert codes(report.findings) == [("warning", "claims")]


def test_a_non_http_snippet_link_is_an_error_naming_the_snippet(
    session: Session, settings: Settings
) -> None:
    bad = insert_raw_snippet(session, title="Bad link", url="javascript:alert(1)")
    report = preflight(session, settings=settings, campaign=make_campaign(session, [bad]))
    assert not report.ok
    snippet_errors = [f for f in report.errors if f.snippet_id == bad.id]
    assert [(f.code, f.field) for f in snippet_errors] == [("link", "url")]
    # The rendered link became an inert '#', reported against the rendered HTML.
    assert any(
        f.code == "link" and f.template and "rendered HTML" in f.template for f in report.errors
    )


def test_missing_postal_address_blocks_the_send(
    session: Session, settings: Settings, campaign: Campaign
) -> None:
    cfg = settings.model_copy(update={"postal_address": None})
    report = preflight(session, settings=cfg, campaign=campaign)
    assert codes(report.errors) == [("error", "postal-address")]


def test_html_over_102_kb_is_an_error(session: Session, settings: Settings) -> None:
    cfg = settings.model_copy(update={"summary_max_chars": 40_000})
    long = [
        make_snippet(session, cfg, category=c, summary="pain relief words " * 2000)
        for c in ("a", "b", "c")
    ]
    report = preflight(session, settings=cfg, campaign=make_campaign(session, long))
    assert settings.html_size_limit_bytes == 102 * 1024
    assert codes(report.errors) == [("error", "size")]
    assert "Gmail will clip" in report.errors[0].message


def test_the_size_check_budgets_for_click_tracking(settings: Settings) -> None:
    page = "<html><body>" + '<a href="https://x.example/">x</a>' * 10 + "</body></html>"
    audit = audit_html(page)
    exact = settings.model_copy(
        update={"html_size_limit_bytes": audit.size_bytes, "tracking_budget_bytes_per_link": 0}
    )
    tracked = exact.model_copy(update={"tracking_budget_bytes_per_link": 300})
    assert audit.size_warning(exact) is None
    assert audit.size_warning(tracked) is not None
    assert audit.estimated_size(tracked) == audit.size_bytes + 3000


def test_template_without_unsubscribe_link_names_the_footer(
    session: Session, settings: Settings, campaign: Campaign, tmp_path: Path
) -> None:
    footer = shipped_template("email/partials/footer.mjml.j2").replace(
        'href="{{ footer.unsubscribe_url }}"', 'href="https://example.com/"'
    )
    custom = with_templates(settings, tmp_path / "mine", {"email/partials/footer.mjml.j2": footer})
    report = preflight(session, settings=custom, campaign=campaign)
    assert [(f.code, f.template) for f in report.errors] == [
        ("unsubscribe", "email/partials/footer.mjml.j2")
    ]


def test_image_without_alt_in_a_template_names_template_and_line(
    session: Session, settings: Settings, campaign: Campaign, tmp_path: Path
) -> None:
    weekly = shipped_template("email/weekly.mjml.j2").replace(
        "{% for snippet in snippets %}",
        "      <mj-section><mj-column>\n"
        '        <mj-image src="https://img.example.com/logo.png" />\n'
        "      </mj-column></mj-section>\n{% for snippet in snippets %}",
    )
    custom = with_templates(settings, tmp_path / "mine", {"email/weekly.mjml.j2": weekly})
    report = preflight(session, settings=custom, campaign=campaign)
    line = weekly.splitlines().index('        <mj-image src="https://img.example.com/logo.png" />')
    assert [(f.code, f.template, f.line) for f in report.errors] == [
        ("alt", "email/weekly.mjml.j2", line + 1)
    ]


def test_a_template_error_is_a_finding_with_template_and_line(
    session: Session, settings: Settings, campaign: Campaign, tmp_path: Path
) -> None:
    custom = with_templates(
        settings, tmp_path / "mine", {"email/weekly.txt.j2": "line one\n{{ nope }}\n"}
    )
    report = preflight(session, settings=custom, campaign=campaign)
    assert [(f.code, f.template, f.line) for f in report.errors] == [
        ("template", "email/weekly.txt.j2", 2)
    ]


def test_require_preflight_raises_with_every_reason(
    session: Session, settings: Settings, campaign: Campaign
) -> None:
    cfg = settings.model_copy(update={"postal_address": None, "disclaimer": ""})
    with pytest.raises(ContentError, match=r"NEWSLETTER_POSTAL_ADDRESS.*NEWSLETTER_DISCLAIMER"):
        require_preflight(session, settings=cfg, campaign=campaign)


def test_a_mailto_link_in_a_markdown_summary_passes(session: Session, settings: Settings) -> None:
    snippet = library.create_snippet(
        session,
        settings=settings,
        data={
            "title": "Ask the nurse",
            "summary": "Questions? [Write to our nurse](mailto:nurse@example.com) any weekday.",
            "url": "https://blog.example.com/ask",
        },
        actor="jane@example.com",
    ).snippet
    report = preflight(session, settings=settings, campaign=make_campaign(session, [snippet]))
    assert [f for f in report.findings if f.code == "link"] == []


def test_a_mailto_link_without_a_valid_address_is_an_error(
    session: Session, settings: Settings
) -> None:
    snippet = library.create_snippet(
        session,
        settings=settings,
        data={
            "title": "Ask nobody",
            "summary": "Questions? [Write](mailto:not-an-address) any weekday.",
            "url": "https://blog.example.com/ask-nobody",
        },
        actor="jane@example.com",
    ).snippet
    report = preflight(session, settings=settings, campaign=make_campaign(session, [snippet]))
    assert [f.code for f in report.errors] == ["link"]


def test_a_placeholder_in_a_snippets_text_warns_that_it_is_shown_as_written(
    session: Session, settings: Settings
) -> None:
    snippets = [make_snippet(session, settings, category=c) for c in ("a", "b")]
    snippets.append(make_snippet(session, settings, category="c", title="Your plan, [%name%]"))
    report = preflight(session, settings=settings, campaign=make_campaign(session, snippets))
    [warning] = [f for f in report.warnings if f.code == "placeholder"]
    assert (warning.snippet_id, warning.field) == (snippets[-1].id, "title")
    assert warning.message.startswith("[%name%] is shown to readers as written")
    assert report.ok  # a warning: the issue reads fine, the tag is not filled


def test_a_bare_name_in_the_subject_is_the_subjects_finding_not_a_templates(
    session: Session, settings: Settings, campaign: Campaign
) -> None:
    campaign.subject = "Hi [%name%], your week"
    report = preflight(session, settings=settings, campaign=campaign)
    named = [(f.message, f.template) for f in report.warnings if f.code == "name"]
    assert named == [
        (
            'the subject uses [%name%], empty for readers without a name ("Hi [%name%]," '
            'reads "Hi ," for them)',
            None,
        )
    ]
