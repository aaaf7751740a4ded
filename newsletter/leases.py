"""Leases, and leader election on them: one scheduler acts, the others stand by.

A lease is one row (``lease.name``) saying who holds it until when: ``scheduler`` for the
active instance, ``send:<id>`` for the one sender of a campaign. Taking or renewing it is a
single ``UPDATE ... WHERE expires_at < now OR holder = me`` (or the first ``INSERT``), so
on PostgreSQL and SQLite alike exactly one caller wins, without advisory locks. A holder
renews well before expiry; when it dies, a standby takes over once ``expires_at`` passes,
or at once when the holder was a process of this host that is gone (holder strings carry
host, pid and the process's start time: :func:`dead_on_this_host`).

:class:`Leader` is that election as a loop the scheduler service drives: it says when
this instance starts and stops leading; what leading means (running APScheduler) is the
driver's business.

Times come from the caller's clock (``now``), so hosts sharing a database need NTP; a
skew of a few seconds only shortens or lengthens the take-over by that much.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from newsletter.clock import as_utc, utcnow
from newsletter.errors import SchedulerError
from newsletter.holders import dead_on_this_host, instance_id
from newsletter.models import Lease

SCHEDULER_LEASE = "scheduler"
# A leader that could not renew for this share of the lease stops before it can expire.
RENEW_DEADLINE = 0.8
log = logging.getLogger("newsletter.leases")
_table = Lease.__table__  # type: ignore[attr-defined]

# An engine (a transaction of its own) or a connection already in the caller's transaction
# (the send loop renews its lease in the same transaction that records a batch; on SQLite
# a second connection would wait for that transaction's write lock).
Bind = Engine | Connection


def _transaction(bind: Bind) -> contextlib.AbstractContextManager[Connection]:
    return bind.begin() if isinstance(bind, Engine) else contextlib.nullcontext(bind)


def _reading(bind: Bind) -> contextlib.AbstractContextManager[Connection]:
    return bind.connect() if isinstance(bind, Engine) else contextlib.nullcontext(bind)


@dataclass(frozen=True)
class LeaseInfo:
    name: str
    holder: str
    acquired_at: datetime
    expires_at: datetime

    def live(self, now: datetime) -> bool:
        return self.expires_at > now


def acquire(
    bind: Bind,
    *,
    holder: str,
    ttl_seconds: float,
    name: str = SCHEDULER_LEASE,
    now: datetime | None = None,
) -> bool:
    """Take or renew the lease for ``ttl_seconds``; False when someone else holds it."""
    now = as_utc(now or utcnow())
    expires = now + timedelta(seconds=ttl_seconds)
    with _transaction(bind) as connection:
        result = connection.execute(
            _table.update()
            .where(
                _table.c.name == name,
                sa.or_(_table.c.expires_at < now, _table.c.holder == holder),
            )
            .values(
                holder=holder,
                expires_at=expires,
                # Renewal keeps the original start; a take-over starts afresh.
                acquired_at=sa.case((_table.c.holder == holder, _table.c.acquired_at), else_=now),
            )
        )
        if result.rowcount == 1:
            return True
        exists = connection.execute(sa.select(_table.c.name).where(_table.c.name == name)).first()
        if exists is not None:
            return False
        try:
            with connection.begin_nested():
                connection.execute(
                    _table.insert().values(
                        name=name, holder=holder, acquired_at=now, expires_at=expires
                    )
                )
        except IntegrityError:
            return False  # another instance inserted it first
    return True


def renew(
    bind: Bind,
    *,
    holder: str,
    ttl_seconds: float,
    name: str = SCHEDULER_LEASE,
    now: datetime | None = None,
) -> bool:
    """Extend our lease; False means it was lost: stop acting.

    Only a lease still in our name is extended, even one past its expiry (nobody took
    it meanwhile). One taken over, or taken and released by another since (the row is
    gone), is not taken again: whoever held it may have done our work meanwhile (a
    process stopped longer than the lease, then woken, must not go on)."""
    now = as_utc(now or utcnow())
    with _transaction(bind) as connection:
        result = connection.execute(
            _table.update()
            .where(_table.c.name == name, _table.c.holder == holder)
            .values(expires_at=now + timedelta(seconds=ttl_seconds))
        )
    return result.rowcount == 1


def take_over(
    bind: Bind,
    *,
    holder: str,
    from_holder: str,
    ttl_seconds: float,
    name: str = SCHEDULER_LEASE,
    now: datetime | None = None,
) -> bool:
    """Take the lease from ``from_holder`` known to be dead (same host, pid gone)."""
    now = as_utc(now or utcnow())
    with _transaction(bind) as connection:
        result = connection.execute(
            _table.update()
            .where(_table.c.name == name, _table.c.holder == from_holder)
            .values(holder=holder, acquired_at=now, expires_at=now + timedelta(seconds=ttl_seconds))
        )
    return result.rowcount == 1


def holds(
    engine: Engine, *, holder: str, name: str = SCHEDULER_LEASE, now: datetime | None = None
) -> bool:
    """True while ``holder`` has the live lease: a job's licence to go on to the next batch.

    The scheduler's jobs ask this between batches instead of reading a flag in memory; a
    clean shutdown releases the lease first, so the job in flight stops after its batch.
    """
    lease = current(engine, name=name)
    return lease is not None and lease.holder == holder and lease.live(as_utc(now or utcnow()))


def take(bind: Bind, *, holder: str, ttl_seconds: float, name: str = SCHEDULER_LEASE) -> bool:
    """Acquire or renew; or take over at once from a killed holder on this host."""
    if acquire(bind, holder=holder, ttl_seconds=ttl_seconds, name=name):
        return True
    held = current(bind, name=name)
    if held is None or not dead_on_this_host(held.holder):
        return False
    _event("taking over from a dead instance", lease=name, holder=held.holder)
    return take_over(
        bind, holder=holder, from_holder=held.holder, ttl_seconds=ttl_seconds, name=name
    )


def release(bind: Bind, *, holder: str, name: str = SCHEDULER_LEASE) -> bool:
    """Give the lease up at once (clean shutdown), so a standby need not wait for expiry."""
    with _transaction(bind) as connection:
        result = connection.execute(
            _table.delete().where(_table.c.name == name, _table.c.holder == holder)
        )
    return result.rowcount == 1


def current(bind: Bind, *, name: str = SCHEDULER_LEASE) -> LeaseInfo | None:
    with _reading(bind) as connection:
        row = connection.execute(sa.select(_table).where(_table.c.name == name)).first()
    if row is None:
        return None
    return LeaseInfo(
        name=row.name,
        holder=row.holder,
        acquired_at=row.acquired_at,
        expires_at=row.expires_at,
    )


def leads(engine: Engine, *, holder: str) -> bool:
    """True while ``holder`` has the live scheduler lease: a scheduled job's licence, asked
    before it starts and between batches. False also when the database cannot say: a job
    that cannot prove it is the active instance's stops."""
    try:
        return holds(engine, holder=holder)
    except SQLAlchemyError:
        return False


class Leader:
    """One instance's side of the election for a lease (``scheduler`` by default).

    :meth:`run` keeps the lease, or stands by until it is free, renewing every third of
    ``ttl_seconds`` (at least 1 s); ``on_elected()`` runs when this instance starts to
    lead, ``on_deposed(why)`` when it stops: it lost the lease, could not renew within
    80% of it (the database is unreachable), or is shutting down. The lease is released
    before ``on_deposed`` runs, so jobs asking :func:`leads` between batches stop after the
    batch in flight. On SQLite a second instance refuses to start (:class:`SchedulerError`)
    rather than stand by: one file, one host, one instance.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        ttl_seconds: float,
        holder: str | None = None,
        name: str = SCHEDULER_LEASE,
    ) -> None:
        self.engine = engine
        self.ttl_seconds = ttl_seconds
        self.holder = holder or instance_id()
        self.name = name
        self.leading = False
        self._last_held = 0.0
        self._standing_by = False
        self._on_elected: Callable[[], None] = lambda: None
        self._on_deposed: Callable[[str], None] = lambda _why: None

    @property
    def single_instance(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def take(self) -> bool:
        """Take or renew the lease now; False while another live instance holds it."""
        return take(self.engine, holder=self.holder, ttl_seconds=self.ttl_seconds, name=self.name)

    def take_or_refuse(self) -> bool:
        """One attempt (a ``--once`` run): False when another instance leads; raises
        SchedulerError instead on SQLite."""
        if self.take():
            return True
        if self.single_instance:
            raise self._refusal()
        return False

    def renew(self) -> bool:
        """Extend the lease; False when it was lost or the database cannot be reached."""
        try:
            return renew(
                self.engine, holder=self.holder, ttl_seconds=self.ttl_seconds, name=self.name
            )
        except SQLAlchemyError:
            return False

    def release(self) -> None:
        """Give the lease up now (best effort: unreachable, it simply expires)."""
        with contextlib.suppress(SQLAlchemyError):
            release(self.engine, holder=self.holder, name=self.name)

    def active_holder(self) -> str | None:
        lease = current(self.engine, name=self.name)
        return lease.holder if lease else None

    def run(
        self,
        stop: threading.Event,
        *,
        on_elected: Callable[[], None],
        on_deposed: Callable[[str], None],
    ) -> None:
        """Lead or stand by until ``stop`` is set, then give the lease up."""
        self._on_elected, self._on_deposed = on_elected, on_deposed
        every = max(1.0, self.ttl_seconds / 3)
        first = True
        try:
            while not stop.is_set():
                self._round(first=first)
                first = False
                stop.wait(self._until_next_round(every))
        finally:
            self._depose("shutting down")

    def _until_next_round(self, every: float) -> float:
        """``every`` seconds, but a leader that failed to renew checks again at its
        deadline, so it stops while the lease is still its own, not once it expired."""
        if not self.leading:
            return every
        return max(0.0, min(every, self._deadline() - time.monotonic()))

    def _deadline(self) -> float:
        return self._last_held + self.ttl_seconds * RENEW_DEADLINE

    def _round(self, *, first: bool) -> None:
        try:
            held: bool | None = self.take()
        except SQLAlchemyError as err:
            _event("database unreachable", logging.ERROR, error=str(err).splitlines()[0])
            held = None
        if held:
            self._last_held = time.monotonic()
            self._standing_by = False
            if not self.leading:
                self._on_elected()
                self.leading = True
        elif held is False:
            if first and self.single_instance:
                raise self._refusal()
            if self.leading:
                self._depose("lost the lease to another instance")
            if not self._standing_by:
                _event(
                    "standby: another instance is active",
                    instance=self.holder,
                    active=self.active_holder(),
                )
                self._standing_by = True
        elif self.leading and time.monotonic() >= self._deadline():
            self._depose("could not renew the lease in time")

    def _depose(self, why: str) -> None:
        self.release()
        if self.leading:
            self.leading = False
            self._on_deposed(why)

    def _refusal(self) -> SchedulerError:
        held = current(self.engine, name=self.name)
        who = held.holder if held else "another instance"
        until = held.expires_at.isoformat() if held else "soon"
        return SchedulerError(
            f"another scheduler instance ({who}) is active on this SQLite database "
            f"(lease until {until}); SQLite allows one instance: stop it first, or use "
            "PostgreSQL to run standby instances"
        )


def _event(msg: str, level: int = logging.INFO, **fields: Any) -> None:
    """A structured log line (JSON under the scheduler's logging, newsletter.jsonlog)."""
    log.log(level, msg, extra={"fields": {"event": msg, **fields}})
