"""The per-IP sign-up limiter: a sliding window per key, on an injected clock."""

from __future__ import annotations

from subscribers.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_hits_beyond_the_limit_are_refused_with_the_wait() -> None:
    clock = Clock()
    limiter = RateLimiter(limit=2, window=60, clock=clock)
    assert [limiter.hit("192.0.2.1"), limiter.hit("192.0.2.1")] == [None, None]
    clock.now += 15
    assert limiter.hit("192.0.2.1") == 45


def test_each_ip_has_its_own_allowance() -> None:
    limiter = RateLimiter(limit=1, window=60, clock=Clock())
    assert limiter.hit("192.0.2.1") is None
    assert limiter.hit("192.0.2.1") is not None
    assert limiter.hit("198.51.100.9") is None


def test_the_window_slides_so_old_hits_stop_counting() -> None:
    clock = Clock()
    limiter = RateLimiter(limit=1, window=60, clock=clock)
    limiter.hit("192.0.2.1")
    clock.now += 60
    assert limiter.hit("192.0.2.1") is None


def test_refused_hits_do_not_extend_the_block() -> None:
    clock = Clock()
    limiter = RateLimiter(limit=1, window=60, clock=clock)
    limiter.hit("192.0.2.1")
    for _ in range(5):
        clock.now += 10
        limiter.hit("192.0.2.1")
    clock.now += 10
    assert limiter.hit("192.0.2.1") is None
