"""The suppression list: addresses we must never mail, whatever their subscriber row says.

Every unsubscribe, hard bounce and complaint lands here. Rows are keyed by the sha256 of
the normalised address, so a lookup works after erasure has removed the address itself.
Only a new, confirmed double opt-in lifts a suppression (see signup.confirm).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlmodel import Session, select

from subscribers.addresses import email_hash, normalise_for_hash
from subscribers.models import Suppression, SuppressionReason


def find_suppression(session: Session, *, email: str) -> Suppression | None:
    return session.exec(
        select(Suppression).where(Suppression.email_hash == email_hash(email))
    ).first()


def is_suppressed(session: Session, *, email: str) -> bool:
    return find_suppression(session, email=email) is not None


def suppress(session: Session, *, email: str, reason: SuppressionReason) -> Suppression:
    """Add the address (idempotent: an existing row keeps its first reason)."""
    existing = find_suppression(session, email=email)
    if existing is not None:
        return existing
    row = Suppression(
        email_hash=email_hash(email), email=normalise_for_hash(email), reason=reason.value
    )
    # A concurrent unsubscribe of the same address must not fail this one.
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except sa.exc.IntegrityError:
        existing = find_suppression(session, email=email)
        if existing is None:
            raise
        return existing
    return row


def lift(session: Session, *, email: str) -> bool:
    """Remove the address from the list; only a confirmed double opt-in may call this."""
    row = find_suppression(session, email=email)
    if row is None:
        return False
    session.delete(row)
    session.flush()
    return True


def forget_address(session: Session, *, email: str) -> Suppression:
    """Keep the person suppressed but drop the readable address (GDPR erasure)."""
    row = suppress(session, email=email, reason=SuppressionReason.ERASED)
    row.email = None
    session.add(row)
    session.flush()
    return row


def list_suppressions(session: Session) -> list[Suppression]:
    return list(session.exec(select(Suppression).order_by(Suppression.id)))
