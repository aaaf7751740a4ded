"""Export of subscribers with their full consent history, as CSV or JSON.

The CSV columns start with the import columns, so an export re-imports elsewhere (see
csv_io): active rows keep their consent proof, people who left stay suppressed. Every CSV
cell goes through :func:`subscribers.csv_reading.safe_cell`: a name like ``=HYPERLINK(...)``
typed into the sign-up form must not run when the file is opened in a spreadsheet
(import undoes the quote).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime
from typing import Any, Literal

from sqlmodel import Session, col, select

from subscribers.csv_reading import EXPORT_COLUMNS, safe_cell
from subscribers.models import ConsentEvent, Subscriber, SubscriberStatus

ExportFormat = Literal["csv", "json"]


def iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def event_dict(event: ConsentEvent) -> dict[str, Any]:
    return {
        "at": iso(event.at),
        "from_status": event.from_status,
        "to_status": event.to_status,
        "reason": event.reason,
        "source": event.source,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "consent_version": event.consent_version,
        "detail": event.detail,
    }


def subscriber_records(
    session: Session, *, status: SubscriberStatus | None = None
) -> list[dict[str, Any]]:
    """Every subscriber with its consent history, oldest first."""
    query = select(Subscriber).order_by(col(Subscriber.id))
    if status is not None:
        query = query.where(Subscriber.status == status.value)
    events: dict[int, list[ConsentEvent]] = {}
    for event in session.exec(
        select(ConsentEvent).order_by(col(ConsentEvent.at), col(ConsentEvent.id))
    ):
        events.setdefault(event.subscriber_id, []).append(event)
    records = []
    for sub in session.exec(query):
        history = events.get(sub.id or 0, [])
        proof_ip = next((e.ip for e in reversed(history) if e.ip), None)
        records.append(
            {
                "id": sub.id,
                "email": sub.email,
                "name": sub.name,
                "status": sub.status,
                "consented_at": iso(sub.confirmed_at),
                "source": sub.source,
                "ip": proof_ip,
                "consent_version": sub.consent_version,
                "created_at": iso(sub.created_at),
                "topics": list(sub.topics or []),
                "paused_until": iso(sub.paused_until),
                "timezone": sub.timezone,
                "history": [event_dict(e) for e in history],
            }
        )
    return records


def export_subscribers(
    session: Session, *, fmt: ExportFormat = "csv", status: SubscriberStatus | None = None
) -> str:
    records = subscriber_records(session, status=status)
    if fmt == "json":
        return json.dumps(records, indent=2, ensure_ascii=False) + "\n"
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=list(EXPORT_COLUMNS), lineterminator="\r\n")
    writer.writeheader()
    for record in records:
        row = {k: record[k] for k in EXPORT_COLUMNS if k not in ("topics", "history")}
        row["topics"] = " ".join(record["topics"])
        row["history"] = json.dumps(record["history"], ensure_ascii=False)
        writer.writerow({k: safe_cell(v) for k, v in row.items()})
    return buffer.getvalue()
