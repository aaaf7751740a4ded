"""Weekly assembly: pick the snippets of one ISO week's issue and create its campaign.

The rules, in order: never a snippet an earlier issue already used (unless configured to
fill up with the least-recently-sent ones, marked ``resent``), the pinned featured
snippet first, then freshest first with at most ``max_per_category`` per category.
Ties break on the URL, so the same library always gives the same issue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from campaigns import weekly_plan
from campaigns.content import summaries
from campaigns.content.snippets import collapse_whitespace, loadable_url, trim_text
from campaigns.content.sources import SnippetSource
from campaigns.models import (
    Campaign,
    CampaignSnippet,
    CampaignStatus,
    Snippet,
    SnippetRetirement,
)
from newsletter import db
from newsletter.clock import utcnow
from newsletter.errors import ContentError
from newsletter.mail import inert, inert_url
from newsletter.settings import Settings
from newsletter.templating import Templates, brand_context

SUBJECT_TEMPLATE = "email/subject.txt.j2"
PREHEADER_TEMPLATE = "email/preheader.txt.j2"
SUBJECT_MAX = 300
# What inboxes show (campaigns.editing's length hints give the marketer the same advice):
# the subject template drops the newsletter's name, then cuts the lead's title, to stay
# within SUBJECT_FITS; an assembled preheader is cut at a word to PREHEADER_FITS.
SUBJECT_FITS = 60
PREHEADER_FITS = 130


@dataclass(frozen=True)
class IssueItem:
    """A snippet in an issue; ``resent`` when it fills a gap from an earlier issue;
    ``summary_markdown`` the Markdown its summary was typed in, if kept (the email shows
    its paragraphs, lists and links)."""

    snippet: Snippet
    resent: bool = False
    summary_markdown: str | None = None


@dataclass
class AssembledIssue:
    campaign: Campaign
    items: list[IssueItem]
    created: bool  # False: this week's campaign already existed and is returned as is
    # The cancelled issue of the same week that the new campaign replaces, if any.
    replaces: Campaign | None = None

    def to_dict(self) -> dict[str, Any]:
        c = self.campaign
        return {
            "id": c.id,
            "week": c.week,
            "status": str(c.status),
            "subject": c.subject,
            "preheader": c.preheader,
            "created": self.created,
            "replaces": None if self.replaces is None else self.replaces.id,
            "snippets": [
                {
                    "id": i.snippet.id,
                    "title": i.snippet.title,
                    "category": i.snippet.category,
                    "resent": i.resent,
                }
                for i in self.items
            ],
        }


def issue_items(session: Session, *, campaign: Campaign) -> list[IssueItem]:
    """A campaign's snippets in issue order, with their summaries' Markdown."""
    rows = session.exec(
        select(CampaignSnippet, Snippet, SnippetSource.summary_markdown)
        .join(Snippet, col(Snippet.id) == col(CampaignSnippet.snippet_id))
        .outerjoin(SnippetSource, col(SnippetSource.snippet_id) == col(Snippet.id))
        .where(CampaignSnippet.campaign_id == campaign.id)
        .order_by(col(CampaignSnippet.position))
    ).all()
    return [IssueItem(snippet, link.resent, markdown) for link, snippet, markdown in rows]


def _freshness(snippet: Snippet) -> tuple[float, str]:
    return (-snippet.published_at.timestamp(), snippet.url)


def _last_used(session: Session, *, ignore: int | None = None) -> dict[int, tuple[datetime, int]]:
    """Per snippet, when a live (not cancelled) campaign other than ``ignore`` last used it."""
    rows = session.exec(
        select(CampaignSnippet.snippet_id, Campaign)
        .join(Campaign, col(Campaign.id) == col(CampaignSnippet.campaign_id))
        .where(Campaign.status != CampaignStatus.CANCELLED, Campaign.id != (ignore or 0))
    ).all()
    used: dict[int, tuple[datetime, int]] = {}
    for snippet_id, campaign in rows:
        when = campaign.started_at or campaign.scheduled_at or campaign.created_at
        key = (when, campaign.id or 0)
        if snippet_id not in used or key > used[snippet_id]:
            used[snippet_id] = key
    return used


def select_snippets(
    session: Session, *, settings: Settings, week: str, ignore: int | None = None
) -> list[IssueItem]:
    """The snippets for a new issue, by the rules above; ContentError when too few fit.

    Retired snippets are never picked; ``ignore`` is a campaign being re-assembled, whose
    own snippets count as unused.
    """
    wanted = settings.snippets_per_issue
    cap = settings.max_per_category
    used = _last_used(session, ignore=ignore)
    retired = select(SnippetRetirement.snippet_id)
    everything = session.exec(select(Snippet).where(col(Snippet.id).not_in(retired))).all()
    fresh = sorted((s for s in everything if s.id not in used), key=_freshness)

    picked: list[IssueItem] = []
    per_category: dict[str, int] = {}

    def take(snippet: Snippet, *, resent: bool) -> None:
        if len(picked) >= wanted or any(i.snippet.id == snippet.id for i in picked):
            return
        if per_category.get(snippet.category, 0) >= cap:
            return
        per_category[snippet.category] = per_category.get(snippet.category, 0) + 1
        picked.append(IssueItem(snippet, resent))

    featured = next((s for s in fresh if s.pinned), None)
    if featured is not None:
        take(featured, resent=False)
    for snippet in fresh:
        take(snippet, resent=False)
    fresh_count = len(picked)
    if len(picked) < wanted and settings.fill_with_resent:
        stale = sorted(
            (s for s in everything if s.id in used),
            key=lambda s: (used[s.id or 0], *_freshness(s)),
        )
        for snippet in stale:
            take(snippet, resent=True)
    if len(picked) < wanted:
        raise ContentError(
            f"not enough fresh snippets for {week}: {fresh_count} fit, {wanted} needed "
            f"({len(fresh)} never sent; at most {cap} per category). Import or add more "
            "snippets, or set NEWSLETTER_FILL_WITH_RESENT=true to reuse older ones."
        )
    return picked


def category_label(category: str, *, settings: Settings) -> str:
    """The reader-facing name of a category slug (settings.topics), e.g. 'Back pain'."""
    label = settings.topics.get(category)
    return label or category.replace("-", " ").capitalize()


def snippet_view(item: IssueItem, *, settings: Settings) -> dict[str, Any]:
    """What templates see of a snippet: plain values, autoescaped by Jinja2 on output,
    except ``summary_html`` (nh3-cleaned, :mod:`campaigns.content.summaries`);
    ``summary_text`` is its plain-text twin, ``summary`` the one-line summary."""
    s = item.snippet
    published = s.published_at
    summary_html, summary_text = summaries.for_email(s.summary, item.summary_markdown)
    # A snippet's text is data: a placeholder in it ("[%unsubscribe_url%]" in a feed's
    # link) would be filled per reader, sending their tokens to the article's site.
    return {
        "id": s.id,
        "title": inert(s.title),
        "summary": inert(s.summary),
        "summary_html": inert(summary_html),
        "summary_text": inert(summary_text),
        "url": inert_url(s.url),
        "image_url": inert_url(loadable_url(settings, s.image_url)) if s.image_url else None,
        "image_alt": inert(s.image_alt or s.title),
        "category": s.category,
        "category_label": inert(category_label(s.category, settings=settings)),
        "tags": [inert(tag) for tag in s.tags or []],
        "author": inert(s.author) if s.author else s.author,
        "published": published.date().isoformat(),
        "published_label": f"{published.day} {published:%B %Y}",
        "pinned": s.pinned,
        "resent": item.resent,
    }


def headline_context(
    settings: Settings, *, week: str | None, items: list[IssueItem]
) -> dict[str, Any]:
    """The context of the subject and preheader templates."""
    snippets = [snippet_view(i, settings=settings) for i in items]
    return {
        "brand": brand_context(settings),
        "newsletter_name": settings.newsletter_name,
        "week": week,
        "lead": snippets[0] if snippets else None,
        "snippets": snippets,
        "subject_max": SUBJECT_FITS,
    }


def render_headlines(
    settings: Settings, *, week: str | None, items: list[IssueItem]
) -> tuple[str, str]:
    """Subject and preheader from their (overridable) one-line templates; the preheader
    cut at a word to :data:`PREHEADER_FITS` (an inbox shows no more of it anyway)."""
    templates = Templates(settings)
    context = headline_context(settings, week=week, items=items)
    subject = trim_text(templates.render_text(SUBJECT_TEMPLATE, context), SUBJECT_MAX)
    preheader = trim_text(templates.render_text(PREHEADER_TEMPLATE, context), PREHEADER_FITS)
    if not subject:
        subject = collapse_whitespace(settings.newsletter_name)
    return subject, preheader


def find_week(session: Session, *, week: str) -> Campaign | None:
    """The weekly issue filed under ``week`` ("2026-W48"), if any: the live one (at most
    one is not cancelled, migration 0006), else the newest cancelled one."""
    cancelled = sa.case((col(Campaign.status) == CampaignStatus.CANCELLED, 1), else_=0)
    return session.exec(
        select(Campaign).where(Campaign.week == week).order_by(cancelled, col(Campaign.id).desc())
    ).first()


def assemble_week(
    session: Session,
    *,
    settings: Settings,
    day: date | None = None,
    actor: str = "system",
    replace_cancelled: bool = False,
) -> AssembledIssue:
    """The issue for the ISO week of ``day`` (default: today); the existing one if any.

    A week whose issue was cancelled keeps it (``created`` False, status cancelled), so
    the scheduler's weekly job never revives an issue someone called off; with
    ``replace_cancelled`` (a person asking, ``newsletter campaigns assemble``) a fresh
    campaign is built for the week and ``replaces`` names the cancelled one. Only one
    campaign per week may be live: a partial unique index (week, where not cancelled).

    The caller commits. Two assemblers racing for the same week meet at that index: the
    loser rolls back to a savepoint, so only its own insert is undone (the caller's
    earlier work in the transaction stays), and returns the winner's campaign.
    Raises ContentError when too few snippets fit (:func:`select_snippets`).
    """
    week = weekly_plan.iso_week(day or weekly_plan.local_today(settings))
    existing = find_week(session, week=week)
    replaces = None
    if existing is not None:
        if not (replace_cancelled and existing.status == CampaignStatus.CANCELLED):
            items = issue_items(session, campaign=existing)
            return AssembledIssue(existing, items, created=False)
        replaces = existing
    items = select_snippets(session, settings=settings, week=week)
    subject, preheader = render_headlines(settings, week=week, items=items)
    campaign = Campaign(
        subject=subject,
        preheader=preheader,
        week=week,
        status=CampaignStatus.DRAFT,
        created_by=actor[:100],
        created_at=utcnow(),
    )
    try:
        with db.savepoint(session):
            session.add(campaign)
            session.flush()
    except IntegrityError:
        winner = find_week(session, week=week)
        if winner is None or winner.status == CampaignStatus.CANCELLED:
            raise
        return AssembledIssue(winner, issue_items(session, campaign=winner), created=False)
    assert campaign.id is not None
    for position, item in enumerate(items, start=1):
        assert item.snippet.id is not None
        session.add(
            CampaignSnippet(
                campaign_id=campaign.id,
                snippet_id=item.snippet.id,
                position=position,
                resent=item.resent,
            )
        )
    session.flush()
    return AssembledIssue(campaign, items, created=True, replaces=replaces)
