"""Preferences end to end: an assembled issue, sent through the outbox, reaches only the
subscribers whose topics it covers and never a paused one (issue 4, "Preferences")."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from campaigns.content.assembly import assemble_week
from campaigns.delivery.ledger import queue_deliveries
from campaigns.delivery.sending import send_campaign
from campaigns.models import Campaign, Delivery
from newsletter.clock import utcnow
from newsletter.settings import Settings
from subscribers.preferences import update_preferences
from tests.support.content import make_snippet
from tests.support.subscribers import make_subscriber, messages, outbox

WEEK = date(2026, 11, 23)


def small_issues(settings: Settings) -> Settings:
    return settings.model_copy(update={"snippets_per_issue": 2})


def back_pain_issue(session: Session, settings: Settings) -> Campaign:
    """This week's issue, assembled from two back-pain snippets (its only topic)."""
    for _ in range(2):
        make_snippet(session, settings, category="back-pain")
    issue = assemble_week(session, settings=settings, day=WEEK)
    session.commit()
    return issue.campaign


def subscriber(
    session: Session,
    settings: Settings,
    address: str,
    *,
    topics: tuple[str, ...] = (),
    pause_weeks: int | None = None,
    weeks_ago: int = 0,
) -> int:
    """An active subscriber who saved ``topics`` and a pause ``weeks_ago`` weeks ago."""
    row = make_subscriber(session, address)
    assert row.id is not None
    update_preferences(
        session,
        settings=settings,
        subscriber_id=row.id,
        topics=list(topics),
        topics_consent=bool(topics),
        pause_weeks=pause_weeks,
        now=utcnow() - timedelta(weeks=weeks_ago),
    )
    session.commit()
    return row.id


def recipients(settings: Settings) -> set[str]:
    return {m["To"].addresses[0].addr_spec for m in messages(settings)}


def send(session: Session, settings: Settings, campaign: Campaign) -> None:
    assert campaign.id is not None
    send_campaign(session, settings=settings, campaign_id=campaign.id, provider=outbox(settings))


def test_issue_reaches_only_subscribers_whose_chosen_topics_it_covers(
    session: Session, settings: Settings
) -> None:
    cfg = small_issues(settings)
    subscriber(session, cfg, "everything@example.com")
    subscriber(session, cfg, "back@example.com", topics=("back-pain", "sciatica"))
    subscriber(session, cfg, "cramps@example.com", topics=("leg-cramps",))
    send(session, cfg, back_pain_issue(session, cfg))
    assert recipients(cfg) == {"everything@example.com", "back@example.com"}


def test_paused_subscriber_gets_no_issue_until_the_pause_ends(
    session: Session, settings: Settings
) -> None:
    cfg = small_issues(settings)
    subscriber(session, cfg, "paused@example.com", pause_weeks=2)
    subscriber(session, cfg, "back-again@example.com", pause_weeks=2, weeks_ago=3)
    send(session, cfg, back_pain_issue(session, cfg))
    assert recipients(cfg) == {"back-again@example.com"}


def test_pause_saved_after_queueing_skips_the_subscriber_at_send_time(
    session: Session, settings: Settings
) -> None:
    cfg = small_issues(settings)
    subscriber_id = subscriber(session, cfg, "late-pause@example.com")
    campaign = back_pain_issue(session, cfg)
    queue_deliveries(session, campaign=campaign)
    session.commit()
    update_preferences(
        session,
        settings=cfg,
        subscriber_id=subscriber_id,
        topics=[],
        topics_consent=False,
        pause_weeks=1,
    )
    session.commit()
    send(session, cfg, campaign)
    assert recipients(cfg) == set()
    row = session.execute(
        sa.select(Delivery.status, Delivery.error).where(Delivery.subscriber_id == subscriber_id)
    ).one()
    assert tuple(row) == ("skipped", "subscriber paused")


def test_topics_changed_after_queueing_skip_the_subscriber_at_send_time(
    session: Session, settings: Settings
) -> None:
    cfg = small_issues(settings)
    subscriber_id = subscriber(session, cfg, "changed@example.com", topics=("back-pain",))
    campaign = back_pain_issue(session, cfg)
    queue_deliveries(session, campaign=campaign)
    session.commit()
    update_preferences(
        session,
        settings=cfg,
        subscriber_id=subscriber_id,
        topics=["leg-cramps"],
        topics_consent=True,
    )
    session.commit()
    send(session, cfg, campaign)
    assert recipients(cfg) == set()
    row = session.execute(
        sa.select(Delivery.status, Delivery.error).where(Delivery.subscriber_id == subscriber_id)
    ).one()
    assert tuple(row) == ("skipped", "none of the subscriber's topics is in this issue")
