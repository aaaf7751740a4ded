"""Weekly slots are planned in local wall time: DST changes never move a send by an hour."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

from campaigns import weekly_plan
from campaigns.models import Campaign
from newsletter.clock import as_utc
from newsletter.db import UTCDateTime
from newsletter.errors import ConfigError, InvalidInput
from newsletter.models import Lease
from newsletter.settings import Settings
from subscribers.models import Subscriber
from tests.conftest import make_settings

NY = "America/New_York"


def _settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {"timezone": NY, "send_weekday": 1, "send_time": "09:00"}
    values.update(overrides)
    return make_settings(f"sqlite:///{tmp_path / 'x.db'}", tmp_path, **values)


def _weekly(settings: Settings, start: datetime, count: int) -> list[datetime]:
    slots, after = [], start
    for _ in range(count):
        slot = weekly_plan.next_send_at(settings, after=after)
        slots.append(slot)
        after = slot + timedelta(seconds=1)
    return slots


def test_tuesday_nine_stays_nine_local_across_the_november_change(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    slots = _weekly(settings, datetime(2026, 10, 20, tzinfo=UTC), 4)
    local = [weekly_plan.to_local(s, settings) for s in slots]
    assert [(d.date().isoformat(), d.strftime("%H:%M %Z")) for d in local] == [
        ("2026-10-20", "09:00 EDT"),
        ("2026-10-27", "09:00 EDT"),
        ("2026-11-03", "09:00 EST"),  # DST ended on Sunday 1 November
        ("2026-11-10", "09:00 EST"),
    ]
    assert [s.hour for s in slots] == [13, 13, 14, 14]


def test_tuesday_nine_stays_nine_local_across_the_march_change(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    slots = _weekly(settings, datetime(2027, 3, 1, tzinfo=UTC), 3)
    assert [weekly_plan.to_local(s, settings).strftime("%m-%d %H:%M %Z") for s in slots] == [
        "03-02 09:00 EST",
        "03-09 09:00 EST",
        "03-16 09:00 EDT",  # DST began on Sunday 14 March
    ]
    assert [s.hour for s in slots] == [14, 14, 13]


def test_a_slot_exactly_now_is_still_this_week(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    slot = datetime(2026, 11, 3, 14, 0, tzinfo=UTC)
    assert weekly_plan.next_send_at(settings, after=slot) == slot
    assert weekly_plan.next_send_at(
        settings, after=slot + timedelta(seconds=1)
    ) == slot + timedelta(days=7)


def test_a_send_time_inside_the_spring_gap_goes_out_an_hour_later_on_the_clock(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path, send_weekday=6, send_time="02:30")  # Sunday 14 March 2027
    slot = weekly_plan.next_send_at(settings, after=datetime(2027, 3, 13, tzinfo=UTC))
    assert slot == datetime(2027, 3, 14, 7, 30, tzinfo=UTC)
    assert weekly_plan.format_local(slot, settings) == "2027-03-14 03:30 EDT"


def test_naive_input_is_local_time_and_offsets_are_respected(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    assert weekly_plan.parse_when("2026-12-01T09:00", settings) == datetime(
        2026, 12, 1, 14, 0, tzinfo=UTC
    )
    assert weekly_plan.parse_when("2026-12-01T09:00Z", settings) == datetime(
        2026, 12, 1, 9, 0, tzinfo=UTC
    )
    assert weekly_plan.parse_when("2026-12-01T09:00+01:00", settings) == datetime(
        2026, 12, 1, 8, 0, tzinfo=UTC
    )


def test_unparseable_time_names_the_field_and_the_format(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as caught:
        weekly_plan.parse_when("next tuesday", _settings(tmp_path))
    assert str(caught.value) == (
        "field 'at': 'next tuesday' is not an ISO 8601 date-time such as 2026-12-01T09:00 "
        "(local, America/New_York) or 2026-12-01T14:00Z"
    )


def test_a_time_beyond_the_calendar_is_too_far_ahead_not_a_crash(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="too far ahead; pick a date within ten years") as err:
        weekly_plan.parse_when("9999-12-31T20:00", _settings(tmp_path))  # EST: year 10000 UTC
    assert err.value.field == "at"


@pytest.mark.parametrize(
    ("zone", "at"),
    [
        ("Europe/Paris", "9999-12-31T23:30Z"),  # the year 10000 in Paris
        ("Pacific/Kiritimati", "9999-12-31T23:00Z"),
        ("America/New_York", "0001-01-01T01:00Z"),  # the year 0 in New York
    ],
)
def test_a_time_at_the_calendars_edge_is_refused_in_utc_words(
    tmp_path: Path, zone: str, at: str
) -> None:
    settings = _settings(tmp_path, timezone=zone)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    with pytest.raises(InvalidInput, match=r"UTC is (too far ahead|in the past)") as err:
        weekly_plan.schedulable(weekly_plan.parse_when(at, settings), settings, now=now)
    assert err.value.field == "at"


def test_unknown_time_zone_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="NEWSLETTER_TIMEZONE: unknown time zone 'Mars/Base'"):
        weekly_plan.zone(_settings(tmp_path, timezone="Mars/Base"))


def test_iso_week_uses_the_iso_year_at_the_year_boundary() -> None:
    assert weekly_plan.iso_week(date(2027, 1, 1)) == "2026-W53"
    assert weekly_plan.iso_week(date(2026, 11, 23)) == "2026-W48"


def test_weeks_are_iso_weeks_of_the_local_send_day(tmp_path: Path) -> None:
    settings = _settings(tmp_path, timezone="Pacific/Auckland", send_weekday=0, send_time="08:00")
    slot = weekly_plan.next_send_at(settings, after=datetime(2026, 12, 27, tzinfo=UTC))
    assert weekly_plan.to_local(slot, settings).date() == date(2026, 12, 28)
    assert slot.date() == date(2026, 12, 27)  # still Sunday in UTC
    assert weekly_plan.week_of(slot, settings) == "2026-W53"


def test_naive_values_from_outside_are_taken_as_utc() -> None:
    assert as_utc(datetime(2026, 1, 1, 12)) == datetime(2026, 1, 1, 12, tzinfo=UTC)


def test_every_timestamp_column_is_the_utc_column_type() -> None:
    assert {Subscriber.__tablename__, Campaign.__tablename__, Lease.__tablename__} <= set(
        SQLModel.metadata.tables
    )  # every room's models are loaded
    columns = [c for table in SQLModel.metadata.sorted_tables for c in table.columns]
    stamps = [c for c in columns if isinstance(c.type, sa.DateTime | UTCDateTime)]
    assert len(stamps) > 20
    assert [str(c) for c in stamps if not isinstance(c.type, UTCDateTime)] == []


def test_timestamps_are_read_back_aware_in_utc_on_every_database(engine: Engine) -> None:
    eastern = datetime(2026, 11, 10, 9, tzinfo=ZoneInfo("America/New_York"))
    with Session(engine) as session:
        session.add(Campaign(subject="x", scheduled_at=eastern, created_at=datetime(2026, 1, 1)))
        session.commit()
    with Session(engine) as session:
        stored = session.exec(select(Campaign)).one()
    assert stored.scheduled_at is not None and stored.scheduled_at.tzinfo is UTC
    assert (stored.scheduled_at, stored.created_at) == (
        datetime(2026, 11, 10, 14, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),  # a naive value is taken as UTC
    )
