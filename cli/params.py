"""The parameter types of the CLI: one parser per kind of value, shared by every command.

A malformed value is wrong usage: the parser raises :class:`typer.BadParameter`, click
names the option and the command exits 2 with one line (:func:`cli.output.run`). So a
bad date reads the same in ``campaigns assemble --for`` and ``campaigns schedule --at``,
a bad address the same wherever one is asked for, and no malformed value reaches a room
to end in a traceback there. Where a room has its own rule (addresses), the parser calls
the room's function rather than repeating it.
"""

from __future__ import annotations

import os
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import typer

from newsletter.errors import InvalidInput

# Campaign ids are INTEGER columns: PostgreSQL's int4 (SQLite's would hold more).
MAX_ID = 2**31 - 1
DATE_HELP = "YYYY-MM-DD"
WHEN_EXAMPLE = "2026-12-01T09:00 or 2026-12-01T14:00Z"


def campaign_id(help: str) -> Any:
    """The ``ID`` argument of a campaign command; ``help`` says what this command does
    with it (each command its own words)."""
    return typer.Argument(..., metavar="ID", parser=parse_id, help=help, show_default=False)


def parse_id(value: str) -> int:
    """A database id: a whole number from 1 to :data:`MAX_ID`; BadParameter otherwise
    (a larger one would overflow the column rather than name nothing)."""
    if isinstance(value, int):
        return value
    text = value.strip()
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_ID:
        raise typer.BadParameter(f"{value!r} is not an id (a whole number from 1 to {MAX_ID})")
    return int(text)


def parse_day(value: str) -> date:
    """An ISO 8601 calendar date (``2026-11-23``); BadParameter otherwise."""
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date ({DATE_HELP})") from None


def parse_when(value: str) -> datetime:
    """An ISO 8601 date-time (``2026-12-01T09:00``, ``...+01:00`` or ``...Z``), or a date
    for its midnight. Naive when no offset is given: the command decides whose wall time
    it is. BadParameter otherwise, and for years a time zone could push out of range."""
    if isinstance(value, datetime):
        return value
    raw = value.strip()
    if raw.endswith(("z", "Z")):  # Python 3.11 reads "Z" itself; older ones did not
        raw = raw[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date-time such as {WHEN_EXAMPLE}") from None
    if not 1 < parsed.year < 9999:
        raise typer.BadParameter(f"{value!r} is out of range (years 2 to 9998)")
    return parsed


def parse_email(value: str) -> str:
    """An address in the subscriber room's normal form (:func:`normalise_email`, which
    follows RFC 5321 via email-validator); BadParameter with its reason otherwise."""
    from subscribers.addresses import normalise_email

    try:
        return normalise_email(value)
    except InvalidInput as error:
        raise typer.BadParameter(error.reason) from None


def _stat(path: Path) -> os.stat_result | None:
    """``os.stat`` of ``path``; None when nothing is there; BadParameter when the name
    itself is unusable (too long, a file used as a folder, no permission to look)."""
    if not str(path).strip():
        raise typer.BadParameter("a path is required")
    try:
        return path.stat()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise typer.BadParameter(f"{str(path)!r}: {error.strerror}") from None


def _creatable(path: Path) -> None:
    """The nearest existing folder above ``path`` is a folder this process may write."""
    for parent in path.absolute().parents:
        found = _stat(parent)
        if found is None:
            continue
        if not parent.is_dir():
            raise typer.BadParameter(f"{str(parent)!r} is a file, not a folder")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise typer.BadParameter(f"cannot write in {str(parent)!r}")
        return


def output_file(value: str) -> Path:
    """Where a command writes a file (created with its folders); not a folder itself."""
    path = Path(value)
    found = _stat(path)
    if found is not None and path.is_dir():
        raise typer.BadParameter(f"{value!r} is a folder; give a file name")
    _creatable(path)
    return path


def output_folder(value: str) -> Path:
    """Where a command writes several files (created when missing); not a file."""
    path = Path(value)
    found = _stat(path)
    if found is not None and not path.is_dir():
        raise typer.BadParameter(f"{value!r} is a file, not a folder")
    _creatable(path)
    return path


def input_file(value: str) -> Path:
    """A file the command reads: it must exist and be a file."""
    path = Path(value)
    if _stat(path) is None:
        raise typer.BadParameter(f"{value!r} does not exist")
    if path.is_dir():
        raise typer.BadParameter(f"{value!r} is a folder, not a file")
    return path


def path_or_url(value: str) -> str:
    """An http(s) URL as given, or an existing file or folder."""
    if urlsplit(value).scheme.lower() in ("http", "https"):
        return value
    if _stat(Path(value)) is None:
        raise typer.BadParameter(f"{value!r} is neither an http(s) URL nor a file or folder")
    return value


# Issue 16: --wait 4h, --after 3d.
_DURATION = re.compile(r"(\d{1,6})([mhd])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_duration(value: str) -> timedelta:
    """A duration such as ``90m``, ``4h``, ``3d`` or ``1d12h``; BadParameter otherwise."""
    if isinstance(value, timedelta):
        return value
    text = value.strip().lower()
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise typer.BadParameter(f"{value!r} is not a duration such as 90m, 4h, 3d or 1d12h")
    return sum((timedelta(**{_UNITS[u]: int(n)}) for n, u in parts), timedelta())
