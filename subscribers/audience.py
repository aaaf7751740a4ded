"""Who gets an issue: one set-based query, so a million-row list never enters Python.

Eligible means active, not paused on the send date, not on the suppression list, and,
for a subscriber who chose topics, at least one chosen topic among the issue's
categories. Topics are a JSON list, which each database queries its own way (SQLite
``json_each``; PostgreSQL ``jsonb ?|``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import Select

from subscribers.models import Subscriber, SubscriberStatus, Suppression

_subscriber = Subscriber.__table__
_suppression = Suppression.__table__


def _topic_filter(dialect: str, topics: Sequence[str]) -> sa.ColumnElement[bool]:
    """True when the subscriber chose no topics or one of ``topics``."""
    column = _subscriber.c.topics
    if dialect == "postgresql":
        as_jsonb = sa.cast(column, postgresql.JSONB)
        return sa.or_(
            sa.func.jsonb_array_length(as_jsonb) == 0,
            as_jsonb.op("?|")(sa.cast(sa.literal(list(topics)), postgresql.ARRAY(sa.Text))),
        )
    if dialect == "sqlite":
        chosen = sa.func.json_each(column).table_valued("value")
        return sa.or_(
            sa.func.json_array_length(column) == 0,
            sa.exists(sa.select(1).select_from(chosen).where(chosen.c.value.in_(list(topics)))),
        )
    raise ValueError(f"unsupported database dialect {dialect!r}")


def eligible_subscribers(*, dialect: str, topics: Sequence[str] | None, on_date: date) -> Select:
    """SELECT of the ids of subscribers who should receive an issue on ``on_date``.

    ``topics`` are the issue's categories; None or empty means no topic filtering.
    """
    suppressed = sa.exists(sa.select(1).where(_suppression.c.email == _subscriber.c.email))
    query = sa.select(_subscriber.c.id).where(
        _subscriber.c.status == SubscriberStatus.ACTIVE.value,
        sa.or_(_subscriber.c.paused_until.is_(None), _subscriber.c.paused_until <= on_date),
        ~suppressed,
    )
    if topics:
        query = query.where(_topic_filter(dialect, topics))
    return query
