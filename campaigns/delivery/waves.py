"""Sending at the reader's local time (issue 16): a campaign's waves, planned and released.

"07:00 in each reader's zone" is one UTC instant per zone, computed with zoneinfo for the
date in that zone (so a zone that changes to or from daylight saving that night gets its
new offset, and one that does not keeps its own). Zones whose instants coincide share a
wave: one ``campaign_wave`` row per distinct instant. Readers without a zone belong to
the list's (``NEWSLETTER_TIMEZONE``); so do readers whose zone had no wave when the
campaign was scheduled (they joined later), as long as the list's wave is still to come;
readers who join or move into a zone whose wave has gone go with the next wave released
(``wave_audience``).

When a zone's hour has already passed at scheduling time, ``late`` decides: ``now``
sends to them at once (one wave at the scheduling instant), ``next-day`` at that hour on
the zone's next local date.

Release: when a wave's instant has come, its readers are queued in the delivery ledger
(one ``INSERT ... SELECT`` of the eligible audience in its zones, so the suppression list
and the readers' status are read at that moment), and the send loop sends them. The wave
is marked released by a compare-and-set in the same transaction, and the ledger's unique
(campaign, subscriber) makes a second release queue nobody twice. Only a campaign that
is 'sending' has waves released: a paused or cancelled one keeps its waves unreleased.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Session, col, delete, select

from campaigns.delivery.ledger import delivery_counts, queue_deliveries
from campaigns.delivery.wave_audience import audience_zones, wave_filter
from campaigns.models import (
    Campaign,
    CampaignStatus,
    CampaignWave,
    Delivery,
    DeliveryStatus,
    WaveStatus,
)
from campaigns.variant_models import SubjectTest
from newsletter import db
from newsletter.clock import as_utc
from newsletter.errors import InvalidInput, StateError
from newsletter.settings import Settings
from subscribers.models import Subscriber

_subscriber = Subscriber.__table__
W = WaveStatus


class Late(StrEnum):
    """What happens to a zone whose hour has passed when the campaign is scheduled."""

    NOW = "now"  # at once
    NEXT_DAY = "next-day"  # at that hour on the zone's next local date


@dataclass(frozen=True)
class PlannedWave:
    release_at: datetime  # aware UTC
    zones: tuple[str, ...]
    late: Late | None  # None: on time


class WaveView(BaseModel):
    """A wave as ``campaigns show`` gives it: ``release_at`` in UTC; ``local_time`` the
    wall time asked for ("07:00"), which a ``late`` "now" wave does not keep."""

    id: int
    zones: list[str]
    local_time: str
    late: str | None
    release_at: datetime
    status: WaveStatus
    recipients: int
    released_at: datetime | None


def parse_local_time(raw: str) -> time:
    """ "HH:MM" (24-hour) as a time of day; InvalidInput (field ``local_time``) otherwise."""
    if not raw.strip():
        raise InvalidInput(
            "give a time of day as HH:MM (24-hour), such as 07:00", field="local_time"
        )
    try:
        parsed = datetime.strptime(raw.strip(), "%H:%M")
    except ValueError:
        raise InvalidInput(
            f"{raw!r} is not a time of day as HH:MM (24-hour), such as 07:00",
            field="local_time",
        ) from None
    return parsed.time()


def zone_instant(zone: str, day: date, at: time) -> datetime:
    """The UTC instant when the wall clock in ``zone`` shows ``at`` on ``day``.

    zoneinfo applies the offset in force on that date in that zone. A wall time skipped
    by a spring-forward change (02:30) is read with the offset before it and so lands an
    hour later on the clock (03:30); a repeated one (autumn) is its first occurrence.
    """
    local = datetime.combine(day, at, tzinfo=ZoneInfo(zone))
    return as_utc(local)


def plan(
    zones: Iterable[str], *, at: time, late: Late, now: datetime, day: date | None = None
) -> list[PlannedWave]:
    """One wave per distinct instant of ``at`` in ``zones``, earliest first.

    ``day`` is the date in every zone's calendar (default: each zone's own date at
    ``now``). A zone whose instant is before ``now`` is late: with ``Late.NOW`` it goes at
    ``now``; with ``Late.NEXT_DAY`` at ``at`` on its local date at ``now`` plus one day.
    """
    now = as_utc(now)
    grouped: dict[tuple[datetime, Late | None], list[str]] = defaultdict(list)
    for zone in sorted(set(zones)):
        today = now.astimezone(ZoneInfo(zone)).date()
        instant = zone_instant(zone, day or today, at)
        when: Late | None = None
        if instant < now:
            when = late
            instant = now if late is Late.NOW else zone_instant(zone, today + timedelta(1), at)
        grouped[(instant, when)].append(zone)
    return [
        PlannedWave(release_at=instant, zones=tuple(zones_), late=when)
        for (instant, when), zones_ in sorted(grouped.items(), key=lambda kv: kv[0][0])
    ]


# ---------------------------------------------------------------- planning and release


def replace_waves(
    session: Session,
    *,
    settings: Settings,
    campaign: Campaign,
    at: time,
    late: Late,
    now: datetime,
    day: date | None = None,
) -> list[CampaignWave]:
    """Plan ``campaign``'s waves for the readers it would reach now; earlier plans go.

    The list's zone always has a wave (readers who join later without a zone). The
    caller changes the campaign's state and commits. Raises StateError for a campaign
    with a subject test (its phases decide who is queued when).
    """
    assert campaign.id is not None
    if session.get(SubjectTest, campaign.id) is not None:
        raise StateError(
            f"campaign {campaign.id} has a subject test: it is sent at one time, not at "
            "each reader's local time"
        )
    counts = audience_zones(
        session, campaign=campaign, list_zone=settings.timezone, on_date=as_utc(now).date()
    )
    counts.setdefault(settings.timezone, 0)
    drop_waves(session, campaign_id=campaign.id)
    rows = [
        CampaignWave(
            campaign_id=campaign.id,
            zones=list(wave.zones),
            local_time=at.strftime("%H:%M"),
            late=wave.late.value if wave.late else None,
            release_at=wave.release_at,
            recipients=sum(counts[z] for z in wave.zones),
        )
        for wave in plan(counts, at=at, late=late, now=now, day=day)
    ]
    session.add_all(rows)
    session.flush()
    return rows


def drop_waves(session: Session, *, campaign_id: int) -> None:
    """Forget a campaign's waves (scheduled again, for one instant or new local times)."""
    session.execute(delete(CampaignWave).where(col(CampaignWave.campaign_id) == campaign_id))


def waves_of(session: Session, *, campaign_id: int) -> list[CampaignWave]:
    """A campaign's waves, earliest first."""
    return list(
        session.exec(
            select(CampaignWave)
            .where(CampaignWave.campaign_id == campaign_id)
            .order_by(col(CampaignWave.release_at), col(CampaignWave.id))
        ).all()
    )


def has_waves(session: Session, *, campaign_id: int) -> bool:
    found = session.exec(
        select(CampaignWave.id).where(CampaignWave.campaign_id == campaign_id).limit(1)
    ).first()
    return found is not None


def unreleased(session: Session, *, campaign_id: int) -> int:
    """How many of the campaign's waves still wait: a campaign with any is not sent yet."""
    return session.execute(
        sa.select(sa.func.count())
        .select_from(CampaignWave)
        .where(
            CampaignWave.campaign_id == campaign_id,
            CampaignWave.status == W.QUEUED.value,
        )
    ).scalar_one()


def release_wave(
    session: Session, *, settings: Settings, campaign: Campaign, wave: CampaignWave, now: datetime
) -> int | None:
    """Queue ``wave``'s readers in the ledger; how many were added, or None when another
    run released it first (the compare-and-set lost). The caller commits."""
    assert campaign.id is not None and wave.id is not None
    won = session.execute(
        sa.update(CampaignWave)
        .where(col(CampaignWave.id) == wave.id, col(CampaignWave.status) == W.QUEUED.value)
        .values(status=W.RELEASED.value, released_at=as_utc(now))
        .execution_options(synchronize_session=False)
    )
    if won.rowcount != 1:  # type: ignore[attr-defined]
        return None
    waves = waves_of(session, campaign_id=campaign.id)
    every_zone = sorted({z for w in waves for z in w.zones})
    gone = sorted({z for w in waves if w.id != wave.id and w.status == W.RELEASED for z in w.zones})
    added = queue_wave(
        session,
        settings=settings,
        campaign=campaign,
        wave=wave,
        zones=every_zone,
        now=now,
        released=gone,
    )
    session.execute(
        sa.update(CampaignWave)
        .where(col(CampaignWave.id) == wave.id)
        .values(recipients=added)
        .execution_options(synchronize_session=False)
    )
    return added


def queue_wave(
    session: Session,
    *,
    settings: Settings,
    campaign: Campaign,
    wave: CampaignWave,
    zones: Sequence[str],
    now: datetime,
    released: Sequence[str] = (),
) -> int:
    """Queue the eligible readers of ``wave``'s zones, and those not yet in the ledger of
    zones whose wave has gone (``released``: see ``wave_audience.wave_filter``); the
    ledger's unique (campaign, subscriber) leaves anyone already queued alone. How many
    rows were added."""
    assert campaign.id is not None
    where = wave_filter(
        wave.zones,
        list_zone=settings.timezone,
        all_zones=zones,
        released=released,
        campaign_id=campaign.id,
    )
    return queue_deliveries(session, campaign=campaign, on_date=as_utc(now).date(), where=where)


def release_due(session: Session, *, settings: Settings, campaign_id: int, now: datetime) -> int:
    """Release every wave of the campaign whose instant has come; how many were released.

    Nothing is released unless the campaign is 'sending' (paused or cancelled ones keep
    their waves). Commits after each wave, so each is released in one transaction.
    """
    released = 0
    due = session.exec(
        select(CampaignWave.id)
        .join(Campaign, col(Campaign.id) == CampaignWave.campaign_id)
        .where(
            CampaignWave.campaign_id == campaign_id,
            CampaignWave.status == W.QUEUED.value,
            col(CampaignWave.release_at) <= as_utc(now),
            Campaign.status == CampaignStatus.SENDING.value,
        )
        .order_by(col(CampaignWave.release_at), col(CampaignWave.id))
    ).all()
    session.rollback()  # each wave in a transaction of its own, write lock first
    for wave_id in due:
        db.begin_write(session)
        campaign = session.exec(
            select(Campaign)
            .where(Campaign.id == campaign_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        wave = session.get(CampaignWave, wave_id, populate_existing=True)
        sending = campaign.status == CampaignStatus.SENDING.value
        if sending and wave is not None:
            added = release_wave(session, settings=settings, campaign=campaign, wave=wave, now=now)
            released += added is not None  # a wave may reach nobody, and still be released
        session.commit()
    return released


def campaigns_with_due_waves(session: Session, *, now: datetime) -> list[int]:
    """Ids of 'sending' campaigns with a wave whose instant has come, oldest first."""
    return list(
        session.exec(
            select(CampaignWave.campaign_id)
            .join(Campaign, col(Campaign.id) == CampaignWave.campaign_id)
            .where(
                CampaignWave.status == W.QUEUED.value,
                col(CampaignWave.release_at) <= as_utc(now),
                Campaign.status == CampaignStatus.SENDING.value,
            )
            .distinct()
            .order_by(CampaignWave.campaign_id)
        ).all()
    )


def waiting(session: Session, *, campaign_id: int, now: datetime) -> bool:
    """True for a campaign between waves: no wave due by ``now``, one still to come, and
    nothing queued in the ledger. A dispatch has nothing to do for it yet."""
    next_at = session.execute(
        sa.select(sa.func.min(CampaignWave.release_at)).where(
            CampaignWave.campaign_id == campaign_id,
            CampaignWave.status == W.QUEUED.value,
        )
    ).scalar_one()
    if next_at is None or as_utc(next_at) <= as_utc(now):
        return False  # no waves (a campaign sent at one instant), or one is due
    queued = session.execute(
        sa.select(Delivery.id)  # type: ignore[call-overload]
        .where(Delivery.campaign_id == campaign_id, Delivery.status == DeliveryStatus.QUEUED)
        .limit(1)
    ).first()
    return queued is None


def views(session: Session, *, campaign_id: int) -> list[WaveView]:
    """The campaign's waves for people: a released wave shows 'sent' once none of the
    campaign's ledger rows is still queued."""
    rows = waves_of(session, campaign_id=campaign_id)
    if not rows:
        return []
    drained = delivery_counts(session, campaign_id=campaign_id).queued == 0
    return [
        WaveView(
            id=w.id or 0,
            zones=list(w.zones),
            local_time=w.local_time,
            late=w.late,
            release_at=as_utc(w.release_at),
            status=W.SENT if w.status == W.RELEASED and drained else W(w.status),
            recipients=w.recipients,
            released_at=w.released_at,
        )
        for w in rows
    ]
