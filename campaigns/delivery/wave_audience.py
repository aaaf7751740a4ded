"""Who a local-time wave reaches (issue 16): the campaign's eligible readers by zone.

A reader's zone is theirs, or the list's (``NEWSLETTER_TIMEZONE``) when they have none.
A wave takes the readers of its zones; the list's wave also those whose zone has no wave
(they joined, or moved there, after the plan). And a wave released after others also
takes the readers not yet in the ledger whose zone's wave has already gone: they moved
into that zone, or joined there, after it went; without this they would get the issue
from no wave at all. After the last wave, as after any send, a newcomer waits for the
next issue.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa
from sqlmodel import Session

from campaigns.delivery.ledger import campaign_categories
from campaigns.models import Campaign, Delivery
from subscribers.audience import eligible_subscribers
from subscribers.models import Subscriber

_subscriber = Subscriber.__table__
_delivery = Delivery.__table__


def _zone_of(list_zone: str) -> sa.ColumnElement[str]:
    return sa.func.coalesce(_subscriber.c.timezone, list_zone)


def _audience(session: Session, campaign: Campaign, *, on_date: date) -> sa.Select:
    assert campaign.id is not None
    dialect = session.get_bind().dialect.name
    topics = campaign_categories(session, campaign_id=campaign.id)
    return eligible_subscribers(dialect=dialect, topics=topics, on_date=on_date)


def audience_zones(
    session: Session, *, campaign: Campaign, list_zone: str, on_date: date
) -> dict[str, int]:
    """Eligible readers of ``campaign`` by zone (theirs, or ``list_zone``): zone -> count."""
    ids = _audience(session, campaign, on_date=on_date).subquery()
    zone = _zone_of(list_zone)
    rows = session.execute(
        sa.select(zone, sa.func.count())
        .select_from(_subscriber.join(ids, ids.c.id == _subscriber.c.id))
        .group_by(zone)
    )
    return {name: count for name, count in rows}


def wave_filter(
    zones: Sequence[str],
    *,
    list_zone: str,
    all_zones: Sequence[str],
    released: Sequence[str] = (),
    campaign_id: int | None = None,
) -> sa.ColumnElement[bool]:
    """The readers of a wave: their zone (or the list's) is one of ``zones``; the list's
    wave also takes readers whose zone has no wave of its own (``all_zones``). With
    ``released`` (zones whose wave has gone) and ``campaign_id``, also the readers of
    those zones, and of no wave's zone once the list's has gone, who are not in the
    campaign's ledger yet."""
    condition = _zone_of(list_zone).in_(list(zones))
    if list_zone in zones:
        condition = sa.or_(condition, _subscriber.c.timezone.not_in(list(all_zones)))
    if released and campaign_id is not None:
        missed = _zone_of(list_zone).in_(list(released))
        if list_zone in released:
            missed = sa.or_(missed, _subscriber.c.timezone.not_in(list(all_zones)))
        queued = sa.exists().where(
            _delivery.c.campaign_id == campaign_id, _delivery.c.subscriber_id == _subscriber.c.id
        )
        condition = sa.or_(condition, sa.and_(missed, ~queued))
    return condition
