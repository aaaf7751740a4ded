"""Queueing the delivery ledger: who is eligible, on both databases, idempotently."""

from __future__ import annotations

import threading
import time
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.delivery.ledger import delivery_counts, queue_deliveries
from campaigns.models import Campaign, CampaignSnippet, Delivery, Snippet
from subscribers.models import Subscriber, Suppression
from tests.support.delivery import add_subscribers, make_campaign

TODAY = date(2026, 12, 1)


def subscriber(session: Session, email: str, **fields: object) -> int:
    row = Subscriber(email=email, status=fields.pop("status", "active"), **fields)
    session.add(row)
    session.commit()
    assert row.id is not None
    return row.id


def queued_ids(session: Session, campaign: Campaign) -> set[int]:
    return set(
        session.execute(
            sa.select(Delivery.subscriber_id).where(Delivery.campaign_id == campaign.id)
        ).scalars()
    )


def test_only_active_unpaused_unsuppressed_subscribers_are_queued(session: Session):
    active = subscriber(session, "a@example.com")
    subscriber(session, "p@example.com", status="pending")
    subscriber(session, "u@example.com", status="unsubscribed")
    subscriber(session, "paused@example.com", paused_until=TODAY + timedelta(days=3))
    back = subscriber(session, "back@example.com", paused_until=TODAY)
    subscriber(session, "s@example.com")
    session.add(Suppression(email_hash="x", email="s@example.com", reason="complaint"))
    session.commit()
    campaign = make_campaign(session)
    added = queue_deliveries(session, campaign=campaign, topics=None, on_date=TODAY)
    session.commit()
    assert added == 2 and queued_ids(session, campaign) == {active, back}


def test_topics_match_any_chosen_and_no_choice_gets_everything(session: Session):
    anything = subscriber(session, "all@example.com", topics=[])
    sciatica = subscriber(session, "sci@example.com", topics=["sciatica", "cramps"])
    subscriber(session, "back@example.com", topics=["back-pain"])
    campaign = make_campaign(session)
    queue_deliveries(session, campaign=campaign, topics=["sciatica", "general"], on_date=TODAY)
    session.commit()
    assert queued_ids(session, campaign) == {anything, sciatica}


def test_topics_default_to_the_campaign_snippet_categories(session: Session):
    subscriber(session, "sci@example.com", topics=["sciatica"])
    back = subscriber(session, "back@example.com", topics=["back-pain"])
    campaign = make_campaign(session)
    snippet = Snippet(title="t", summary="s", url="https://example.com/1", category="back-pain")
    session.add(snippet)
    session.commit()
    session.add(CampaignSnippet(campaign_id=campaign.id, snippet_id=snippet.id, position=0))
    session.commit()
    queue_deliveries(session, campaign=campaign, on_date=TODAY)
    session.commit()
    assert queued_ids(session, campaign) == {back}


def test_queueing_twice_adds_nobody_twice(session: Session, engine: Engine):
    add_subscribers(engine, 50)
    campaign = make_campaign(session)
    first = queue_deliveries(session, campaign=campaign, on_date=TODAY)
    session.commit()
    add_subscribers(engine, 5, start=51)
    second = queue_deliveries(session, campaign=campaign, on_date=TODAY)
    session.commit()
    assert (first, second) == (50, 5)
    assert delivery_counts(session, campaign_id=campaign.id).as_dict() == {
        "queued": 55,
        "sent": 0,
        "skipped": 0,
        "failed": 0,
        "deferred": 0,
        "total": 55,
    }
    assert campaign.queued_at is not None


@pytest.mark.postgres
def test_two_first_queueings_at_once_fail_rather_than_double_anybody(pg_engine: Engine):
    """The first queueing skips ON CONFLICT (a campaign with no rows yet); the send lease
    keeps two from running at once, and if they did, the unique index would stop the second."""
    add_subscribers(pg_engine, 20)
    with Session(pg_engine, expire_on_commit=False) as first:
        campaign = make_campaign(first)
        assert queue_deliveries(first, campaign=campaign, on_date=TODAY) == 20  # not committed
        failures: list[BaseException] = []

        def second_queueing() -> None:
            with Session(pg_engine) as second:
                other = second.get(Campaign, campaign.id)
                assert other is not None
                try:
                    queue_deliveries(second, campaign=other, on_date=TODAY)  # waits for first
                    second.commit()
                except sa.exc.IntegrityError as err:
                    failures.append(err)

        racer = threading.Thread(target=second_queueing)
        racer.start()
        _wait_for_a_blocked_insert(pg_engine)  # it saw no committed row; it waits on ours
        first.commit()
        racer.join(10)
        assert not racer.is_alive()
        assert len(failures) == 1
        assert delivery_counts(first, campaign_id=campaign.id).queued == 20


def _wait_for_a_blocked_insert(engine: Engine) -> None:
    """Until another backend's INSERT INTO delivery waits for a lock (10 s at most)."""
    deadline = time.monotonic() + 10
    with engine.connect() as watcher:
        while time.monotonic() < deadline:
            waiting = watcher.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                    " AND query LIKE 'INSERT INTO delivery%'"
                )
            ).scalar_one()
            watcher.rollback()
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError("the second queueing never waited on the first")
