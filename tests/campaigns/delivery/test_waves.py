"""Local-time delivery (issue 16): waves planned per UTC instant, released by the scheduler.

The clock is the jobs' ``now`` (newsletter.clock's rule: jobs are functions of
(settings, now)). The date is Sunday 29 March 2026: Europe goes to summer time that
night (01:00 UTC), New York changed three weeks earlier, Tokyo has no DST and Sydney
changes only on 5 April, so each zone's 07:00 must be computed for that date in it.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from campaigns import actions, follow_up_jobs, jobs, views
from campaigns.delivery import waves
from campaigns.delivery.waves import Late
from campaigns.models import Campaign, CampaignStatus, CampaignWave, Delivery, WaveStatus
from newsletter.settings import Settings
from subscribers import lifecycle
from subscribers.models import Subscriber
from tests.support.content import make_campaign, make_snippet
from tests.support.subscribers import make_subscriber, sqlite_only

SEVEN = time(7, 0)
SUNDAY = date(2026, 3, 29)
SATURDAY_NOON = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
# Each zone's 07:00 on Sunday 29 March 2026, in UTC.
SEVEN_LOCAL = {
    "Australia/Sydney": datetime(2026, 3, 28, 20, 0, tzinfo=UTC),  # AEDT, +11
    "Asia/Tokyo": datetime(2026, 3, 28, 22, 0, tzinfo=UTC),  # JST, +9
    "Europe/Berlin": datetime(2026, 3, 29, 5, 0, tzinfo=UTC),  # CEST from 01:00 UTC, +2
    "Europe/London": datetime(2026, 3, 29, 6, 0, tzinfo=UTC),  # BST from 01:00 UTC, +1
    "America/New_York": datetime(2026, 3, 29, 11, 0, tzinfo=UTC),  # EDT since 8 March, -4
}
READERS = {
    "syd@example.com": "Australia/Sydney",
    "tok@example.com": "Asia/Tokyo",
    "ber@example.com": "Europe/Berlin",
    "par@example.com": "Europe/Paris",  # shares Berlin's offset, so its wave
    "lon@example.com": "Europe/London",
    "nyc@example.com": "America/New_York",
    "none@example.com": None,  # the list's zone: New York
}


@pytest.fixture
def cfg(settings: Settings) -> Settings:
    return settings.model_copy(update={"timezone": "America/New_York"})


def add_readers(engine: Engine, readers: dict[str, str | None]) -> None:
    with Session(engine) as session:
        for address, zone in readers.items():
            subscriber = make_subscriber(session, address)
            subscriber.timezone = zone
            session.add(subscriber)
        session.commit()


def draft(engine: Engine, cfg: Settings) -> int:
    with Session(engine, expire_on_commit=False) as session:
        campaign = make_campaign(session, [make_snippet(session, cfg, category="sciatica")])
        session.commit()
        assert campaign.id is not None
        return campaign.id


def schedule_at_seven(
    engine: Engine, cfg: Settings, campaign_id: int, *, late: str, now: datetime, on: date | None
) -> views.CampaignDetail:
    with Session(engine) as session:
        detail = actions.schedule_local(
            session,
            settings=cfg,
            campaign_id=campaign_id,
            local_time="07:00",
            late=late,
            on=on,
            actor="test",
            now=now,
        )
        session.commit()
    return detail


def tick(cfg: Settings, now: datetime) -> None:
    """One scheduler round at ``now``: release due waves, then dispatch."""
    follow_up_jobs.release_waves(cfg, now)
    jobs.dispatch(cfg, now)


def delivered(engine: Engine, campaign_id: int) -> set[str]:
    """Addresses whose ledger row for the campaign is sent."""
    with Session(engine) as session:
        rows = session.exec(
            select(Subscriber.email)
            .join(Delivery, col(Delivery.subscriber_id) == Subscriber.id)
            .where(Delivery.campaign_id == campaign_id, Delivery.status == "sent")
        ).all()
    return set(rows)


def ledger_rows(engine: Engine, campaign_id: int) -> int:
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).where(Delivery.__table__.c.campaign_id == campaign_id)  # type: ignore[attr-defined]
        ).scalar_one()


def outbox_recipients(cfg: Settings, campaign_id: int) -> int:
    return len(list(cfg.outbox_dir.glob(f"campaign{campaign_id}-*.eml")))


# ---------------------------------------------------------------- planning (no database)


def test_seven_local_is_one_instant_per_offset_for_that_date_across_the_dst_change() -> None:
    planned = waves.plan(
        [*SEVEN_LOCAL, "Europe/Paris"], at=SEVEN, late=Late.NOW, now=SATURDAY_NOON, day=SUNDAY
    )
    assert [(w.release_at, w.zones, w.late) for w in planned] == [
        (SEVEN_LOCAL["Australia/Sydney"], ("Australia/Sydney",), None),
        (SEVEN_LOCAL["Asia/Tokyo"], ("Asia/Tokyo",), None),
        (SEVEN_LOCAL["Europe/Berlin"], ("Europe/Berlin", "Europe/Paris"), None),
        (SEVEN_LOCAL["Europe/London"], ("Europe/London",), None),
        (SEVEN_LOCAL["America/New_York"], ("America/New_York",), None),
    ]
    for wave in planned:
        for zone in wave.zones:
            local = wave.release_at.astimezone(ZoneInfo(zone))
            assert (local.date(), local.time()) == (SUNDAY, SEVEN)


def test_a_fixed_offset_taken_the_day_before_would_be_an_hour_late_in_europe() -> None:
    saturday = waves.zone_instant("Europe/London", SUNDAY - timedelta(days=1), SEVEN)
    sunday = waves.zone_instant("Europe/London", SUNDAY, SEVEN)
    assert sunday - saturday == timedelta(hours=23)  # not 24: the clocks went forward


def test_late_zones_go_at_once_with_late_now() -> None:
    now = datetime(2026, 3, 29, 8, 0, tzinfo=UTC)  # past 07:00 in Sydney, Tokyo, Europe
    planned = waves.plan(SEVEN_LOCAL, at=SEVEN, late=Late.NOW, now=now, day=SUNDAY)
    assert [(w.release_at, w.zones, w.late) for w in planned] == [
        (
            now,
            ("Asia/Tokyo", "Australia/Sydney", "Europe/Berlin", "Europe/London"),
            Late.NOW,
        ),
        (SEVEN_LOCAL["America/New_York"], ("America/New_York",), None),
    ]


def test_late_zones_go_at_seven_on_their_next_local_date_with_late_next_day() -> None:
    now = datetime(2026, 3, 29, 8, 0, tzinfo=UTC)
    planned = waves.plan(
        ["Europe/London", "Asia/Tokyo", "America/New_York"],
        at=SEVEN,
        late=Late.NEXT_DAY,
        now=now,
        day=SUNDAY,
    )
    assert [(w.release_at, w.zones, w.late) for w in planned] == [
        (SEVEN_LOCAL["America/New_York"], ("America/New_York",), None),
        # Tokyo's local date is already Sunday 17:00: its next 07:00 is Monday's.
        (datetime(2026, 3, 29, 22, 0, tzinfo=UTC), ("Asia/Tokyo",), Late.NEXT_DAY),
        (datetime(2026, 3, 30, 6, 0, tzinfo=UTC), ("Europe/London",), Late.NEXT_DAY),
    ]


def test_a_local_time_that_is_not_hh_mm_is_refused_naming_the_field() -> None:
    with pytest.raises(Exception, match="'7 am' is not a time of day as HH:MM") as caught:
        waves.parse_local_time("7 am")
    assert getattr(caught.value, "field", None) == "local_time"


# ---------------------------------------------------------------- sending (both databases)


def test_readers_in_five_zones_each_get_it_when_their_clock_says_seven(
    cfg: Settings, engine: Engine
) -> None:
    add_readers(engine, READERS)
    campaign_id = draft(engine, cfg)
    detail = schedule_at_seven(engine, cfg, campaign_id, late="now", now=SATURDAY_NOON, on=SUNDAY)
    assert [(w.release_at, w.zones, w.recipients, w.status) for w in detail.waves] == [
        (SEVEN_LOCAL["Australia/Sydney"], ["Australia/Sydney"], 1, WaveStatus.QUEUED),
        (SEVEN_LOCAL["Asia/Tokyo"], ["Asia/Tokyo"], 1, WaveStatus.QUEUED),
        (SEVEN_LOCAL["Europe/Berlin"], ["Europe/Berlin", "Europe/Paris"], 2, WaveStatus.QUEUED),
        (SEVEN_LOCAL["Europe/London"], ["Europe/London"], 1, WaveStatus.QUEUED),
        (SEVEN_LOCAL["America/New_York"], ["America/New_York"], 2, WaveStatus.QUEUED),
    ]
    assert detail.scheduled_at == SEVEN_LOCAL["Australia/Sydney"]
    expected: set[str] = set()
    for zone, instant in SEVEN_LOCAL.items():
        tick(cfg, instant - timedelta(minutes=1))
        assert delivered(engine, campaign_id) == expected, f"too early for {zone}"
        tick(cfg, instant)
        expected |= {a for a, z in READERS.items() if (z or cfg.timezone) == zone}
        expected |= {"par@example.com"} if zone == "Europe/Berlin" else set()
        assert delivered(engine, campaign_id) == expected, f"{zone} at 07:00"
    assert expected == set(READERS)
    assert outbox_recipients(cfg, campaign_id) == len(READERS)
    with Session(engine) as session:
        shown = actions.show(session, settings=cfg, campaign_id=campaign_id)
    assert shown.status == CampaignStatus.SENT
    assert {w.status for w in shown.waves} == {WaveStatus.SENT}


def test_a_reader_who_unsubscribes_before_their_wave_gets_nothing(
    cfg: Settings, engine: Engine
) -> None:
    add_readers(engine, {"tok@example.com": "Asia/Tokyo", "lon@example.com": "Europe/London"})
    campaign_id = draft(engine, cfg)
    schedule_at_seven(engine, cfg, campaign_id, late="now", now=SATURDAY_NOON, on=SUNDAY)
    tick(cfg, SEVEN_LOCAL["Asia/Tokyo"])
    with Session(engine) as session:
        london = session.exec(select(Subscriber).where(Subscriber.email == "lon@example.com")).one()
        assert london.id is not None
        lifecycle.unsubscribe(session, subscriber_id=london.id, source="form")
        session.commit()
    note = follow_up_jobs.release_waves(cfg, SEVEN_LOCAL["Europe/London"])
    assert note.detail == f"campaign {campaign_id}: released 1 wave(s)"  # of nobody
    jobs.dispatch(cfg, SEVEN_LOCAL["Europe/London"])
    tick(cfg, SEVEN_LOCAL["America/New_York"])
    assert delivered(engine, campaign_id) == {"tok@example.com"}
    assert ledger_rows(engine, campaign_id) == 1  # never queued: the guard ran at release
    with Session(engine) as session:
        london_wave = next(
            w
            for w in actions.show(session, settings=cfg, campaign_id=campaign_id).waves
            if w.zones == ["Europe/London"]
        )
    assert (london_wave.status, london_wave.recipients) == (WaveStatus.SENT, 0)


def test_a_wave_released_twice_queues_nobody_twice(cfg: Settings, engine: Engine) -> None:
    add_readers(engine, {"tok@example.com": "Asia/Tokyo", "t2@example.com": "Asia/Tokyo"})
    campaign_id = draft(engine, cfg)
    schedule_at_seven(engine, cfg, campaign_id, late="now", now=SATURDAY_NOON, on=SUNDAY)
    tokyo = SEVEN_LOCAL["Asia/Tokyo"]
    jobs.dispatch(cfg, tokyo)  # starts the campaign and releases Tokyo's wave
    assert ledger_rows(engine, campaign_id) == 2
    note = follow_up_jobs.release_waves(cfg, tokyo)  # again: the compare-and-set finds it released
    assert note.outcome == "idle"
    with Session(engine) as session:
        campaign = session.get(Campaign, campaign_id)
        wave = session.exec(select(CampaignWave).where(CampaignWave.release_at == tokyo)).one()
        assert campaign is not None
        # Forced through once more, below the compare-and-set: the ledger's uniqueness holds.
        added = waves.queue_wave(
            session,
            settings=cfg,
            campaign=campaign,
            wave=wave,
            zones=[*SEVEN_LOCAL],
            now=tokyo,
        )
        session.commit()
    assert added == 0
    assert ledger_rows(engine, campaign_id) == 2
    tick(cfg, tokyo + timedelta(minutes=1))
    assert outbox_recipients(cfg, campaign_id) == 2


@sqlite_only  # nothing dialect-specific beyond the tests above
def test_a_paused_campaign_releases_no_further_wave_until_resumed(
    cfg: Settings, engine: Engine
) -> None:
    add_readers(engine, {"tok@example.com": "Asia/Tokyo", "lon@example.com": "Europe/London"})
    campaign_id = draft(engine, cfg)
    schedule_at_seven(engine, cfg, campaign_id, late="now", now=SATURDAY_NOON, on=SUNDAY)
    tick(cfg, SEVEN_LOCAL["Asia/Tokyo"])
    with Session(engine) as session:
        actions.pause(session, settings=cfg, campaign_id=campaign_id, actor="test")
        session.commit()
    tick(cfg, SEVEN_LOCAL["Europe/London"])
    assert delivered(engine, campaign_id) == {"tok@example.com"}
    with Session(engine) as session:
        shown = actions.show(session, settings=cfg, campaign_id=campaign_id)
    assert [w.status for w in shown.waves] == [
        WaveStatus.SENT,
        WaveStatus.QUEUED,
        WaveStatus.QUEUED,
    ]
    with Session(engine) as session:
        actions.resume(session, settings=cfg, campaign_id=campaign_id, actor="test")
        session.commit()
    tick(cfg, SEVEN_LOCAL["Europe/London"] + timedelta(minutes=5))
    assert delivered(engine, campaign_id) == {"tok@example.com", "lon@example.com"}


@sqlite_only
def test_between_waves_the_dispatch_has_nothing_to_do(cfg: Settings, engine: Engine) -> None:
    add_readers(engine, {"tok@example.com": "Asia/Tokyo", "lon@example.com": "Europe/London"})
    campaign_id = draft(engine, cfg)
    schedule_at_seven(engine, cfg, campaign_id, late="now", now=SATURDAY_NOON, on=SUNDAY)
    tick(cfg, SEVEN_LOCAL["Asia/Tokyo"])
    assert jobs.dispatch(cfg, SEVEN_LOCAL["Asia/Tokyo"] + timedelta(hours=1)).outcome == "idle"
    assert jobs.dispatch(cfg, SEVEN_LOCAL["Europe/London"]).outcome == "ok"
    assert delivered(engine, campaign_id) == {"tok@example.com", "lon@example.com"}


@sqlite_only
def test_a_cancelled_campaign_never_releases_its_later_waves(cfg: Settings, engine: Engine) -> None:
    add_readers(engine, {"tok@example.com": "Asia/Tokyo", "lon@example.com": "Europe/London"})
    campaign_id = draft(engine, cfg)
    schedule_at_seven(engine, cfg, campaign_id, late="now", now=SATURDAY_NOON, on=SUNDAY)
    tick(cfg, SEVEN_LOCAL["Asia/Tokyo"])
    with Session(engine) as session:
        actions.cancel(session, settings=cfg, campaign_id=campaign_id, actor="test")
        session.commit()
    tick(cfg, SEVEN_LOCAL["America/New_York"])
    assert delivered(engine, campaign_id) == {"tok@example.com"}
    assert ledger_rows(engine, campaign_id) == 1


@sqlite_only
def test_scheduling_for_one_instant_again_drops_the_waves(cfg: Settings, engine: Engine) -> None:
    add_readers(engine, {"tok@example.com": "Asia/Tokyo"})
    campaign_id = draft(engine, cfg)
    schedule_at_seven(engine, cfg, campaign_id, late="now", now=SATURDAY_NOON, on=SUNDAY)
    with Session(engine) as session:
        actions.schedule(
            session,
            settings=cfg,
            campaign_id=campaign_id,
            at_utc=SEVEN_LOCAL["America/New_York"],
            actor="test",
            now=SATURDAY_NOON,
        )
        session.commit()
        assert actions.show(session, settings=cfg, campaign_id=campaign_id).waves == []
    tick(cfg, SEVEN_LOCAL["America/New_York"])
    assert delivered(engine, campaign_id) == {"tok@example.com"}


@sqlite_only
def test_a_reader_who_joins_later_with_a_zone_without_a_wave_goes_with_the_lists(
    cfg: Settings, engine: Engine
) -> None:
    add_readers(engine, {"tok@example.com": "Asia/Tokyo"})
    campaign_id = draft(engine, cfg)
    schedule_at_seven(engine, cfg, campaign_id, late="now", now=SATURDAY_NOON, on=SUNDAY)
    add_readers(engine, {"ber@example.com": "Europe/Berlin"})
    tick(cfg, SEVEN_LOCAL["Asia/Tokyo"])
    tick(cfg, SEVEN_LOCAL["Europe/Berlin"])
    assert delivered(engine, campaign_id) == {"tok@example.com"}
    tick(cfg, SEVEN_LOCAL["America/New_York"])  # the list's zone
    assert delivered(engine, campaign_id) == {"tok@example.com", "ber@example.com"}


def planned(engine: Engine, cfg: Settings, readers: dict[str, str | None]) -> int:
    """A campaign for ``readers`` planned at 07:00 on Sunday (late zones now): its id."""
    add_readers(engine, readers)
    campaign_id = draft(engine, cfg)
    schedule_at_seven(engine, cfg, campaign_id, late="now", now=SATURDAY_NOON, on=SUNDAY)
    return campaign_id


def move(engine: Engine, address: str, zone: str | None) -> None:
    """The reader changes their time zone (the preferences page's field)."""
    with Session(engine) as session:
        reader = session.exec(select(Subscriber).where(Subscriber.email == address)).one()
        reader.timezone = zone
        session.add(reader)
        session.commit()


def test_a_reader_who_moves_into_a_zone_whose_wave_has_gone_gets_it_with_the_next(
    cfg: Settings, engine: Engine
) -> None:
    campaign_id = planned(
        engine, cfg, {"tok@example.com": "Asia/Tokyo", "ber@example.com": "Europe/Berlin"}
    )
    tick(cfg, SEVEN_LOCAL["Asia/Tokyo"])
    move(engine, "ber@example.com", "Asia/Tokyo")  # after Tokyo's wave went out
    tick(cfg, SEVEN_LOCAL["Europe/Berlin"] - timedelta(minutes=1))
    assert delivered(engine, campaign_id) == {"tok@example.com"}
    tick(cfg, SEVEN_LOCAL["Europe/Berlin"])  # the next wave to go takes them
    assert delivered(engine, campaign_id) == {"tok@example.com", "ber@example.com"}
    tick(cfg, SEVEN_LOCAL["America/New_York"])
    assert ledger_rows(engine, campaign_id) == 2  # once each
    assert outbox_recipients(cfg, campaign_id) == 2


def test_a_reader_who_joins_in_a_zone_whose_wave_has_gone_gets_it_with_the_next(
    cfg: Settings, engine: Engine
) -> None:
    campaign_id = planned(
        engine, cfg, {"tok@example.com": "Asia/Tokyo", "ber@example.com": "Europe/Berlin"}
    )
    tick(cfg, SEVEN_LOCAL["Asia/Tokyo"])
    add_readers(engine, {"late@example.com": "Asia/Tokyo"})
    tick(cfg, SEVEN_LOCAL["Europe/Berlin"])
    assert delivered(engine, campaign_id) == {
        "tok@example.com",
        "ber@example.com",
        "late@example.com",
    }


def test_after_the_lists_wave_a_move_to_a_zone_with_no_wave_goes_with_the_next(
    cfg: Settings, engine: Engine
) -> None:
    """The list's zone (New York) goes before Los Angeles here; Kolkata has no wave."""
    seven_in_los_angeles = datetime(2026, 3, 29, 14, 0, tzinfo=UTC)  # PDT, -7
    campaign_id = planned(
        engine, cfg, {"nyc@example.com": None, "lax@example.com": "America/Los_Angeles"}
    )
    tick(cfg, SEVEN_LOCAL["America/New_York"])
    move(engine, "lax@example.com", "Asia/Kolkata")  # after the list's wave went out
    tick(cfg, seven_in_los_angeles)
    assert delivered(engine, campaign_id) == {"nyc@example.com", "lax@example.com"}
    assert ledger_rows(engine, campaign_id) == 2
