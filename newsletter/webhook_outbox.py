"""Outgoing webhooks' outbox (issue 16 point 4): endpoints, messages, attempts, and emit.

An event is emitted where the status changes (subscribers/lifecycle.py, the campaign
workflow) by :func:`emit`, which writes one ``webhook_message`` row per enabled endpoint
that wants the event, in the caller's transaction: the event is recorded if and only if
the change commits, and no HTTP ever runs inside a transaction. The deliverer
(``campaigns.outgoing_webhooks.deliver_due``, run by ``newsletter webhooks deliver`` and
the scheduler every few seconds) sends them later and writes a ``webhook_attempt`` row
per try.

Messages follow the Standard Webhooks specification (standardwebhooks.com): a JSON body
``{"type", "timestamp", "data"}``, a ``webhook-id`` (``msg_...``) that stays the same
across retries, so receivers can drop duplicates. This module sits on the ground floor
because subscribers emit and may not import campaigns.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, Session, SQLModel, col, select

from newsletter.clock import utcnow
from newsletter.db import UTCDateTime


class WebhookEvent(StrEnum):
    """The event types an endpoint can ask for (``events`` empty: all of them)."""

    SUBSCRIBER_CREATED = "subscriber.created"
    SUBSCRIBER_CONFIRMED = "subscriber.confirmed"
    SUBSCRIBER_UNSUBSCRIBED = "subscriber.unsubscribed"
    SUBSCRIBER_BOUNCED = "subscriber.bounced"
    SUBSCRIBER_COMPLAINED = "subscriber.complained"
    CAMPAIGN_SENT = "campaign.sent"
    CAMPAIGN_FINISHED = "campaign.finished"


class MessageStatus(StrEnum):
    PENDING = "pending"  # to be tried at next_attempt_at
    DELIVERED = "delivered"  # a 2xx answer
    FAILED = "failed"  # every try of the schedule failed, or the endpoint was disabled


class WebhookEndpoint(SQLModel, table=True):
    """A receiver: its URL, the events it wants, its signing secret (``whsec_...``)."""

    __tablename__ = "webhook_endpoint"

    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(sa_type=sa.Text)
    # JSON list of event types; [] means every event.
    events: list[str] = Field(default_factory=list, sa_type=sa.JSON)
    secret: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    disabled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    disabled_reason: str | None = Field(default=None, sa_type=sa.Text)
    # The first failure since the last success; None while deliveries get through.
    failing_since: datetime | None = Field(default=None, sa_type=UTCDateTime)


class WebhookMessage(SQLModel, table=True):
    """One event for one endpoint, and where its delivery stands."""

    __tablename__ = "webhook_message"

    id: int | None = Field(default=None, primary_key=True)
    msg_id: str = Field(max_length=40)  # webhook-id: the same for every endpoint and retry
    endpoint_id: int = Field(index=True)
    event_type: str = Field(max_length=40)
    payload: str = Field(sa_type=sa.Text)  # the exact JSON body that is signed and sent
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    status: str = Field(default=MessageStatus.PENDING.value, max_length=20)
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Whom a subscriber event names, so erasure can take the message with the person.
    subscriber_id: int | None = Field(default=None, index=True)


class WebhookAttempt(SQLModel, table=True):
    """One try of one message: the delivery log of its endpoint."""

    __tablename__ = "webhook_attempt"

    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(index=True)
    endpoint_id: int = Field(index=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    status_code: int | None = None  # the receiver's HTTP status; None: no answer
    outcome: str = Field(max_length=20)  # delivered, retrying, failed, disabled
    error: str = Field(default="", sa_type=sa.Text)
    duration_ms: int = 0


_CACHE = "webhook_outbox.endpoints"
_MESSAGE: sa.Table = WebhookMessage.__table__  # type: ignore[attr-defined]


def new_msg_id() -> str:
    """``msg_`` and 128 random bits, URL-safe: unique per event, stable across retries."""
    return "msg_" + secrets.token_urlsafe(16)


def body(event_type: str, data: Mapping[str, Any], at: datetime) -> str:
    """The JSON body of the Standard Webhooks payload structure: type, timestamp, data."""
    stamp = at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps(
        {"type": event_type, "timestamp": stamp, "data": dict(data)},
        separators=(",", ":"),
        sort_keys=True,
    )


def wants(endpoint_events: list[str], event_type: str) -> bool:
    return not endpoint_events or event_type in endpoint_events


def emit(
    session: Session,
    event: WebhookEvent,
    data: Mapping[str, Any],
    *,
    at: datetime | None = None,
) -> int:
    """Queue ``event`` for every enabled endpoint that wants it, in the caller's
    transaction; returns how many messages were written (0 without endpoints).

    ``data`` is what the receiver gets; keep personal data to what it needs (an address
    and a subscriber id, never a name or an IP).
    """
    targets = [eid for eid, events in _endpoints(session) if wants(events, event.value)]
    if not targets:
        return 0
    when = at or utcnow()
    payload = body(event.value, data, when)
    msg_id = new_msg_id()
    for endpoint_id in targets:
        session.add(
            WebhookMessage(
                msg_id=msg_id,
                endpoint_id=endpoint_id,
                event_type=event.value,
                payload=payload,
                created_at=when,
                next_attempt_at=when,
                subscriber_id=data.get("subscriber_id"),
            )
        )
    session.flush()
    return len(targets)


def listeners(session: Session, events: Iterable[WebhookEvent]) -> dict[WebhookEvent, list[int]]:
    """Of ``events``, those some enabled endpoint wants, each with those endpoints' ids:
    one query, so a bulk writer (the CSV import) asks once and skips the rest when no one
    listens. An event no one wants is absent."""
    endpoints = _endpoints(session)
    found = {e: [eid for eid, wanted in endpoints if wants(wanted, e.value)] for e in events}
    return {e: ids for e, ids in found.items() if ids}


def emit_each(
    session: Session,
    event: WebhookEvent,
    endpoint_ids: Sequence[int],
    subjects: Sequence[Mapping[str, Any]],
    *,
    at: datetime,
) -> int:
    """:func:`emit` for many subjects at once (one ``data`` each, e.g. ``{"subscriber_id",
    "email"}``): one executemany of ``len(subjects) * len(endpoint_ids)`` rows in the
    caller's transaction, never a query per subject. Each subject's event gets its own
    ``msg_id``, shared by its endpoints, as with :func:`emit`. Returns the rows written.
    """
    if not endpoint_ids or not subjects:
        return 0
    rows = []
    for data in subjects:
        payload, msg_id = body(event.value, data, at), new_msg_id()
        rows.extend(
            {
                "msg_id": msg_id,
                "endpoint_id": endpoint_id,
                "event_type": event.value,
                "payload": payload,
                "created_at": at,
                "status": MessageStatus.PENDING.value,
                "attempts": 0,
                "next_attempt_at": at,
                "subscriber_id": data.get("subscriber_id"),
            }
            for endpoint_id in endpoint_ids
        )
    session.execute(sa.insert(_MESSAGE), rows)
    return len(rows)


def _endpoints(session: Session) -> list[tuple[int, list[str]]]:
    """The enabled endpoints and their events, read once per transaction: a provider's
    event batch can stop thousands of readers in one transaction, each one an emit."""
    transaction = session.get_transaction()
    cached = session.info.get(_CACHE)
    if cached is not None and transaction is not None and cached[0] is transaction:
        return cached[1]
    rows = session.exec(
        select(WebhookEndpoint.id, WebhookEndpoint.events).where(
            col(WebhookEndpoint.disabled_at).is_(None)
        )
    ).all()
    endpoints = [(int(eid), list(events or [])) for eid, events in rows if eid is not None]
    session.info[_CACHE] = (transaction, endpoints)
    return endpoints


def _drop(session: Session, condition: sa.ColumnElement[bool]) -> int:
    """Delete the messages that meet ``condition`` and their attempts; how many."""
    ids = select(WebhookMessage.id).where(condition)
    session.execute(sa.delete(WebhookAttempt).where(col(WebhookAttempt.message_id).in_(ids)))
    return int(session.execute(sa.delete(WebhookMessage).where(condition)).rowcount)  # type: ignore[attr-defined]


def forget_subscriber(session: Session, *, subscriber_id: int) -> int:
    """Erasure (GDPR Art. 17): every message naming the subscriber goes, sent or not."""
    return _drop(session, col(WebhookMessage.subscriber_id) == subscriber_id)


def prune(session: Session, *, now: datetime, retention_days: int) -> int:
    """Delete delivered and given-up messages (with their attempts) older than
    ``retention_days``: the log is for diagnosis, and payloads hold addresses."""
    return _drop(
        session,
        sa.and_(
            col(WebhookMessage.status) != MessageStatus.PENDING.value,
            col(WebhookMessage.created_at) < now - timedelta(days=retention_days),
        ),
    )
