"""What a reader may see of their own record (GDPR art. 15, the right of access): the
subscription, its topics and pause, and the whole consent history, as plain JSON values.

The campaigns room adds what our emails recorded (campaigns/tracking/subject_access.py);
this room cannot see those tables.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from subscribers import lifecycle
from subscribers.models import ConsentEvent


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _event(event: ConsentEvent) -> dict[str, Any]:
    return {
        "at": _iso(event.at),
        "from_status": event.from_status,
        "to_status": event.to_status,
        "reason": event.reason,
        "source": event.source,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "consent_version": event.consent_version,
        "detail": event.detail,
    }


def personal_record(session: Session, *, subscriber_id: int) -> dict[str, Any]:
    """The subscriber's own record::

        {"subscription": {"email", "name", "status", "source", "created_at",
                          "confirmed_at", "consent_version", "topics",
                          "topics_consent_version", "topics_consented_at", "paused_until"},
         "consent_history": [{"at", "from_status", "to_status", "reason", "source", "ip",
                              "user_agent", "consent_version", "detail"}, ...]}

    Times are ISO 8601 in UTC. Raises NotFound when nothing is stored under the id.
    """
    subscriber = lifecycle.get_subscriber(session, subscriber_id=subscriber_id)
    return {
        "subscription": {
            "email": subscriber.email,
            "name": subscriber.name,
            "status": subscriber.status,
            "source": subscriber.source,
            "created_at": _iso(subscriber.created_at),
            "confirmed_at": _iso(subscriber.confirmed_at),
            "consent_version": subscriber.consent_version,
            "topics": list(subscriber.topics or []),
            "topics_consent_version": subscriber.topics_consent_version,
            "topics_consented_at": _iso(subscriber.topics_consented_at),
            "paused_until": _iso(subscriber.paused_until),
        },
        "consent_history": [
            _event(e) for e in lifecycle.history(session, subscriber_id=subscriber_id)
        ],
    }
