"""The state machine: allowed moves only, every move in the append-only history."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from newsletter.errors import NotFound, StateError
from newsletter.settings import Settings
from subscribers import lifecycle
from subscribers.lifecycle import TRANSITIONS, can_transition
from subscribers.models import SubscriberStatus as S
from subscribers.suppression import find_suppression, is_suppressed
from tests.support.subscribers import make_subscriber, sqlite_only


def test_transition_table_is_exactly_the_documented_lifecycle() -> None:
    assert {k.value: sorted(v) for k, v in TRANSITIONS.items()} == {
        "pending": ["active", "bounced", "complained", "unsubscribed"],
        "active": ["bounced", "complained", "unsubscribed"],
        "unsubscribed": ["bounced", "complained", "pending"],
        "bounced": ["complained", "pending"],
        "complained": ["pending"],
    }


@pytest.mark.parametrize("order", ["unsubscribe first", "complaint first"])
def test_a_complaint_outranks_an_unsubscribe_whatever_the_order(
    session: Session, order: str
) -> None:
    subscriber = make_subscriber(session, status="active")
    steps = [
        lambda: lifecycle.unsubscribe(session, subscriber_id=subscriber.id, source="provider"),
        lambda: lifecycle.record_complaint(session, subscriber_id=subscriber.id, detail={}),
    ]
    for step in steps if order == "unsubscribe first" else reversed(steps):
        step()
    assert subscriber.status == "complained"
    assert is_suppressed(session, email=subscriber.email)


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (S.UNSUBSCRIBED, S.ACTIVE),
        (S.BOUNCED, S.ACTIVE),
        (S.COMPLAINED, S.ACTIVE),
        (S.ACTIVE, S.PENDING),
        (S.ACTIVE, S.ACTIVE),
    ],
)
def test_forbidden_moves(start: S, target: S) -> None:
    assert not can_transition(start, target)


@sqlite_only
def test_illegal_transition_raises_and_records_nothing(session: Session) -> None:
    subscriber = make_subscriber(session, status="unsubscribed")
    with pytest.raises(StateError, match="cannot go from unsubscribed to active"):
        lifecycle.transition(session, subscriber, S.ACTIVE, reason="x", source="cli")
    assert subscriber.status == "unsubscribed"
    assert len(lifecycle.history(session, subscriber_id=subscriber.id)) == 1


def test_transition_appends_an_event_with_its_context(session: Session) -> None:
    subscriber = make_subscriber(session, status="pending")
    lifecycle.transition(
        session,
        subscriber,
        S.ACTIVE,
        reason="confirmed",
        source="form",
        ip="203.0.113.9",
        user_agent="Mail/1.0",
        consent_version="v9",
        detail={"k": "v"},
    )
    session.commit()
    last = lifecycle.history(session, subscriber_id=subscriber.id)[-1]
    assert (
        last.from_status,
        last.to_status,
        last.reason,
        last.source,
        last.ip,
        last.user_agent,
        last.consent_version,
        last.detail,
    ) == ("pending", "active", "confirmed", "form", "203.0.113.9", "Mail/1.0", "v9", {"k": "v"})


def test_unsubscribe_stops_and_suppresses(session: Session) -> None:
    subscriber = make_subscriber(session, "leave@example.com")
    changed = lifecycle.unsubscribe(session, subscriber_id=subscriber.id, source="form")
    session.commit()
    assert changed is True
    assert subscriber.status == "unsubscribed"
    assert find_suppression(session, email="leave@example.com").reason == "unsubscribe"


@sqlite_only
def test_unsubscribe_twice_is_harmless(session: Session) -> None:
    subscriber = make_subscriber(session)
    lifecycle.unsubscribe(session, subscriber_id=subscriber.id, source="form")
    again = lifecycle.unsubscribe(session, subscriber_id=subscriber.id, source="form")
    session.commit()
    assert again is False
    assert [e.to_status for e in lifecycle.history(session, subscriber_id=subscriber.id)] == [
        "active",
        "unsubscribed",
    ]


def test_unsubscribe_after_bounce_keeps_bounced(session: Session) -> None:
    subscriber = make_subscriber(session)
    lifecycle.record_hard_bounce(session, subscriber_id=subscriber.id)
    lifecycle.unsubscribe(session, subscriber_id=subscriber.id, source="form")
    session.commit()
    assert subscriber.status == "bounced"
    assert find_suppression(session, email=subscriber.email).reason == "hard_bounce"


@sqlite_only
def test_unsubscribe_unknown_id_is_not_found(session: Session) -> None:
    with pytest.raises(NotFound, match="no subscriber with id 999"):
        lifecycle.unsubscribe(session, subscriber_id=999, source="form")


def test_complaint_suppresses(session: Session) -> None:
    subscriber = make_subscriber(session)
    lifecycle.record_complaint(session, subscriber_id=subscriber.id)
    session.commit()
    assert subscriber.status == "complained"
    assert find_suppression(session, email=subscriber.email).reason == "complaint"


@sqlite_only
def test_soft_bounces_below_the_limit_keep_the_subscriber(
    session: Session, settings: Settings
) -> None:
    subscriber = make_subscriber(session)
    for _ in range(settings.soft_bounce_limit - 1):
        assert (
            lifecycle.record_soft_bounce(session, settings=settings, subscriber_id=subscriber.id)
            is False
        )
    session.commit()
    assert subscriber.status == "active"
    assert not is_suppressed(session, email=subscriber.email)


def test_soft_bounces_at_the_limit_bounce_and_suppress(
    session: Session, settings: Settings
) -> None:
    subscriber = make_subscriber(session)
    results = [
        lifecycle.record_soft_bounce(session, settings=settings, subscriber_id=subscriber.id)
        for _ in range(settings.soft_bounce_limit)
    ]
    session.commit()
    assert results[-1] is True
    assert subscriber.status == "bounced"
    assert find_suppression(session, email=subscriber.email).reason == "soft_bounces"


@sqlite_only
def test_a_delivery_resets_the_soft_bounce_streak(session: Session, settings: Settings) -> None:
    subscriber = make_subscriber(session)
    lifecycle.record_soft_bounce(session, settings=settings, subscriber_id=subscriber.id)
    lifecycle.reset_soft_bounces(session, subscriber_id=subscriber.id)
    session.commit()
    assert subscriber.soft_bounces == 0


def test_find_by_email_uses_the_normal_form(session: Session) -> None:
    subscriber = make_subscriber(session, "mixed@example.com")
    assert lifecycle.find_by_email(session, email="  MIXED@Example.com ") == subscriber


@sqlite_only
def test_get_by_email_names_the_missing_address(session: Session) -> None:
    with pytest.raises(NotFound, match=r"no subscriber with the address 'who@example\.com'"):
        lifecycle.get_by_email(session, email="who@example.com")
