"""Reading a subscriber CSV file as a stream, and checking its rows one by one.

The file is read in blocks of 64 KiB and handed on one row at a time, so a 200 MB file
costs what one block and one row cost. What spreadsheets produce is honoured: UTF-16 and
UTF-8 byte-order marks, and lines that are not UTF-8 read as Windows-1252 (rows pasted
from elsewhere mix them). What a hostile file could use to make us hold more is refused
with a line number: a physical line over ``MAX_LINE_BYTES`` and a quoted cell over the
``csv`` module's field limit (128 KiB).
"""

from __future__ import annotations

import codecs
import csv
import ipaddress
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

from newsletter.errors import ImportProblem, InvalidInput
from newsletter.timezones import optional_timezone
from subscribers.addresses import clean_name, normalise_email

# "timezone": issue 16, the reader's IANA zone (empty = the list's).
IMPORT_COLUMNS = ("email", "name", "consented_at", "source", "ip", "timezone")
# Written by export; accepted (and mostly ignored) by import so an export re-imports.
EXPORT_COLUMNS = (
    *IMPORT_COLUMNS,
    "status",
    "consent_version",
    "created_at",
    "topics",
    "paused_until",
    "history",
)
BLOCK_BYTES = 64 * 1024
MAX_LINE_BYTES = 1024 * 1024
# Cells that start with these run as formulas in a spreadsheet (OWASP, "CSV Injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")

Opener = Callable[[], BinaryIO]


@dataclass(frozen=True)
class Row:
    """One record: the number of the file line it starts on, and its cells by column."""

    line: int
    values: dict[str, str]


def safe_cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text and never runs: a value starting with ``=``,
    ``+``, ``-``, ``@``, tab or carriage return gets a leading single quote (the OWASP
    CSV-injection rule); None is the empty cell. For every CSV we write (subscriber
    exports; campaign reports can use it too)."""
    if value is None:
        return ""
    text = str(value)
    return f"'{text}" if text.startswith(FORMULA_TRIGGERS) else text


def unsafe_cell(text: str) -> str:
    """Undo :func:`safe_cell` on import, so an exported file re-imports unchanged."""
    if len(text) > 1 and text[0] == "'" and text[1:].startswith(FORMULA_TRIGGERS):
        return text[1:]
    return text


def _utf16_blocks(head: bytes, stream: BinaryIO, where: str) -> Iterator[bytes]:
    """The UTF-16 text re-encoded as UTF-8, block by block (the BOM sets the order)."""
    decoder = codecs.getincrementaldecoder("utf-16")()
    block = head
    try:
        while block:
            yield decoder.decode(block).encode("utf-8")
            block = stream.read(BLOCK_BYTES)
        yield decoder.decode(b"", final=True).encode("utf-8")
    except UnicodeDecodeError as err:
        raise ImportProblem(f"not valid UTF-16: {err.reason}", where=where) from err


def _byte_blocks(head: bytes, stream: BinaryIO, where: str) -> Iterator[bytes]:
    block = head.removeprefix(codecs.BOM_UTF8)
    while block:
        if b"\x00" in block:
            raise ImportProblem("this is not a text CSV file (it contains NUL bytes)", where=where)
        yield block
        block = stream.read(BLOCK_BYTES)


def physical_lines(stream: BinaryIO, *, where: str) -> Iterator[str]:
    """The file's lines with their ends (``\\r``, ``\\n`` or ``\\r\\n``), decoded one by one."""
    head = stream.read(BLOCK_BYTES)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        blocks = _utf16_blocks(head, stream, where)
    else:
        blocks = _byte_blocks(head, stream, where)
    carry = b""
    number = 0
    for block in blocks:
        pieces = (carry + block).splitlines(keepends=True)
        # The last piece may go on in the next block: no line end yet, or a "\r" that may
        # be the first half of "\r\n".
        carry = b"" if not pieces or pieces[-1].endswith(b"\n") else pieces.pop()
        if len(carry) > MAX_LINE_BYTES:
            raise ImportProblem(
                f"line {number + len(pieces) + 1} is longer than {MAX_LINE_BYTES:,} bytes; "
                "this is not a subscriber list",
                where=where,
            )
        number += len(pieces)
        yield from map(_decode, pieces)
    if carry:
        yield _decode(carry)


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


def header(fields: Sequence[str] | None, *, where: str) -> list[str]:
    """The column names, checked; raises ImportProblem saying what is wrong and how to fix."""
    expected = ", ".join(IMPORT_COLUMNS)
    if not fields:
        raise ImportProblem(f"the file is empty; expected a header line: {expected}", where=where)
    names = [f.strip().lower().lstrip("\ufeff") for f in fields]
    if "email" not in names:
        separator = next((sep for sep in (";", "\t") if any(sep in n for n in names)), None)
        if separator is not None:  # a spreadsheet saved with its locale's separator
            shown = "tab" if separator == "\t" else repr(separator)
            hint = f" (the columns are separated by {shown}; save the file with commas)"
        elif any("@" in n for n in names):
            hint = " (the first line looks like data: add a header line)"
        else:
            hint = ""
        raise ImportProblem(
            f"missing column 'email'{hint}; expected columns: {expected}", where=f"{where}:1"
        )
    unknown = [n for n in names if n not in EXPORT_COLUMNS]
    if unknown:
        raise ImportProblem(
            f"unknown column(s) {', '.join(repr(n) for n in unknown)}; "
            f"expected columns: {expected}",
            where=f"{where}:1",
        )
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ImportProblem(
            f"column(s) {', '.join(map(repr, duplicated))} appear twice", where=f"{where}:1"
        )
    return names


def rows(opener: Opener, *, where: str) -> Iterator[Row]:
    """Every non-blank record with the line it starts on, read as a stream.

    Raises ImportProblem for a file-level fault (encoding, header, malformed CSV, an
    over-long line or cell); callers that must not import half a bad file read it through
    once first (see csv_io).
    """
    with opener() as stream:
        reader = csv.reader(physical_lines(stream, where=where))
        try:
            names = header(next(reader, None), where=where)
            line = reader.line_num + 1
            for cells in reader:
                if any(c.strip() for c in cells):
                    padded = [*cells, *[""] * (len(names) - len(cells))]
                    values = {
                        n: unsafe_cell(v.strip()) for n, v in zip(names, padded, strict=False)
                    }
                    if len(cells) > len(names):
                        values["__extra__"] = "yes"
                    yield Row(line, values)
                line = reader.line_num + 1
        except csv.Error as err:
            raise ImportProblem(
                f"malformed CSV: {err}", where=f"{where}:{reader.line_num}"
            ) from err


# ---------------------------------------------------------------- checking a row


@dataclass(frozen=True)
class Entry:
    """A row that passed the checks: what would be stored for it."""

    line: int
    address: str
    name: str | None
    consented_at: datetime | None
    ip: str | None
    origin: str
    status: str
    consent_version: str | None
    timezone: str | None = None  # issue 16


def _parse_consented_at(raw: str, *, now: datetime) -> datetime:
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError as err:
        raise InvalidInput(
            f"consented_at {raw!r} is not an ISO 8601 date or time", field="consented_at"
        ) from err
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if value > now:
        raise InvalidInput(f"consented_at {raw!r} is in the future", field="consented_at")
    return value


def _parse_ip(raw: str) -> str | None:
    if not raw:
        return None
    try:
        return str(ipaddress.ip_address(raw))
    except ValueError as err:
        raise InvalidInput(f"ip {raw!r} is not an IP address", field="ip") from err


def check_row(row: Row, *, seen: dict[str, int], now: datetime) -> Entry:
    """Check one row; raises InvalidInput with the reason (a duplicate within the chunk too)."""
    values = row.values
    if values.get("__extra__"):
        raise InvalidInput("more cells than header columns (an unquoted comma?)")
    address = normalise_email(values.get("email", ""))
    if address in seen:
        raise InvalidInput(f"duplicate of line {seen[address]}")
    seen[address] = row.line
    name = clean_name(values.get("name"))
    proof = values.get("consented_at", "")
    return Entry(
        line=row.line,
        address=address,
        name=name,
        consented_at=_parse_consented_at(proof, now=now) if proof else None,
        ip=_parse_ip(values.get("ip", "")),
        origin=values.get("source", "")[:200],
        status=values.get("status", "").lower(),
        consent_version=values.get("consent_version") or None,
        timezone=optional_timezone(values.get("timezone")),
    )
