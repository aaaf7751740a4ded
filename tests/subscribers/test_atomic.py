"""The compare-and-set primitives behind every status change, one by one (issue 12, point 3).

Two sessions on the same database stand for two concurrent requests: one reads, the
other changes the row and commits, then the first acts on what it read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsletter.clock import utcnow
from newsletter.errors import NotFound, StatusChanged
from subscribers import atomic, lifecycle
from subscribers.models import Subscriber
from subscribers.models import SubscriberStatus as S
from subscribers.suppression import is_suppressed
from tests.support.subscribers import assert_history_exact, make_subscriber


@pytest.fixture
def other(engine: Engine) -> Iterator[Session]:
    """A second session: another request, on its own connection."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


def status_in_database(engine: Engine, subscriber_id: int) -> str:
    with Session(engine) as fresh:
        subscriber = fresh.get(Subscriber, subscriber_id)
        assert subscriber is not None
        return subscriber.status


def test_set_status_if_moves_a_row_that_still_holds_the_expected_status(
    session: Session, engine: Engine
) -> None:
    subscriber = make_subscriber(session, status="pending")
    when = utcnow()
    moved = atomic.set_status_if(
        session, subscriber_id=subscriber.id, expected=S.PENDING, new=S.ACTIVE, at=when
    )
    session.commit()
    assert moved is True
    assert status_in_database(engine, subscriber.id) == "active"


def test_set_status_if_refuses_a_row_another_request_moved_first(
    session: Session, other: Session, engine: Engine
) -> None:
    subscriber = make_subscriber(session, status="pending")
    assert lifecycle.unsubscribe(other, subscriber_id=subscriber.id, source="form")
    other.commit()
    # ``session`` still believes the reader is pending, as a confirm that read earlier does.
    assert subscriber.status == "pending"
    moved = atomic.set_status_if(
        session, subscriber_id=subscriber.id, expected=S.PENDING, new=S.ACTIVE, at=utcnow()
    )
    session.commit()
    assert moved is False
    assert status_in_database(engine, subscriber.id) == "unsubscribed"


def test_a_transition_from_a_stale_read_raises_and_records_nothing(
    session: Session, other: Session, engine: Engine
) -> None:
    subscriber = make_subscriber(session, status="pending")
    lifecycle.unsubscribe(other, subscriber_id=subscriber.id, source="form")
    other.commit()
    with pytest.raises(StatusChanged, match="is unsubscribed now, no longer pending"):
        lifecycle.transition(session, subscriber, S.ACTIVE, reason="confirmed", source="form")
    session.commit()
    assert subscriber.status == "unsubscribed"  # refreshed, not the stale value
    assert status_in_database(engine, subscriber.id) == "unsubscribed"
    assert [e.to_status for e in lifecycle.history(session, subscriber_id=subscriber.id)] == [
        "pending",
        "unsubscribed",
    ]
    assert_history_exact(session, subscriber)


def test_lock_subscriber_reads_what_another_request_committed(
    session: Session, other: Session
) -> None:
    subscriber = make_subscriber(session, status="pending")
    lifecycle.unsubscribe(other, subscriber_id=subscriber.id, source="form")
    other.commit()
    locked = atomic.lock_subscriber(session, subscriber_id=subscriber.id)
    assert locked is subscriber
    assert locked.status == "unsubscribed"
    session.rollback()


def test_lock_subscriber_of_a_missing_row_is_not_found(session: Session) -> None:
    with pytest.raises(NotFound, match="no subscriber with id 999"):
        atomic.lock_subscriber(session, subscriber_id=999)


def test_an_unsubscribe_waits_for_a_locked_row_then_acts_on_its_new_state(
    session: Session, engine: Engine
) -> None:
    """A confirm holds the row; the unsubscribe that arrives meanwhile waits, then moves
    the reader from active (not from the pending it would have read) and suppresses."""
    subscriber = make_subscriber(session, "race@example.com", status="pending")
    locked = atomic.lock_subscriber(session, subscriber_id=subscriber.id)
    finished = threading.Event()
    failures: list[BaseException] = []

    def unsubscribe() -> None:
        try:
            with Session(engine, expire_on_commit=False) as second:
                lifecycle.unsubscribe(second, subscriber_id=subscriber.id, source="form")
                second.commit()
        except BaseException as err:  # reported below
            failures.append(err)
        finally:
            finished.set()

    worker = threading.Thread(target=unsubscribe)
    worker.start()
    time.sleep(0.5)
    assert not finished.is_set(), "the unsubscribe went past a row another request holds"
    lifecycle.transition(session, locked, S.ACTIVE, reason="confirmed", source="form")
    session.commit()
    worker.join(timeout=30)
    assert finished.is_set() and not failures, failures
    session.refresh(subscriber)
    assert subscriber.status == "unsubscribed"
    assert is_suppressed(session, email="race@example.com")
    assert [
        (e.from_status, e.to_status)
        for e in lifecycle.history(session, subscriber_id=subscriber.id)
    ] == [(None, "pending"), ("pending", "active"), ("active", "unsubscribed")]


def test_add_new_skips_an_address_another_request_inserted_first(
    session: Session, other: Session
) -> None:
    make_subscriber(other, "twice@example.com", status="pending")
    late = Subscriber(email="twice@example.com", status="pending", source="form")
    assert atomic.add_new(session, late) is False
    assert late.id is None
    # No IntegrityError: the transaction goes on and reads the winner's row.
    winner = lifecycle.find_by_email(session, email="twice@example.com")
    assert winner is not None and winner.status == "pending"
    fresh = Subscriber(email="first@example.com", status="pending", source="form")
    assert atomic.add_new(session, fresh) is True
    session.commit()
    assert lifecycle.get_by_email(session, email="first@example.com").id == fresh.id
