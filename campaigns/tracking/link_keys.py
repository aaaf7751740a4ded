"""A reader's link key, read for the first click of that reader: one connection, kept.

Most clicks of a newsletter are a reader's first (people click one or two links), and
each needs the reader's link key before its redirect can be answered. Through the pool,
a read on PostgreSQL is three round trips (the pool's pre-ping, the SELECT, the rollback
on return) and SQLAlchemy's execution path; here it is one fixed statement on one DBAPI
connection kept for the purpose (autocommit on PostgreSQL; on SQLite the read's
transaction is ended at once, so no snapshot is held against checkpoints). A connection
that fails is dropped and a fresh one tried once. Reads are serialised by a lock: each
takes a fraction of a millisecond, far below the rates of first clicks a send brings.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

from sqlalchemy.engine import Engine

from subscribers.models import Subscriber

_TABLE = Subscriber.__table__.name  # type: ignore[attr-defined]


class LinkKeyReader:
    """``read(subscriber_id)``: the subscriber's link key, or None when no such row."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        marker = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        self._sql = f"SELECT link_key FROM {_TABLE} WHERE id = {marker}"
        self._postgres = engine.dialect.name == "postgresql"
        self._errors = engine.dialect.loaded_dbapi.Error
        self._conn: Any = None  # SQLAlchemy's pooled DBAPI connection, kept checked out
        self._lock = threading.Lock()

    def read(self, subscriber_id: int) -> str | None:
        """Raises the driver's error when even a fresh connection fails."""
        with self._lock:
            for attempt in (1, 2):
                try:
                    return self._read(subscriber_id)
                except self._errors:
                    self._drop()
                    if attempt == 2:
                        raise
        return None  # pragma: no cover - the loop returns or raises

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _read(self, subscriber_id: int) -> str | None:
        if self._conn is None:
            self._conn = self.engine.raw_connection()
            if self._postgres:
                self._conn.driver_connection.autocommit = True
        cursor = self._conn.cursor()
        try:
            cursor.execute(self._sql, (subscriber_id,))
            row = cursor.fetchone()
        finally:
            cursor.close()
        if not self._postgres:
            self._conn.rollback()  # SQLite: end the read now (no round trip)
        return row[0] if row else None

    def _drop(self) -> None:
        """Close the kept connection for good (it never goes back to the pool in its
        autocommit state)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.invalidate()
