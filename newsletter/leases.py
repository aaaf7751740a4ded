"""The active-instance lease: one scheduler acts, the others stand by.

A lease is one row (``lease.name``) saying who holds it until when: ``scheduler`` for the
active instance, ``send:<id>`` for the one sender of a campaign. Taking or renewing it is a
single ``UPDATE ... WHERE expires_at < now OR holder = me`` (or the first ``INSERT``), so
on PostgreSQL and SQLite alike exactly one caller wins, without advisory locks. A holder
renews well before expiry; when it dies, a standby takes over once ``expires_at`` passes.

Times come from the caller's clock (``now``), so hosts sharing a database need NTP; a
skew of a few seconds only shortens or lengthens the take-over by that much.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from newsletter.clock import as_utc, utcnow
from newsletter.models import Lease

SCHEDULER_LEASE = "scheduler"
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


def instance_id() -> str:
    """host:pid:random, unique across restarts and hosts, readable in logs."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def dead_on_this_host(holder: str) -> bool:
    """True when ``holder`` (from :func:`instance_id`) names a gone process of this host.

    Lets a restarted instance take over from its own killed predecessor at once rather
    than wait for the lease to expire; holders on other hosts always wait for expiry.
    """
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


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
    """Extend our lease; False means it was lost to another instance: stop acting."""
    return acquire(bind, holder=holder, ttl_seconds=ttl_seconds, name=name, now=now)


def take_over(
    engine: Engine,
    *,
    holder: str,
    from_holder: str,
    ttl_seconds: float,
    name: str = SCHEDULER_LEASE,
    now: datetime | None = None,
) -> bool:
    """Take the lease from ``from_holder`` known to be dead (same host, pid gone)."""
    now = as_utc(now or utcnow())
    with engine.begin() as connection:
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


def take(engine: Engine, *, holder: str, ttl_seconds: float, name: str = SCHEDULER_LEASE) -> bool:
    """Acquire or renew; or take over at once from a killed holder on this host."""
    if acquire(engine, holder=holder, ttl_seconds=ttl_seconds, name=name):
        return True
    held = current(engine, name=name)
    if held is None or not dead_on_this_host(held.holder):
        return False
    log.info(
        "taking over from a dead instance",
        extra={"fields": {"event": "taking over from a dead instance", "holder": held.holder}},
    )
    return take_over(
        engine, holder=holder, from_holder=held.holder, ttl_seconds=ttl_seconds, name=name
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
