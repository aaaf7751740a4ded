"""What the console's campaign pages show, gathered in one call per page.

:func:`campaign_rows` is the campaigns list (status and delivery counts);
:func:`editor_state` the campaign editor: the campaign, its snippets in order, what could
be added, the length hints, why it cannot be edited (if so), its preflight findings with
what to fix, and its delivery progress. :func:`preview_html` and :func:`preview_text` are
the rendered email for a reader with a name and one without (campaigns.content.preview),
served to the editor's sandboxed frames.

Preflight on a page view runs offline (no fetch of images and links), so the page opens
at once; ``check_links`` asks for the full check (``NEWSLETTER_PREFLIGHT_FETCH``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session

from campaigns import actions, editing, views
from campaigns.content.assembly import IssueItem, issue_items, snippet_view
from campaigns.content.preflight import Finding, preflight
from campaigns.content.preview import SAMPLE_NAME, sample_values
from campaigns.content.rendering import render_issue
from campaigns.content.snippet_library import SnippetFilter, search_snippets
from campaigns.delivery.ledger import delivery_counts
from campaigns.models import Campaign, CampaignStatus
from newsletter.mail import personalise
from newsletter.settings import Settings

# What to do about a finding, by its code (campaigns.content.preflight).
FIXES = {
    "alt": "Edit the snippet and describe its image in the alt text.",
    "image": "Edit the snippet: give its image an absolute https:// URL.",
    "image-broken": "Edit the snippet: its image does not load; fix or remove the image URL.",
    "link": "Edit the snippet: give it an absolute https:// URL.",
    "link-broken": "Check the article is live, or edit the snippet's URL.",
    "claims": "Reword the snippet's title or summary, or check the claim is substantiated.",
    "subject": "Type a subject above.",
    "control-character": "Retype the subject and preheader on one line.",
    "no-snippets": "Add at least one snippet below.",
    "size": "Remove a snippet or shorten summaries: Gmail clips long emails.",
    "unsubscribe": "Restore the unsubscribe link in your email templates.",
    "postal-address": "Set NEWSLETTER_POSTAL_ADDRESS (CAN-SPAM).",
    "disclaimer": "Set NEWSLETTER_DISCLAIMER or restore it in the templates.",
    "base-url": "Set an https:// NEWSLETTER_BASE_URL before a real send.",
    "template": "Fix the template at the line named.",
    "name": "Use {{ greeting }} rather than the bare name in templates.",
}
DEFAULT_FIX = "See the message; fix the snippet or template it names."


@dataclass(frozen=True)
class CampaignRow:
    view: views.CampaignView
    snippets: int
    queued: int
    sent: int
    failed: int
    skipped: int
    total: int


@dataclass(frozen=True)
class FindingView:
    finding: Finding
    fix: str


@dataclass
class EditorState:
    view: views.CampaignView
    items: list[dict[str, object]]
    candidates: list[dict[str, object]]
    hints: list[editing.LengthHint]
    locked: str | None
    findings: list[FindingView] = field(default_factory=list)
    preflight_ok: bool = True
    progress: views.Progress = field(default_factory=views.Progress)
    links_checked: bool = False

    @property
    def editable(self) -> bool:
        return self.locked is None


def campaign_rows(session: Session, *, settings: Settings, limit: int = 100) -> list[CampaignRow]:
    """Newest first, each with its snippet count and delivery counts."""
    rows = []
    for view in actions.list_campaigns(session, settings=settings, limit=limit):
        counts = delivery_counts(session, campaign_id=view.id)
        rows.append(
            CampaignRow(
                view=view,
                snippets=len(editing.snippet_ids(session, campaign_id=view.id)),
                queued=counts.queued,
                sent=counts.sent,
                failed=counts.failed,
                skipped=counts.skipped,
                total=counts.total,
            )
        )
    return rows


def editor_state(
    session: Session, *, settings: Settings, campaign_id: int, check_links: bool = False
) -> EditorState:
    """Everything the editor shows for one campaign; NotFound. A draft or scheduled
    campaign is rendered by preflight (its stored rendering refreshed: the caller
    commits)."""
    campaign = actions.get_campaign(session, campaign_id=campaign_id)
    items = issue_items(session, campaign=campaign)
    chosen = {i.snippet.id for i in items}
    locked = editing.locked_reason(campaign)
    candidates = []
    if locked is None:
        candidates = [
            snippet_view(IssueItem(e.snippet), settings=settings)
            | {"used": bool(e.listing.used_in)}
            for e in search_snippets(session, wanted=SnippetFilter(retired=False), limit=200)
            if e.snippet.id not in chosen
        ]
    state = EditorState(
        view=views.view(campaign, settings=settings),
        items=[snippet_view(i, settings=settings) for i in items],
        candidates=candidates,
        hints=editing.length_hints(campaign.subject, campaign.preheader),
        locked=locked,
        progress=views.progress(session, campaign_id=campaign_id),
        links_checked=check_links,
    )
    if CampaignStatus(campaign.status) in (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED):
        checked = (
            settings if check_links else settings.model_copy(update={"preflight_fetch": False})
        )
        report = preflight(session, settings=checked, campaign=campaign)
        state.findings = [FindingView(f, FIXES.get(f.code, DEFAULT_FIX)) for f in report.findings]
        state.preflight_ok = report.ok
    return state


def _rendered(session: Session, settings: Settings, campaign: Campaign) -> tuple[str, str]:
    """HTML and text with placeholders: the stored rendering (edits drop it, preflight
    refreshes it), else a fresh one, not stored (a preview request writes nothing)."""
    if campaign.html and campaign.text:
        return campaign.html, campaign.text
    rendered = render_issue(
        settings, campaign=campaign, items=issue_items(session, campaign=campaign)
    )
    return rendered.html, rendered.text


def preview_html(
    session: Session, *, settings: Settings, campaign_id: int, named: bool = True
) -> str:
    """The email's HTML as a reader with a name (or without: ``named`` False) gets it,
    with links that name no real reader. NotFound, ContentError (no snippets),
    TemplateError."""
    campaign = actions.get_campaign(session, campaign_id=campaign_id)
    html, _ = _rendered(session, settings, campaign)
    return personalise(html, sample_values(settings, SAMPLE_NAME if named else None))


def preview_text(
    session: Session, *, settings: Settings, campaign_id: int, named: bool = True
) -> str:
    """The plain-text part, personalised like :func:`preview_html`."""
    campaign = actions.get_campaign(session, campaign_id=campaign_id)
    _, text = _rendered(session, settings, campaign)
    return personalise(text, sample_values(settings, SAMPLE_NAME if named else None))
