"""The send loop of one run: read a batch, submit it, record the outcome, pace, finish.

:class:`SendLoop` holds the run's state (the reader, the jobs in flight and waiting for a
retry, the report) and each step is a method. Providers work in a thread pool
(``send_concurrency`` workers); the database is used on the caller's thread, between
batches: reading the next batch and having the provider prepare it (SendGrid's bodies)
while the provider works on the last, then recording each outcome (``BatchResult``) in
the transaction that renews the send lease (when a third of it has passed; before any
batch after a stall, so a process stopped past its lease sends nothing it read before).
``campaigns.delivery.sending`` says how exactly-once holds and which faults do what.

A lost database connection (PostgreSQL restarted, the backend terminated) does not lose
an outcome: every step is one transaction that runs again, on a new connection, after a
rollback (``newsletter.db.retry_when_lost``), the outcomes in flight still in hand; only
a database away longer than ``database_reconnect_seconds`` stops the run (DatabaseError).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from functools import partial
from typing import TypeVar

from sqlmodel import Session

from campaigns.delivery import send_lease, waves
from campaigns.delivery.ledger import DeliveryCounts, delivery_counts
from campaigns.delivery.ledger_batches import LedgerReader, record_failed
from campaigns.delivery.outcomes import record_outcome
from campaigns.delivery.providers.base import BatchResult, BulkContent, Provider, Recipient
from campaigns.delivery.recipient_links import RecipientLinks
from campaigns.delivery.send_jobs import Job, Outcome, attempt, split_batch
from campaigns.delivery.send_report import ProgressCallback, SendProgress, SendReport
from campaigns.delivery.throttle import Pacer, backoff_seconds
from campaigns.delivery.variant_sends import finish_run
from campaigns.models import Campaign, CampaignStatus
from campaigns.tracking.links import TrackingValues
from campaigns.workflow import transition
from newsletter import db, metrics
from newsletter.errors import ProviderAuthError, ProviderUnavailable
from newsletter.settings import Settings

__all__ = ["ProgressCallback", "SendLoop", "SendProgress", "SendReport"]

S = CampaignStatus
T = TypeVar("T")


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
        variants: Mapping[str, BulkContent] | None = None,
        tracking: TrackingValues | None = None,
        plain_content: BulkContent | None = None,
    ) -> None:
        self.session = session
        self.variants = variants  # label -> content while a subject test's sample goes out
        self.settings = settings
        self.campaign_id = campaign_id
        self.content = content
        self.plain_content = plain_content  # for readers who asked not to be tracked
        self.provider = provider
        self.holder = holder
        self.actor = actor
        self.started = started
        self.on_progress = on_progress
        self.should_stop = should_stop
        # For progress only: a count of the campaign's rows, not made when nobody reads it.
        self.before = self._db(self._counts_before) if on_progress else DeliveryCounts()
        self.report = SendReport(campaign_id=campaign_id, status=S.SENDING)
        links = RecipientLinks(settings)
        links.tracking = tracking  # issue 15: our click and open links, per reader
        self.reader = self._db(
            lambda: LedgerReader(
                session,
                campaign_id=campaign_id,
                links=links,
                batch_size=self._batch_size(),
                sign_links=not provider.signs_links,
            )
        )
        self.pacer = Pacer(settings.send_rate_per_second)
        self.stop = threading.Event()
        self.retries: deque[Job] = deque()
        self.ready: deque[Job] = deque()  # the next batch, read while the provider works
        self.exhausted = False  # the reader has no more queued rows
        self.in_flight: dict[Future[Outcome], Job] = {}
        self.renew_every = max(1.0, settings.lease_seconds / 3)
        self.last_renewal = time.monotonic()

    def _counts_before(self) -> DeliveryCounts:
        """The ledger's counts at the start, for progress (a worker's block skips it)."""
        return delivery_counts(self.session, campaign_id=self.campaign_id)

    def _batch_size(self) -> int:
        size = self.provider.batch_size
        if self.settings.send_rate_per_second > 0:  # keep bursts within about a second
            size = min(size, max(1, int(self.settings.send_rate_per_second)))
        return max(1, size)

    def run(self) -> SendReport:
        """Send until the ledger has no queued row or something stops the run.
        Raises DatabaseError (one line) when the database connection was lost and did not
        come back within ``database_reconnect_seconds``: the campaign stays 'sending' and
        the next run resumes it."""
        workers = self.settings.send_concurrency
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="send") as pool:
            while self._submit(pool, workers):
                if not self.stop.is_set():
                    self._read_ahead()  # overlaps our database and token work with the request
                outcomes = self._wait()
                # Outcomes, their rows and the lease in one commit (again if the link is lost).
                self._db(partial(self._record_all, outcomes), undo=self._undo_point())
                self._progress()
                self._db(self._check_stop)
        return self._finish()

    def _db(self, work: Callable[[], T], undo: Callable[[], None] | None = None) -> T:
        """``work`` again on a new connection when the database connection was lost."""
        return db.retry_when_lost(
            self.session,
            work,
            seconds=self.settings.database_reconnect_seconds,
            what=f"sending campaign {self.campaign_id} (it stays 'sending': send again to resume)",
            undo=undo,
        )

    # ------------------------------------------------------------ read and submit

    def _read_ahead(self) -> None:
        """Read the next batch into ``ready`` unless one is waiting or the ledger is done."""
        if self.ready or self.exhausted:
            return
        reader, last_id = self.reader, self.reader.last_id

        def undo() -> None:  # read again from where this read started
            reader.last_id = last_id
            reader.take_skipped()

        jobs = self._db(lambda: self._jobs(reader.next_batch()), undo=undo)
        self.report.skipped += reader.take_skipped()
        if jobs is None:
            self.exhausted = True
        else:
            self.ready.extend(jobs)

    def _jobs(self, batch: list[Recipient] | None) -> list[Job] | None:
        """A batch as jobs (None at the end of the ledger): see send_jobs.split_batch."""
        if batch is None:
            return None
        jobs = split_batch(
            self.session, batch, variants=self.variants, plain_content=self.plain_content
        )
        # The provider's CPU work for these jobs, here while the batch before is in flight
        # (a send is CPU-bound: this fills the wait for the provider's answer).
        for job in jobs:
            job.prepared = self.provider.prepare(job.content or self.content, job.recipients)
        return jobs

    def _next_job(self) -> Job | None:
        """A retry first, else the batch read ahead; None when there is nothing to send."""
        if self.retries:
            return self.retries.popleft()
        self._read_ahead()
        return self.ready.popleft() if self.ready else None

    def _pace(self, job: Job) -> None:
        """Wait until the rate limit lets ``job`` go (the shared limit overrides it)."""
        self.pacer.wait(len(job.recipients))

    def _submit(self, pool: ThreadPoolExecutor, workers: int) -> bool:
        """Fill the free workers, paced; False when nothing is in flight (the run is over)."""
        while not self.stop.is_set() and len(self.in_flight) < workers:
            if time.monotonic() - self.last_renewal > 2 * self.renew_every:  # a stall
                self._db(self._renew_now)  # stops the run if the lease was lost meanwhile
                continue
            job = self._next_job()
            if job is None:
                break
            self._pace(job)
            future = pool.submit(attempt, self.provider, self.content, job, self.stop)
            self.in_flight[future] = job
        return bool(self.in_flight)

    # ------------------------------------------------------------ record outcomes

    def _wait(self) -> list[Outcome]:
        """Wait for jobs to finish, at most until the lease is due; their outcomes."""
        done, _ = wait(self.in_flight, timeout=self.renew_every, return_when=FIRST_COMPLETED)
        for future in done:
            del self.in_flight[future]
        return [future.result() for future in done]

    def _record_all(self, outcomes: list[Outcome]) -> None:
        """Record the outcomes, keep the lease and commit: one transaction."""
        for outcome in outcomes:
            self._record(outcome)
        self._keep_lease()
        self.session.commit()

    def _undo_point(self) -> Callable[[], None]:
        """What :meth:`_record_all` changes outside the database, to put back before it
        runs again: the report's counts and the retries it queued."""
        report, retries = dataclasses.replace(self.report), len(self.retries)

        def undo() -> None:
            self.report = dataclasses.replace(report)
            while len(self.retries) > retries:
                self.retries.pop()

        return undo

    def _record(self, outcome: Outcome) -> None:
        """Write one job's outcome to the ledger, or stop, or schedule a retry."""
        if outcome.abandoned:
            return
        self.report.batches += 1
        error = outcome.error
        sent, failed = self.report.sent, self.report.failed
        self._record_outcome(outcome)
        self._batch_done(
            seconds=outcome.seconds,
            sent=self.report.sent - sent,
            failed=self.report.failed - failed,
            # 429 and 5xx come as ProviderUnavailable (an SMTP 5xx reply is a rejection)
            status=error.status if isinstance(error, ProviderUnavailable) else None,
        )

    def _batch_done(self, *, seconds: float, sent: int, failed: int, status: int | None) -> None:
        """Count one recorded batch in the metrics (a helper process tells its parent)."""
        provider = self.settings.provider
        metrics.batch_done(provider, seconds=seconds, sent=sent, failed=failed, status=status)

    def _record_outcome(self, outcome: Outcome) -> None:
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
        """Accepted rows sent, rejected ones failed (bounces told), those the receiving
        server put off deferred on their own schedule; the rest (unanswered) retried."""
        tally = record_outcome(
            self.session,
            self.settings,
            campaign_id=self.campaign_id,
            job=job.recipients,
            result=result,
            ranged=job.ranged,
        )
        report = self.report
        report.sent += tally.sent
        report.failed += tally.failed
        report.bounced += tally.bounced
        report.deferred += tally.deferred
        if tally.retry:
            reason = next(iter(result.deferred.values()), "not accepted")
            self._retry(job, tally.retry, result.retry_after, reason)

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
            Job(
                recipients,
                attempt=job.attempt + 1,
                not_before=time.monotonic() + wait_seconds,
                content=job.content,
                ranged=job.ranged,
            )
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

    def _keep_lease(self) -> None:
        """Renew the send lease when a third of it has passed; stop if it was lost. Not
        after every batch: a renewal per batch was a row update and a round trip on the
        critical path of each (1,000 per 100,000 SMTP recipients)."""
        if time.monotonic() - self.last_renewal < self.renew_every:
            return
        seconds = self.settings.lease_seconds
        holder, cid = self.holder, self.campaign_id
        if not send_lease.renew(self.session, campaign_id=cid, holder=holder, seconds=seconds):
            self._stop_run("lost the send lease to another sender")
        self.last_renewal = time.monotonic()

    def _renew_now(self) -> None:
        self._keep_lease()
        self.session.commit()

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
        report.queued, report.status = self._db(self._close)
        report.seconds = time.monotonic() - self.started
        self._progress()
        return report

    def _close(self) -> tuple[int, str]:
        """(rows still queued, the campaign's status), marking it sent when it is done."""
        counts = delivery_counts(self.session, campaign_id=self.campaign_id)
        fresh = self.session.get(Campaign, self.campaign_id, populate_existing=True)
        assert fresh is not None
        done = (
            self.report.stopped is None
            and counts.queued == 0
            and fresh.status == S.SENDING
            and not waves.unreleased(self.session, campaign_id=self.campaign_id)
        )
        # A subject test's sample (issue 16): paused until the winner, not sent.
        if done and not finish_run(self.session, campaign=fresh, actor=self.actor):
            transition(
                self.session,
                campaign=fresh,
                to=S.SENT,
                actor=self.actor,
                reason=f"sent {counts.sent}, skipped {counts.skipped}, failed {counts.failed}"
                + (f"; finished with {counts.deferred} deferred" if counts.deferred else ""),
            )
        self.session.commit()
        return counts.queued, fresh.status
