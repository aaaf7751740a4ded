"""Looking subscribers up for people: the list, and one person's record with its history.

Read only. What a door shows an operator about a subscriber is decided here, once: the
public fields (never tokens or bounce counters), whether the address is suppressed, and
the consent history in the order it happened.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from pydantic import BaseModel, field_serializer
from sqlmodel import Session, col, select

from newsletter.errors import InvalidInput
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


MAX_PAGE = 500


class SubscriberPage(BaseModel):
    """One page of a search, oldest first; ``total`` counts every match."""

    items: list[SubscriberPublic]
    total: int
    limit: int
    offset: int


def _like(text: str) -> str:
    """``text`` as a LIKE pattern matching itself anywhere (``%`` and ``_`` escaped)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_subscribers(
    session: Session,
    *,
    query: str = "",
    status: SubscriberStatus | None = None,
    topic: str | None = None,
    topics: dict[str, str] | None = None,
    limit: int = 50,
    offset: int = 0,
) -> SubscriberPage:
    """Subscribers whose address contains ``query`` (any case), in ``status``, who chose
    ``topic``; ``limit`` (1..500) from ``offset``, oldest first. The console, the API and
    the CLI's list use it. InvalidInput when ``topic`` is not one of ``topics`` (the
    configured slugs), when given."""
    where: list[sa.ColumnElement[bool]] = []
    text = query.strip().lower()
    if text:
        where.append(col(Subscriber.email).like(_like(text), escape="\\"))
    if status is not None:
        where.append(col(Subscriber.status) == status.value)
    if topic:
        if topics is not None and topic not in topics:
            raise InvalidInput(f"unknown topic {topic!r}", field="topic")
        # Topics are a JSON list of slugs: its text holds '"slug"' exactly when chosen,
        # on SQLite and PostgreSQL alike.
        topics_text = sa.cast(Subscriber.__table__.c.topics, sa.Text)  # type: ignore[attr-defined]
        where.append(topics_text.like(_like(f'"{topic}"'), escape="\\"))
    limit = max(1, min(limit, MAX_PAGE))
    offset = max(0, offset)
    total = session.exec(select(sa.func.count()).select_from(Subscriber).where(*where)).one()
    rows = session.exec(
        select(Subscriber).where(*where).order_by(col(Subscriber.id)).limit(limit).offset(offset)
    )
    return SubscriberPage(
        items=[SubscriberPublic.model_validate(s) for s in rows],
        total=int(total),
        limit=limit,
        offset=offset,
    )
