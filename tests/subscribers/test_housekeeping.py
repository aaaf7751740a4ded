"""Unconfirmed sign-ups expire after settings.pending_expiry_days."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from newsletter.clock import utcnow
from newsletter.settings import Settings
from subscribers import lifecycle
from subscribers.housekeeping import expire_pending
from subscribers.models import ConsentEvent, Subscriber
from subscribers.suppression import is_suppressed
from tests.support.subscribers import make_subscriber, signed_up, sqlite_only


def later(settings: Settings, extra: timedelta = timedelta(minutes=1)):
    return utcnow() + timedelta(days=settings.pending_expiry_days) + extra


def test_stale_first_time_sign_up_is_deleted_with_history(
    session: Session, settings: Settings
) -> None:
    signed_up(session, settings, "late@example.com")
    assert expire_pending(session, settings=settings, now=later(settings)) == 1
    session.commit()
    assert session.exec(select(Subscriber)).all() == []
    assert session.exec(select(ConsentEvent)).all() == []


@sqlite_only
def test_recent_sign_up_is_kept(session: Session, settings: Settings) -> None:
    signed_up(session, settings, "new@example.com")
    assert expire_pending(session, settings=settings, now=later(settings, -timedelta(hours=1))) == 0
    session.commit()
    assert len(session.exec(select(Subscriber)).all()) == 1


@sqlite_only
def test_active_subscribers_never_expire(session: Session, settings: Settings) -> None:
    make_subscriber(session, "active@example.com")
    assert expire_pending(session, settings=settings, now=later(settings, timedelta(days=400))) == 0


def test_unconfirmed_return_goes_back_to_unsubscribed(session: Session, settings: Settings) -> None:
    subscriber = make_subscriber(session, "back@example.com")
    lifecycle.unsubscribe(session, subscriber_id=subscriber.id, source="form")
    session.commit()
    signed_up(session, settings, "back@example.com")
    assert expire_pending(session, settings=settings, now=later(settings)) == 1
    session.commit()
    stored = session.get(Subscriber, subscriber.id)
    assert stored.status == "unsubscribed"
    assert is_suppressed(session, email="back@example.com")
    assert lifecycle.history(session, subscriber_id=stored.id)[-1].reason == (
        "new sign-up not confirmed within 7 days"
    )


def test_expiry_counts_from_the_latest_confirmation_email(
    session: Session, settings: Settings
) -> None:
    first = utcnow() - timedelta(days=settings.pending_expiry_days - 1)
    signed_up(session, settings, "again@example.com", now=first)
    signed_up(session, settings, "again@example.com", now=first + timedelta(days=2))
    first_link_expired = first + timedelta(days=settings.pending_expiry_days, hours=1)
    assert expire_pending(session, settings=settings, now=first_link_expired) == 0
    assert expire_pending(session, settings=settings, now=later(settings)) == 1
