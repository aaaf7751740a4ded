"""What events do to their delivery rows: counters, first times, bounce and stop flags.

Every change is order-free, so a chunk's events are folded per delivery in Python and
written by one ``UPDATE delivery ... FROM`` the folded rows (``rowsets``), in SQL
arithmetic (``open_count = open_count + r.opens``): counts are increments of distinct
events, so concurrent webhook requests never lose one; times keep the earliest value
(``sent_at`` keeps the one we recorded, else the first ``processed``); a hard bounce
outranks a soft one and is never downgraded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from campaigns.models import Delivery
from campaigns.tracking.events import EventKind, NormalisedEvent
from campaigns.tracking.rowsets import RowSet

K = EventKind
_delivery = Delivery.__table__  # type: ignore[attr-defined]
_TIMES = ("sent_at", "delivered_at", "opened_at", "clicked_at")
_COUNTS = {"opens": "open_count", "machine_opens": "machine_open_count", "clicks": "click_count"}
_FLAGS = ("complained", "unsubscribed")


@dataclass
class Changes:
    """One delivery's changes from the events of a chunk, in arrival order."""

    sent_at: datetime | None = None  # the first ``processed``: kept only if none recorded
    delivered_at: datetime | None = None
    opened_at: datetime | None = None
    clicked_at: datetime | None = None
    opens: int = 0
    machine_opens: int = 0
    clicks: int = 0
    bounce: str | None = None  # "hard" | "soft"
    complained: bool = False
    unsubscribed: bool = False

    def add(self, event: NormalisedEvent) -> None:
        kind, at = event.kind, event.occurred_at
        if kind is K.QUEUED:
            self.sent_at = self.sent_at or at
        elif kind is K.DELIVERED:
            self.delivered_at = _earliest(self.delivered_at, at)
        elif kind is K.OPENED and event.machine:
            self.machine_opens += 1
        elif kind is K.OPENED:
            self.opens += 1
            self.opened_at = _earliest(self.opened_at, at)
        elif kind is K.CLICKED:
            self.clicks += 1
            self.clicked_at = _earliest(self.clicked_at, at)
        elif kind is K.BOUNCED:
            self.bounce = "hard" if self.bounce == "hard" or not event.soft_bounce else "soft"
        elif kind is K.COMPLAINED:
            self.complained = True
        elif kind is K.UNSUBSCRIBED:
            self.unsubscribed = True

    def changes_anything(self) -> bool:
        return self != NOTHING

    def row(self, delivery_id: int) -> dict[str, Any]:
        return {"id": delivery_id, **self.__dict__}


NOTHING = Changes()


def _earliest(current: datetime | None, at: datetime) -> datetime:
    return at if current is None or at < current else current


def apply_changes(session: Session, events: Iterable[tuple[int, NormalisedEvent]]) -> int:
    """Fold (delivery id, event) pairs per delivery and write them; returns rows changed."""
    changes: dict[int, Changes] = {}
    for delivery_id, event in events:
        change = changes.get(delivery_id)
        if change is None:
            change = changes[delivery_id] = Changes()
        change.add(event)
    rows = [c.row(d) for d, c in changes.items() if c.changes_anything()]
    if not rows:
        return 0
    connection = session.connection()
    rowset = _rowset(connection.dialect)
    return connection.execute(_update(rowset), rowset.params(rows)).rowcount


def _rowset(dialect: Any) -> RowSet:
    time_type = _delivery.c.sent_at.type
    columns: dict[str, Any] = {"id": sa.Integer()}
    columns.update(dict.fromkeys(_TIMES, time_type))
    columns.update(dict.fromkeys(_COUNTS, sa.Integer()))
    columns["bounce"] = sa.String()
    columns.update(dict.fromkeys(_FLAGS, sa.Boolean()))
    return RowSet(dialect, "changes", columns)


def _update(rowset: RowSet) -> Any:
    d, r = _delivery.c, rowset.c
    values: dict[str, Any] = {"sent_at": sa.func.coalesce(d.sent_at, r.sent_at)}
    for name in _TIMES[1:]:  # the earliest
        values[name] = sa.case(
            (sa.and_(r[name].is_not(None), sa.or_(d[name].is_(None), d[name] > r[name])), r[name]),
            else_=d[name],
        )
    for name, column in _COUNTS.items():
        values[column] = d[column] + r[name]
    values["bounce"] = sa.case(  # never downgrade a hard bounce
        (r.bounce == "hard", "hard"),
        (sa.and_(r.bounce == "soft", sa.or_(d.bounce.is_(None), d.bounce != "hard")), "soft"),
        else_=d.bounce,
    )
    for name in _FLAGS:
        values[name] = sa.or_(d[name], r[name])
    return sa.update(_delivery).where(d.id == r.id).values(**values)
