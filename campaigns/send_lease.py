"""One sender per campaign at a time, even across machines: a lease row per campaign.

Two senders of the same campaign would each read the same queued rows and mail them
twice. The lease (table ``lease``, name ``send:<id>``) is taken with one conditional
UPDATE or INSERT, renewed while sending, and released at the end. A sender killed with
SIGKILL cannot release it; the next run takes over once it expires (``lease_seconds``).
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import Session

from newsletter.db import utcnow
from newsletter.errors import StateError
from newsletter.ops_models import Lease

_lease = Lease.__table__


def lease_name(campaign_id: int) -> str:
    return f"send:{campaign_id}"


def new_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def claim(session: Session, *, campaign_id: int, holder: str, seconds: int) -> None:
    """Take or renew the campaign's send lease, or raise StateError naming who holds it."""
    name = lease_name(campaign_id)
    now = utcnow()
    expires = now + timedelta(seconds=seconds)
    taken = session.execute(
        sa.update(_lease)
        .where(
            _lease.c.name == name,
            sa.or_(_lease.c.expires_at < now, _lease.c.holder == holder),
        )
        .values(holder=holder, acquired_at=now, expires_at=expires)
    ).rowcount
    if taken:
        return
    try:
        with session.begin_nested():
            session.execute(
                sa.insert(_lease).values(
                    name=name, holder=holder, acquired_at=now, expires_at=expires
                )
            )
    except sa.exc.IntegrityError:
        row = session.execute(
            sa.select(_lease.c.holder, _lease.c.expires_at).where(_lease.c.name == name)
        ).first()
        who, until = (row[0], row[1]) if row else ("another sender", "soon")
        raise StateError(
            f"campaign {campaign_id} is being sent by {who} (lease until {until}); "
            "run the send again after that if that sender has died"
        ) from None


def renew(session: Session, *, campaign_id: int, holder: str, seconds: int) -> bool:
    """Extend our lease; False when it was lost (expired and taken by someone else)."""
    return bool(
        session.execute(
            sa.update(_lease)
            .where(_lease.c.name == lease_name(campaign_id), _lease.c.holder == holder)
            .values(expires_at=utcnow() + timedelta(seconds=seconds))
        ).rowcount
    )


def release(session: Session, *, campaign_id: int, holder: str) -> None:
    session.execute(
        sa.delete(_lease).where(_lease.c.name == lease_name(campaign_id), _lease.c.holder == holder)
    )
