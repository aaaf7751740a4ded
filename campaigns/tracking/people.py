"""What events say about people, told to the subscribers room one event at a time.

A hard bounce, a complaint or an unsubscribe stops mail to the address (``subscribers.
lifecycle`` decides how); a soft bounce counts towards ``soft_bounce_limit`` when it is
the message's first bounce and came after the address's last delivery; a delivery resets
the streak unless a bounce came after it. Machine opens never reach the subscribers room.

Events are told in arrival order; "before" means stored earlier (a smaller row id), as
if each event had been applied on its own. The facts the soft-bounce rules read (earlier
bounces of a message, the address's deliveries and bounces) are loaded for a whole chunk
in a few queries (:class:`History`), and the people in one, before the events are told.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from campaigns.models import TrackingEvent
from campaigns.tracking.events import EventKind, NormalisedEvent, RejectReason
from campaigns.tracking.matching import Match
from campaigns.tracking.rowsets import among
from newsletter.clock import as_utc
from newsletter.errors import NewsletterError
from newsletter.settings import Settings
from subscribers import lifecycle
from subscribers.models import ConsentSource, Subscriber

log = logging.getLogger("campaigns.tracking.effects")

K, R = EventKind, RejectReason
EPOCH = datetime.min.replace(tzinfo=UTC)
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


@dataclass(frozen=True, slots=True)
class Stored:
    """A new event as stored: its row id and what it matched."""

    row_id: int
    event: NormalisedEvent
    match: Match


Told = tuple[Stored, Verdict]


def tell(session: Session, settings: Settings, stored: Sequence[Stored]) -> set[int]:
    """Tell the subscribers room what a chunk's events say about people, in arrival order;
    returns the row ids of events whose effect was refused (logged).

    A delivery only matters to an address with soft bounces to reset: one counted before
    this chunk, or one a soft bounce of this chunk may add. The events are told inside
    one savepoint; only when one is refused (rare) are they told again, each in its own
    savepoint, so that the others still count.
    """
    todo = _worth_telling(session, stored)
    if not todo:
        return set()
    ids = {item.match.subscriber_id for item, _ in todo}
    postgres = session.get_bind().dialect.name == "postgresql"
    query = sa.select(Subscriber).where(among(_subscriber.c.id, ids, postgres))
    _held = list(session.scalars(query))  # kept while telling: the identity map is weak
    history = History.load(session, todo, postgres=postgres)
    try:
        with session.begin_nested():
            for item, found in todo:
                _tell(session, settings, history, item, found)
        return set()
    except NewsletterError:
        pass
    failed: set[int] = set()
    for item, found in todo:
        try:
            with session.begin_nested():
                _tell(session, settings, history, item, found)
        except NewsletterError as err:
            failed.add(item.row_id)
            log.warning("tracking: event %s not applied: %s", item.event.event_id, err)
    return failed


def _worth_telling(session: Session, stored: Sequence[Stored]) -> list[Told]:
    verdicts: list[Told] = [
        (item, found)
        for item in stored
        if item.match.subscriber_id is not None and (found := verdict(item.event)) is not None
    ]
    delivered = {item.match.subscriber_id for item, found in verdicts if found is V.DELIVERED}
    streaks: set[Any] = set()
    if delivered:
        postgres = session.get_bind().dialect.name == "postgresql"
        query = sa.select(_subscriber.c.id).where(
            among(_subscriber.c.id, delivered, postgres), _subscriber.c.soft_bounces > 0
        )
        streaks.update(session.scalars(query))
    streaks.update(item.match.subscriber_id for item, found in verdicts if found is V.SOFT_BOUNCE)
    return [
        (item, found)
        for item, found in verdicts
        if found is not V.DELIVERED or item.match.subscriber_id in streaks
    ]


@dataclass
class History:
    """What the soft-bounce rules read from stored events, for one chunk's people."""

    first_bounce: dict[int, int]  # delivery id -> smallest row id of its bounces
    times: dict[tuple[int, str], tuple[list[int], list[datetime]]]  # ids ascending

    @classmethod
    def load(cls, session: Session, todo: Sequence[Told], *, postgres: bool) -> History:
        soft = [item for item, found in todo if found is V.SOFT_BOUNCE]
        resets = [item for item, found in todo if found is V.DELIVERED]
        e = _event.c
        first: dict[int, int] = {}
        deliveries = {i.match.delivery_id for i in soft if i.match.delivery_id is not None}
        if deliveries:
            query = (
                sa.select(e.delivery_id, sa.func.min(e.id))
                .where(e.kind == K.BOUNCED.value, among(e.delivery_id, deliveries, postgres))
                .group_by(e.delivery_id)
            )
            first = {delivery: row_id for delivery, row_id in session.execute(query)}
        rows: dict[tuple[int, str], list[tuple[int, datetime]]] = defaultdict(list)
        for kind, items in ((K.DELIVERED, soft), (K.BOUNCED, resets)):
            people = {i.match.subscriber_id for i in items}
            if not people:
                continue
            query = sa.select(e.subscriber_id, e.id, e.occurred_at).where(
                e.kind == kind.value, among(e.subscriber_id, people, postgres)
            )
            for subscriber_id, row_id, at in session.execute(query):
                rows[(subscriber_id, kind.value)].append((row_id, as_utc(at)))
        times = {}
        for key, found in rows.items():
            found.sort()
            times[key] = ([row_id for row_id, _ in found], [at for _, at in found])
        return cls(first, times)

    def earlier_bounce(self, item: Stored) -> bool:
        """Whether the event's message bounced before (a smaller row id)."""
        first = self.first_bounce.get(item.match.delivery_id or 0)
        return first is not None and first < item.row_id

    def latest(self, subscriber_id: int, kind: EventKind, item: Stored) -> datetime:
        """When the subscriber's most recent earlier event of ``kind`` happened (or the epoch)."""
        ids, times = self.times.get((subscriber_id, kind.value), ([], []))
        earlier = times[: bisect_left(ids, item.row_id)]
        return max(earlier) if earlier else EPOCH


def _tell(
    session: Session, settings: Settings, history: History, item: Stored, found: Verdict
) -> None:
    event, sid = item.event, item.match.subscriber_id
    assert sid is not None
    at = as_utc(event.occurred_at)
    detail = {
        "provider": event.provider,
        "event": event.raw_event,
        "event_id": event.event_id,
        "campaign_id": item.match.campaign_id,
        "delivery_id": item.match.delivery_id,
        "reason": event.reason,
        "occurred_at": event.occurred_at.isoformat(),
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
        # One bounce per message, and only after the last delivery that got through.
        if not history.earlier_bounce(item) and history.latest(sid, K.DELIVERED, item) <= at:
            lifecycle.record_soft_bounce(
                session, settings=settings, subscriber_id=sid, detail=detail
            )
    elif found is V.DELIVERED and history.latest(sid, K.BOUNCED, item) <= at:
        lifecycle.reset_soft_bounces(session, subscriber_id=sid)
