"""GDPR erasure: subscriber, history and topics gone; only the hash stays suppressed."""

from __future__ import annotations

import json

import pytest
from sqlmodel import Session, select

from newsletter.errors import NotFound
from newsletter.settings import Settings
from newsletter.webhook_outbox import WebhookEndpoint, WebhookMessage
from subscribers import lifecycle
from subscribers.addresses import email_hash
from subscribers.csv_io import import_csv
from subscribers.erasure import erase
from subscribers.export import export_subscribers
from subscribers.models import ConsentEvent, Subscriber, Suppression, SuppressionReason
from subscribers.preferences import update_preferences
from subscribers.suppression import is_suppressed, suppress
from tests.support.subscribers import make_subscriber, outbox, signed_up, sqlite_only


def test_erase_deletes_subscriber_history_and_topics(session: Session, settings: Settings) -> None:
    subscriber = make_subscriber(session, "jane@example.com", name="Jane")
    update_preferences(
        session,
        settings=settings,
        subscriber_id=subscriber.id,
        topics=["sciatica"],
        topics_consent=True,
    )
    session.commit()
    result = erase(session, email="Jane@Example.com")
    session.commit()
    assert (result.subscriber_id, result.events_deleted) == (subscriber.id, 2)
    assert session.exec(select(Subscriber)).all() == []
    assert session.exec(select(ConsentEvent)).all() == []


def test_erase_keeps_only_the_hash_in_suppression(session: Session, settings: Settings) -> None:
    make_subscriber(session, "jane@example.com")
    erase(session, email="jane@example.com")
    session.commit()
    rows = session.exec(select(Suppression)).all()
    assert [(r.email_hash, r.email, r.reason) for r in rows] == [
        (email_hash("jane@example.com"), None, "erased")
    ]


def test_erased_person_stays_suppressed_and_import_cannot_bring_them_back(
    session: Session, settings: Settings
) -> None:
    make_subscriber(session, "jane@example.com")
    erase(session, email="jane@example.com")
    session.commit()
    report = import_csv(
        session,
        settings=settings,
        mailer=outbox(settings),
        data=b"email,name,consented_at\njane@example.com,Jane,2025-01-01\n",
    )
    session.commit()
    assert is_suppressed(session, email="jane@example.com")
    assert report.suppressed == 1
    assert session.exec(select(Subscriber)).all() == []


def test_erase_of_an_unsubscribed_person_keeps_the_original_reason(
    session: Session, settings: Settings
) -> None:
    subscriber = make_subscriber(session, "jane@example.com")
    lifecycle.unsubscribe(session, subscriber_id=subscriber.id, source="form")
    erase(session, email="jane@example.com")
    session.commit()
    [row] = session.exec(select(Suppression)).all()
    assert (row.email, row.reason) == (None, "unsubscribe")


def test_erase_of_a_suppression_only_address_drops_the_address(session: Session) -> None:
    suppress(session, email="bounce@example.com", reason=SuppressionReason.HARD_BOUNCE)
    session.commit()
    result = erase(session, email="bounce@example.com")
    session.commit()
    assert result.subscriber_id is None
    [row] = session.exec(select(Suppression)).all()
    assert (row.email, row.reason) == (None, "hard_bounce")


@sqlite_only
def test_erase_of_an_unknown_address_is_not_found(session: Session) -> None:
    with pytest.raises(NotFound, match=r"nothing is stored about 'who@example\.com'"):
        erase(session, email="who@example.com")


@sqlite_only
def test_erased_person_is_absent_from_exports(session: Session, settings: Settings) -> None:
    make_subscriber(session, "keep@example.com")
    make_subscriber(session, "jane@example.com")
    erase(session, email="jane@example.com")
    session.commit()
    exported = export_subscribers(session, fmt="json")
    assert "jane" not in exported
    assert [r["email"] for r in json.loads(exported)] == ["keep@example.com"]


@sqlite_only
def test_erased_person_can_come_back_only_by_double_opt_in(
    session: Session, settings: Settings
) -> None:
    make_subscriber(session, "jane@example.com")
    erase(session, email="jane@example.com")
    session.commit()
    result = signed_up(session, settings, "jane@example.com")
    assert result.subscriber.status == "pending"
    assert is_suppressed(session, email="jane@example.com")


def test_erase_takes_the_persons_outgoing_webhook_messages_with_them(
    session: Session, settings: Settings
) -> None:
    endpoint = WebhookEndpoint(url="https://example.com/h", events=[], secret="whsec_AAAA")
    session.add(endpoint)
    session.commit()
    make_subscriber(session, "ann@example.com")
    make_subscriber(session, "bob@example.com")
    erase(session, email="ann@example.com")
    session.commit()
    left = session.exec(select(WebhookMessage.payload)).all()
    assert len(left) == 1 and "bob@example.com" in left[0]
