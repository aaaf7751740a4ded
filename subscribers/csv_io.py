"""CSV import of subscribers, with consent proof, in bounded memory.

Import rules (the law's, not ours to relax):
- a row with consent proof (``consented_at``) becomes active with that proof recorded;
- a row without becomes pending and gets a confirmation email (or stays pending);
- an address that is suppressed, or already on the list in any state, is never changed:
  re-running a file changes nothing and never reactivates anyone who left;
- one bad row is reported with its line number and reason; the good rows still count.

A big file streams (csv_reading): it is checked against ``NEWSLETTER_IMPORT_MAX_BYTES``
before a byte is read, read through once for file-level faults (so a bad file imports
nothing), then imported in chunks of ``IMPORT_CHUNK`` rows, each checked with a few
set-based queries and committed, so memory stays flat and a crash keeps what was done
(re-running the file skips it). CSV writing shares :func:`safe_cell` (OWASP CSV
injection) from here.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlmodel import Session, col, select

from newsletter.clock import utcnow
from newsletter.errors import ImportProblem, InvalidInput, ProviderError
from newsletter.mail import Mailer
from newsletter.settings import Settings
from subscribers import lifecycle
from subscribers.addresses import email_hash
from subscribers.atomic import insert_or_ignore
from subscribers.csv_reading import (
    EXPORT_COLUMNS,
    IMPORT_COLUMNS,
    Entry,
    Opener,
    Row,
    check_row,
    rows,
    safe_cell,
)
from subscribers.models import (
    ConsentEvent,
    ConsentSource,
    Subscriber,
    SubscriberStatus,
    Suppression,
    SuppressionReason,
)
from subscribers.signup import send_confirmation
from subscribers.suppression import Mail, refusals

__all__ = ["EXPORT_COLUMNS", "IMPORT_COLUMNS", "ImportReport", "RowProblem", "safe_cell"]

S = SubscriberStatus
IMPORT_CHUNK = 1000
_LEFT = {
    S.UNSUBSCRIBED.value: SuppressionReason.UNSUBSCRIBE,
    S.BOUNCED.value: SuppressionReason.HARD_BOUNCE,
    S.COMPLAINED.value: SuppressionReason.COMPLAINT,
}
_SUBSCRIBER: sa.Table = Subscriber.__table__  # type: ignore[attr-defined]
_EVENT: sa.Table = ConsentEvent.__table__  # type: ignore[attr-defined]
_SUPPRESSION: sa.Table = Suppression.__table__  # type: ignore[attr-defined]


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


# ---------------------------------------------------------------- one chunk


@dataclass
class _Run:
    session: Session
    settings: Settings
    mailer: Mailer | None
    now: datetime
    report: ImportReport
    listening: lifecycle.Listening  # issue 16.4: asked once per import


def _earlier_lines(run: _Run, known: Sequence[sa.Row[Any]]) -> dict[str, int]:
    """Of ``known``, those this run created (in an earlier chunk): address -> its line."""
    ours = {s.id: s.email for s in known if s.source == "import" and s.created_at == run.now}
    if not ours:
        return {}
    firsts = run.session.exec(
        select(ConsentEvent.subscriber_id, ConsentEvent.detail).where(
            col(ConsentEvent.subscriber_id).in_(list(ours)),
            col(ConsentEvent.from_status).is_(None),
        )
    )
    return {ours[sid]: int(detail.get("line", 0)) for sid, detail in firsts}


def _sort_out(run: _Run, entries: list[Entry], problems: list[RowProblem]) -> list[Entry]:
    """Count the entries that are on the list, left it or are suppressed; the new ones."""
    session, report = run.session, run.report
    addresses = [e.address for e in entries]
    known = session.exec(
        select(Subscriber.id, Subscriber.email, Subscriber.source, Subscriber.created_at).where(
            col(Subscriber.email).in_(addresses)
        )
    ).all()
    earlier = _earlier_lines(run, known)
    on_list = {s.email for s in known}
    leaving = [e for e in entries if e.address not in on_list and e.status in _LEFT]
    left = {e.address for e in leaving}
    insert_or_ignore(
        session,
        _SUPPRESSION,
        [
            {
                "email_hash": email_hash(e.address),
                "email": e.address,
                "reason": _LEFT[e.status].value,
                "created_at": run.now,
            }
            for e in leaving
        ],
        key=["email_hash"],
    )
    blocked = refusals(session, emails=addresses, mail=Mail.CONFIRMATION)
    fresh = []
    for entry in entries:
        if entry.address in earlier:
            problems.append(
                RowProblem(entry.line, entry.address, f"duplicate of line {earlier[entry.address]}")
            )
        elif entry.address in on_list:
            report.unchanged += 1
        elif entry.address in left or entry.address in blocked:
            report.suppressed += 1
        else:
            fresh.append(entry)
    return fresh


def _store(run: _Run, fresh: list[Entry]) -> list[tuple[Entry, int]]:
    """Insert the new subscribers and their first history rows; (entry, id) of each."""
    blank = Subscriber(email="", source=ConsentSource.IMPORT.value)  # the column defaults
    template = {
        c.name: getattr(blank, c.name)
        for c in _SUBSCRIBER.columns
        # NULL needs no parameter; link_key is left to the column default, one per row.
        if c.name not in ("id", "link_key") and getattr(blank, c.name) is not None
    }
    rows_ = [
        {
            **template,
            "email": e.address,
            "name": e.name,
            "status": (S.ACTIVE if e.consented_at else S.PENDING).value,
            "consent_version": e.consent_version,
            "created_at": run.now,
            "status_changed_at": run.now,
            "confirmed_at": e.consented_at,
            "topics": [],
            "timezone": e.timezone,
        }
        for e in fresh
    ]
    insert_or_ignore(run.session, _SUBSCRIBER, rows_, key=["email"])
    # The ids of the rows this run inserted (a plain executemany is several times faster
    # on PostgreSQL than INSERT ... RETURNING); a sign-up that added an address meanwhile
    # has another source and time.
    ids = dict(
        run.session.exec(
            select(Subscriber.email, Subscriber.id).where(
                col(Subscriber.email).in_([e.address for e in fresh]),
                Subscriber.source == ConsentSource.IMPORT.value,
                Subscriber.created_at == run.now,
            )
        ).all()
    )
    stored = [(e, ids[e.address]) for e in fresh if e.address in ids]
    run.report.unchanged += len(fresh) - len(stored)  # added meanwhile by a sign-up
    if stored:
        run.session.execute(sa.insert(_EVENT), [_first_event(run, e, sid) for e, sid in stored])
    return stored


def _first_event(run: _Run, entry: Entry, subscriber_id: int) -> dict[str, Any]:
    detail: dict[str, Any] = {"line": entry.line}
    if entry.origin:
        detail["original_source"] = entry.origin
    if entry.consented_at is not None:
        detail["consented_at"] = entry.consented_at.isoformat()
    return {
        "subscriber_id": subscriber_id,
        "at": run.now,
        "from_status": None,
        "to_status": (S.ACTIVE if entry.consented_at else S.PENDING).value,
        "reason": "imported with consent proof"
        if entry.consented_at
        else "imported without consent proof",
        "source": ConsentSource.IMPORT.value,
        "ip": entry.ip,
        "user_agent": None,
        "consent_version": entry.consent_version,
        "detail": detail,
    }


def _confirm(run: _Run, pending: list[tuple[Entry, int]], problems: list[RowProblem]) -> None:
    """Send the confirmation emails of the new pending rows (caps and guard apply)."""
    assert run.mailer is not None
    ids = [sid for _, sid in pending]
    loaded = {
        s.id: s for s in run.session.exec(select(Subscriber).where(col(Subscriber.id).in_(ids)))
    }
    for entry, sid in pending:
        try:
            sent = send_confirmation(
                run.session,
                settings=run.settings,
                mailer=run.mailer,
                subscriber=loaded[sid],
                now=run.now,
            )
        except ProviderError as err:
            problems.append(
                RowProblem(
                    entry.line,
                    entry.address,
                    f"imported as pending, but the confirmation email failed: {err}",
                )
            )
            continue
        if sent is not None:
            run.report.confirmations_sent += 1


def _import_chunk(run: _Run, chunk: list[Row], send: bool) -> None:
    problems: list[RowProblem] = []
    entries: list[Entry] = []
    seen: dict[str, int] = {}
    for row in chunk:
        try:
            entries.append(check_row(row, seen=seen, now=run.now))
        except InvalidInput as err:
            problems.append(RowProblem(row.line, row.values.get("email", ""), err.reason))
    stored = _store(run, _sort_out(run, entries, problems)) if entries else []
    pending = [(e, sid) for e, sid in stored if e.consented_at is None]
    if run.listening and stored:
        made = [(sid, e.address, S.ACTIVE if e.consented_at else S.PENDING) for e, sid in stored]
        lifecycle.announce_created(run.session, run.listening, made, at=run.now)
    run.report.active += len(stored) - len(pending)
    run.report.pending += len(pending)
    if send and run.mailer is not None and pending:
        _confirm(run, pending, problems)
    run.report.problems.extend(sorted(problems, key=lambda p: p.line))


# ---------------------------------------------------------------- the file


def _chunks(records: Iterable[Row]) -> Iterator[list[Row]]:
    it = iter(records)
    while chunk := list(islice(it, IMPORT_CHUNK)):
        yield chunk


def _import(
    session: Session,
    *,
    settings: Settings,
    mailer: Mailer | None,
    opener: Opener,
    where: str,
    send_confirmations: bool,
    on_row: Callable[[int, int], None] | None,
    now: datetime | None,
) -> ImportReport:
    # Read through once: a file-level fault anywhere raises before any row is imported.
    total = sum(1 for _ in rows(opener, where=where))
    listening = lifecycle.listening_for_created(session)
    run = _Run(session, settings, mailer, now or utcnow(), ImportReport(rows=total), listening)
    done = 0
    for chunk in _chunks(rows(opener, where=where)):
        _import_chunk(run, chunk, send_confirmations)
        session.commit()
        for _ in chunk:
            done += 1
            if on_row is not None:
                on_row(done, total)
    return run.report


def _too_big(size: int, settings: Settings, where: str) -> ImportProblem:
    return ImportProblem(
        f"the file is {size:,} bytes, over the import limit of {settings.import_max_bytes:,} "
        "bytes (NEWSLETTER_IMPORT_MAX_BYTES)",
        where=where,
    )


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
    """Import rows from ``data``; raises ImportProblem only for a file-level fault (size,
    header, encoding), before anything is imported. Commits every IMPORT_CHUNK rows.

    ``on_row(done, total)`` is called after each row (progress bars).
    """
    if len(data) > settings.import_max_bytes:
        raise _too_big(len(data), settings, where)
    return _import(
        session,
        settings=settings,
        mailer=mailer,
        opener=lambda: io.BytesIO(data),
        where=where,
        send_confirmations=send_confirmations,
        on_row=on_row,
        now=now,
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
    """:func:`import_csv` for a file, streamed; its size is checked before it is opened."""
    where = str(path)

    def opener() -> BinaryIO:
        try:
            return Path(path).open("rb")
        except OSError as err:
            raise ImportProblem(f"cannot read the file: {err.strerror}", where=where) from err

    try:
        size = Path(path).stat().st_size
    except OSError as err:
        raise ImportProblem(f"cannot read the file: {err.strerror}", where=where) from err
    if size > settings.import_max_bytes:
        raise _too_big(size, settings, where)
    return _import(
        session,
        settings=settings,
        mailer=mailer,
        opener=opener,
        where=where,
        send_confirmations=send_confirmations,
        on_row=on_row,
        now=None,
    )
