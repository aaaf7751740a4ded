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
subscribers room (``people``: hard and soft bounces, complaints, unsubscribes, and
deliveries to an address with soft bounces to reset). The result is the same as applying
the events one at a time in arrival order: same rows, same counts, same suppressions.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from campaigns.models import TrackingEvent
from campaigns.tracking import people
from campaigns.tracking.counters import apply_changes
from campaigns.tracking.events import EventKind, NormalisedEvent
from campaigns.tracking.matching import Match, Matcher
from campaigns.tracking.people import Stored, Verdict, verdict
from campaigns.tracking.rowsets import RowSet, among
from newsletter import metrics
from newsletter.clock import utcnow
from newsletter.settings import Settings

__all__ = ["ApplyResult", "Verdict", "apply_events", "verdict"]

log = logging.getLogger(__name__)

K = EventKind
CHUNK = 5000  # events per round of set-based statements
_event = TrackingEvent.__table__  # type: ignore[attr-defined]
_COLUMNS = (
    "provider", "event_id", "kind", "raw_event", "campaign_id", "subscriber_id", "delivery_id",
    "machine", "occurred_at", "payload",
)  # fmt: skip


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
    metrics.provider_events_received(event.kind.value for event in events)  # issue 17
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
    failed = people.tell(session, settings, stored)
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
    postgres = session.get_bind().dialect.name == "postgresql"
    ids = {e.event_id for e in events}
    query = sa.select(_event.c.event_id).where(among(_event.c.event_id, ids, postgres))
    seen = set(session.scalars(query))
    new = []
    for event in events:
        if event.event_id not in seen:
            seen.add(event.event_id)
            new.append(event)
    return new


def _store(
    session: Session, events: Sequence[NormalisedEvent], matches: Sequence[Match]
) -> list[Stored]:
    """Insert the events in one statement (``rowsets``); a row another request stored
    meanwhile is skipped (ON CONFLICT DO NOTHING) and counts as a duplicate."""
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
            "payload": _json_safe(e.payload),
        }
        for e, m in zip(events, matches, strict=True)
    ]
    connection = session.connection()
    rowset = RowSet(connection.dialect, "events", {c: _event.c[c].type for c in _COLUMNS})
    insert = postgresql.insert if rowset.postgres else sqlite.insert
    now = sa.bindparam("received_at", received, type_=_event.c.received_at.type)
    source = sa.select(*(rowset.c[c] for c in _COLUMNS), now).where(sa.true())
    statement = (
        insert(_event)
        .from_select([*_COLUMNS, "received_at"], source)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(_event.c.id, _event.c.event_id)
    )
    inserted = rowset.execute(connection, statement, rows)
    ids = {event_id: row_id for row_id, event_id in inserted}
    return [
        Stored(ids[e.event_id], e, m)
        for e, m in zip(events, matches, strict=True)
        if e.event_id in ids
    ]


def _json_safe(payload: Any) -> dict[str, Any]:
    """The raw event as stored JSON (it came from JSON, so this only copies)."""
    return dict(payload) if isinstance(payload, dict) else {"value": payload}
