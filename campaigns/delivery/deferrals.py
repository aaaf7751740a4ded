"""Recipients the receiving server put off (SMTP 4yz): each waits on its own schedule.

Greylisting answers ``450`` for about five minutes, a full mailbox ``452`` for hours: a
reason to wait for that one recipient, never to stop the campaign. The delivery row
becomes ``deferred`` and its ``delivery_deferral`` row says when to try it again: after
``deferral_retry_minutes`` (5 min, 30 min, 2 h, 6 h by default, the last one repeating),
at most ``deferral_max_retries`` times; the next refusal after that fails the delivery.
``deferred_sends.retry_due`` sends the due ones again. The caller commits.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session

from campaigns.delivery.ledger_batches import record_failed
from campaigns.models import Delivery, DeliveryDeferral, DeliveryStatus
from newsletter.clock import utcnow
from newsletter.settings import Settings

__all__ = ["next_try", "postpone"]

_delivery = Delivery.__table__  # type: ignore[attr-defined]
_deferral = DeliveryDeferral.__table__  # type: ignore[attr-defined]


def next_try(settings: Settings, tries: int, now: datetime) -> datetime:
    """When a recipient put off ``tries`` times is tried again."""
    waits = settings.deferral_retry_minutes or [5]
    return now + timedelta(minutes=waits[min(tries, len(waits)) - 1])


def postpone(
    session: Session,
    settings: Settings,
    reasons: dict[int, str],
    *,
    campaign_id: int,
    now: datetime | None = None,
) -> tuple[int, int]:
    """Defer queued deliveries (delivery id -> the server's reply); (deferred, failed).

    A delivery put off more than ``deferral_max_retries`` times fails instead, its error
    saying so.
    """
    now = now or utcnow()
    ids = list(reasons)
    tries = dict(
        session.execute(
            sa.select(_deferral.c.delivery_id, _deferral.c.tries).where(
                _deferral.c.delivery_id.in_(ids)
            )
        ).all()
    )
    later, give_up = [], {}
    for delivery_id, reason in reasons.items():
        count = tries.get(delivery_id, 0) + 1
        if count > settings.deferral_max_retries:
            give_up[delivery_id] = f"put off {count} times, given up: {reason}"
            continue
        later.append(
            {
                "delivery_id": delivery_id,
                "campaign_id": campaign_id,
                "tries": count,
                "due_at": next_try(settings, count, now),
                "reason": reason[:2000],
            }
        )
    session.execute(sa.delete(_deferral).where(_deferral.c.delivery_id.in_(ids)))
    if later:
        session.execute(sa.insert(_deferral), later)
        session.connection().execute(
            sa.update(_delivery)
            .where(
                _delivery.c.id == sa.bindparam("did"),
                _delivery.c.status == DeliveryStatus.QUEUED.value,
            )
            .values(status=DeliveryStatus.DEFERRED.value, error=sa.bindparam("why")),
            [{"did": row["delivery_id"], "why": row["reason"]} for row in later],
        )
    return len(later), record_failed(session, errors=give_up) if give_up else 0
