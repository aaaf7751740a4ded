"""The active-instance lease: one holder at a time, renewals, expiry and take-over."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from newsletter import leases

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
