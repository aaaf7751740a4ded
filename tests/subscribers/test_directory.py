"""subscribers/directory.py: the subscriber list and one person's record, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import Session

from newsletter.errors import NotFound
from subscribers import lifecycle
from subscribers.directory import (
    ConsentEntry,
    SubscriberRecord,
    list_subscribers,
    subscriber_record,
)
from subscribers.models import SubscriberPublic, SubscriberStatus, SuppressionReason
from subscribers.suppression import suppress
from tests.support.subscribers import make_subscriber

S = SubscriberStatus


def test_list_is_oldest_first_and_filters_by_status(session: Session) -> None:
    make_subscriber(session, "cy@example.com", status="pending")
    make_subscriber(session, "ann@example.com", status="active", name="Ann")
    make_subscriber(session, "bob@example.com", status="unsubscribed")
    everyone = list_subscribers(session)
    assert all(type(s) is SubscriberPublic for s in everyone)
    assert [s.email for s in everyone] == ["cy@example.com", "ann@example.com", "bob@example.com"]
    assert [s.id for s in everyone] == sorted(s.id for s in everyone)
    assert [s.email for s in list_subscribers(session, status=S.ACTIVE)] == ["ann@example.com"]
    assert [s.status for s in list_subscribers(session, status=S.UNSUBSCRIBED)] == [S.UNSUBSCRIBED]
    assert list_subscribers(session, status=S.COMPLAINED) == []


def test_list_of_an_empty_database_is_empty(session: Session) -> None:
    assert list_subscribers(session) == []


def test_record_holds_the_history_in_order_and_the_suppression(session: Session) -> None:
    jane = make_subscriber(session, "jane@example.com", status="pending", name="Jane")
    lifecycle.transition(
        session,
        jane,
        S.ACTIVE,
        reason="confirmed",
        source="form",
        ip="192.0.2.7",
        user_agent="Mail/1.0",
        consent_version="v1",
    )
    assert jane.id is not None
    lifecycle.unsubscribe(session, subscriber_id=jane.id, source="form")
    session.commit()

    record = subscriber_record(session, email="  JANE@Example.com ")
    assert isinstance(record, SubscriberRecord)
    assert (record.id, record.email, record.name, record.status) == (
        jane.id,
        "jane@example.com",
        "Jane",
        S.UNSUBSCRIBED,
    )
    assert record.suppressed == "unsubscribe"
    assert [(e.from_status, e.to_status, e.reason) for e in record.history] == [
        (None, "pending", "test fixture"),
        ("pending", "active", "confirmed"),
        ("active", "unsubscribed", "unsubscribed"),
    ]
    confirmed = record.history[1]
    assert (confirmed.ip, confirmed.user_agent, confirmed.consent_version, confirmed.source) == (
        "192.0.2.7",
        "Mail/1.0",
        "v1",
        "form",
    )
    assert all(e.at.tzinfo is not None for e in record.history)


def test_record_without_suppression_says_none(session: Session) -> None:
    make_subscriber(session, "ann@example.com")
    record = subscriber_record(session, email="ann@example.com")
    assert (record.suppressed, len(record.history)) == (None, 1)


def test_suppression_by_another_path_shows_on_the_record(session: Session) -> None:
    # An address may be suppressed (a complaint before it was imported) while its row is active.
    make_subscriber(session, "ann@example.com")
    suppress(session, email="Ann@example.com", reason=SuppressionReason.COMPLAINT)
    session.commit()
    assert subscriber_record(session, email="ann@example.com").suppressed == "complaint"


def test_record_of_an_unknown_address_is_not_found(session: Session) -> None:
    make_subscriber(session, "ann@example.com")
    with pytest.raises(NotFound) as raised:
        subscriber_record(session, email=" who@example.com ")
    assert str(raised.value) == "no subscriber with the address 'who@example.com'"


def test_record_json_keeps_the_public_fields_then_suppression_and_history(
    session: Session,
) -> None:
    make_subscriber(session, "ann@example.com", name="Ann")
    data = subscriber_record(session, email="ann@example.com").model_dump(mode="json")
    public = list(SubscriberPublic.model_fields)
    assert list(data) == [*public, "suppressed", "history"]
    assert list(data["history"][0]) == list(ConsentEntry.model_fields)
    # History times are written isoformat (+00:00), as `subscribers export` writes them.
    at = data["history"][0]["at"]
    assert at.endswith("+00:00")
    assert datetime.fromisoformat(at).tzinfo == UTC
