"""The per-key sliding-window limiter, kept in the database: on an injected clock, on
SQLite and PostgreSQL, and one count for every limiter (worker) on the same database."""

from __future__ import annotations

import threading

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from subscribers.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_hits_beyond_the_limit_are_refused_with_the_wait(engine: Engine) -> None:
    clock = Clock()
    limiter = RateLimiter(engine, limit=2, window=60, clock=clock)
    assert [limiter.hit("192.0.2.1"), limiter.hit("192.0.2.1")] == [None, None]
    clock.now += 15
    assert limiter.hit("192.0.2.1") == 45


def test_each_ip_has_its_own_allowance(engine: Engine) -> None:
    limiter = RateLimiter(engine, limit=1, window=60, clock=Clock())
    assert limiter.hit("192.0.2.1") is None
    assert limiter.hit("192.0.2.1") is not None
    assert limiter.hit("198.51.100.9") is None


def test_the_window_slides_so_old_hits_stop_counting(engine: Engine) -> None:
    clock = Clock()
    limiter = RateLimiter(engine, limit=1, window=60, clock=clock)
    limiter.hit("192.0.2.1")
    clock.now += 60
    assert limiter.hit("192.0.2.1") is None


def test_refused_hits_do_not_extend_the_block(engine: Engine) -> None:
    clock = Clock()
    limiter = RateLimiter(engine, limit=1, window=60, clock=clock)
    limiter.hit("192.0.2.1")
    for _ in range(5):
        clock.now += 10
        limiter.hit("192.0.2.1")
    clock.now += 10
    assert limiter.hit("192.0.2.1") is None


def test_limiters_on_one_database_share_one_count(engine: Engine) -> None:
    """Two workers (two limiters) on one database: the limit is the sum, not each."""
    clock = Clock()
    first = RateLimiter(engine, limit=2, window=60, clock=clock)
    second = RateLimiter(engine, limit=2, window=60, clock=clock)
    assert first.hit("192.0.2.1") is None
    assert second.hit("192.0.2.1") is None
    assert first.hit("192.0.2.1") is not None
    assert second.hit("192.0.2.1") is not None


def test_buckets_count_apart(engine: Engine) -> None:
    clock = Clock()
    signup = RateLimiter(engine, limit=1, window=60, bucket="signup", clock=clock)
    data = RateLimiter(engine, limit=1, window=60, bucket="my-data", clock=clock)
    assert signup.hit("192.0.2.1") is None
    assert data.hit("192.0.2.1") is None
    assert signup.hit("192.0.2.1") is not None


def test_concurrent_hits_never_pass_the_limit(engine: Engine) -> None:
    """Twenty threads at once, each its own connection: exactly ``limit`` get through."""
    limiter = RateLimiter(engine, limit=5, window=60)
    results: list[float | None] = []
    start = threading.Barrier(20)

    def one() -> None:
        start.wait()
        results.append(limiter.hit("203.0.113.7"))

    threads = [threading.Thread(target=one) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(results) == 20
    assert sum(r is None for r in results) == 5


def test_keys_are_stored_hashed_and_old_hits_pruned(engine: Engine) -> None:
    clock = Clock()
    limiter = RateLimiter(engine, limit=3, window=60, salt="secret", clock=clock)
    limiter.hit("192.0.2.1")
    clock.now += 61
    limiter.hit("198.51.100.9")
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT key, at FROM rate_hit")).all()
    assert [at for _, at in rows] == [clock.now]
    assert all("198.51" not in key and len(key) == 64 for key, _ in rows)
