"""Erasure reaches the provider events we stored, not only the subscriber tables."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlmodel import Session, select

from campaigns.models import Delivery, TrackingEvent
from campaigns.tracking.erasure import erase_person
from subscribers.suppression import is_suppressed
from tests.support.delivery import make_campaign
from tests.support.subscribers import make_subscriber

WHEN = datetime(2026, 11, 24, 9, tzinfo=UTC)


def _event(session: Session, event_id: str, subscriber_id: int | None, email: str) -> int:
    event = TrackingEvent(
        provider="sendgrid",
        event_id=event_id,
        kind="opened",
        raw_event="open",
        subscriber_id=subscriber_id,
        occurred_at=WHEN,
        payload={"email": email, "ip": "198.51.100.4", "useragent": "Mail/1", "event": "open"},
    )
    session.add(event)
    session.commit()
    assert event.id is not None
    return event.id


def test_erasure_scrubs_the_persons_provider_events(session: Session) -> None:
    subscriber = make_subscriber(session, "gone@example.com")
    mine = _event(session, "e1", subscriber.id, "gone@example.com")
    unmatched = _event(session, "e2", None, "Gone@Example.com")
    other = _event(session, "e3", None, "stay@example.com")

    result, scrubbed = erase_person(session, email="gone@example.com")
    session.commit()

    assert (result.subscriber_id, scrubbed) == (subscriber.id, 2)
    for event_id in (mine, unmatched):
        assert session.get(TrackingEvent, event_id).payload == {"event": "open"}
    assert session.get(TrackingEvent, other).payload["email"] == "stay@example.com"
    assert is_suppressed(session, email="gone@example.com")


def test_erasure_unlinks_the_persons_deliveries_and_keeps_the_counts(session: Session) -> None:
    gone = make_subscriber(session, "gone@example.com")
    stay = make_subscriber(session, "stay@example.com")
    campaign = make_campaign(session)
    for person in (gone, stay):
        session.add(Delivery(campaign_id=campaign.id, subscriber_id=person.id, status="sent"))
    session.commit()

    erase_person(session, email="gone@example.com")
    session.commit()

    rows = session.exec(select(Delivery.subscriber_id).where(Delivery.campaign_id == campaign.id))
    assert sorted(rows, key=lambda v: v is None) == [stay.id, None]


def test_erasure_scrubs_the_user_agent_of_our_own_clicks(session: Session) -> None:
    subscriber = make_subscriber(session, "gone@example.com")
    event = TrackingEvent(
        provider="newsletter", event_id="nl-1", kind="clicked", raw_event="click",
        subscriber_id=subscriber.id, occurred_at=WHEN,
        payload={"link": 0, "method": "GET", "user_agent": "Mail/1", "machine": None},
    )  # fmt: skip
    session.add(event)
    session.commit()
    erase_person(session, email="gone@example.com")
    session.commit()
    assert session.get(TrackingEvent, event.id).payload == {
        "link": 0, "method": "GET", "machine": None,
    }  # fmt: skip
