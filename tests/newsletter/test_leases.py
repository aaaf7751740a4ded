"""The active-instance lease: one holder at a time, renewals, expiry and take-over."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.delivery import send_lease
from newsletter import db, holders, leases
from newsletter.clock import utcnow
from newsletter.errors import SchedulerError, StateError

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_the_first_instance_takes_the_free_lease(engine: Engine) -> None:
    assert leases.acquire(engine, holder="a", ttl_seconds=30, now=T0)
    held = leases.current(engine)
    assert held is not None
    assert (held.holder, held.acquired_at, held.expires_at) == ("a", T0, T0 + timedelta(seconds=30))


def test_a_second_instance_is_refused_while_the_lease_is_live(engine: Engine) -> None:
    assert leases.acquire(engine, holder="a", ttl_seconds=30, now=T0)
    assert not leases.acquire(engine, holder="b", ttl_seconds=30, now=T0 + timedelta(seconds=29))
    assert leases.current(engine).holder == "a"  # type: ignore[union-attr]


def test_renewal_extends_and_keeps_the_start(engine: Engine) -> None:
    leases.acquire(engine, holder="a", ttl_seconds=30, now=T0)
    assert leases.renew(engine, holder="a", ttl_seconds=30, now=T0 + timedelta(seconds=20))
    held = leases.current(engine)
    assert held is not None
    assert (held.acquired_at, held.expires_at) == (T0, T0 + timedelta(seconds=50))


def test_a_standby_takes_over_once_the_lease_expired(engine: Engine) -> None:
    leases.acquire(engine, holder="a", ttl_seconds=30, now=T0)
    later = T0 + timedelta(seconds=31)
    assert leases.acquire(engine, holder="b", ttl_seconds=30, now=later)
    held = leases.current(engine)
    assert held is not None and (held.holder, held.acquired_at) == ("b", later)
    assert not leases.renew(engine, holder="a", ttl_seconds=30, now=later)


def test_a_lease_taken_and_released_by_another_meanwhile_is_not_renewed(engine: Engine) -> None:
    """A process stopped past its lease must not go on once another has held it."""
    leases.acquire(engine, holder="a", ttl_seconds=30, now=T0)
    later = T0 + timedelta(seconds=31)
    assert leases.acquire(engine, holder="b", ttl_seconds=30, now=later)
    assert leases.release(engine, holder="b")
    assert not leases.renew(engine, holder="a", ttl_seconds=30, now=later + timedelta(seconds=5))
    assert leases.current(engine) is None


def test_our_expired_lease_nobody_took_is_renewed(engine: Engine) -> None:
    leases.acquire(engine, holder="a", ttl_seconds=30, now=T0)
    assert leases.renew(engine, holder="a", ttl_seconds=30, now=T0 + timedelta(seconds=45))
    held = leases.current(engine)
    assert held is not None and held.expires_at == T0 + timedelta(seconds=75)


def test_a_released_lease_is_not_taken_again_by_renewing(engine: Engine) -> None:
    leases.acquire(engine, holder="a", ttl_seconds=30, now=T0)
    leases.release(engine, holder="a")
    assert not leases.renew(engine, holder="a", ttl_seconds=30, now=T0)


def test_release_frees_the_lease_for_others_at_once(engine: Engine) -> None:
    leases.acquire(engine, holder="a", ttl_seconds=30, now=T0)
    assert not leases.release(engine, holder="b")
    assert leases.release(engine, holder="a")
    assert leases.current(engine) is None
    assert leases.acquire(engine, holder="b", ttl_seconds=30, now=T0 + timedelta(seconds=1))


def test_take_over_only_replaces_the_named_dead_holder(engine: Engine) -> None:
    leases.acquire(engine, holder="a", ttl_seconds=30, now=T0)
    assert not leases.take_over(engine, holder="c", from_holder="b", ttl_seconds=30, now=T0)
    assert leases.take_over(engine, holder="c", from_holder="a", ttl_seconds=30, now=T0)
    assert leases.current(engine).holder == "c"  # type: ignore[union-attr]


def test_racing_instances_elect_exactly_one(engine: Engine) -> None:
    leases.acquire(engine, holder="old", ttl_seconds=1, now=T0)
    later = T0 + timedelta(seconds=5)  # the old holder's lease has expired
    barrier = threading.Barrier(8)
    wins: list[str] = []

    def contend(name: str) -> None:
        barrier.wait()
        if leases.acquire(engine, holder=name, ttl_seconds=30, now=later):
            wins.append(name)

    threads = [threading.Thread(target=contend, args=(f"i{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1
    assert leases.current(engine).holder == wins[0]  # type: ignore[union-attr]


def test_the_scheduler_lease_is_apart_from_campaign_send_leases(engine: Engine) -> None:
    assert leases.acquire(engine, holder="a", ttl_seconds=30, name="send:1", now=T0)
    assert leases.acquire(engine, holder="b", ttl_seconds=30, now=T0)
    assert leases.current(engine).holder == "b"  # type: ignore[union-attr]


def test_holds_is_true_only_for_the_live_holder(engine: Engine) -> None:
    leases.acquire(engine, holder="a", ttl_seconds=30, now=T0)
    assert leases.holds(engine, holder="a", now=T0 + timedelta(seconds=29))
    assert not leases.holds(engine, holder="b", now=T0 + timedelta(seconds=29))
    assert not leases.holds(engine, holder="a", now=T0 + timedelta(seconds=31))  # expired
    leases.release(engine, holder="a")
    assert not leases.holds(engine, holder="a", now=T0)


def test_take_replaces_a_killed_holder_of_this_host_at_once(engine: Engine) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # exited and reaped: its pid names no process now
    dead = f"{socket.gethostname()}:{gone.pid}:abcdef"
    leases.acquire(engine, holder=dead, ttl_seconds=300)
    assert leases.dead_on_this_host(dead)
    assert leases.take(engine, holder="b", ttl_seconds=30)
    assert leases.current(engine).holder == "b"  # type: ignore[union-attr]


def test_take_waits_for_a_live_or_remote_holder(engine: Engine) -> None:
    alive = f"{socket.gethostname()}:{os.getppid()}:abcdef"
    leases.acquire(engine, holder=alive, ttl_seconds=300)
    assert not leases.take(engine, holder="b", ttl_seconds=30)
    leases.release(engine, holder=alive)
    leases.acquire(engine, holder="elsewhere:1:abcdef", ttl_seconds=300)
    assert not leases.take(engine, holder="b", ttl_seconds=30)


def test_an_instance_id_carries_host_pid_and_the_process_start() -> None:
    holder = leases.instance_id()
    host, pid, start, tag = holder.split(":")
    assert (host, int(pid)) == (socket.gethostname(), os.getpid())
    assert int(start) == holders.process_start(os.getpid()) and int(start) > 0
    assert len(tag) == 6 and holder != leases.instance_id()
    assert not leases.dead_on_this_host(holder)  # this very process


def test_a_reused_pid_is_not_taken_for_the_holder() -> None:
    """The parent runs, but a holder naming its pid with another start time was a
    process that died and whose pid the kernel gave to this one."""
    parent = os.getppid()
    start = holders.process_start(parent)
    assert start is not None
    host = socket.gethostname()
    assert not leases.dead_on_this_host(f"{host}:{parent}:{start}:abcdef")
    assert leases.dead_on_this_host(f"{host}:{parent}:{start + 1}:abcdef")
    assert not leases.dead_on_this_host(f"elsewhere:{parent}:{start + 1}:abcdef")


def test_a_killed_process_not_yet_reaped_is_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    holder = f"{socket.gethostname()}:{child.pid}:{holders.process_start(child.pid)}:abcdef"
    try:
        assert not leases.dead_on_this_host(holder)
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{child.pid}/stat").read_text().split(") ")[1][0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert leases.dead_on_this_host(holder)  # a zombie: its parent has not waited yet
    finally:
        child.wait(10)
    assert leases.dead_on_this_host(holder)


def test_the_send_lease_is_taken_at_once_only_from_a_dead_sender_of_this_host(
    engine: Engine,
) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    host = socket.gethostname()
    parent = os.getppid()
    for held_by, taken in [
        (f"{host}:{gone.pid}:{10**9}:abcdef", True),  # this host, process gone
        (f"{host}:{parent}:{holders.process_start(parent)}:abcdef", False),  # alive
        (f"elsewhere:{gone.pid}:{10**9}:abcdef", False),  # another host: wait for expiry
    ]:
        assert leases.acquire(engine, holder=held_by, ttl_seconds=300, name="send:7")
        with Session(engine) as session:
            if taken:
                send_lease.claim(session, campaign_id=7, holder="next", seconds=30)
            else:
                with pytest.raises(StateError, match=f"being sent by {held_by}"):
                    send_lease.claim(session, campaign_id=7, holder="next", seconds=30)
            session.commit()
        assert leases.current(engine, name="send:7").holder == ("next" if taken else held_by)
        leases.release(engine, holder=leases.current(engine, name="send:7").holder, name="send:7")


def test_a_lease_taken_on_a_connection_rides_in_the_callers_transaction(engine: Engine) -> None:
    with engine.connect() as connection:
        transaction = connection.begin()
        assert leases.acquire(connection, holder="sender", ttl_seconds=60, name="send:1")
        assert leases.current(connection, name="send:1").holder == "sender"
        transaction.rollback()
    assert leases.current(engine, name="send:1") is None


def test_a_lease_on_a_connection_is_refused_while_another_holds_it(engine: Engine) -> None:
    assert leases.acquire(engine, holder="first", ttl_seconds=60, name="send:2")
    with engine.begin() as connection:
        assert not leases.acquire(connection, holder="second", ttl_seconds=60, name="send:2")
        assert leases.current(connection, name="send:2").holder == "first"


# ---------------------------------------------------------------- leader election


def wait_for(what: str, check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@contextmanager
def leading(leader: leases.Leader, events: list[str]) -> Iterator[threading.Event]:
    """``leader.run`` in a thread, noting "elected" and every reason it was deposed."""
    stop = threading.Event()
    thread = threading.Thread(
        target=leader.run,
        args=(stop,),
        kwargs={"on_elected": lambda: events.append("elected"), "on_deposed": events.append},
        daemon=True,
    )
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(timeout=20)
        assert not thread.is_alive(), "the leader did not stop"


def test_a_leader_is_deposed_when_it_loses_the_lease_and_gives_it_up_when_stopped(
    engine: Engine,
) -> None:
    leader = leases.Leader(engine, ttl_seconds=3, holder="a:1:aaaaaa")
    events: list[str] = []
    with leading(leader, events):
        wait_for("the election", lambda: events == ["elected"])
        assert leases.take_over(engine, holder="b", from_holder="a:1:aaaaaa", ttl_seconds=3)
        wait_for("the loss", lambda: len(events) == 2)
        assert events[1] == "lost the lease to another instance" and not leader.leading
        leases.release(engine, holder="b")
        wait_for("the re-election", lambda: len(events) == 3)
    assert events == ["elected", "lost the lease to another instance", "elected", "shutting down"]
    assert leases.current(engine) is None  # given up at once, not left to expire


def test_a_leader_that_cannot_reach_its_database_stops_before_the_lease_expires(
    engine: Engine, tmp_path: Path
) -> None:
    leader = leases.Leader(engine, ttl_seconds=3, holder="a:1:aaaaaa")
    events: list[str] = []
    with leading(leader, events):
        wait_for("the election", lambda: events == ["elected"])
        leader.engine = sa.create_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}")
        wait_for("the deadline", lambda: len(events) == 2)
        lease = leases.current(engine)
        # Stopped at 80% of the lease: before a standby could take it over.
        assert lease is not None and lease.live(utcnow())
    assert events == ["elected", "could not renew the lease in time"]
    assert not leader.renew()


def test_on_sqlite_a_second_leader_refuses_to_start(sqlite_engine: Engine) -> None:
    first = leases.Leader(sqlite_engine, ttl_seconds=30, holder="a:1:aaaaaa")
    assert first.take_or_refuse()
    second = leases.Leader(sqlite_engine, ttl_seconds=30, holder="b:1:bbbbbb")
    with pytest.raises(SchedulerError, match=r"^another scheduler instance \(a:1:aaaaaa\) is"):
        second.take_or_refuse()
    events: list[str] = []
    with pytest.raises(SchedulerError, match="SQLite allows one instance"):
        second.run(threading.Event(), on_elected=lambda: events.append("elected"), on_deposed=print)
    assert events == [] and leases.current(sqlite_engine).holder == "a:1:aaaaaa"  # type: ignore[union-attr]


def test_on_postgresql_a_standby_waits_and_takes_over_when_the_leader_stops(
    postgres_url: str,
) -> None:
    engine = db.get_engine(postgres_url)
    db.upgrade(engine)
    first = leases.Leader(engine, ttl_seconds=3, holder="a:1:aaaaaa")
    second = leases.Leader(engine, ttl_seconds=3, holder="b:1:bbbbbb")
    assert first.take_or_refuse() and not second.take_or_refuse()  # --once: nothing to do
    first.release()
    first_events: list[str] = []
    second_events: list[str] = []
    with leading(first, first_events) as stop_first:
        wait_for("the first election", lambda: first_events == ["elected"])
        with leading(second, second_events):
            time.sleep(1.5)  # a renewal round or two: the standby stays one
            assert second_events == [] and second.active_holder() == "a:1:aaaaaa"
            stop_first.set()
            wait_for("the take-over", lambda: second_events == ["elected"], timeout=10)
    assert first_events == ["elected", "shutting down"]
    assert second_events == ["elected", "shutting down"]
