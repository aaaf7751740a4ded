"""Periodic clean-up: pending sign-ups nobody confirmed.

A first-time sign-up left unconfirmed for ``settings.pending_expiry_days`` is deleted with
its history: we hold no consent for that address, so we keep nothing about it. Someone
who came back after leaving and did not confirm returns to the state they left in (the
address stays suppressed), so the record of their leaving is kept.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, or_, select

from newsletter.clock import utcnow
from newsletter.settings import Settings
from subscribers import lifecycle
from subscribers.models import ConsentSource, Subscriber, SubscriberStatus


def expire_pending(session: Session, *, settings: Settings, now: datetime | None = None) -> int:
    """Expire stale pending sign-ups; returns how many were deleted or reverted."""
    cutoff = (now or utcnow()) - timedelta(days=settings.pending_expiry_days)
    # A repeated sign-up resends the confirmation: the clock restarts at the latest one,
    # so a fresh link never leads to "this sign-up has expired".
    stale = session.exec(
        select(Subscriber).where(
            Subscriber.status == SubscriberStatus.PENDING.value,
            col(Subscriber.status_changed_at) < cutoff,
            or_(
                col(Subscriber.confirmation_sent_at).is_(None),
                col(Subscriber.confirmation_sent_at) < cutoff,
            ),
        )
    ).all()
    for subscriber in stale:
        previous = _status_before_pending(session, subscriber)
        if previous is None:
            session.delete(subscriber)
        else:
            lifecycle.transition(
                session,
                subscriber,
                previous,
                reason=f"new sign-up not confirmed within {settings.pending_expiry_days} days",
                source=ConsentSource.SYSTEM,
            )
    session.flush()
    return len(stale)


def _status_before_pending(session: Session, subscriber: Subscriber) -> SubscriberStatus | None:
    """The status a returning subscriber had before signing up again, else None."""
    assert subscriber.id is not None
    for event in reversed(lifecycle.history(session, subscriber_id=subscriber.id)):
        if event.to_status == SubscriberStatus.PENDING and event.from_status not in (
            None,
            SubscriberStatus.PENDING,
        ):
            return SubscriberStatus(event.from_status)
    return None
