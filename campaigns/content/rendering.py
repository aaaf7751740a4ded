"""Render a campaign once: Jinja2 -> MJML -> HTML, plus its plain-text twin.

Per-recipient values (unsubscribe and preferences links, the name, the greeting) are written as
``[%key%]`` placeholders from :mod:`newsletter.mail`; the send loop fills them in by
string substitution, so MJML never runs per recipient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from campaigns.content.assembly import IssueItem, issue_items, snippet_view
from campaigns.content.web_version import FOOTER_REASON_START, issue_url
from campaigns.models import Campaign, CampaignStatus
from newsletter.errors import ContentError
from newsletter.mail import (
    GREETING,
    GREETING_HTML,
    NAME,
    NAME_HTML,
    PREFERENCES_URL,
    UNSUBSCRIBE_URL,
    placeholder,
)
from newsletter.settings import Settings
from newsletter.templating import Templates, brand_context, footer_context

HTML_TEMPLATE = "email/weekly.mjml.j2"
TEXT_TEMPLATE = "email/weekly.txt.j2"
# Once sending has begun the stored content is what recipients get; never re-render it.
RENDERABLE = frozenset({CampaignStatus.DRAFT, CampaignStatus.SCHEDULED})


@dataclass(frozen=True)
class RenderedIssue:
    """One campaign's content, with ``[%key%]`` placeholders still in ``html`` and ``text``."""

    subject: str
    preheader: str
    html: str
    text: str


def footer_reason(settings: Settings) -> str:
    """Why the reader gets this email, printed in the footer above the unsubscribe link
    (the archive page leaves it out: :func:`campaigns.content.web_version.web_html`)."""
    return (
        f"{FOOTER_REASON_START} you subscribed to {settings.newsletter_name} "
        "and confirmed your address."
    )


def week_label(week: str | None) -> str:
    """'2026-W48' -> 'Week 48, 2026'."""
    if not week or "-W" not in week:
        return ""
    year, number = week.split("-W", 1)
    return f"Week {int(number)}, {year}"


def campaign_context(
    settings: Settings, *, campaign: Campaign, items: list[IssueItem], html: bool
) -> dict[str, Any]:
    """The template context of one campaign; ``html`` picks the escaped placeholders.

    ``greeting`` ("Hello Jane," / "Hello,") is what templates greet with; ``name`` alone
    is empty for a reader without one (preflight warns when a template uses it).
    """
    return {
        "brand": brand_context(settings),
        "preheader": campaign.preheader,
        "subject": campaign.subject,
        "footer": footer_context(
            reason=footer_reason(settings),
            unsubscribe_url=placeholder(UNSUBSCRIBE_URL),
            preferences_url=placeholder(PREFERENCES_URL),
            show_disclaimer=True,
        ),
        "week": campaign.week,
        "week_label": week_label(campaign.week),
        "web_version_url": issue_url(settings, campaign) if campaign.id else "",
        "name": placeholder(NAME_HTML if html else NAME),
        "greeting": placeholder(GREETING_HTML if html else GREETING),
        "snippets": [snippet_view(item, settings=settings) for item in items],
    }


def render_issue(
    settings: Settings, *, campaign: Campaign, items: list[IssueItem]
) -> RenderedIssue:
    """Render without touching the database (preflight and tests use it too).

    Raises ContentError when there are no items, TemplateError (with template and line)
    when Jinja2 or MJML fails.
    """
    if not items:
        raise ContentError(f"campaign {campaign.id} has no snippets to render")
    templates = Templates(settings)
    html = templates.render_email_html(
        HTML_TEMPLATE, campaign_context(settings, campaign=campaign, items=items, html=True)
    )
    text = templates.render_text(
        TEXT_TEMPLATE, campaign_context(settings, campaign=campaign, items=items, html=False)
    )
    return RenderedIssue(campaign.subject, campaign.preheader, html, text)


def render_campaign(session: Session, *, settings: Settings, campaign: Campaign) -> RenderedIssue:
    """Render a draft or scheduled campaign and store its HTML and text (caller commits).

    A campaign that has started sending keeps the content it was sent with.
    """
    if CampaignStatus(campaign.status) not in RENDERABLE and campaign.html and campaign.text:
        return stored_issue(campaign)
    rendered = render_issue(
        settings, campaign=campaign, items=issue_items(session, campaign=campaign)
    )
    campaign.html = rendered.html
    campaign.text = rendered.text
    session.add(campaign)
    session.flush()
    return rendered


def stored_issue(campaign: Campaign) -> RenderedIssue:
    """The content as stored on the campaign (empty strings if never rendered)."""
    return RenderedIssue(
        campaign.subject, campaign.preheader, campaign.html or "", campaign.text or ""
    )


def ensure_rendered(session: Session, *, settings: Settings, campaign: Campaign) -> RenderedIssue:
    """The stored rendering, rendering first if there is none yet."""
    if campaign.html and campaign.text:
        return stored_issue(campaign)
    return render_campaign(session, settings=settings, campaign=campaign)
