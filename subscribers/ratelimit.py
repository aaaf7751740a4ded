"""Per-key sliding-window limits kept in the database (table ``rate_hit``).

One count for every worker and instance that shares the database: a limit kept in process
memory lets each uvicorn worker, and each machine, allow its own ``limit``. Each allowed
hit is a row (``at``, seconds since the epoch); a hit is allowed while fewer than
``limit`` rows of its key fall inside the window, and a refused hit leaves no row, so
hammering does not extend the block. Keys are stored as a keyed hash (an IP address is
personal data; the limit only needs to tell keys apart).

Concurrent hits of one key are counted one after another: PostgreSQL takes a
transaction-scoped advisory lock on the key; SQLite's first statement is the insert,
which takes the database's write lock for the rest of the transaction.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel

from newsletter import db
from newsletter.errors import RateLimited


class RateHit(SQLModel, table=True):
    """One allowed hit of a limited action; deleted once it leaves every window."""

    __tablename__ = "rate_hit"
    __table_args__ = (sa.Index("ix_rate_hit_bucket_key_at", "bucket", "key", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    bucket: str = Field(max_length=40)  # what is limited: "signup", "my-data"...
    key: str = Field(max_length=64)  # keyed sha256 of who: an IP address, a subscriber id
    at: float = Field(sa_type=sa.Float)  # seconds since the epoch
    expires_at: float = Field(sa_type=sa.Float, index=True)  # at + window: then it is pruned


def _lock_id(bucket: str, key: str) -> int:
    """A signed 64-bit number for ``pg_advisory_xact_lock``, from the hashed key."""
    digest = hashlib.sha256(f"rate_hit:{bucket}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class RateLimiter:
    """At most ``limit`` hits per ``window`` seconds for each key of one ``bucket``.

    ``salt`` keys the stored hash (the service's secret key, so stored keys cannot be
    reversed by trying every IPv4 address); ``clock`` gives seconds since the epoch.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        limit: int,
        window: float,
        bucket: str = "signup",
        salt: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.limit = limit
        self.window = window
        self.bucket = bucket
        self._salt = salt.encode()
        self._clock = clock

    def _stored_key(self, key: str) -> str:
        return hmac.new(self._salt, f"{self.bucket}:{key}".encode(), hashlib.sha256).hexdigest()

    def hit(self, key: str) -> float | None:
        """Count one hit of ``key``; None when allowed, else the seconds until the next
        one is allowed. Raises SQLAlchemy's DBAPIError when the database fails."""
        now = self._clock()
        stored = self._stored_key(key)
        table = RateHit.__table__
        in_window = sa.and_(
            table.c.bucket == self.bucket, table.c.key == stored, table.c.at > now - self.window
        )
        with db.session_scope(self.engine) as session:
            if session.get_bind().dialect.name == "postgresql":
                session.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:id)"),
                    {"id": _lock_id(self.bucket, stored)},
                )
            mine = session.execute(
                sa.insert(table)
                .values(bucket=self.bucket, key=stored, at=now, expires_at=now + self.window)
                .returning(table.c.id)
            ).scalar_one()
            count, oldest = session.execute(
                sa.select(sa.func.count(), sa.func.min(table.c.at)).where(
                    in_window, table.c.id != mine
                )
            ).one()
            if count >= self.limit:
                session.execute(sa.delete(table).where(table.c.id == mine))
                return max(oldest + self.window - now, 0.0)
            session.execute(sa.delete(table).where(table.c.expires_at <= now))
            return None

    def wait(self, key: str) -> float | None:
        """Without counting a hit: None when ``key`` may go on now, else the seconds until
        it may. For limits that count only failures (console sign-ins): ask first, and
        :meth:`hit` when the try failed."""
        now = self._clock()
        table = RateHit.__table__
        with db.session_scope(self.engine) as session:
            count, oldest = session.execute(
                sa.select(sa.func.count(), sa.func.min(table.c.at)).where(
                    table.c.bucket == self.bucket,
                    table.c.key == self._stored_key(key),
                    table.c.at > now - self.window,
                )
            ).one()
        if count >= self.limit:
            return max(oldest + self.window - now, 0.0)
        return None

    def check(self, key: str, *, what: str) -> None:
        """Count one hit; RateLimited (with ``retry_after``, seconds) when over the limit."""
        wait = self.hit(key)
        if wait is not None:
            raise RateLimited(f"too many {what}", retry_after=wait)
