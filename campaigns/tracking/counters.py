"""What events do to their delivery rows: counters, first times, bounce and stop flags.

Every change is order-free, so a chunk's events are folded per delivery in Python and
written with one UPDATE per row, in SQL arithmetic (``open_count = open_count + :n``):
counts are increments of distinct events, so concurrent webhook requests never lose one;
times keep the earliest value (``sent_at`` keeps the one we recorded, else the first
``processed``); a hard bounce outranks a soft one and is never downgraded. Rows that
change the same columns share one statement, run as one executemany.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from campaigns.models import Delivery
from campaigns.tracking.events import EventKind, NormalisedEvent

K = EventKind
_delivery = Delivery.__table__  # type: ignore[attr-defined]
_EARLIEST = ("delivered_at", "opened_at", "clicked_at")
_COUNTS = ("open_count", "machine_open_count", "click_count")
_FLAGS = ("complained", "unsubscribed")


@dataclass
class Changes:
    """One delivery's changes from the events of a chunk, in arrival order."""

    sent_at: datetime | None = None  # the first ``processed``: kept only if none recorded
    earliest: dict[str, datetime] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    bounce: str | None = None  # "hard" | "soft"
    flags: set[str] = field(default_factory=set)

    def add(self, event: NormalisedEvent) -> None:
        kind, at = event.kind, event.occurred_at
        if kind is K.QUEUED:
            self.sent_at = self.sent_at or at
        elif kind is K.DELIVERED:
            self._earliest("delivered_at", at)
        elif kind is K.OPENED and event.machine:
            self._count("machine_open_count")
        elif kind is K.OPENED:
            self._count("open_count")
            self._earliest("opened_at", at)
        elif kind is K.CLICKED:
            self._count("click_count")
            self._earliest("clicked_at", at)
        elif kind is K.BOUNCED:
            self.bounce = "hard" if self.bounce == "hard" or not event.soft_bounce else "soft"
        elif kind is K.COMPLAINED:
            self.flags.add("complained")
        elif kind is K.UNSUBSCRIBED:
            self.flags.add("unsubscribed")

    def _earliest(self, name: str, at: datetime) -> None:
        current = self.earliest.get(name)
        if current is None or at < current:
            self.earliest[name] = at

    def _count(self, name: str) -> None:
        self.counts[name] = self.counts.get(name, 0) + 1

    def shape(self) -> tuple[str, ...]:
        """The columns this changes: rows of one shape share a statement."""
        names = ["sent_at"] if self.sent_at is not None else []
        names += [n for n in _EARLIEST if n in self.earliest]
        names += [n for n in _COUNTS if n in self.counts]
        if self.bounce is not None:
            names.append(f"bounce_{self.bounce}")
        names += [n for n in _FLAGS if n in self.flags]
        return tuple(names)

    def params(self, delivery_id: int) -> dict[str, Any]:
        values: dict[str, Any] = {"did": delivery_id}
        values.update({f"p_{n}": at for n, at in self.earliest.items()})
        values.update({f"p_{n}": count for n, count in self.counts.items()})
        if self.sent_at is not None:
            values["p_sent_at"] = self.sent_at
        return values


def apply_changes(session: Session, events: Iterable[tuple[int, NormalisedEvent]]) -> int:
    """Fold (delivery id, event) pairs per delivery and write them; returns rows written."""
    changes: dict[int, Changes] = defaultdict(Changes)
    for delivery_id, event in events:
        changes[delivery_id].add(event)
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for delivery_id, change in changes.items():
        shape = change.shape()
        if shape:
            by_shape[shape].append(change.params(delivery_id))
    connection = session.connection()
    for shape, rows in by_shape.items():
        connection.execute(_statement(shape), rows)
    return sum(len(rows) for rows in by_shape.values())


_statements: dict[tuple[str, ...], Any] = {}


def _statement(shape: tuple[str, ...]) -> Any:
    """``UPDATE delivery SET <the shape's columns> WHERE id = :did``, built once per shape."""
    statement = _statements.get(shape)
    if statement is None:
        statement = _statements[shape] = (
            sa.update(_delivery)
            .where(_delivery.c.id == sa.bindparam("did"))
            .values(**dict(_assignment(name) for name in shape))
        )
    return statement


def _assignment(name: str) -> tuple[str, Any]:
    c = _delivery.c
    if name == "sent_at":
        return name, sa.func.coalesce(c.sent_at, sa.bindparam("p_sent_at", type_=c.sent_at.type))
    if name in _EARLIEST:
        column = c[name]
        value = sa.bindparam(f"p_{name}", type_=column.type)
        return name, sa.case((column.is_(None), value), (column > value, value), else_=column)
    if name in _COUNTS:
        return name, c[name] + sa.bindparam(f"p_{name}", type_=sa.Integer)
    if name == "bounce_hard":
        return "bounce", sa.literal("hard")
    if name == "bounce_soft":  # never downgrade a hard bounce
        return "bounce", sa.case((c.bounce == "hard", "hard"), else_="soft")
    return name, sa.true()  # complained, unsubscribed
