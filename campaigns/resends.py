"""Resend to those who did not open: one follow-up per campaign, with another subject.

``request_resend`` records it (due ``after`` the campaign finished sending); when it is
due, ``trigger_due`` makes it a campaign of its own: the same rendered content under the
new subject, its ledger holding exactly the original's non-openers, scheduled at once, so
the ordinary dispatcher sends it through the ledger (exactly once per reader) and the
send-time re-check (an unsubscribe, a bounce, a complaint, a suppression or erasure in
the meantime means nothing goes out).

Who gets it: every reader the original was sent to who did not bounce, is still eligible
now (active, not suppressed, not paused: ``subscribers.audience``) and has no human open
and no human click (a click implies an open) of the original. Machine opens (privacy
proxies) and machine clicks (link scanners) do not count as opens: such a reader gets the
resend. Only one resend per campaign: the campaign id is the table's key.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from campaigns import workflow
from campaigns.actions import get_campaign
from campaigns.models import (
    Campaign,
    CampaignSnippet,
    CampaignStatus,
    Delivery,
    DeliveryStatus,
    TrackingEvent,
)
from campaigns.reports.variants import HUMAN_OPEN_KINDS
from campaigns.variant_models import CampaignResend
from newsletter import audit
from newsletter.clock import as_utc, utcnow
from newsletter.errors import HeaderInjection, InvalidInput, NotFound, StateError
from newsletter.headers import check_header_text, shown_alike
from subscribers.audience import eligible_subscribers

S = CampaignStatus
MAX_AFTER = timedelta(days=60)
_delivery = Delivery.__table__
_event = TrackingEvent.__table__


def request_resend(
    session: Session,
    *,
    campaign_id: int,
    subject: str,
    after: timedelta,
    actor: str,
    now: datetime | None = None,
) -> dict[str, object]:
    """Record the one resend of a sent campaign, due ``after`` it finished; as :func:`describe`.

    Raises InvalidInput (an empty or multi-line subject, the campaign's own subject,
    ``after`` not within 1 hour to 60 days), NotFound, StateError (the campaign is not
    sent, or already has a resend).
    """
    subject = subject.strip()
    if not subject or len(subject) > 300:
        raise InvalidInput("a resend needs a subject of 1 to 300 characters", field="subject")
    try:
        check_header_text("Subject", subject)
    except HeaderInjection:
        raise InvalidInput(
            "the subject contains a control character (a line break ends a header, "
            "RFC 5322 2.2); use plain text on one line",
            field="subject",
        ) from None
    if not timedelta(hours=1) <= after <= MAX_AFTER:
        raise InvalidInput("the resend waits 1 hour to 60 days after the send", field="after")
    campaign = get_campaign(session, campaign_id=campaign_id, lock=True)
    if shown_alike(subject) == shown_alike(campaign.subject):
        raise InvalidInput(
            "a resend needs a new subject: it goes to readers who did not open this one",
            field="subject",
        )
    existing = session.get(CampaignResend, campaign_id)
    if existing is not None:
        raise StateError(_already(campaign_id, existing))
    resent_from = session.exec(
        select(CampaignResend.campaign_id).where(CampaignResend.resend_campaign_id == campaign_id)
    ).first()
    if resent_from is not None:
        raise StateError(
            f"campaign {campaign_id} is the resend of campaign {resent_from}: it is not resent"
        )
    if campaign.status != S.SENT or campaign.finished_at is None:
        raise StateError(
            f"campaign {campaign_id} is {campaign.status}: a resend follows a sent campaign"
        )
    resend = CampaignResend(
        campaign_id=campaign_id,
        subject=subject,
        after_seconds=int(after.total_seconds()),
        due_at=(as_utc(campaign.finished_at) + after).replace(microsecond=0),
        requested_at=now or utcnow(),
        requested_by=actor,
    )
    try:
        with session.begin_nested():
            session.add(resend)
    except IntegrityError:  # a concurrent request won
        raise StateError(f"campaign {campaign_id} already has a resend") from None
    described = describe(session, campaign_id=campaign_id)
    assert described is not None
    # Issue 14's rule: every change from the console or the API is in the audit log.
    audit.record(session, actor, "campaign.resend", "campaign", campaign_id, after=described)
    return described


def cancel_resend(session: Session, *, campaign_id: int, actor: str) -> None:
    """Take a campaign's resend back before it is due and made into a campaign.

    One conditional DELETE: the scheduler's ``trigger_due`` claims a resend the same way
    (an UPDATE where it is not yet made), so of the two only one wins. Raises NotFound (no
    campaign, no resend), StateError (already made: cancel the resend's own campaign).
    """
    get_campaign(session, campaign_id=campaign_id)
    resend = session.get(CampaignResend, campaign_id)
    if resend is None:
        raise NotFound(f"campaign {campaign_id} has no resend")
    before = describe(session, campaign_id=campaign_id)
    gone = session.execute(
        sa.delete(CampaignResend).where(
            col(CampaignResend.campaign_id) == campaign_id,
            col(CampaignResend.triggered_at).is_(None),
        ),
        execution_options={"preserve_rowcount": True},
    ).rowcount
    if gone != 1:
        session.refresh(resend)
        raise StateError(
            f"campaign {campaign_id}'s resend was made (campaign {resend.resend_campaign_id}): "
            "cancel that campaign instead"
        )
    session.expunge(resend)
    audit.record(
        session, actor, "campaign.resend_cancelled", "campaign", campaign_id, before=before
    )


def _already(campaign_id: int, resend: CampaignResend) -> str:
    return (
        f"campaign {campaign_id} already has a resend ({resend.subject!r}, due "
        f"{_iso(resend.due_at)}): at most one per campaign"
    )


def non_openers(session: Session, *, campaign_id: int) -> sa.Select:
    """SELECT of the subscriber ids who get the resend of ``campaign_id`` (module docstring)."""
    eligible = eligible_subscribers(
        dialect=session.get_bind().dialect.name, topics=None, on_date=utcnow().date()
    ).subquery()
    human_open = sa.exists(
        sa.select(1).where(
            _event.c.delivery_id == _delivery.c.id,
            _event.c.kind.in_(HUMAN_OPEN_KINDS),
            _event.c.machine.is_(False),
        )
    )
    return (
        sa.select(_delivery.c.subscriber_id)
        .join(eligible, eligible.c.id == _delivery.c.subscriber_id)
        .where(
            _delivery.c.campaign_id == campaign_id,
            _delivery.c.status == DeliveryStatus.SENT.value,
            _delivery.c.bounce.is_(None),
            ~human_open,
        )
    )


def trigger_due(session: Session, *, now: datetime, actor: str) -> list[tuple[int, int, int]]:
    """Turn every due resend into its campaign, scheduled ``now``: [(original, resend
    campaign, recipients)]. Each is claimed by compare-and-set and committed on its own."""
    due = session.exec(
        select(CampaignResend.campaign_id)
        .where(col(CampaignResend.triggered_at).is_(None), col(CampaignResend.due_at) <= now)
        .order_by(col(CampaignResend.due_at))
    ).all()
    done = []
    for campaign_id in due:
        made = _trigger(session, campaign_id, now=now, actor=actor)
        session.commit()
        if made is not None:
            done.append((campaign_id, *made))
    return done


def _trigger(
    session: Session, campaign_id: int, *, now: datetime, actor: str
) -> tuple[int, int] | None:
    claimed = session.execute(
        sa.update(CampaignResend)
        .where(
            col(CampaignResend.campaign_id) == campaign_id,
            col(CampaignResend.triggered_at).is_(None),
        )
        .values(triggered_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        return None  # another scheduler instance took it
    resend = session.get(CampaignResend, campaign_id, populate_existing=True)
    original = get_campaign(session, campaign_id=campaign_id)
    assert resend is not None
    follow_up = Campaign(
        subject=resend.subject,
        preheader=original.preheader,
        html=original.html,
        text=original.text,
        created_by=actor,
        queued_at=now,  # its content passed preflight as the original; no second preflight
    )
    session.add(follow_up)
    session.flush()
    assert follow_up.id is not None
    for link in session.exec(
        select(CampaignSnippet).where(CampaignSnippet.campaign_id == campaign_id)
    ).all():
        session.add(
            CampaignSnippet(
                campaign_id=follow_up.id,
                snippet_id=link.snippet_id,
                position=link.position,
                resent=link.resent,
            )
        )
    recipients = _queue(session, follow_up.id, non_openers(session, campaign_id=campaign_id))
    workflow.transition(
        session,
        campaign=follow_up,
        to=S.SCHEDULED,
        actor=actor,
        reason=f"resend of campaign {campaign_id} to {recipients} who did not open it",
    )
    follow_up.scheduled_at = now
    resend.resend_campaign_id, resend.recipients = follow_up.id, recipients
    session.add_all([follow_up, resend])
    session.flush()
    return follow_up.id, recipients


def _queue(session: Session, campaign_id: int, audience: sa.Select) -> int:
    """The resend's ledger: one queued row per reader (the unique key keeps it once)."""
    dialect = session.get_bind().dialect.name
    people = audience.subquery()
    columns = {
        "campaign_id": sa.literal(campaign_id),
        "subscriber_id": people.c.subscriber_id,
        "status": sa.literal(DeliveryStatus.QUEUED.value),
        "attempts": sa.literal(0),
        "open_count": sa.literal(0),
        "machine_open_count": sa.literal(0),
        "click_count": sa.literal(0),
        "complained": sa.false(),
        "unsubscribed": sa.false(),
    }
    source = (
        sa.select(*(value.label(name) for name, value in columns.items()))
        .where(sa.true())  # SQLite needs a WHERE before ON CONFLICT in INSERT ... SELECT
        .order_by(people.c.subscriber_id)
    )
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(_delivery)
        .from_select(list(columns), source)
        .on_conflict_do_nothing(index_elements=["campaign_id", "subscriber_id"])
    )
    return max(
        session.execute(statement, execution_options={"preserve_rowcount": True}).rowcount, 0
    )


def describe(session: Session, *, campaign_id: int) -> dict[str, object] | None:
    """The campaign's resend for people and JSON (when, subject, recipients); None if none."""
    resend = session.get(CampaignResend, campaign_id)
    if resend is None:
        return None
    return {
        "subject": resend.subject,
        "after_seconds": resend.after_seconds,
        "due_at": _iso(resend.due_at),
        "requested_by": resend.requested_by,
        "triggered_at": _iso(resend.triggered_at),
        "resend_campaign_id": resend.resend_campaign_id,
        "recipients": resend.recipients,
    }


def _iso(value: datetime | None) -> str | None:
    """UTC to the second, as people read it and JSON carries it."""
    return None if value is None else as_utc(value).isoformat(timespec="seconds")
