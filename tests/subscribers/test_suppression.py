"""The suppression list: by normalised address, hash-keyed, idempotent, lifted only by
a confirmed new opt-in."""

from __future__ import annotations

import hashlib

from sqlmodel import Session, select

from subscribers.models import Suppression, SuppressionReason
from subscribers.suppression import (
    find_suppression,
    forget_address,
    is_suppressed,
    lift,
    suppress,
)
from tests.support.subscribers import sqlite_only


def test_suppress_stores_normal_form_and_hash(session: Session) -> None:
    row = suppress(session, email="  Jane@Example.COM", reason=SuppressionReason.UNSUBSCRIBE)
    session.commit()
    assert (row.email, row.email_hash, row.reason) == (
        "jane@example.com",
        hashlib.sha256(b"jane@example.com").hexdigest(),
        "unsubscribe",
    )


def test_lookup_ignores_case_and_spaces(session: Session) -> None:
    suppress(session, email="jane@example.com", reason=SuppressionReason.COMPLAINT)
    session.commit()
    assert is_suppressed(session, email=" JANE@example.com ")


@sqlite_only
def test_unknown_address_is_not_suppressed(session: Session) -> None:
    assert not is_suppressed(session, email="free@example.com")


def test_suppress_twice_keeps_one_row_and_first_reason(session: Session) -> None:
    suppress(session, email="jane@example.com", reason=SuppressionReason.HARD_BOUNCE)
    suppress(session, email="JANE@example.com", reason=SuppressionReason.UNSUBSCRIBE)
    session.commit()
    rows = session.exec(select(Suppression)).all()
    assert [(r.email, r.reason) for r in rows] == [("jane@example.com", "hard_bounce")]


def test_lift_removes_the_row(session: Session) -> None:
    suppress(session, email="jane@example.com", reason=SuppressionReason.UNSUBSCRIBE)
    assert lift(session, email="Jane@example.com") is True
    session.commit()
    assert not is_suppressed(session, email="jane@example.com")


@sqlite_only
def test_lift_of_unknown_address_is_false(session: Session) -> None:
    assert lift(session, email="free@example.com") is False


def test_forget_keeps_only_the_hash_and_still_suppresses(session: Session) -> None:
    suppress(session, email="jane@example.com", reason=SuppressionReason.UNSUBSCRIBE)
    forget_address(session, email="jane@example.com")
    session.commit()
    row = find_suppression(session, email="jane@example.com")
    assert (row.email, row.reason) == (None, "unsubscribe")
    assert is_suppressed(session, email="Jane@Example.com")


@sqlite_only
def test_suppressing_an_unparseable_address_still_works(session: Session) -> None:
    suppress(session, email="Odd@Localhost", reason=SuppressionReason.INVALID)
    session.commit()
    assert is_suppressed(session, email="odd@localhost")
