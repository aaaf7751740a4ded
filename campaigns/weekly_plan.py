"""Time zones for the weekly plan: stored in UTC, shown and planned in local wall time.

The weekly send is defined in local wall time ("Tuesday 09:00 in America/New_York"), so
the next slot is computed on the local calendar and only then converted to UTC. Adding
seven days to a UTC instant instead would move the send by an hour at every DST change.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from newsletter.clock import as_utc, utcnow
from newsletter.errors import ConfigError, InvalidInput
from newsletter.settings import Settings


def zone(settings: Settings) -> ZoneInfo:
    """The newsletter's time zone, or a ConfigError naming the bad setting."""
    try:
        return ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ConfigError(
            f"NEWSLETTER_TIMEZONE: unknown time zone {settings.timezone!r} "
            "(use an IANA name such as America/New_York)"
        ) from err


def to_local(value: datetime, settings: Settings) -> datetime:
    return as_utc(value).astimezone(zone(settings))


def local_to_utc(value: datetime, settings: Settings) -> datetime:
    """A local wall time (naive, or already aware) as aware UTC.

    A wall time inside the spring-forward gap does not exist; zoneinfo reads it with the
    offset before the change, which lands one hour later on the clock (02:30 -> 03:30).
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone(settings))
    return value.astimezone(UTC)


def parse_when(text: str, settings: Settings) -> datetime:
    """Parse an ISO 8601 date-time from a person; without an offset it is local time."""
    raw = text.strip()
    try:
        parsed = datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith("Z") else raw)
    except ValueError as err:
        raise InvalidInput(
            f"{text!r} is not an ISO 8601 date-time such as 2026-12-01T09:00 "
            f"(local, {settings.timezone}) or 2026-12-01T14:00Z",
            field="at",
        ) from err
    try:
        return local_to_utc(parsed, settings)
    except OverflowError:  # 9999-12-31T20:00 in a zone behind UTC is in the year 10000
        raise InvalidInput(
            f"{text!r} is too far ahead; {TOO_FAR}", field="at", advised=True
        ) from None


# A schedule, a local-time date: at most this far ahead (and within what datetime holds).
SCHEDULE_HORIZON = timedelta(days=3653)
TOO_FAR = "pick a date within ten years"
# A time a little in the past is "now" typed slowly, not a mistake.
PAST_TOLERANCE = timedelta(minutes=1)


def schedulable(at: datetime, settings: Settings, *, now: datetime) -> datetime:
    """``at`` as aware UTC if a campaign may be scheduled for it: not in the past (one
    minute's tolerance), not over ten years ahead; InvalidInput (field ``at``) otherwise."""
    try:
        at = as_utc(at)
    except OverflowError:  # an aware 9999-12-31T20:00-05:00 is in the year 10000 in UTC
        raise InvalidInput(
            f"{at.date()} is too far ahead; {TOO_FAR}", field="at", advised=True
        ) from None
    if at < now - PAST_TOLERANCE:
        raise InvalidInput(f"{_said(at, settings)} is in the past", field="at")
    if at > now + SCHEDULE_HORIZON:
        raise InvalidInput(
            f"{_said(at, settings)} is too far ahead; {TOO_FAR}", field="at", advised=True
        )
    return at


def _said(at: datetime, settings: Settings) -> str:
    """``at`` in the list's zone, or in UTC where that zone's clock would leave the years
    datetime holds (9999-12-31 23:30 UTC is in the year 10000 in Paris)."""
    try:
        return format_local(at, settings) or ""
    except OverflowError:
        return at.strftime("%Y-%m-%d %H:%M UTC")


def send_clock(settings: Settings) -> time:
    """settings.send_time ("HH:MM") as a time of day."""
    try:
        hours, minutes = (int(part) for part in settings.send_time.split(":"))
        return time(hours, minutes)
    except ValueError as err:
        raise ConfigError(
            f"NEWSLETTER_SEND_TIME: {settings.send_time!r} is not a time of day like 09:00"
        ) from err


def send_slot(day: date, settings: Settings) -> datetime:
    """The UTC instant of the send time on a local calendar day."""
    return local_to_utc(datetime.combine(day, send_clock(settings)), settings)


def next_send_at(settings: Settings, *, after: datetime) -> datetime:
    """The first weekly send slot at or after ``after`` (UTC), planned in local wall time."""
    start = to_local(after, settings).date()
    ahead = (settings.send_weekday - start.weekday()) % 7
    day = start + timedelta(days=ahead)
    slot = send_slot(day, settings)
    if slot < as_utc(after):
        slot = send_slot(day + timedelta(days=7), settings)
    return slot


def local_today(settings: Settings, *, now: datetime | None = None) -> date:
    """Today on the newsletter's calendar (its time zone), not on the server's clock."""
    return to_local(now or utcnow(), settings).date()


def iso_week(day: date) -> str:
    """The ISO 8601 week a weekly issue is filed under, e.g. "2026-W48" (the unique
    ``campaign.week``). ISO years start on a Monday: 1 January 2027 is in "2026-W53"."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def week_of(slot: datetime, settings: Settings) -> str:
    """The ISO week of a send slot, on the local calendar."""
    return iso_week(to_local(slot, settings).date())


def format_local(value: datetime | None, settings: Settings) -> str | None:
    """For people: "2026-12-01 09:00 EST"."""
    if value is None:
        return None
    return to_local(value, settings).strftime("%Y-%m-%d %H:%M %Z")
