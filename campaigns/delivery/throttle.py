"""Pacing and backoff: how fast the send loop may go, and how long it waits to retry."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

from newsletter.settings import Settings


@dataclass
class Pacer:
    """Average at most ``rate`` messages per second (0: unthrottled)."""

    rate: float
    start: float = field(default_factory=time.monotonic)
    submitted: int = 0

    def wait(self, count: int) -> None:
        """Sleep until ``count`` more messages fit the average, then count them."""
        if self.rate > 0:
            delay = self.start + self.submitted / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        self.submitted += count


def backoff_seconds(settings: Settings, attempt: int, retry_after: float | None) -> float:
    """Seconds before retry number ``attempt + 1``: exponential with equal jitter.

    ``retry_base_seconds * 2**attempt`` capped at ``retry_max_seconds``, drawn from its
    upper half (spread, never zero; AWS Architecture Blog, "Exponential Backoff And
    Jitter"), and never sooner than the provider's Retry-After (RFC 9110 10.2.3).
    """
    ceiling = min(settings.retry_max_seconds, settings.retry_base_seconds * 2**attempt)
    delay = random.uniform(ceiling / 2, ceiling)
    return max(delay, retry_after) if retry_after is not None else delay
