"""The one notion of "now" and of a UTC instant, for every room.

Every instant the service stores or compares is an aware UTC ``datetime``. Values from
outside (a naive datetime from a CSV, a parsed header in another zone) are brought to that
form here, once, instead of by a helper in each module.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """The current instant, aware, in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime; a naive value is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
