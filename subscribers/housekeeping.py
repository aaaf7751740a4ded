"""Periodic clean-up: pending sign-ups nobody confirmed, and the old confirmation log.

A first-time sign-up left unconfirmed for ``settings.pending_expiry_days`` is deleted with
its history: we hold no consent for that address, so we keep nothing about it. Someone
who came back after leaving and did not confirm returns to the state they left in (the
address stays suppressed), so the record of their leaving is kept.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, delete, or_, select

from newsletter.clock import utcnow
from newsletter.errors import NotFound
from newsletter.settings import Settings
from subscribers import atomic, lifecycle
from subscribers.models import ConfirmationSend, ConsentSource, Subscriber, SubscriberStatus


def expire_pending(session: Session, *, settings: Settings, now: datetime | None = None) -> int:
    """Expire stale pending sign-ups; returns how many were deleted or reverted.

    Each candidate is taken (atomic.lock_subscriber) and checked again before it goes:
    a confirm or a new sign-up that landed since the search wins. Also prunes the
    confirmation log of entries older than any cap counts (see prune_confirmation_sends).
    """
    now = now or utcnow()
    cutoff = now - timedelta(days=settings.pending_expiry_days)
    candidates = session.exec(
        select(Subscriber.id).where(
            Subscriber.status == SubscriberStatus.PENDING.value,
            col(Subscriber.status_changed_at) < cutoff,
            or_(
                col(Subscriber.confirmation_sent_at).is_(None),
                col(Subscriber.confirmation_sent_at) < cutoff,
            ),
        )
    ).all()
    expired = 0
    for subscriber_id in candidates:
        assert subscriber_id is not None
        try:
            subscriber = atomic.lock_subscriber(session, subscriber_id=subscriber_id)
        except NotFound:  # erased meanwhile
            continue
        if not _stale(subscriber, cutoff):
            continue
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
        expired += 1
    session.flush()
    prune_confirmation_sends(session, now=now)
    return expired


def _stale(subscriber: Subscriber, cutoff: datetime) -> bool:
    """Still pending, and neither the sign-up nor the latest confirmation email is recent.

    A repeated sign-up resends the confirmation: the clock restarts at the latest one, so a
    fresh link never leads to "this sign-up has expired".
    """
    sent = subscriber.confirmation_sent_at
    return (
        subscriber.status == SubscriberStatus.PENDING.value
        and subscriber.status_changed_at < cutoff
        and (sent is None or sent < cutoff)
    )


def prune_confirmation_sends(session: Session, *, now: datetime | None = None) -> int:
    """Forget confirmation emails older than a week: no cap counts them any more."""
    week_ago = (now or utcnow()) - timedelta(weeks=1)
    result = session.execute(
        delete(ConfirmationSend).where(col(ConfirmationSend.sent_at) < week_ago)
    )
    return result.rowcount  # type: ignore[attr-defined]


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
