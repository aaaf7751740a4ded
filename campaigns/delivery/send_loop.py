"""The send loop of one run: read a batch, submit it, record the outcome, pace, finish.

:class:`SendLoop` holds the run's state (the reader, the jobs in flight and waiting for a
retry, the report) and each step is a method. Providers work in a thread pool
(``send_concurrency`` workers); everything that touches the database happens on the
caller's thread, between batches: reading the next batch while the provider works on the
last, recording each outcome from the provider's typed result
(``providers.base.BatchResult``) in the transaction that renews the send lease.
``campaigns.delivery.sending`` says how exactly-once holds and which faults do what.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from campaigns.delivery import send_lease
from campaigns.delivery.ledger import delivery_counts
from campaigns.delivery.ledger_batches import LedgerReader, record_accepted, record_failed
from campaigns.delivery.providers.base import BatchResult, BulkContent, Provider, Recipient
from campaigns.delivery.recipient_links import RecipientLinks
from campaigns.delivery.throttle import Pacer, backoff_seconds
from campaigns.models import Campaign, CampaignStatus
from campaigns.workflow import transition
from newsletter.errors import ProviderAuthError, ProviderError, ProviderUnavailable
from newsletter.settings import Settings

S = CampaignStatus


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


@dataclass
class Job:
    """Recipients handed to the provider together, in delivery id order."""

    recipients: list[Recipient]
    attempt: int = 0
    not_before: float = 0.0  # time.monotonic() before which it must not be tried


@dataclass
class Outcome:
    """A job's answer: the provider's result, or the error that refused the whole job."""

    job: Job
    result: BatchResult | None = None
    error: ProviderError | None = None
    abandoned: bool = False  # the loop stopped before this job was tried


def attempt(provider: Provider, content: BulkContent, job: Job, stop: threading.Event) -> Outcome:
    """In a worker thread: wait until the job may go, then hand it to the provider."""
    while (delay := job.not_before - time.monotonic()) > 0:
        if stop.wait(min(delay, 0.5)):
            return Outcome(job, abandoned=True)
    if stop.is_set():
        return Outcome(job, abandoned=True)
    try:
        return Outcome(job, result=provider.send_batch(content, job.recipients))
    except ProviderError as err:
        return Outcome(job, error=err)


class SendLoop:
    """One run over a campaign that is ``sending``, its lease held by ``holder``."""

    def __init__(
        self,
        session: Session,
        *,
        settings: Settings,
        campaign_id: int,
        content: BulkContent,
        provider: Provider,
        holder: str,
        actor: str,
        started: float,
        on_progress: ProgressCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.session = session
        self.settings = settings
        self.campaign_id = campaign_id
        self.content = content
        self.provider = provider
        self.holder = holder
        self.actor = actor
        self.started = started
        self.on_progress = on_progress
        self.should_stop = should_stop
        self.before = delivery_counts(session, campaign_id=campaign_id)
        self.report = SendReport(campaign_id=campaign_id, status=S.SENDING)
        self.reader = LedgerReader(
            session,
            campaign_id=campaign_id,
            links=RecipientLinks(settings),
            batch_size=self._batch_size(),
        )
        self.pacer = Pacer(settings.send_rate_per_second)
        self.stop = threading.Event()
        self.retries: deque[Job] = deque()
        self.ready: Job | None = None  # the next batch, read while the provider works
        self.exhausted = False  # the reader has no more queued rows
        self.in_flight: dict[Future[Outcome], Job] = {}
        self.renew_every = max(1.0, settings.lease_seconds / 3)
        self.last_renewal = time.monotonic()

    def _batch_size(self) -> int:
        size = self.provider.batch_size
        if self.settings.send_rate_per_second > 0:  # keep bursts within about a second
            size = min(size, max(1, int(self.settings.send_rate_per_second)))
        return max(1, size)

    def run(self) -> SendReport:
        """Send until the ledger has no queued row or something stops the run."""
        workers = self.settings.send_concurrency
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="send") as pool:
            while self._submit(pool, workers):
                if not self.stop.is_set():
                    self._read_ahead()  # overlaps our database and token work with the request
                done = self._collect()
                self._keep_lease(renew=bool(done))
                self.session.commit()  # each batch's outcome: together with its ledger rows
                self._progress()
                self._check_stop()
        return self._finish()

    # ------------------------------------------------------------ read and submit

    def _read_ahead(self) -> None:
        """Read the next batch into ``ready`` unless one is waiting or the ledger is done."""
        if self.ready is not None or self.exhausted:
            return
        batch = self.reader.next_batch()
        self.report.skipped += self.reader.take_skipped()
        if batch is None:
            self.exhausted = True
        else:
            self.ready = Job(batch)

    def _next_job(self) -> Job | None:
        """A retry first, else the batch read ahead; None when there is nothing to send."""
        if self.retries:
            return self.retries.popleft()
        self._read_ahead()
        job, self.ready = self.ready, None
        return job

    def _submit(self, pool: ThreadPoolExecutor, workers: int) -> bool:
        """Fill the free workers, paced; False when nothing is in flight (the run is over)."""
        while not self.stop.is_set() and len(self.in_flight) < workers:
            job = self._next_job()
            if job is None:
                break
            self.pacer.wait(len(job.recipients))
            future = pool.submit(attempt, self.provider, self.content, job, self.stop)
            self.in_flight[future] = job
        return bool(self.in_flight)

    # ------------------------------------------------------------ record outcomes

    def _collect(self) -> set[Future[Outcome]]:
        """Wait for a job to finish (at most until the lease is due) and record it."""
        done, _ = wait(self.in_flight, timeout=self.renew_every, return_when=FIRST_COMPLETED)
        for future in done:
            del self.in_flight[future]
            self._record(future.result())
        return done

    def _record(self, outcome: Outcome) -> None:
        """Write one job's outcome to the ledger, or stop, or schedule a retry."""
        if outcome.abandoned:
            return
        self.report.batches += 1
        job, error = outcome.job, outcome.error
        if isinstance(error, ProviderAuthError):
            self._halt(f"the provider refused to go on (fix it, then send again): {error}")
        elif isinstance(error, ProviderUnavailable):
            self._retry(job, job.recipients, error.retry_after, str(error))
        elif error is not None:  # ProviderRejected or another refusal: this batch only
            reason = str(error)
            self.report.failed += record_failed(
                self.session, errors={r.delivery_id: reason for r in job.recipients}
            )
        else:
            assert outcome.result is not None
            self._record_result(job, outcome.result)

    def _record_result(self, job: Job, result: BatchResult) -> None:
        """Accepted rows sent, rejected ones failed; deferred ones (or unanswered) retried."""
        self.report.sent += record_accepted(
            self.session, campaign_id=self.campaign_id, job=job.recipients, result=result
        )
        self.report.failed += record_failed(self.session, errors=result.rejected)
        deferred = result.deferred
        statuses = result.statuses
        retry = [
            r for r in job.recipients if r.delivery_id in deferred or r.delivery_id not in statuses
        ]
        if retry:
            reason = next(iter(deferred.values()), "not accepted")
            self._retry(job, retry, result.retry_after, reason)

    def _retry(
        self, job: Job, recipients: list[Recipient], retry_after: float | None, reason: str
    ) -> None:
        """Back off and try ``recipients`` again, or fail the campaign after the last attempt."""
        settings = self.settings
        if job.attempt + 1 >= settings.retry_max_attempts:
            self._halt(
                f"provider unavailable after {settings.retry_max_attempts} attempts: {reason}; "
                "the remaining recipients stay queued: send again to resume"
            )
            return
        wait_seconds = backoff_seconds(settings, job.attempt, retry_after)
        self.retries.append(
            Job(recipients, attempt=job.attempt + 1, not_before=time.monotonic() + wait_seconds)
        )

    def _halt(self, reason: str) -> None:
        """Stop sending and fail the campaign; its queued rows wait for the next run."""
        self.report.stopped = reason
        fresh = self.session.get(Campaign, self.campaign_id, populate_existing=True)
        assert fresh is not None
        if fresh.status == S.SENDING:
            transition(
                self.session, campaign=fresh, to=S.FAILED, actor=self.actor, reason=reason[:500]
            )
        self.stop.set()

    # ------------------------------------------------------------ between batches

    def _keep_lease(self, *, renew: bool) -> None:
        """Renew the send lease after a batch or when it is due; stop if it was lost."""
        if not renew and time.monotonic() - self.last_renewal < self.renew_every:
            return
        if not send_lease.renew(
            self.session,
            campaign_id=self.campaign_id,
            holder=self.holder,
            seconds=self.settings.lease_seconds,
        ):
            self._stop_run("lost the send lease to another sender")
        self.last_renewal = time.monotonic()

    def _check_stop(self) -> None:
        """A stop request (SIGTERM) or a pause/cancel by someone else ends the run."""
        if self.stop.is_set():
            return
        if self.should_stop is not None and self.should_stop():
            self._stop_run("stop requested")
            return
        status = self.reader.campaign_status()
        if status != S.SENDING:
            self._stop_run(f"campaign is {status}")

    def _stop_run(self, reason: str) -> None:
        """No new batch starts; the ones in flight finish and are recorded."""
        self.report.stopped = reason
        self.stop.set()

    def _progress(self) -> None:
        if self.on_progress is None:
            return
        before, report = self.before, self.report
        self.on_progress(
            SendProgress(
                campaign_id=self.campaign_id,
                total=before.total,
                sent=before.sent + report.sent,
                skipped=before.skipped + report.skipped,
                failed=before.failed + report.failed,
                elapsed=time.monotonic() - self.started,
            )
        )

    def _finish(self) -> SendReport:
        """Count what is left; a run that sent everything marks the campaign sent."""
        report = self.report
        report.skipped += self.reader.take_skipped()
        counts = delivery_counts(self.session, campaign_id=self.campaign_id)
        report.queued = counts.queued
        fresh = self.session.get(Campaign, self.campaign_id, populate_existing=True)
        assert fresh is not None
        if report.stopped is None and counts.queued == 0 and fresh.status == S.SENDING:
            transition(
                self.session,
                campaign=fresh,
                to=S.SENT,
                actor=self.actor,
                reason=f"sent {counts.sent}, skipped {counts.skipped}, failed {counts.failed}",
            )
        self.session.commit()
        report.status = fresh.status
        report.seconds = time.monotonic() - self.started
        self._progress()
        return report
