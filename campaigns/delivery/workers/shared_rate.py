"""One provider rate limit for every worker: a row per provider in ``send_rate_bucket``.

``send_rate_per_second`` is the provider's limit (SendGrid's plan, an SMTP relay's
agreement), so with several workers it must hold for all of them together, not per
process. The row keeps the next instant (PostgreSQL's clock, epoch seconds) at which the
limit is free. Taking ``n`` messages is one atomic UPDATE: the batch starts at
``max(next_free, now)`` and moves ``next_free`` on by ``n / rate``; the caller sleeps until
its start. The row lock serialises the takers, and every worker reads the same clock, so
over any window of T seconds all workers together send at most ``rate * T`` messages plus
one batch (a batch goes out at once). Nothing accumulates while idle: no burst after a
pause. Inline sends keep their per-process pacer (campaigns.delivery.throttle).
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel


class SendRateBucket(SQLModel, table=True):
    """The next free instant of one provider's shared rate limit (migration 0010a)."""

    __tablename__ = "send_rate_bucket"
    name: str = Field(primary_key=True, max_length=40)
    next_free: float  # epoch seconds, PostgreSQL's clock


_TAKE = sa.text(
    "UPDATE send_rate_bucket "
    "SET next_free = GREATEST(next_free, EXTRACT(EPOCH FROM clock_timestamp()) + :delay) + :cost "
    "WHERE name = :name "
    "RETURNING next_free - :cost - EXTRACT(EPOCH FROM clock_timestamp())"
)
_ADD = sa.text(
    "INSERT INTO send_rate_bucket (name, next_free) VALUES (:name, 0) ON CONFLICT DO NOTHING"
)


class SharedPacer:
    """The send loop's pacer (``wait(count)``), shared through the database."""

    def __init__(self, engine: Engine, *, name: str, rate: float) -> None:
        self.engine = engine
        self.name = name
        self.rate = rate
        if rate > 0:
            with engine.begin() as connection:
                connection.execute(_ADD, {"name": name})

    def reserve(self, count: int, *, delay: float = 0.0) -> float:
        """Take ``count`` messages' worth of the limit, starting no sooner than ``delay``
        seconds from now (a retry's Retry-After); seconds to wait before sending."""
        params = {"name": self.name, "cost": count / self.rate, "delay": max(0.0, delay)}
        with self.engine.begin() as connection:
            wait = connection.execute(_TAKE, params)
            return max(0.0, float(wait.scalar_one()))

    def wait(self, count: int, *, not_before: float = 0.0) -> None:
        """Sleep until ``count`` more messages fit the limit of all workers together, in a
        slot that starts no sooner than ``not_before`` (time.monotonic()): a retry held back
        by a 429's Retry-After takes the slot it is sent in, not an earlier one, so it
        never lands on top of another worker's slot."""
        if self.rate > 0:
            time.sleep(self.reserve(count, delay=not_before - time.monotonic()))
