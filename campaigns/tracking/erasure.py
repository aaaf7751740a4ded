"""GDPR erasure across both rooms: the subscriber's data and their provider events.

``subscribers.erasure.erase`` removes the person and keeps only a hash on the suppression
list; it cannot see ``campaigns``. Provider events we stored keep the address, IP and user
agent in their raw payload, so erasure here also scrubs those fields, as each provider's
webhook module names them (SendGrid: ``sendgrid_events.PERSONAL_FIELDS``).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, col, or_, select

from campaigns.delivery.providers import sendgrid_events
from campaigns.models import Delivery, TrackingEvent
from campaigns.tracking import hits
from subscribers.addresses import normalise_for_hash
from subscribers.erasure import ErasureResult, erase
from subscribers.lifecycle import find_by_email

# Fields of each provider's raw events that identify a person.
PERSONAL_FIELDS: dict[str, tuple[str, ...]] = {
    sendgrid_events.PROVIDER: sendgrid_events.PERSONAL_FIELDS,
    hits.PROVIDER: hits.PERSONAL_FIELDS,  # issue 15: our own clicks and opens
}


def scrub_events(session: Session, *, subscriber_id: int | None, email: str) -> int:
    """Remove personal fields from stored events of this person; returns how many changed."""
    address = normalise_for_hash(email)
    query = select(TrackingEvent).where(
        or_(
            col(TrackingEvent.subscriber_id) == subscriber_id,
            col(TrackingEvent.subscriber_id).is_(None),
        )
        if subscriber_id is not None
        else col(TrackingEvent.subscriber_id).is_(None)
    )
    changed = 0
    for event in session.exec(query):
        payload = dict(event.payload or {})
        mine = event.subscriber_id is not None or (
            normalise_for_hash(str(payload.get("email", ""))) == address
        )
        fields = PERSONAL_FIELDS.get(event.provider, ())
        if not mine or not any(field in payload for field in fields):
            continue
        for field in fields:
            payload.pop(field, None)
        event.payload = payload
        session.add(event)
        changed += 1
    return changed


def unlink_deliveries(session: Session, *, subscriber_id: int) -> int:
    """Null the person's id on their ledger rows (the counts stay); returns how many.

    The ledger has no foreign key (migration 0002) to do it: a dangling id could point
    at a new subscriber, since SQLite may reuse the largest deleted rowid.
    """
    return session.execute(
        sa.update(Delivery.__table__)
        .where(Delivery.__table__.c.subscriber_id == subscriber_id)
        .values(subscriber_id=None)
    ).rowcount


def erase_person(session: Session, *, email: str) -> tuple[ErasureResult, int]:
    """Erase the subscriber (keeping the hashed suppression) and scrub their events."""
    subscriber = find_by_email(session, email=normalise_for_hash(email))
    subscriber_id = subscriber.id if subscriber is not None else None
    scrubbed = scrub_events(session, subscriber_id=subscriber_id, email=email)
    if subscriber_id is not None:
        unlink_deliveries(session, subscriber_id=subscriber_id)
    return erase(session, email=email), scrubbed
