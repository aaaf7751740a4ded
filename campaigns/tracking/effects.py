"""Apply provider events to the delivery ledger and the list, each event exactly once.

An event is stored in ``tracking_event`` under its provider id (unique) before anything
else happens, so a batch that arrives twice, or two requests racing with the same event,
change nothing the second time. Effects are written so that arrival order does not
matter: counters are increments of distinct events, times keep the earliest value, a hard
bounce outranks a soft one, and a soft bounce only counts when it happened after the last
delivery to that address.

Events arrive in our vocabulary (``campaigns.tracking.events``); nothing here reads a
vendor's field. A stored event keeps one kind for either bounce (``bounced``, as
django-anymail has it); whether a message bounced hard or soft is kept on its delivery
row (``delivery.bounce``). So the soft-bounce streak looks at the address's bounces of
either kind: one bounce per message counts, and a delivery resets the streak unless a
bounce came after it. That differs from counting soft bounces only for an address a hard
bounce has already stopped.

What happens to a person (bounced, complained, unsubscribed, suppressed) is decided by the
subscribers room; we only tell it what the provider saw. Machine opens are counted apart
and never reach the subscribers room.

In bulk: a webhook request may carry 100,000 events, so they are applied in chunks, each
with a handful of set-based statements: one query for the event ids already stored, the
matching (``matching.Matcher``), one ``INSERT ... ON CONFLICT DO NOTHING RETURNING`` of the
new events, and the delivery rows' changes folded per row (``counters``). Only events
that say something about a person go one by one, in arrival order, through the
subscribers room (hard and soft bounces, complaints, unsubscribes, and deliveries to an
address with soft bounces to reset). The result is the same as applying the events one
at a time in arrival order: same rows, same counts, same suppressions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from campaigns.models import TrackingEvent
from campaigns.tracking.counters import apply_changes
from campaigns.tracking.events import EventKind, NormalisedEvent, RejectReason
from campaigns.tracking.matching import Match, Matcher
from newsletter.clock import as_utc, utcnow
from newsletter.errors import NewsletterError
from newsletter.settings import Settings
from subscribers import lifecycle
from subscribers.models import ConsentSource, Subscriber

log = logging.getLogger(__name__)

K, R = EventKind, RejectReason
CHUNK = 5000  # events per round of set-based statements
_event = TrackingEvent.__table__  # type: ignore[attr-defined]
_subscriber = Subscriber.__table__  # type: ignore[attr-defined]


class Verdict(StrEnum):
    """What an event says about the person behind the address."""

    HARD_BOUNCE = "hard bounce"
    SOFT_BOUNCE = "soft bounce"
    COMPLAINT = "complaint"
    UNSUBSCRIBE = "unsubscribe"
    DELIVERED = "delivered"


V = Verdict
# A message rejected before sending says something about the address only by its reason.
REJECTION_VERDICTS: dict[RejectReason, Verdict] = {
    R.INVALID: V.HARD_BOUNCE,
    R.BOUNCED: V.HARD_BOUNCE,
    R.SPAM: V.COMPLAINT,
    R.UNSUBSCRIBED: V.UNSUBSCRIBE,
}
KIND_VERDICTS: dict[EventKind, Verdict] = {
    K.COMPLAINED: V.COMPLAINT,
    K.UNSUBSCRIBED: V.UNSUBSCRIBE,
    K.DELIVERED: V.DELIVERED,
}


def verdict(event: NormalisedEvent) -> Verdict | None:
    """What ``event`` says about the person (None: nothing; machine opens never do)."""
    if event.kind is K.REJECTED:
        return REJECTION_VERDICTS.get(event.reject_reason) if event.reject_reason else None
    if event.kind is K.BOUNCED:
        return V.SOFT_BOUNCE if event.soft_bounce else V.HARD_BOUNCE
    return KIND_VERDICTS.get(event.kind)


@dataclass
class ApplyResult:
    received: int = 0
    applied: int = 0  # new events stored and acted upon
    duplicates: int = 0  # seen before (same provider event id): nothing done
    unmatched: int = 0  # stored, but no delivery or subscriber of ours
    unknown: int = 0  # stored, event type we do not know
    failed: int = 0  # stored, but an effect was refused (logged)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Stored:
    """A new event as stored: its row id and what it matched."""

    row_id: int
    event: NormalisedEvent
    match: Match


def apply_events(
    session: Session, *, settings: Settings, events: Sequence[NormalisedEvent]
) -> ApplyResult:
    """Store and apply a batch, in arrival order; safe to call again with the same events.

    Flushes as it goes; the caller commits (the webhook's session does, once).
    """
    result = ApplyResult(received=len(events))
    matcher = Matcher(session)
    for start in range(0, len(events), CHUNK):
        _apply_chunk(session, settings, matcher, events[start : start + CHUNK], result)
    return result


def _apply_chunk(
    session: Session,
    settings: Settings,
    matcher: Matcher,
    events: Sequence[NormalisedEvent],
    result: ApplyResult,
) -> None:
    new = _not_seen(session, events)
    stored = _store(session, new, matcher.match(new)) if new else []
    result.duplicates += len(events) - len(stored)
    for item in stored:
        result.applied += 1
        if item.event.kind is K.UNKNOWN:
            result.unknown += 1
        if item.match.unmatched:
            result.unmatched += 1
            log.info(
                "tracking: %s event %s matches nothing of ours",
                item.event.raw_event,
                item.event.event_id,
            )
    failed = _people(session, settings, stored)
    result.failed += len(failed)
    apply_changes(
        session,
        (
            (item.match.delivery_id, item.event)
            for item in stored
            if item.match.delivery_id is not None and item.row_id not in failed
        ),
    )


# ---------------------------------------------------------------- storing


def _not_seen(session: Session, events: Sequence[NormalisedEvent]) -> list[NormalisedEvent]:
    """The events whose id is new: not stored before, and the first of its id in the chunk."""
    ids = {e.event_id for e in events}
    seen = set(
        session.execute(sa.select(_event.c.event_id).where(_event.c.event_id.in_(ids))).scalars()
    )
    new = []
    for event in events:
        if event.event_id not in seen:
            seen.add(event.event_id)
            new.append(event)
    return new


def _store(
    session: Session, events: Sequence[NormalisedEvent], matches: Sequence[Match]
) -> list[Stored]:
    """Insert the events in one statement; a row another request stored meanwhile is
    skipped (ON CONFLICT DO NOTHING) and counts as a duplicate."""
    received = utcnow()
    rows = [
        {
            "provider": e.provider,
            "event_id": e.event_id,
            "kind": e.kind.value,
            "raw_event": e.raw_event,
            "campaign_id": m.campaign_id,
            "subscriber_id": m.subscriber_id,
            "delivery_id": m.delivery_id,
            "machine": e.machine,
            "occurred_at": e.occurred_at,
            "received_at": received,
            "payload": _json_safe(e.payload),
        }
        for e, m in zip(events, matches, strict=True)
    ]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(_event)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(_event.c.id, _event.c.event_id)
    )
    inserted = session.connection().execute(statement, rows)
    ids = {event_id: row_id for row_id, event_id in inserted}
    return [
        Stored(ids[e.event_id], e, m)
        for e, m in zip(events, matches, strict=True)
        if e.event_id in ids
    ]


def _json_safe(payload: Any) -> dict[str, Any]:
    """The raw event as stored JSON (it came from JSON, so this only copies)."""
    return dict(payload) if isinstance(payload, dict) else {"value": payload}


# ---------------------------------------------------------------- effects on people


def _people(session: Session, settings: Settings, stored: Sequence[Stored]) -> set[int]:
    """Tell the subscribers room, event by event in arrival order, what events say about
    people; returns the row ids of events whose effect was refused (their delivery
    changes are left out too, as one event's effects go together).

    A delivery only matters to an address with soft bounces to reset: one counted before
    this chunk, or one a soft bounce of this chunk may add.
    """
    verdicts = [
        (item, found)
        for item in stored
        if item.match.subscriber_id is not None and (found := verdict(item.event)) is not None
    ]
    streaks = _with_soft_bounces(
        session, {item.match.subscriber_id for item, found in verdicts if found is V.DELIVERED}
    )
    streaks.update(item.match.subscriber_id for item, found in verdicts if found is V.SOFT_BOUNCE)
    failed: set[int] = set()
    for item, found in verdicts:
        if found is V.DELIVERED and item.match.subscriber_id not in streaks:
            continue  # nothing to reset
        try:
            with session.begin_nested():
                _tell(session, settings, item, found)
        except NewsletterError as err:
            failed.add(item.row_id)
            log.warning("tracking: event %s not applied: %s", item.event.event_id, err)
    return failed


def _with_soft_bounces(session: Session, subscriber_ids: set[Any]) -> set[Any]:
    if not subscriber_ids:
        return set()
    query = sa.select(_subscriber.c.id).where(
        _subscriber.c.id.in_(subscriber_ids), _subscriber.c.soft_bounces > 0
    )
    return set(session.execute(query).scalars())


def _tell(session: Session, settings: Settings, item: Stored, found: Verdict) -> None:
    event, sid = item.event, item.match.subscriber_id
    assert sid is not None
    at = event.occurred_at
    detail = {
        "provider": event.provider,
        "event": event.raw_event,
        "event_id": event.event_id,
        "campaign_id": item.match.campaign_id,
        "delivery_id": item.match.delivery_id,
        "reason": event.reason,
        "occurred_at": at.isoformat(),
    }
    if found is V.HARD_BOUNCE:
        lifecycle.record_hard_bounce(session, subscriber_id=sid, detail=detail)
    elif found is V.COMPLAINT:
        lifecycle.record_complaint(session, subscriber_id=sid, detail=detail)
    elif found is V.UNSUBSCRIBE:
        lifecycle.unsubscribe(
            session,
            subscriber_id=sid,
            source=ConsentSource.PROVIDER,
            detail=detail,
            reason=f"{event.raw_event} at {event.provider}",
        )
    elif found is V.SOFT_BOUNCE:
        if _counts_as_soft_bounce(session, item, sid):
            lifecycle.record_soft_bounce(
                session, settings=settings, subscriber_id=sid, detail=detail
            )
    elif found is V.DELIVERED and _latest(session, sid, K.BOUNCED, item) <= as_utc(at):
        lifecycle.reset_soft_bounces(session, subscriber_id=sid)


def _counts_as_soft_bounce(session: Session, item: Stored, subscriber_id: int) -> bool:
    """One bounce per message, and only after the last delivery that got through.

    "Before" is in arrival order: rows stored earlier (smaller ids), as if each event had
    been applied on its own; a later event of the same chunk is not looked at.
    """
    if item.match.delivery_id is not None:
        earlier = session.exec(
            select(TrackingEvent.id).where(
                col(TrackingEvent.delivery_id) == item.match.delivery_id,
                col(TrackingEvent.kind) == K.BOUNCED.value,
                col(TrackingEvent.id) < item.row_id,
            )
        ).first()
        if earlier is not None:
            return False
    return _latest(session, subscriber_id, K.DELIVERED, item) <= as_utc(item.event.occurred_at)


def _latest(session: Session, subscriber_id: int, kind: EventKind, item: Stored) -> datetime:
    """When the subscriber's most recent earlier event of ``kind`` happened (or the epoch)."""
    latest = session.exec(
        select(sa.func.max(TrackingEvent.occurred_at)).where(
            col(TrackingEvent.subscriber_id) == subscriber_id,
            col(TrackingEvent.kind) == kind.value,
            col(TrackingEvent.id) < item.row_id,
        )
    ).one()
    return as_utc(latest) if latest is not None else datetime.min.replace(tzinfo=UTC)
