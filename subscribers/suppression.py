"""The suppression list: addresses we must never mail, whatever their subscriber row says.

Every unsubscribe, hard bounce and complaint lands here. Rows are keyed by the sha256 of
the normalised address, so a lookup works after erasure has removed the address itself.

:func:`refusal` is the one guard in front of every mail the subscriber room starts (the
sign-up form, ``subscribers add``, a CSV import, a resent confirmation, the welcome): a
suppressed address gets nothing, with one exception. The person's own sign-up on the form
may ask them to confirm again when they left by choice (unsubscribe, erasure) or their
mailbox was full for a while (soft bounces); only that confirmed opt-in lifts the
suppression (see :func:`lift`). Hard bounces, invalid addresses, complaints and manual
blocks stay blocked for every mail until an operator lifts them: the mailbox does not
exist or its owner reported us as spam (SendGrid likewise drops all mail to addresses on
its bounce and spam-report lists).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Session, col, select

from newsletter.clock import utcnow
from newsletter.errors import Suppressed
from subscribers.addresses import email_hash, normalise_for_hash
from subscribers.atomic import insert_or_ignore
from subscribers.models import Suppression, SuppressionReason

R = SuppressionReason
_TABLE: sa.Table = Suppression.__table__  # type: ignore[attr-defined]
# What the person may end themselves, by a new double opt-in they confirm.
SELF_LIFTABLE = frozenset({R.UNSUBSCRIBE, R.ERASED, R.SOFT_BOUNCES})


class Mail(StrEnum):
    """The mail the subscriber room starts (the newsletter re-checks at send time)."""

    CONFIRMATION = "confirmation"  # the double opt-in request, first or again
    WELCOME = "welcome"
    TEST = "test"  # a marketer's test copy of a campaign (campaigns test-send)


def find_suppression(session: Session, *, email: str) -> Suppression | None:
    return session.exec(
        select(Suppression).where(Suppression.email_hash == email_hash(email))
    ).first()


def is_suppressed(session: Session, *, email: str) -> bool:
    return find_suppression(session, email=email) is not None


def _refuses(row: Suppression | None, mail: Mail, *, self_service: bool) -> bool:
    """The rule itself (see the module docstring)."""
    if row is None:
        return False
    return not (self_service and mail is Mail.CONFIRMATION and row.reason in SELF_LIFTABLE)


def refusal(
    session: Session, *, email: str, mail: Mail, self_service: bool = False
) -> Suppression | None:
    """The suppression that forbids starting ``mail`` to ``email`` now, or None when it may go.

    ``self_service``: the person asked for this mail themselves (the sign-up form), rather
    than an operator (``subscribers add``, an import).
    """
    row = find_suppression(session, email=email)
    return row if _refuses(row, mail, self_service=self_service) else None


def refusals(
    session: Session, *, emails: Iterable[str], mail: Mail, self_service: bool = False
) -> dict[str, Suppression]:
    """:func:`refusal` for many addresses in one query (an import chunk): the refused ones,
    by the address as given."""
    by_hash = {email_hash(e): e for e in emails}
    if not by_hash:
        return {}
    rows = session.exec(select(Suppression).where(col(Suppression.email_hash).in_(list(by_hash))))
    return {
        by_hash[row.email_hash]: row
        for row in rows
        if _refuses(row, mail, self_service=self_service)
    }


def check_may_mail(session: Session, *, email: str, mail: Mail, self_service: bool = False) -> None:
    """:func:`refusal` as an error for operators' acts: raises Suppressed with the reason."""
    row = refusal(session, email=email, mail=mail, self_service=self_service)
    if row is not None:
        raise Suppressed(
            f"{normalise_for_hash(email)} is on the suppression list ({row.reason}): no "
            f"{mail.value} email may go to it; only the person can come back, by signing up "
            "on the form and confirming"
            if row.reason in SELF_LIFTABLE
            else f"{normalise_for_hash(email)} is on the suppression list ({row.reason}): "
            f"no {mail.value} email may go to it"
        )


def suppress(session: Session, *, email: str, reason: SuppressionReason) -> Suppression:
    """Add the address (idempotent: an existing row keeps its first reason).

    A concurrent suppression of the same address does not fail this one: the insert skips
    a hash already taken and the row read back is whichever came first.
    """
    existing = find_suppression(session, email=email)
    if existing is not None:
        return existing
    insert_or_ignore(
        session,
        _TABLE,
        [
            {
                "email_hash": email_hash(email),
                "email": normalise_for_hash(email),
                "reason": reason.value,
                "created_at": utcnow(),
            }
        ],
        key=["email_hash"],
    )
    row = find_suppression(session, email=email)
    assert row is not None
    return row


def lift(session: Session, *, email: str) -> bool:
    """Remove the address from the list when the person may end its reason themselves
    (:data:`SELF_LIFTABLE`); only a confirmed double opt-in may call this. True when a
    row went; a complaint, a hard bounce or a manual block stays."""
    row = find_suppression(session, email=email)
    if row is None or row.reason not in SELF_LIFTABLE:
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
