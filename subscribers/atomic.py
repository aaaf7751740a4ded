"""Atomic row operations for the races of the subscriber room.

Two requests for one reader (a confirm click and an unsubscribe, two sign-ups of one
address) may run at once, on SQLite and PostgreSQL alike. Three tools keep them from
undoing each other:

- :func:`lock_subscriber` takes the row before an act decides anything, so the act sees
  the latest state and a concurrent act waits for it;
- :func:`set_status_if` changes a status only by compare-and-set
  (``UPDATE ... WHERE status = <the status read>``), which refuses to move a row from a
  state it has already left, even for a caller that did not lock;
- :func:`insert_or_ignore` / :func:`add_new` (``INSERT ... ON CONFLICT (key) DO
  NOTHING``, SQLite 3.24+, PostgreSQL 9.5+) let two requests add the same address at once
  without an IntegrityError: the loser's transaction stays usable and it reads the
  winner's row. (A savepoint would do on PostgreSQL, but pysqlite's savepoints are
  unreliable when nothing else has been written yet: the RELEASE commits.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session, col, select, update

from newsletter import db
from newsletter.errors import NotFound
from subscribers.models import Subscriber, SubscriberStatus

_SUBSCRIBER: sa.Table = Subscriber.__table__  # type: ignore[attr-defined]


def dialect_name(session: Session) -> str:
    return session.get_bind().dialect.name


def insert_or_ignore(
    session: Session,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: Sequence[str],
    returning: Sequence[str] = (),
) -> list[sa.Row[Any]]:
    """Insert ``rows``, skipping those whose unique ``key`` is already taken; returns the
    ``returning`` columns of the rows actually inserted (in no particular order)."""
    if not rows:
        return []
    name = dialect_name(session)
    if name == "postgresql":
        statement: Any = postgresql.insert(table)
    elif name == "sqlite":
        statement = sqlite.insert(table)
    else:
        raise ValueError(f"unsupported database dialect {name!r}")
    statement = statement.on_conflict_do_nothing(index_elements=list(key))
    if returning:
        statement = statement.returning(*(table.c[c] for c in returning))
        return list(session.execute(statement, list(rows)).all())
    session.execute(statement, list(rows))
    return []


def set_status_if(
    session: Session,
    *,
    subscriber_id: int,
    expected: SubscriberStatus,
    new: SubscriberStatus,
    at: datetime,
) -> bool:
    """Compare-and-set: move the row from ``expected`` to ``new`` (``status_changed_at`` =
    ``at``) only if it still holds ``expected``; True when it did.

    One ``UPDATE subscriber SET status = :new ... WHERE id = :id AND status = :expected``:
    atomic on both databases (PostgreSQL re-checks the WHERE on the latest row version
    after any lock wait; SQLite runs one writer at a time). On success the row stays
    locked by this transaction until it ends. Does not touch the ORM object: see
    :func:`subscribers.lifecycle.transition`.
    """
    result = session.execute(
        update(Subscriber)
        .where(col(Subscriber.id) == subscriber_id, col(Subscriber.status) == expected.value)
        .values(status=new.value, status_changed_at=at)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def add_new(session: Session, subscriber: Subscriber) -> bool:
    """Insert a new (transient) subscriber unless its address is already on the list;
    True when inserted, and ``subscriber`` is then persistent in ``session`` with its id.

    False means a concurrent sign-up of the same address got there first: no
    IntegrityError, no 500, and the transaction stays usable to read that row.
    """
    values = {c.name: getattr(subscriber, c.name) for c in _SUBSCRIBER.columns if c.name != "id"}
    inserted = insert_or_ignore(session, _SUBSCRIBER, [values], key=["email"], returning=["id"])
    if not inserted:
        return False
    subscriber.id = inserted[0].id
    make_transient_to_detached(subscriber)
    session.add(subscriber)
    return True


def lock_subscriber(session: Session, *, subscriber_id: int) -> Subscriber:
    """The subscriber, read fresh and held until the transaction ends; raises NotFound.

    PostgreSQL: ``SELECT ... FOR UPDATE`` locks the row. SQLite has no row locks but runs
    one writer at a time: a write that changes nothing (``status = status``) first takes
    the database's write lock, so the read after it is the latest and stays so. Either
    way a concurrent act on the same reader waits here and then sees this one's result.
    """
    if dialect_name(session) == "sqlite":
        db.begin_write(session)
        session.execute(
            update(Subscriber)
            .where(col(Subscriber.id) == subscriber_id)
            .values(status=Subscriber.status)
            .execution_options(synchronize_session=False)
        )
    subscriber = session.exec(
        select(Subscriber)
        .where(Subscriber.id == subscriber_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).first()
    if subscriber is None:
        raise NotFound(f"no subscriber with id {subscriber_id}")
    return subscriber
