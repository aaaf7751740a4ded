"""A batch result that says what happened to each recipient, not just who was accepted.

An SMTP batch is many messages: some may be accepted, some refused for good (5xx), and
the connection may drop half-way. Raising would throw away the accepted ones and get
them sent twice, so such providers return this instead. The send loop records
``message_ids`` as sent and ``failed`` as failed, and retries ``deferred`` (recipients of
the batch that appear in none of the three are treated as deferred too).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from campaigns.delivery.providers.base import BatchResult


@dataclass
class PartialBatchResult(BatchResult):
    failed: dict[int, str] = field(default_factory=dict)  # delivery id -> why, for good
    deferred: dict[int, str] = field(default_factory=dict)  # delivery id -> why, try again
    retry_after: float | None = None
