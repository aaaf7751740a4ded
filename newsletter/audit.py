"""The audit log: who changed what in the console or through the API, when, and from what
to what (issue 14). Append-only: nothing here updates or deletes a row.

``actor`` is a console user's email, ``api-token:<name>`` for the API, or ``cli``;
``action`` a dotted verb (``subscriber.add``, ``campaign.schedule``, ``user.create``);
``before`` and ``after`` are small JSON objects of the fields that changed, or None
where a change has no meaningful "before" (a creation) or "after" (an erasure). Never
put a password, a token or a hash in them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import JSON, Column, Field, Session, SQLModel, col, select

from newsletter.clock import utcnow
from newsletter.db import UTCDateTime

MAX_PAGE = 500


class AuditEntry(SQLModel, table=True):
    """One change, as it was made."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    actor: str = Field(max_length=200)
    action: str = Field(max_length=100)
    target_type: str = Field(max_length=50)
    target_id: str = Field(max_length=320)
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class AuditPage(BaseModel):
    """A page of the log, newest first; ``total`` counts every entry."""

    entries: list[AuditEntry]
    total: int
    limit: int
    offset: int


def record(
    session: Session,
    actor: str,
    action: str,
    target_type: str,
    target_id: object,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add one entry in the caller's transaction (so it is kept exactly when the change
    is). ``target_id`` is stored as text: an id, an address, a campaign number."""
    entry = AuditEntry(
        actor=actor[:200],
        action=action[:100],
        target_type=target_type[:50],
        target_id=str(target_id)[:320],
        before=_jsonable(before),
        after=_jsonable(after),
    )
    session.add(entry)
    session.flush()
    return entry


def _jsonable(values: dict[str, Any] | None) -> dict[str, Any] | None:
    """Times as ISO 8601 text, enums as their values: what the JSON column can hold."""
    if values is None:
        return None
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, datetime):
            out[key] = value.isoformat()
        elif hasattr(value, "value") and isinstance(value.value, str | int):
            out[key] = value.value
        else:
            out[key] = value
    return out


def recent(session: Session, limit: int = 50, offset: int = 0) -> AuditPage:
    """Entries newest first, ``limit`` (1..500) from ``offset``."""
    limit = max(1, min(limit, MAX_PAGE))
    offset = max(0, offset)
    query = (
        select(AuditEntry)
        .order_by(col(AuditEntry.at).desc(), col(AuditEntry.id).desc())
        .limit(limit)
        .offset(offset)
    )
    total = session.exec(select(sa.func.count()).select_from(AuditEntry)).one()
    return AuditPage(
        entries=list(session.exec(query).all()), total=int(total), limit=limit, offset=offset
    )
