"""One sender per campaign at a time, even across machines: the lease ``send:<id>``.

Two senders of the same campaign would each read the same queued rows and mail them
twice. The lease (newsletter/leases.py, on the caller's session so that renewing it
rides in the transaction that records a batch) is taken before sending, renewed while
sending and released at the end. A sender killed with SIGKILL cannot release it: when it
ran on this host and its process is gone (``newsletter.holders``: host, pid and process
start time), the next run takes over at once; a sender on another host is waited for
until its lease expires (``lease_seconds``), as we cannot see its processes.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session

from newsletter import leases
from newsletter.clock import utcnow
from newsletter.errors import StateError
from newsletter.models import Lease

new_holder = leases.instance_id


def lease_name(campaign_id: int) -> str:
    return f"send:{campaign_id}"


def claim(session: Session, *, campaign_id: int, holder: str, seconds: int) -> None:
    """Take or renew the campaign's send lease, taking it at once from a dead sender of
    this host; or raise StateError naming who holds it."""
    name = lease_name(campaign_id)
    connection = session.connection()
    if leases.take(connection, holder=holder, ttl_seconds=seconds, name=name):
        return
    held = leases.current(connection, name=name)
    who, until = (held.holder, held.expires_at) if held else ("another sender", "soon")
    raise StateError(
        f"campaign {campaign_id} is being sent by {who} (lease until {until}); "
        "run the send again after that if that sender has died"
    )


def renew(session: Session, *, campaign_id: int, holder: str, seconds: int) -> bool:
    """Extend our lease; False when it was lost (expired and taken by someone else)."""
    return leases.renew(
        session.connection(), holder=holder, ttl_seconds=seconds, name=lease_name(campaign_id)
    )


def release(session: Session, *, campaign_id: int, holder: str) -> None:
    leases.release(session.connection(), holder=holder, name=lease_name(campaign_id))


# Queue mode's traces of a campaign (campaigns.delivery.workers): a live block lease, or
# a block's job waiting or running in procrastinate's table (when it exists).
_BLOCK_JOBS = sa.text(
    "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'newsletter.send_block' "
    "AND status IN ('todo', 'doing') AND queueing_lock LIKE :prefix"
)


def refuse_if_queued(session: Session, *, campaign_id: int) -> None:
    """StateError when the campaign is in other processes' hands (queue mode's workers,
    or another send's helper processes: campaigns.delivery.processes): an inline sender
    must not read the rows they read. Called with ``send:<id>`` already held, as
    a worker looks for that lease after taking its block's, so of two starting at once at
    least one sees the other."""
    prefix = f"{lease_name(campaign_id)}:b"
    holders = session.execute(
        sa.select(Lease.holder).where(
            Lease.name.startswith(prefix),  # type: ignore[attr-defined]
            Lease.expires_at > utcnow(),  # type: ignore[arg-type,operator]
        )
    ).scalars()
    # A killed worker or helper process of this host holds nothing (its batch in flight
    # is the one a kill may send again); one on another host is waited for until expiry.
    live = sum(1 for holder in holders if not leases.dead_on_this_host(holder))
    jobs = 0
    if (
        session.get_bind().dialect.name == "postgresql"
        and session.execute(
            sa.text("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
        ).scalar_one()
    ):
        jobs = session.execute(_BLOCK_JOBS, {"prefix": prefix + "%"}).scalar_one()
    session.commit()
    if live and not jobs:
        raise StateError(
            f"campaign {campaign_id} is being sent in {live} block(s) by other processes "
            "(a send's helper processes, or workers); wait for them to end, or pause it"
        )
    if jobs:
        raise StateError(
            f"campaign {campaign_id} is handed to the workers (queue mode: {live} block(s) "
            f"being sent, {jobs} job(s) queued or running); follow it with "
            "NEWSLETTER_SENDER=queue, or pause it"
        )
