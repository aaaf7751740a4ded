"""A reader's time zone: an IANA name (``Europe/Berlin``), checked against the tz database.

Only names zoneinfo can load are kept, so every zone stored can later turn a local wall
time into a UTC instant for its own date (daylight saving included). Fixed offsets
("+02:00", "CET") and abbreviations are refused: they cannot follow a zone's rules.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from newsletter.errors import InvalidInput

# The sign-up form's fallback list when the browser does not say (its Intl API):
# a few zones per continent, as tz names, shown with their name as the label.
COMMON_ZONES: tuple[str, ...] = (
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/New_York",
    "America/Sao_Paulo",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Madrid",
    "Europe/Athens",
    "Africa/Johannesburg",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
    "UTC",
)

_MAX_LENGTH = 64


def check_timezone(name: str, *, field: str = "timezone", where: str | None = None) -> str:
    """``name`` stripped, when it is an IANA time zone name zoneinfo can load.

    Raises InvalidInput (``field``, ``where``) for anything else: one line naming the
    field and the value.
    Source of the names: the IANA tz database (RFC 6557), through ``zoneinfo``/``tzdata``.
    """
    value = name.strip()
    if not value or len(value) > _MAX_LENGTH or value not in _known():
        shown = value[:_MAX_LENGTH]
        raise InvalidInput(
            f"{field} {shown!r} is not an IANA time zone name (such as Europe/Berlin)",
            field=field,
            where=where,
        )
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):  # pragma: no cover - listed but unloadable
        raise InvalidInput(f"{value!r} cannot be loaded", field=field, where=where) from None
    return value


def optional_timezone(
    name: str | None, *, field: str = "timezone", where: str | None = None
) -> str | None:
    """None for a missing or blank value, else :func:`check_timezone`."""
    if name is None or not name.strip():
        return None
    return check_timezone(name, field=field, where=where)


_KNOWN: frozenset[str] | None = None


def _known() -> frozenset[str]:
    """The tz database's names, read once (``available_timezones`` walks the disk)."""
    global _KNOWN
    if _KNOWN is None:
        _KNOWN = frozenset(available_timezones())
    return _KNOWN
