"""What a reader may see of their own record (GDPR art. 15, the right of access): the
subscription, its topics and pause, and the whole consent history, as plain JSON values.

The campaigns room adds what our emails recorded (campaigns/tracking/subject_access.py);
this room cannot see those tables.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from subscribers import lifecycle
from subscribers.export import event_dict, iso


def personal_record(session: Session, *, subscriber_id: int) -> dict[str, Any]:
    """The subscriber's own record::

        {"subscription": {"email", "name", "status", "source", "created_at",
                          "confirmed_at", "consent_version", "topics",
                          "topics_consent_version", "topics_consented_at", "paused_until",
                          "timezone"},
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
            "created_at": iso(subscriber.created_at),
            "confirmed_at": iso(subscriber.confirmed_at),
            "consent_version": subscriber.consent_version,
            "topics": list(subscriber.topics or []),
            "topics_consent_version": subscriber.topics_consent_version,
            "topics_consented_at": iso(subscriber.topics_consented_at),
            "paused_until": iso(subscriber.paused_until),
            "timezone": subscriber.timezone,  # issue 16
        },
        "consent_history": [
            event_dict(e) for e in lifecycle.history(session, subscriber_id=subscriber_id)
        ],
    }
