"""The subscriber state machine and its append-only consent history.

Every status change goes through :func:`transition`, which checks :data:`TRANSITIONS` and
writes a :class:`ConsentEvent` with who, how and why. Acts that do not change the status
(a resent confirmation, a preferences change) use :func:`record_event`.

Concurrent requests for one reader (a confirm click racing an unsubscribe, two sign-ups)
must not undo each other, and the history must record each move from the state it really
left. So every act first takes the row (:func:`subscribers.atomic.lock_subscriber`) and
decides on what it reads then, and the status itself only ever changes by compare-and-set
(:func:`subscribers.atomic.set_status_if`: ``UPDATE ... WHERE status = <the status
read>``), which refuses a move from a state the row has already left.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select, update

from newsletter import metrics
from newsletter.clock import utcnow
from newsletter.errors import NotFound, StateError, StatusChanged
from newsletter.settings import Settings
from newsletter.webhook_outbox import WebhookEvent, emit, emit_each, listeners
from subscribers.addresses import normalise_for_hash
from subscribers.atomic import lock_subscriber, set_status_if
from subscribers.models import (
    ConsentEvent,
    ConsentSource,
    Subscriber,
    SubscriberStatus,
    SuppressionReason,
)
from subscribers.suppression import suppress

S = SubscriberStatus

# The only allowed moves. Leaving unsubscribed/bounced/complained is possible only by a
# new sign-up (back to pending), which then needs a fresh confirmation.
TRANSITIONS: dict[SubscriberStatus, frozenset[SubscriberStatus]] = {
    S.PENDING: frozenset({S.ACTIVE, S.UNSUBSCRIBED, S.BOUNCED, S.COMPLAINED}),
    S.ACTIVE: frozenset({S.UNSUBSCRIBED, S.BOUNCED, S.COMPLAINED}),
    # A stronger stop replaces a weaker one, so the final status does not depend on the
    # order in which provider events arrive (see STOP_RANK).
    S.UNSUBSCRIBED: frozenset({S.PENDING, S.BOUNCED, S.COMPLAINED}),
    S.BOUNCED: frozenset({S.PENDING, S.COMPLAINED}),
    S.COMPLAINED: frozenset({S.PENDING}),
}
# States whose address belongs on the suppression list.
STOPPED = frozenset({S.UNSUBSCRIBED, S.BOUNCED, S.COMPLAINED})
# A complaint outranks a bounce, which outranks an unsubscribe.
STOP_RANK = {S.UNSUBSCRIBED: 1, S.BOUNCED: 2, S.COMPLAINED: 3}
# Outgoing webhooks (issue 16 point 4): the event each new status announces.
ANNOUNCED = {
    S.ACTIVE: WebhookEvent.SUBSCRIBER_CONFIRMED,
    S.UNSUBSCRIBED: WebhookEvent.SUBSCRIBER_UNSUBSCRIBED,
    S.BOUNCED: WebhookEvent.SUBSCRIBER_BOUNCED,
    S.COMPLAINED: WebhookEvent.SUBSCRIBER_COMPLAINED,
}
# The endpoints listening for each event (an event no one wants is absent).
Listening = dict[WebhookEvent, list[int]]


def can_transition(from_status: SubscriberStatus, to_status: SubscriberStatus) -> bool:
    return to_status in TRANSITIONS[from_status]


def _event(
    subscriber: Subscriber,
    *,
    from_status: str | None,
    to_status: str,
    reason: str,
    source: ConsentSource | str,
    ip: str | None,
    user_agent: str | None,
    consent_version: str | None,
    detail: Mapping[str, Any] | None,
    at: datetime | None,
) -> ConsentEvent:
    assert subscriber.id is not None, "flush the subscriber before recording events"
    return ConsentEvent(
        subscriber_id=subscriber.id,
        at=at or utcnow(),
        from_status=from_status,
        to_status=to_status,
        reason=reason[:200],
        source=str(source),
        ip=ip[:64] if ip else None,
        user_agent=user_agent[:500] if user_agent else None,
        consent_version=consent_version,
        detail=dict(detail or {}),
    )


def record_event(
    session: Session,
    subscriber: Subscriber,
    *,
    reason: str,
    source: ConsentSource | str,
    ip: str | None = None,
    user_agent: str | None = None,
    consent_version: str | None = None,
    detail: Mapping[str, Any] | None = None,
    initial: bool = False,
    at: datetime | None = None,
) -> ConsentEvent:
    """Append a history row without changing the status (``initial``: the first row)."""
    event = _event(
        subscriber,
        from_status=None if initial else subscriber.status,
        to_status=subscriber.status,
        reason=reason,
        source=source,
        ip=ip,
        user_agent=user_agent,
        consent_version=consent_version,
        detail=detail,
        at=at,
    )
    session.add(event)
    session.flush()
    if initial:
        _announce(session, subscriber, WebhookEvent.SUBSCRIBER_CREATED, event.at)
    return event


def _announce(
    session: Session, subscriber: Subscriber, webhook_event: WebhookEvent, at: datetime
) -> None:
    """Queue the outgoing webhook (in this transaction) and count it for /metrics.

    The payload carries the address and the id only (the event's type says what
    happened): what a receiver needs to match the reader in its own system, nothing
    more (GDPR Art. 5(1)(c), data minimisation).
    """
    assert subscriber.id is not None
    emit(
        session,
        webhook_event,
        {"subscriber_id": subscriber.id, "email": subscriber.email},
        at=at,
    )
    metrics.subscriber_event(webhook_event.value.removeprefix("subscriber."))


def listening_for_created(session: Session) -> Listening:
    """The endpoints that want subscriber.created or .confirmed, asked once by a bulk
    creator (the CSV import) so that it writes nothing when no one listens."""
    return listeners(session, (WebhookEvent.SUBSCRIBER_CREATED, WebhookEvent.SUBSCRIBER_CONFIRMED))


def announce_created(
    session: Session,
    listening: Listening,
    created: Iterable[tuple[int, str, SubscriberStatus]],
    *,
    at: datetime,
) -> None:
    """What :func:`record_event` (``initial``) and :func:`transition` announce, for many
    readers created at once as ``(subscriber_id, email, status)``: subscriber.created for
    each, and subscriber.confirmed for those created active (with consent proof), as a
    reader who signed up and confirmed is announced. One executemany per event, in the
    caller's transaction; ``listening`` from :func:`listening_for_created`."""
    people = list(created)
    for event, endpoint_ids in listening.items():
        subjects = [
            {"subscriber_id": sid, "email": email}
            for sid, email, status in people
            if event is WebhookEvent.SUBSCRIBER_CREATED or ANNOUNCED.get(status) is event
        ]
        emit_each(session, event, endpoint_ids, subjects, at=at)


def transition(
    session: Session,
    subscriber: Subscriber,
    to_status: SubscriberStatus,
    *,
    reason: str,
    source: ConsentSource | str,
    ip: str | None = None,
    user_agent: str | None = None,
    consent_version: str | None = None,
    detail: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> ConsentEvent:
    """Move the subscriber to ``to_status`` and record the event.

    Raises StateError for a move :data:`TRANSITIONS` forbids, and StatusChanged when the
    row no longer holds the status read into ``subscriber`` (another request moved it
    first; ``subscriber`` is then refreshed). Take the row with :func:`lock_subscriber`
    first and that cannot happen.
    """
    assert subscriber.id is not None, "flush the subscriber before recording events"
    from_status = SubscriberStatus(subscriber.status)
    if not can_transition(from_status, to_status):
        raise StateError(
            f"subscriber {subscriber.id} cannot go from {from_status.value} to {to_status.value}"
        )
    when = at or utcnow()
    moved = set_status_if(
        session, subscriber_id=subscriber.id, expected=from_status, new=to_status, at=when
    )
    if not moved:
        session.refresh(subscriber)
        raise StatusChanged(
            f"subscriber {subscriber.id} is {subscriber.status} now, no longer "
            f"{from_status.value}: another request changed it first"
        )
    set_committed_value(subscriber, "status", to_status.value)
    set_committed_value(subscriber, "status_changed_at", when)
    event = _event(
        subscriber,
        from_status=from_status.value,
        to_status=to_status.value,
        reason=reason,
        source=source,
        ip=ip,
        user_agent=user_agent,
        consent_version=consent_version,
        detail=detail,
        at=when,
    )
    session.add(event)
    session.flush()
    if to_status in ANNOUNCED:
        _announce(session, subscriber, ANNOUNCED[to_status], when)
    return event


def history(session: Session, *, subscriber_id: int) -> list[ConsentEvent]:
    return list(
        session.exec(
            select(ConsentEvent)
            .where(ConsentEvent.subscriber_id == subscriber_id)
            .order_by(col(ConsentEvent.at), col(ConsentEvent.id))
        )
    )


def get_subscriber(session: Session, *, subscriber_id: int) -> Subscriber:
    subscriber = session.get(Subscriber, subscriber_id)
    if subscriber is None:
        raise NotFound(f"no subscriber with id {subscriber_id}")
    return subscriber


def find_by_email(session: Session, *, email: str) -> Subscriber | None:
    return session.exec(
        select(Subscriber).where(Subscriber.email == normalise_for_hash(email))
    ).first()


def get_by_email(session: Session, *, email: str) -> Subscriber:
    subscriber = find_by_email(session, email=email)
    if subscriber is None:
        raise NotFound(f"no subscriber with the address {email.strip()!r}")
    return subscriber


def _stop(
    session: Session,
    subscriber: Subscriber,
    to_status: SubscriberStatus,
    suppression: SuppressionReason,
    *,
    reason: str,
    source: ConsentSource | str,
    ip: str | None = None,
    user_agent: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> bool:
    """Stop mail to the (locked) subscriber; returns False when it was already stopped as
    strongly."""
    changed = False
    current = SubscriberStatus(subscriber.status)
    if current not in STOPPED or STOP_RANK[to_status] > STOP_RANK[current]:
        transition(
            session,
            subscriber,
            to_status,
            reason=reason,
            source=source,
            ip=ip,
            user_agent=user_agent,
            detail=detail,
        )
        changed = True
    suppress(session, email=subscriber.email, reason=suppression)
    return changed


def unsubscribe(
    session: Session,
    *,
    subscriber_id: int,
    source: ConsentSource | str,
    reason: str = "unsubscribed",
    ip: str | None = None,
    user_agent: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> bool:
    """Unsubscribe at once and suppress the address; True when something changed.

    Idempotent: a second click, or a click after a bounce, is not an error. Once this
    returns and the caller commits, no confirm that started earlier can undo it: the
    confirm waits for the row and then finds it unsubscribed.
    """
    subscriber = lock_subscriber(session, subscriber_id=subscriber_id)
    return _stop(
        session,
        subscriber,
        S.UNSUBSCRIBED,
        SuppressionReason.UNSUBSCRIBE,
        reason=reason,
        source=source,
        ip=ip,
        user_agent=user_agent,
        detail=detail,
    )


def record_hard_bounce(
    session: Session, *, subscriber_id: int, detail: Mapping[str, Any] | None = None
) -> bool:
    subscriber = lock_subscriber(session, subscriber_id=subscriber_id)
    return _stop(
        session,
        subscriber,
        S.BOUNCED,
        SuppressionReason.HARD_BOUNCE,
        reason="hard bounce",
        source=ConsentSource.PROVIDER,
        detail=detail,
    )


def record_soft_bounce(
    session: Session,
    *,
    settings: Settings,
    subscriber_id: int,
    detail: Mapping[str, Any] | None = None,
) -> bool:
    """Count a soft bounce; at ``settings.soft_bounce_limit`` in a row the address stops."""
    subscriber = lock_subscriber(session, subscriber_id=subscriber_id)
    subscriber.soft_bounces += 1
    session.add(subscriber)
    session.flush()
    if subscriber.soft_bounces < settings.soft_bounce_limit:
        return False
    return _stop(
        session,
        subscriber,
        S.BOUNCED,
        SuppressionReason.SOFT_BOUNCES,
        reason=f"{subscriber.soft_bounces} soft bounces in a row",
        source=ConsentSource.PROVIDER,
        detail=detail,
    )


def reset_soft_bounces(session: Session, *, subscriber_id: int) -> None:
    """A delivery got through: the soft-bounce streak is over.

    One conditional UPDATE, so the common case (no streak) writes nothing and a bounce
    counted concurrently is not overwritten by a stale read.
    """
    subscriber = get_subscriber(session, subscriber_id=subscriber_id)
    session.execute(
        update(Subscriber)
        .where(col(Subscriber.id) == subscriber_id, col(Subscriber.soft_bounces) != 0)
        .values(soft_bounces=0)
        .execution_options(synchronize_session=False)
    )
    set_committed_value(subscriber, "soft_bounces", 0)


def record_complaint(
    session: Session, *, subscriber_id: int, detail: Mapping[str, Any] | None = None
) -> bool:
    subscriber = lock_subscriber(session, subscriber_id=subscriber_id)
    return _stop(
        session,
        subscriber,
        S.COMPLAINED,
        SuppressionReason.COMPLAINT,
        reason="spam complaint",
        source=ConsentSource.PROVIDER,
        detail=detail,
    )
