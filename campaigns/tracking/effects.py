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
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from campaigns.models import Delivery, DeliveryBatch, TrackingEvent
from campaigns.tracking.events import EventKind, NormalisedEvent, RejectReason
from newsletter.clock import as_utc
from newsletter.errors import NewsletterError
from newsletter.settings import Settings
from subscribers import lifecycle
from subscribers.addresses import normalise_for_hash
from subscribers.models import ConsentSource, Subscriber

log = logging.getLogger(__name__)

K, R = EventKind, RejectReason


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


def apply_events(
    session: Session, *, settings: Settings, events: Sequence[NormalisedEvent]
) -> ApplyResult:
    """Store and apply a batch; safe to call again with the same events."""
    result = ApplyResult(received=len(events))
    for event in events:
        stored = _store(session, event)
        if stored is None:
            result.duplicates += 1
            continue
        row, delivery, subscriber = stored
        result.applied += 1
        if event.kind is K.UNKNOWN:
            result.unknown += 1
        if delivery is None and subscriber is None:
            result.unmatched += 1
            log.info(
                "tracking: %s event %s matches nothing of ours", event.raw_event, event.event_id
            )
        try:
            with session.begin_nested():
                _apply(session, settings, event, row, delivery, subscriber)
        except NewsletterError as err:
            result.failed += 1
            log.warning("tracking: event %s not applied: %s", event.event_id, err)
    return result


# ---------------------------------------------------------------- storing and matching


def _store(
    session: Session, event: NormalisedEvent
) -> tuple[TrackingEvent, Delivery | None, Subscriber | None] | None:
    """Record the event once; None when it was recorded before."""
    if _seen(session, event):
        return None
    delivery = match_delivery(session, event)
    subscriber = _subscriber_for(session, event, delivery)
    row = TrackingEvent(
        provider=event.provider,
        event_id=event.event_id,
        kind=event.kind.value,
        raw_event=event.raw_event,
        campaign_id=delivery.campaign_id if delivery else None,
        subscriber_id=subscriber.id if subscriber else None,
        delivery_id=delivery.id if delivery else None,
        machine=event.machine,
        occurred_at=event.occurred_at,
        payload=_json_safe(event.payload),
    )
    try:
        with session.begin_nested():  # a concurrent request may store the same event
            session.add(row)
            session.flush()
    except IntegrityError:
        return None
    return row, delivery, subscriber


def _seen(session: Session, event: NormalisedEvent) -> bool:
    found = session.exec(
        select(TrackingEvent.id).where(col(TrackingEvent.event_id) == event.event_id)
    ).first()
    return found is not None


def match_delivery(session: Session, event: NormalisedEvent) -> Delivery | None:
    """Our delivery for an event: by our own ids echoed back first, else by the message id.

    The recipient address must agree with the delivery's subscriber, so ids echoed from
    another installation sharing the provider account never touch the wrong person.
    """
    candidate: Delivery | None = None
    if event.delivery_id is not None:
        candidate = session.get(Delivery, event.delivery_id)
        if candidate is not None and (
            (event.campaign_id is not None and candidate.campaign_id != event.campaign_id)
            or (event.subscriber_id is not None and candidate.subscriber_id != event.subscriber_id)
        ):
            candidate = None
    elif event.campaign_id is not None and event.subscriber_id is not None:
        candidate = session.exec(
            select(Delivery).where(
                col(Delivery.campaign_id) == event.campaign_id,
                col(Delivery.subscriber_id) == event.subscriber_id,
            )
        ).first()
    elif event.message_id:
        candidate = _by_message_id(session, event)
    if candidate is not None and not _same_address(session, event, candidate.subscriber_id):
        log.warning(
            "tracking: event %s names delivery %s but another address", event.event_id, candidate.id
        )
        return None
    return candidate


def _by_message_id(session: Session, event: NormalisedEvent) -> Delivery | None:
    """A message id may name a whole request (SendGrid's: up to 1000 recipients).

    The request's ``delivery_batch`` row names its campaign and delivery id range (the
    message id column of ``delivery`` has no index: see migration 0003); the address
    picks the one delivery of the request.
    """
    b = DeliveryBatch
    ranges = session.exec(
        select(b.campaign_id, b.first_delivery_id, b.last_delivery_id).where(
            col(b.message_id) == event.message_id
        )
    ).all()
    if not ranges:
        return None
    query = select(Delivery).where(
        sa.or_(
            *(
                sa.and_(
                    col(Delivery.campaign_id) == campaign_id,
                    col(Delivery.id).between(first_id, last_id),
                )
                for campaign_id, first_id, last_id in ranges
            )
        ),
        col(Delivery.provider_message_id) == event.message_id,
    )
    if event.email:
        query = query.join(Subscriber, col(Subscriber.id) == col(Delivery.subscriber_id)).where(
            col(Subscriber.email) == normalise_for_hash(event.email)
        )
    found = session.exec(query.limit(2)).all()
    return found[0] if len(found) == 1 else None


def _same_address(session: Session, event: NormalisedEvent, subscriber_id: int | None) -> bool:
    if event.email is None or subscriber_id is None:
        return True
    subscriber = session.get(Subscriber, subscriber_id)
    return subscriber is None or subscriber.email == normalise_for_hash(event.email)


def _subscriber_for(
    session: Session, event: NormalisedEvent, delivery: Delivery | None
) -> Subscriber | None:
    """The person: the delivery's, else by our id (address must agree), else by address.

    Events without a delivery (a bounced confirmation email, say) still count: a hard
    bounce or a complaint is about the address, whatever message caused it.
    """
    if delivery is not None:
        return session.get(Subscriber, delivery.subscriber_id) if delivery.subscriber_id else None
    if event.subscriber_id is not None:
        subscriber = session.get(Subscriber, event.subscriber_id)
        if subscriber is not None and _same_address(session, event, subscriber.id):
            return subscriber
    if event.email:
        return lifecycle.find_by_email(session, email=event.email)
    return None


def _json_safe(payload: Any) -> dict[str, Any]:
    """The raw event as stored JSON (it came from JSON, so this only copies)."""
    return dict(payload) if isinstance(payload, dict) else {"value": payload}


# ---------------------------------------------------------------- effects


def _apply(
    session: Session,
    settings: Settings,
    event: NormalisedEvent,
    row: TrackingEvent,
    delivery: Delivery | None,
    subscriber: Subscriber | None,
) -> None:
    at = event.occurred_at
    if delivery is not None:
        _update_delivery(session, delivery, event)
    found = verdict(event)
    if found is None or subscriber is None or subscriber.id is None:
        return
    detail = {
        "provider": event.provider,
        "event": event.raw_event,
        "event_id": event.event_id,
        "campaign_id": row.campaign_id,
        "delivery_id": row.delivery_id,
        "reason": event.reason,
        "occurred_at": at.isoformat(),
    }
    sid = subscriber.id
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
        if _counts_as_soft_bounce(session, row, sid):
            lifecycle.record_soft_bounce(
                session, settings=settings, subscriber_id=sid, detail=detail
            )
    elif found is V.DELIVERED and _latest(session, sid, K.BOUNCED, row) <= as_utc(at):
        lifecycle.reset_soft_bounces(session, subscriber_id=sid)


def _delivery_values(event: NormalisedEvent) -> dict[str, Any]:
    """The ledger columns an event changes, as SQL expressions (empty: none)."""
    d, kind, at = Delivery, event.kind, event.occurred_at
    if kind is K.QUEUED:
        return {"sent_at": sa.func.coalesce(col(d.sent_at), _at(d.sent_at, at))}
    if kind is K.DELIVERED:
        return {"delivered_at": _earliest(col(d.delivered_at), at)}
    if kind is K.OPENED and event.machine:
        return {"machine_open_count": col(d.machine_open_count) + 1}
    if kind is K.OPENED:
        return {"open_count": col(d.open_count) + 1, "opened_at": _earliest(col(d.opened_at), at)}
    if kind is K.CLICKED:
        return {
            "click_count": col(d.click_count) + 1,
            "clicked_at": _earliest(col(d.clicked_at), at),
        }
    if kind is K.BOUNCED and event.soft_bounce:  # never downgrade a hard bounce
        return {"bounce": sa.case((col(d.bounce) == "hard", "hard"), else_="soft")}
    if kind is K.BOUNCED:
        return {"bounce": "hard"}
    if kind is K.COMPLAINED:
        return {"complained": True}
    if kind is K.UNSUBSCRIBED:
        return {"unsubscribed": True}
    return {}


def _update_delivery(session: Session, delivery: Delivery, event: NormalisedEvent) -> None:
    values = _delivery_values(event)
    if not values:
        return
    # One UPDATE with SQL arithmetic: concurrent webhook requests never lose a count.
    session.execute(
        sa.update(Delivery).where(col(Delivery.id) == delivery.id).values(**values),
        execution_options={"synchronize_session": False},
    )
    session.expire(delivery)


def _at(column: Any, at: datetime) -> Any:
    return sa.literal(at, type_=column.type)


def _earliest(column: Any, at: datetime) -> Any:
    value = _at(column, at)
    return sa.case((column.is_(None), value), (column > value, value), else_=column)


def _counts_as_soft_bounce(session: Session, row: TrackingEvent, subscriber_id: int) -> bool:
    """One bounce per message, and only after the last delivery that got through."""
    if row.delivery_id is not None:
        earlier = session.exec(
            select(TrackingEvent.id).where(
                col(TrackingEvent.delivery_id) == row.delivery_id,
                col(TrackingEvent.kind) == K.BOUNCED.value,
                col(TrackingEvent.id) != row.id,
            )
        ).first()
        if earlier is not None:
            return False
    return _latest(session, subscriber_id, K.DELIVERED, row) <= as_utc(row.occurred_at)


def _latest(session: Session, subscriber_id: int, kind: EventKind, row: TrackingEvent) -> datetime:
    """When the subscriber's most recent other event of ``kind`` happened (or the epoch)."""
    latest = session.exec(
        select(sa.func.max(TrackingEvent.occurred_at)).where(
            col(TrackingEvent.subscriber_id) == subscriber_id,
            col(TrackingEvent.kind) == kind.value,
            col(TrackingEvent.id) != row.id,
        )
    ).one()
    return as_utc(latest) if latest is not None else datetime.min.replace(tzinfo=UTC)
