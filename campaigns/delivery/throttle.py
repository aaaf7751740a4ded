"""The send loop's small parts: progress and report types, jobs, pacing and backoff."""

from __future__ import annotations

import gc
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from campaigns.delivery.providers.base import BatchResult, BulkContent, Provider, Recipient
from newsletter.errors import ProviderError
from newsletter.settings import Settings


@dataclass(frozen=True)
class SendProgress:
    campaign_id: int
    total: int
    sent: int
    skipped: int
    failed: int
    elapsed: float

    @property
    def done(self) -> int:
        return self.sent + self.skipped + self.failed

    @property
    def rate(self) -> float:
        """Messages accepted per second in this run."""
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0


@dataclass
class SendReport:
    campaign_id: int
    status: str
    sent: int = 0  # in this run
    skipped: int = 0
    failed: int = 0
    queued: int = 0  # still queued at the end
    seconds: float = 0.0
    batches: int = 0
    stopped: str | None = None  # why the run ended early, if it did

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "campaign_id": self.campaign_id,
            "status": self.status,
            "sent": self.sent,
            "skipped": self.skipped,
            "failed": self.failed,
            "queued": self.queued,
            "seconds": round(self.seconds, 3),
            "rate": round(self.rate, 1),
            "batches": self.batches,
            "stopped": self.stopped,
        }


ProgressCallback = Callable[[SendProgress], None]


@dataclass
class Job:
    recipients: list[Recipient]
    attempt: int = 0
    not_before: float = 0.0


@dataclass
class Outcome:
    job: Job
    result: BatchResult | None = None
    error: ProviderError | None = None
    abandoned: bool = False  # the loop stopped before this job was tried


@dataclass
class Pacer:
    """Average at most ``rate`` messages per second (0: unthrottled)."""

    rate: float
    start: float = field(default_factory=time.monotonic)
    submitted: int = 0

    def wait(self, count: int) -> None:
        if self.rate > 0:
            delay = self.start + self.submitted / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        self.submitted += count


@contextmanager
def fewer_gc_passes(threshold: int = 50_000) -> Iterator[None]:
    """Run a send with rare cyclic-GC passes; restores the interpreter's settings after.

    A batch allocates tens of thousands of small dicts and strings, all freed by
    reference counting. With the default threshold (700) the collector ran every few
    recipients and, through the older generations, kept re-walking every long-lived
    object of the process: 3 µs of 16 per recipient. ``gc.freeze`` parks the objects
    that exist at the start (modules, the ORM's mappers) outside the collector's walks.
    """
    old = gc.get_threshold()
    if old[0] >= threshold:  # another send in this process has it set; it restores
        yield
        return
    gc.freeze()
    gc.set_threshold(threshold, old[1], old[2])
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


def backoff_seconds(settings: Settings, attempt: int, retry_after: float | None) -> float:
    ceiling = min(settings.retry_max_seconds, settings.retry_base_seconds * 2**attempt)
    delay = random.uniform(ceiling / 2, ceiling)  # equal jitter: spread, never zero
    return max(delay, retry_after) if retry_after is not None else delay


def attempt_batch(
    provider: Provider, content: BulkContent, job: Job, stop: threading.Event
) -> Outcome:
    while (delay := job.not_before - time.monotonic()) > 0:
        if stop.wait(min(delay, 0.5)):
            return Outcome(job, abandoned=True)
    if stop.is_set():
        return Outcome(job, abandoned=True)
    try:
        return Outcome(job, result=provider.send_batch(content, job.recipients))
    except ProviderError as err:
        return Outcome(job, error=err)
