"""What a send reports: progress after every batch, and the report of a run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SendProgress:
    """Where a send stands, after every batch; counts are of the whole campaign."""

    campaign_id: int
    total: int
    sent: int
    skipped: int
    failed: int
    elapsed: float  # seconds since this run started

    @property
    def done(self) -> int:
        return self.sent + self.skipped + self.failed

    @property
    def rate(self) -> float:
        """Messages accepted per second in this run."""
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0


ProgressCallback = Callable[[SendProgress], None]


@dataclass
class SendReport:
    """What one run did: counts are of this run, ``queued`` is what is left after it."""

    campaign_id: int
    status: str
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    queued: int = 0
    seconds: float = 0.0
    batches: int = 0
    stopped: str | None = None  # why the run ended early, if it did
    # Issue 15: of ``failed``, refused by the receiving server (bounces); and recipients it
    # put off (deferred, tried again on their own schedule).
    bounced: int = 0
    deferred: int = 0

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
            "bounced": self.bounced,
            "deferred": self.deferred,
        }
