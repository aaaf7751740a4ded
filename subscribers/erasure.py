"""GDPR erasure: the person's data goes, the suppression stays (as a hash only).

Deleting the subscriber removes its consent history and topic choices with it (the
foreign key cascades; deliveries keep their counts but lose the link). The suppression
row keeps only the sha256 of the address, so a later import or a stale list can never
mail the person again, yet nobody can read who it was.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, delete

from newsletter.errors import NotFound
from newsletter.webhook_outbox import forget_subscriber
from subscribers import lifecycle
from subscribers.addresses import email_hash, normalise_for_hash
from subscribers.models import ConsentEvent, TrackingOptOut
from subscribers.suppression import find_suppression, forget_address


@dataclass(frozen=True)
class ErasureResult:
    email_hash: str
    subscriber_id: int | None  # None: only a suppression row held the address
    events_deleted: int


def erase(session: Session, *, email: str) -> ErasureResult:
    """Erase everything we hold about ``email``; raises NotFound when we hold nothing."""
    address = normalise_for_hash(email)
    subscriber = lifecycle.find_by_email(session, email=address)
    suppression = find_suppression(session, email=address)
    if subscriber is None and (suppression is None or suppression.email is None):
        raise NotFound(f"nothing is stored about {email.strip()!r}")
    subscriber_id = None
    events = 0
    if subscriber is not None:
        subscriber_id = subscriber.id
        events = len(lifecycle.history(session, subscriber_id=subscriber.id or 0))
        # Explicit, so erasure does not depend on the database enforcing the cascade.
        session.exec(delete(ConsentEvent).where(ConsentEvent.subscriber_id == subscriber.id))
        forget_subscriber(session, subscriber_id=subscriber.id or 0)  # outgoing webhooks
        session.exec(delete(TrackingOptOut).where(TrackingOptOut.subscriber_id == subscriber.id))
        session.delete(subscriber)
        session.flush()
    forget_address(session, email=address)
    return ErasureResult(email_hash(address), subscriber_id, events)
