"""Editing a campaign before it goes out: its subject, preheader and snippets.

The console, the API and the CLI call these, so all three refuse the same things: an
edit of a campaign whose content is fixed (:func:`editable`), a subject or preheader
with a line break (RFC 5322 2.2), an unknown or repeated snippet. Every change drops the
stored rendering (the next preview or send renders again) and is written to the audit
log with the actor the door passes in.

Length hints are advice, not rules: a subject over ~60 characters is cut in most inbox
lists, and a preheader reads best between ~40 and ~130 characters (Litmus and Mailchimp
guidance); past those the marketer is told, never refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, delete, select

from campaigns import actions, views, weekly_plan
from campaigns.content.assembly import (
    PREHEADER_FITS,
    SUBJECT_FITS,
    AssembledIssue,
    assemble_week,
    issue_items,
    render_headlines,
    select_snippets,
)
from campaigns.models import Campaign, CampaignLog, CampaignSnippet, CampaignStatus, Snippet
from newsletter import audit
from newsletter.errors import CampaignLocked, InvalidInput, NotFound
from newsletter.settings import Settings

S = CampaignStatus
# The editor's hints; an assembled issue is made to fit them (campaigns.content.assembly).
SUBJECT_HINT_MAX = SUBJECT_FITS
PREHEADER_HINT_MIN = 40
PREHEADER_HINT_MAX = PREHEADER_FITS
HEADLINE_MAX = 300


@dataclass(frozen=True)
class LengthHint:
    """Advice about one field's length: ``ok`` False when the marketer should look again;
    ``low``..``high`` the lengths that read well, ``short``/``long`` the advice outside
    them (the console's script updates the hint as the marketer types)."""

    field: str
    length: int
    ok: bool
    message: str
    low: int
    high: int
    advice: str
    short: str
    long: str


def length_hints(subject: str, preheader: str) -> list[LengthHint]:
    """The subject's and preheader's lengths against what inboxes show (see the module)."""
    specs = (
        (
            "subject",
            subject,
            1,
            SUBJECT_HINT_MAX,
            f"inboxes show about {SUBJECT_HINT_MAX}",
            "type a subject",
            "shorten it so the end is not cut",
        ),
        (
            "preheader",
            preheader,
            PREHEADER_HINT_MIN,
            PREHEADER_HINT_MAX,
            f"{PREHEADER_HINT_MIN}-{PREHEADER_HINT_MAX} read best",
            "add a few words",
            "shorten it",
        ),
    )
    hints = []
    for name, text, low, high, advice, short, long in specs:
        n = len(text.strip())
        ok = low <= n <= high
        fix = "" if ok else f"; {short if n < low else long}"
        message = f"{n} characters; {advice}{fix}"
        hints.append(LengthHint(name, n, ok, message, low, high, advice, short, long))
    return hints


def locked_reason(campaign: Campaign) -> str | None:
    """Why this campaign's content cannot change any more, or None when it can."""
    status = S(campaign.status)
    if status in (S.DRAFT, S.SCHEDULED):
        return None
    if status is S.PAUSED and campaign.started_at is None:
        return None
    why = {
        S.SENDING: "is sending: readers are getting this content now",
        S.SENT: "was sent: its content is the record of what readers got",
        S.PAUSED: "was paused while sending: some readers already have this content",
        S.FAILED: "failed while sending: some readers may already have this content",
        S.CANCELLED: "was cancelled",
    }[status]
    return f"campaign {campaign.id} {why}; duplicate it to edit a copy"


def editable(session: Session, *, campaign_id: int) -> Campaign:
    """The campaign, row-locked, when its content may change; CampaignLocked (with the
    reason) when it may not, NotFound when there is none."""
    campaign = actions.get_campaign(session, campaign_id=campaign_id, lock=True)
    reason = locked_reason(campaign)
    if reason is not None:
        raise CampaignLocked(reason)
    return campaign


def snippet_ids(session: Session, *, campaign_id: int) -> list[int]:
    """The campaign's snippet ids in issue order."""
    return list(
        session.exec(
            select(CampaignSnippet.snippet_id)
            .where(CampaignSnippet.campaign_id == campaign_id)
            .order_by(col(CampaignSnippet.position))
        ).all()
    )


def _state(campaign: Campaign, ids: list[int]) -> dict[str, Any]:
    return {"subject": campaign.subject, "preheader": campaign.preheader, "snippet_ids": ids}


def _clean_headline(value: str, name: str) -> str:
    text = value.strip()
    if name == "subject" and not text:
        raise InvalidInput("a campaign needs a subject", field="subject")
    if len(text) > HEADLINE_MAX:
        raise InvalidInput(
            f"the {name} has {len(text):,} characters; at most {HEADLINE_MAX}", field=name
        )
    actions.refuse_controls(**{name: value})
    return text


def _check_snippets(session: Session, ids: list[int]) -> None:
    if not ids:
        raise InvalidInput("a campaign needs at least one snippet", field="snippet_ids")
    if len(set(ids)) != len(ids):
        raise InvalidInput("a snippet is listed twice", field="snippet_ids")
    found = set(session.exec(select(Snippet.id).where(col(Snippet.id).in_(ids))).all())
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(f"snippets do not exist: {', '.join(map(str, missing))}")


def _write_snippets(session: Session, campaign: Campaign, ids: list[int]) -> None:
    kept = {
        link.snippet_id: link.resent
        for link in session.exec(
            select(CampaignSnippet).where(CampaignSnippet.campaign_id == campaign.id)
        ).all()
    }
    session.exec(delete(CampaignSnippet).where(col(CampaignSnippet.campaign_id) == campaign.id))
    session.flush()
    for position, snippet_id in enumerate(ids, start=1):
        session.add(
            CampaignSnippet(
                campaign_id=campaign.id,
                snippet_id=snippet_id,
                position=position,
                resent=kept.get(snippet_id, False),
            )
        )


def edit_campaign(
    session: Session,
    *,
    settings: Settings,
    campaign_id: int,
    actor: str,
    subject: str | None = None,
    preheader: str | None = None,
    snippet_ids_in_order: list[int] | None = None,
) -> views.CampaignView:
    """Change any of subject, preheader and the snippets (the whole list, in order).

    Raises CampaignLocked (its content is fixed), InvalidInput (empty subject, a control
    character, no or a repeated snippet), NotFound. The caller commits.
    """
    campaign = editable(session, campaign_id=campaign_id)
    before_ids = snippet_ids(session, campaign_id=campaign_id)
    before = _state(campaign, before_ids)
    if subject is not None:
        campaign.subject = _clean_headline(subject, "subject")
    if preheader is not None:
        campaign.preheader = _clean_headline(preheader, "preheader")
    ids = before_ids
    if snippet_ids_in_order is not None:
        _check_snippets(session, snippet_ids_in_order)
        ids = list(snippet_ids_in_order)
        if ids != before_ids:
            _write_snippets(session, campaign, ids)
    after = _state(campaign, ids)
    if after != before:
        _changed(session, campaign, actor, "campaign.edit", before, after)
    return views.view(campaign, settings=settings)


def _changed(
    session: Session,
    campaign: Campaign,
    actor: str,
    action: str,
    before: dict[str, Any],
    after: dict[str, Any],
) -> None:
    """Drop the stale rendering and write the audit row."""
    campaign.html = None
    campaign.text = None
    session.add(campaign)
    session.flush()
    audit.record(session, actor, action, "campaign", campaign.id, before=before, after=after)


def add_snippet(
    session: Session, *, settings: Settings, campaign_id: int, snippet_id: int, actor: str
) -> views.CampaignView:
    """Append a snippet to the end of the issue."""
    ids = snippet_ids(session, campaign_id=campaign_id)
    if snippet_id in ids:
        raise InvalidInput(f"snippet {snippet_id} is already in the issue", field="snippet_id")
    return edit_campaign(
        session,
        settings=settings,
        campaign_id=campaign_id,
        actor=actor,
        snippet_ids_in_order=[*ids, snippet_id],
    )


def remove_snippet(
    session: Session, *, settings: Settings, campaign_id: int, snippet_id: int, actor: str
) -> views.CampaignView:
    """Take a snippet out of the issue; the last one cannot go (InvalidInput)."""
    ids = snippet_ids(session, campaign_id=campaign_id)
    if snippet_id not in ids:
        raise NotFound(f"snippet {snippet_id} is not in campaign {campaign_id}")
    return edit_campaign(
        session,
        settings=settings,
        campaign_id=campaign_id,
        actor=actor,
        snippet_ids_in_order=[i for i in ids if i != snippet_id],
    )


def move_snippet(
    session: Session,
    *,
    settings: Settings,
    campaign_id: int,
    snippet_id: int,
    offset: int,
    actor: str,
) -> views.CampaignView:
    """Move a snippet ``offset`` places (-1 up, +1 down), stopping at either end."""
    ids = snippet_ids(session, campaign_id=campaign_id)
    if snippet_id not in ids:
        raise NotFound(f"snippet {snippet_id} is not in campaign {campaign_id}")
    old = ids.index(snippet_id)
    new = max(0, min(len(ids) - 1, old + offset))
    ids.insert(new, ids.pop(old))
    return edit_campaign(
        session, settings=settings, campaign_id=campaign_id, actor=actor, snippet_ids_in_order=ids
    )


def reassemble(
    session: Session, *, settings: Settings, campaign_id: int, actor: str
) -> views.CampaignView:
    """Pick the issue's snippets again by the weekly rules (campaigns.content.assembly),
    as if this campaign had not used any; a subject and preheader the marketer has not
    changed follow the new lead snippet, edited ones stay. Raises ContentError when too
    few snippets fit, CampaignLocked, NotFound."""
    campaign = editable(session, campaign_id=campaign_id)
    week = campaign.week or weekly_plan.iso_week(weekly_plan.local_today(settings))
    old_items = issue_items(session, campaign=campaign)
    generated = render_headlines(settings, week=campaign.week, items=old_items)
    picked = select_snippets(session, settings=settings, week=week, ignore=campaign_id)
    before = _state(campaign, [i.snippet.id or 0 for i in old_items])
    ids = [i.snippet.id or 0 for i in picked]
    if (campaign.subject, campaign.preheader) == generated:
        campaign.subject, campaign.preheader = render_headlines(
            settings, week=campaign.week, items=picked
        )
    _write_snippets(session, campaign, ids)
    session.flush()
    for link in session.exec(
        select(CampaignSnippet).where(CampaignSnippet.campaign_id == campaign_id)
    ).all():
        link.resent = any(i.resent for i in picked if i.snippet.id == link.snippet_id)
        session.add(link)
    _changed(session, campaign, actor, "campaign.reassemble", before, _state(campaign, ids))
    return views.view(campaign, settings=settings)


def duplicate(
    session: Session, *, settings: Settings, campaign_id: int, actor: str
) -> views.CampaignView:
    """A new ad-hoc draft with the same subject, preheader and snippets, in order; any
    campaign can be duplicated, a sent one too (that is how a sent issue is reworked)."""
    original = actions.get_campaign(session, campaign_id=campaign_id)
    ids = snippet_ids(session, campaign_id=campaign_id)
    copy = Campaign(subject=original.subject, preheader=original.preheader, created_by=actor[:100])
    session.add(copy)
    session.flush()
    _write_snippets(session, copy, ids)
    session.add(
        CampaignLog(
            campaign_id=copy.id,
            from_status=None,
            to_status=S.DRAFT,
            actor=actor[:100],
            reason=f"duplicated from campaign {campaign_id}",
        )
    )
    session.flush()
    audit.record(
        session,
        actor,
        "campaign.duplicate",
        "campaign",
        copy.id,
        before={"from_campaign": campaign_id},
        after=_state(copy, ids),
    )
    return views.view(copy, settings=settings)


def assemble_this_week(session: Session, *, settings: Settings, actor: str) -> AssembledIssue:
    """This ISO week's issue (campaigns.content.assembly.assemble_week), built now when
    there is none or it was cancelled; the existing one otherwise. ContentError when too
    few snippets fit."""
    issue = assemble_week(session, settings=settings, actor=actor, replace_cancelled=True)
    if issue.created:
        campaign = issue.campaign
        ids = [i.snippet.id or 0 for i in issue.items]
        audit.record(
            session,
            actor,
            "campaign.assemble",
            "campaign",
            campaign.id,
            after=_state(campaign, ids),
        )
    return issue
