"""A reader's own data across both rooms: download it, or have it erased.

``subscribers.my_data`` gives the subscription and its consent history; this adds what
our emails recorded about the person (one delivery per campaign, and the provider events
about them), which only this room can read. Erasure is :func:`erasure.erase_person`, the
same as ``newsletter subscribers erase``, found by the subscriber's id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from campaigns.models import Campaign, Delivery, TrackingEvent
from campaigns.tracking.erasure import erase_person
from newsletter.clock import utcnow
from subscribers import lifecycle, my_data
from subscribers.erasure import ErasureResult


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _deliveries(session: Session, subscriber_id: int) -> list[dict[str, Any]]:
    rows = session.exec(
        select(Delivery, Campaign.subject)
        .join(Campaign, col(Campaign.id) == col(Delivery.campaign_id), isouter=True)
        .where(Delivery.subscriber_id == subscriber_id)
        .order_by(col(Delivery.id))
    ).all()
    return [
        {
            "campaign_id": d.campaign_id,
            "subject": subject,
            "status": d.status,
            "sent_at": _iso(d.sent_at),
            "delivered_at": _iso(d.delivered_at),
            "opened_at": _iso(d.opened_at),
            "clicked_at": _iso(d.clicked_at),
            "open_count": d.open_count,
            "click_count": d.click_count,
            "bounce": d.bounce,
            "complained": d.complained,
            "unsubscribed": d.unsubscribed,
        }
        for d, subject in rows
    ]


def _events(session: Session, subscriber_id: int) -> list[dict[str, Any]]:
    rows = session.exec(
        select(TrackingEvent)
        .where(TrackingEvent.subscriber_id == subscriber_id)
        .order_by(col(TrackingEvent.occurred_at), col(TrackingEvent.id))
    ).all()
    return [
        {
            "campaign_id": e.campaign_id,
            "kind": e.kind,
            "provider": e.provider,
            "provider_event": e.raw_event,
            "occurred_at": _iso(e.occurred_at),
            "machine": e.machine,
            "as_received": e.payload,
        }
        for e in rows
    ]


def subject_access(session: Session, *, subscriber_id: int) -> dict[str, Any]:
    """Everything stored about one subscriber (GDPR art. 15), as JSON values::

        {"exported_at", "subscription": {...}, "consent_history": [...],
         "deliveries": [{"campaign_id", "subject", "status", "sent_at", "delivered_at",
                         "opened_at", "clicked_at", "open_count", "click_count",
                         "bounce", "complained", "unsubscribed"}, ...],
         "events": [{"campaign_id", "kind", "provider", "provider_event", "occurred_at",
                     "machine", "as_received"}, ...]}

    ``subscription`` and ``consent_history`` as :func:`subscribers.my_data.personal_record`.
    Times are ISO 8601 in UTC. Raises NotFound when nothing is stored under the id.
    """
    record = my_data.personal_record(session, subscriber_id=subscriber_id)
    return {
        "exported_at": _iso(utcnow()),
        **record,
        "deliveries": _deliveries(session, subscriber_id),
        "events": _events(session, subscriber_id),
    }


def erase_subscriber(session: Session, *, subscriber_id: int) -> ErasureResult:
    """Erase the subscriber with this id as ``newsletter subscribers erase`` does (their
    record, history and event details go; the address stays only as a suppression hash).
    Raises NotFound when nothing is stored under the id."""
    subscriber = lifecycle.get_subscriber(session, subscriber_id=subscriber_id)
    result, _scrubbed = erase_person(session, email=subscriber.email)
    return result
