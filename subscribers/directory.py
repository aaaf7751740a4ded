"""Looking subscribers up for people: the list, and one person's record with its history.

Read only. What a door shows an operator about a subscriber is decided here, once: the
public fields (never tokens or bounce counters), whether the address is suppressed, and
the consent history in the order it happened.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, field_serializer
from sqlmodel import Session, col, select

from subscribers import lifecycle
from subscribers.models import Subscriber, SubscriberPublic, SubscriberStatus
from subscribers.suppression import find_suppression


class ConsentEntry(BaseModel):
    """One consent event: a status change (or consent act) with who, how and why.

    ``at`` is UTC; in JSON it is written ``isoformat()`` (``+00:00``), as ``subscribers
    export`` writes the history, so both outputs can be compared line by line.
    """

    at: datetime
    from_status: str | None
    to_status: str
    reason: str
    source: str
    ip: str | None
    user_agent: str | None
    consent_version: str | None

    @field_serializer("at", when_used="json")
    def _iso(self, at: datetime) -> str:
        return at.isoformat()


class SubscriberRecord(SubscriberPublic):
    """A subscriber's public fields, their suppression and their whole consent history.

    ``suppressed`` is the suppression reason (``unsubscribe``, ``hard_bounce``, ...) or
    None; ``history`` is oldest first.
    """

    suppressed: str | None
    history: list[ConsentEntry]


def list_subscribers(
    session: Session, *, status: SubscriberStatus | None = None
) -> list[SubscriberPublic]:
    """Every subscriber (or those in ``status``), oldest first (by id)."""
    query = select(Subscriber).order_by(col(Subscriber.id))
    if status is not None:
        query = query.where(Subscriber.status == status.value)
    return [SubscriberPublic.model_validate(s) for s in session.exec(query)]


def subscriber_record(session: Session, *, email: str) -> SubscriberRecord:
    """The record of the subscriber with ``email`` (any case, spaces trimmed).

    Raises NotFound when no subscriber has that address.
    """
    subscriber = lifecycle.get_by_email(session, email=email)
    suppression = find_suppression(session, email=subscriber.email)
    history = lifecycle.history(session, subscriber_id=subscriber.id or 0)
    return SubscriberRecord(
        **SubscriberPublic.model_validate(subscriber).model_dump(),
        suppressed=suppression.reason if suppression else None,
        history=[ConsentEntry.model_validate(e, from_attributes=True) for e in history],
    )
