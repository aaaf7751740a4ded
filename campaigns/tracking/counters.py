"""What events do to their delivery rows: counters, first times, bounce and stop flags.

Every change is order-free, so a chunk's events are folded per delivery in Python and
written by one ``UPDATE delivery ... FROM`` the folded rows (``rowsets``) per shape
(the set of columns a row changes: delivered only, opened, clicked...), in SQL
arithmetic (``open_count = open_count + r.opens``): counts are increments of distinct
events, so concurrent webhook requests never lose one; times keep the earliest value
(``sent_at`` keeps the one we recorded, else the first ``processed``); a hard bounce
outranks a soft one and is never downgraded.
"""

from __future__ import annotations

from collections import defaultdict
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
_COUNTS = {
    "opens": "open_count",
    "machine_opens": "machine_open_count",
    "clicks": "click_count",
    "machine_clicks": "machine_click_count",  # issue 15: a scanner's clicks, apart
}
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
    machine_clicks: int = 0
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
        elif kind is K.CLICKED and event.machine:
            self.machine_clicks += 1
        elif kind is K.CLICKED:
            self.clicks += 1
            self.clicked_at = _earliest(self.clicked_at, at)
        elif kind is K.BOUNCED:
            self.bounce = "hard" if self.bounce == "hard" or not event.soft_bounce else "soft"
        elif kind is K.COMPLAINED:
            self.complained = True
        elif kind is K.UNSUBSCRIBED:
            self.unsubscribed = True

    def row(self, delivery_id: int) -> tuple[tuple[str, ...], dict[str, Any]]:
        """(the fields it changes, the row: ``id`` and those fields)."""
        row = {n: v for n, v in self.__dict__.items() if v != _DEFAULTS[n]}
        return tuple(row), {"id": delivery_id, **row}


_DEFAULTS = Changes().__dict__


def _earliest(current: datetime | None, at: datetime) -> datetime:
    return at if current is None or at < current else current


def apply_changes(session: Session, events: Iterable[tuple[int, NormalisedEvent]]) -> int:
    """Fold (delivery id, event) pairs per delivery and write them; returns rows written."""
    changes: dict[int, Changes] = {}
    for delivery_id, event in events:
        change = changes.get(delivery_id)
        if change is None:
            change = changes[delivery_id] = Changes()
        change.add(event)
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for delivery_id, change in changes.items():
        shape, row = change.row(delivery_id)
        if shape:
            by_shape[shape].append(row)
    connection = session.connection()
    for shape, rows in by_shape.items():
        rowset = _rowset(connection.dialect, shape)
        rowset.execute(connection, _update(rowset, shape), rows)
    return sum(len(rows) for rows in by_shape.values())


def _rowset(dialect: Any, shape: tuple[str, ...]) -> RowSet:
    """The rows of one shape: ``id`` and the fields they change (fewer columns to unpack)."""
    types = {n: _delivery.c.sent_at.type for n in _TIMES}
    types.update(dict.fromkeys(_COUNTS, sa.Integer()))
    types.update(bounce=sa.String(), **dict.fromkeys(_FLAGS, sa.Boolean()))
    return RowSet(dialect, "changes", {"id": sa.Integer(), **{n: types[n] for n in shape}})


def _update(rowset: RowSet, shape: tuple[str, ...]) -> Any:
    """``UPDATE delivery ... FROM`` the rows, setting only the columns the shape changes."""
    d, r = _delivery.c, rowset.c
    values: dict[str, Any] = {}
    for name in shape:
        if name == "sent_at":
            values[name] = sa.func.coalesce(d.sent_at, r.sent_at)
        elif name in _TIMES:  # the earliest
            values[name] = sa.case(
                (sa.or_(d[name].is_(None), d[name] > r[name]), r[name]), else_=d[name]
            )
        elif name in _COUNTS:
            values[_COUNTS[name]] = d[_COUNTS[name]] + r[name]
        elif name == "bounce":  # never downgrade a hard bounce
            values[name] = sa.case((d.bounce == "hard", "hard"), else_=r.bounce)
        else:  # complained, unsubscribed
            values[name] = sa.true()
    return sa.update(_delivery).where(d.id == r.id).values(**values)
