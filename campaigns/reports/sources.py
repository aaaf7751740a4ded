"""What a campaign's data can and cannot tell, for the report and the timeline.

Every figure is read from our own records, whatever the provider (issue 15, point 7):
the delivery ledger, which :mod:`campaigns.tracking.effects` updates from normalised
events (SendGrid's webhook, our own open pixel and click redirects, bounces read back
for SMTP), and the consent history. ``delivered`` is what was sent less what bounced or
was rejected (:func:`delivered_count`), so it needs no provider's "delivered" event.
Opens and clicks are ``NA`` ("n/a"), never a misleading 0, only while nothing could
have counted them (:func:`has_engagement_data`); the chart then shows what was sent per
hour.
Unsubscribes through a newsletter's own link are in the consent history: the link's
token carries the campaign id (subscribers.tokens) and subscribers.forms writes it to
the event's ``detail.campaign_id``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from campaigns.delivery.providers.sendgrid_events import PROVIDER as SENDGRID
from campaigns.models import Delivery, DeliveryStatus, TrackingEvent
from campaigns.tracking.events import EventKind
from newsletter.clock import as_utc
from subscribers.models import ConsentEvent, ConsentSource, SubscriberStatus


class NotAvailable(int):
    """A count the data cannot give (no provider events): written "n/a" in text and CSV,
    null in JSON. An int (0) so that code formatting counts never breaks on it."""

    def __new__(cls) -> NotAvailable:
        return super().__new__(cls, 0)

    def __format__(self, spec: str) -> str:
        return "n/a"

    def __str__(self) -> str:
        return "n/a"

    __repr__ = __str__


NA = NotAvailable()


def json_count(count: int) -> int | None:
    return None if isinstance(count, NotAvailable) else count


# Where events that report deliveries come from: SendGrid's webhook. Our own records
# never do: bounces read back for SMTP ("smtp", "imap") and our own open pixel and click
# redirects (campaigns.tracking.hit_writer.PROVIDER, "newsletter") say nothing about
# whether the other messages arrived.
DELIVERY_REPORTING_PROVIDERS = (SENDGRID,)


def has_provider_events(session: Session, campaign_id: int) -> bool:
    """Whether a provider that reports deliveries sent events back for the campaign
    (SendGrid's webhook does; the outbox and SMTP never do). Only then do its
    "delivered" events draw the chart; our own opens and clicks are engagement data
    (:func:`has_engagement_data`), not delivery reports."""
    found = session.exec(
        select(TrackingEvent.id)
        .where(
            col(TrackingEvent.campaign_id) == campaign_id,
            col(TrackingEvent.provider).in_(DELIVERY_REPORTING_PROVIDERS),
        )
        .limit(1)
    ).first()
    return found is not None


def has_engagement_data(session: Session, campaign_id: int) -> bool:
    """Whether opens and clicks of the campaign can be told: an event came back (any
    provider's, or our own tracking's) or the ledger counts an open or a click."""
    if has_provider_events(session, campaign_id):
        return True
    tracked = session.exec(
        select(TrackingEvent.id)
        .where(
            col(TrackingEvent.campaign_id) == campaign_id,
            col(TrackingEvent.kind).in_((EventKind.OPENED, EventKind.CLICKED)),
        )
        .limit(1)
    ).first()
    if tracked is not None:
        return True
    engaged = sa.or_(
        col(Delivery.open_count) > 0,
        col(Delivery.machine_open_count) > 0,
        col(Delivery.click_count) > 0,
        col(Delivery.machine_click_count) > 0,
    )
    found = session.exec(
        select(Delivery.id).where(col(Delivery.campaign_id) == campaign_id, engaged).limit(1)
    ).first()
    return found is not None


def delivered_count(*, sent: int, bounces: int, rejected: int) -> int:
    """Messages delivered: sent (accepted by the provider or the SMTP server) less those
    that bounced (a failure notice, RFC 3464, or a provider's bounce event) or that the
    provider rejected. The same rule for every provider; SendGrid's own "delivered"
    events agree once every message has an outcome."""
    return max(sent - bounces - rejected, 0)


def link_unsubscribes(campaign_id: int) -> sa.ColumnElement[bool]:
    """Consent rows of people who left through the campaign's own unsubscribe link."""
    # The provider's own unsubscribe events carry the campaign too; they are counted
    # from the delivery ledger and the tracking events instead.
    return sa.and_(
        col(ConsentEvent.to_status) == SubscriberStatus.UNSUBSCRIBED.value,
        col(ConsentEvent.source) != ConsentSource.PROVIDER.value,
        ConsentEvent.detail["campaign_id"].as_integer() == campaign_id,  # type: ignore[index]
    )


def link_unsubscribes_only(session: Session, campaign_id: int) -> int:
    """People who left by the campaign's link and whom no provider event counted."""
    counted = sa.exists().where(
        col(Delivery.campaign_id) == campaign_id,
        col(Delivery.subscriber_id) == col(ConsentEvent.subscriber_id),
        col(Delivery.unsubscribed),
    )
    return int(
        session.exec(
            select(sa.func.count(sa.distinct(ConsentEvent.subscriber_id))).where(
                link_unsubscribes(campaign_id), ~counted
            )
        ).one()
    )


def link_unsubscribe_times(session: Session, campaign_id: int) -> list[datetime]:
    """When each person left through the campaign's link (first time only)."""
    rows = session.exec(
        select(ConsentEvent.subscriber_id, sa.func.min(ConsentEvent.at))
        .where(link_unsubscribes(campaign_id))
        .group_by(col(ConsentEvent.subscriber_id))
    ).all()
    return [as_utc(at) for _sid, at in rows]


def sent_per_bucket(session: Session, campaign_id: int, bucket: timedelta) -> dict[datetime, int]:
    """Messages sent per ``bucket`` (start of the bucket, UTC -> count), grouped in the
    database: a million rows are never read one by one."""
    step = int(bucket.total_seconds())
    if session.get_bind().dialect.name == "postgresql":
        epoch = sa.func.floor(sa.extract("epoch", col(Delivery.sent_at)) / step)
    else:
        epoch = sa.cast(sa.func.strftime("%s", col(Delivery.sent_at)), sa.Integer) / step
    slot = sa.cast(epoch, sa.BigInteger).label("slot")
    rows = session.exec(
        select(slot, sa.func.count())
        .where(
            col(Delivery.campaign_id) == campaign_id,
            col(Delivery.status) == DeliveryStatus.SENT,
            col(Delivery.sent_at).is_not(None),
        )
        .group_by(slot)
    ).all()
    return {datetime.fromtimestamp(int(s) * step, UTC): int(n) for s, n in rows}
