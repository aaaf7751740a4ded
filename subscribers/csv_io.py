"""CSV import and CSV/JSON export of subscribers, with consent proof and history.

Import rules (the law's, not ours to relax):
- a row with consent proof (``consented_at``) becomes active with that proof recorded;
- a row without becomes pending and gets a confirmation email (or stays pending);
- an address that is suppressed, or already on the list in any state, is never changed:
  re-running a file changes nothing and never reactivates anyone who left;
- one bad row is reported with its line number and reason; the good rows still count.
"""

from __future__ import annotations

import codecs
import csv
import io
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session

from newsletter.clock import utcnow
from newsletter.errors import ImportProblem, InvalidInput, ProviderError
from newsletter.mail import Mailer
from newsletter.settings import Settings
from subscribers import lifecycle
from subscribers.addresses import clean_name, normalise_email
from subscribers.models import (
    ConsentSource,
    Subscriber,
    SubscriberStatus,
    SuppressionReason,
)
from subscribers.signup import send_confirmation
from subscribers.suppression import is_suppressed, suppress

S = SubscriberStatus
IMPORT_COLUMNS = ("email", "name", "consented_at", "source", "ip")
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
_LEFT = {
    S.UNSUBSCRIBED.value: SuppressionReason.UNSUBSCRIBE,
    S.BOUNCED.value: SuppressionReason.HARD_BOUNCE,
    S.COMPLAINED.value: SuppressionReason.COMPLAINT,
}
MAX_FILE_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True)
class RowProblem:
    line: int
    email: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ImportReport:
    rows: int = 0
    active: int = 0  # created active with consent proof
    pending: int = 0  # created pending
    confirmations_sent: int = 0
    unchanged: int = 0  # already on the list: left as they are
    suppressed: int = 0  # on the suppression list (or left the list): not imported
    problems: list[RowProblem] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "active": self.active,
            "pending": self.pending,
            "confirmations_sent": self.confirmations_sent,
            "unchanged": self.unchanged,
            "suppressed": self.suppressed,
            "problems": [
                {"line": p.line, "email": p.email, "reason": p.reason} for p in self.problems
            ],
        }


# ---------------------------------------------------------------- reading


def decode_csv_bytes(data: bytes, *, where: str) -> str:
    """Text of a CSV file: UTF-16/UTF-8 BOMs honoured, lines that are not UTF-8 read as
    Windows-1252 (spreadsheets mix them when rows are pasted from elsewhere)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as err:
            raise ImportProblem(f"not valid UTF-16: {err.reason}", where=where) from err
    data = data.removeprefix(codecs.BOM_UTF8)
    if b"\x00" in data:
        raise ImportProblem("this is not a text CSV file (it contains NUL bytes)", where=where)
    lines = []
    for raw in data.splitlines(keepends=True):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(raw.decode("cp1252", errors="replace"))
    return "".join(lines)


def _header(fields: Sequence[str] | None, *, where: str) -> list[str]:
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


@dataclass(frozen=True)
class _Row:
    line: int
    values: dict[str, str]


def read_rows(data: bytes, *, where: str = "<csv>") -> list[_Row]:
    """Parse and check the header; every row with its first line number in the file."""
    text = decode_csv_bytes(data, where=where)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        names = _header(next(reader, None), where=where)
        rows: list[_Row] = []
        line = reader.line_num + 1
        for cells in reader:
            if any(c.strip() for c in cells):
                padded = [*cells, *[""] * (len(names) - len(cells))]
                values = {n: v.strip() for n, v in zip(names, padded, strict=False)}
                if len(cells) > len(names):
                    values["__extra__"] = "yes"
                rows.append(_Row(line, values))
            line = reader.line_num + 1
    except csv.Error as err:
        raise ImportProblem(f"malformed CSV: {err}", where=f"{where}:{reader.line_num}") from err
    return rows


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


# ---------------------------------------------------------------- importing


def import_csv(
    session: Session,
    *,
    settings: Settings,
    mailer: Mailer | None,
    data: bytes,
    where: str = "<csv>",
    send_confirmations: bool = True,
    on_row: Callable[[int, int], None] | None = None,
    now: datetime | None = None,
) -> ImportReport:
    """Import rows; raises ImportProblem only for a file-level fault (header, encoding).

    ``on_row(done, total)`` is called after each row (progress bars).
    """
    if len(data) > MAX_FILE_BYTES:
        raise ImportProblem(f"the file is larger than {MAX_FILE_BYTES // 2**20} MiB", where=where)
    rows = read_rows(data, where=where)
    now = now or utcnow()
    report = ImportReport(rows=len(rows))
    seen: dict[str, int] = {}
    for done, row in enumerate(rows, start=1):
        try:
            _import_row(
                session,
                settings=settings,
                mailer=mailer,
                row=row,
                seen=seen,
                report=report,
                send_confirmations=send_confirmations,
                now=now,
            )
        except InvalidInput as err:
            report.problems.append(RowProblem(row.line, row.values.get("email", ""), err.reason))
        if on_row is not None:
            on_row(done, len(rows))
    return report


def _import_row(
    session: Session,
    *,
    settings: Settings,
    mailer: Mailer | None,
    row: _Row,
    seen: dict[str, int],
    report: ImportReport,
    send_confirmations: bool,
    now: datetime,
) -> None:
    values = row.values
    if values.get("__extra__"):
        raise InvalidInput("more cells than header columns (an unquoted comma?)")
    address = normalise_email(values.get("email", ""))
    if address in seen:
        raise InvalidInput(f"duplicate of line {seen[address]}")
    seen[address] = row.line
    name = clean_name(values.get("name"))
    proof = values.get("consented_at", "")
    consented_at = _parse_consented_at(proof, now=now) if proof else None
    ip = _parse_ip(values.get("ip", ""))
    origin = values.get("source", "")[:200]
    status = values.get("status", "").lower()

    if lifecycle.find_by_email(session, email=address) is not None:
        report.unchanged += 1
        return
    if status in _LEFT:  # an export of someone who left: keep them out for good
        suppress(session, email=address, reason=_LEFT[status])
        report.suppressed += 1
        return
    if is_suppressed(session, email=address):
        report.suppressed += 1
        return

    detail: dict[str, Any] = {"line": row.line}
    if origin:
        detail["original_source"] = origin
    if consented_at is not None:
        detail["consented_at"] = consented_at.isoformat()
    subscriber = Subscriber(
        email=address,
        name=name,
        source=ConsentSource.IMPORT.value,
        status=(S.ACTIVE if consented_at else S.PENDING).value,
        consent_version=values.get("consent_version") or None,
        created_at=now,
        status_changed_at=now,
        confirmed_at=consented_at,
    )
    session.add(subscriber)
    session.flush()
    lifecycle.record_event(
        session,
        subscriber,
        initial=True,
        at=now,
        source=ConsentSource.IMPORT,
        ip=ip,
        reason="imported with consent proof" if consented_at else "imported without consent proof",
        consent_version=subscriber.consent_version,
        detail=detail,
    )
    if consented_at is not None:
        report.active += 1
        return
    report.pending += 1
    if send_confirmations and mailer is not None:
        try:
            send_confirmation(
                session, settings=settings, mailer=mailer, subscriber=subscriber, now=now
            )
            report.confirmations_sent += 1
        except ProviderError as err:
            report.problems.append(
                RowProblem(
                    row.line,
                    address,
                    f"imported as pending, but the confirmation email failed: {err}",
                )
            )


def import_csv_file(
    session: Session,
    *,
    settings: Settings,
    mailer: Mailer | None,
    path: Path,
    send_confirmations: bool = True,
    on_row: Callable[[int, int], None] | None = None,
) -> ImportReport:
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise ImportProblem(f"cannot read the file: {err.strerror}", where=str(path)) from err
    return import_csv(
        session,
        settings=settings,
        mailer=mailer,
        data=data,
        where=str(path),
        send_confirmations=send_confirmations,
        on_row=on_row,
    )
