"""The send loop: stream the ledger in batches to the provider, exactly once per reader.

How exactly-once holds:
- The ledger has one row per (campaign, subscriber). The loop reads ``queued`` rows in
  keyset batches (``id > last``; no full list in memory), hands a batch to the provider
  and, when the provider has accepted it, marks its rows ``sent`` with the provider's
  message id in ONE transaction. A row is sent at most once per run, and a new run only
  reads rows still ``queued``.
- The window: if the process dies after the provider accepted a batch and before that
  transaction commits, those rows are still ``queued`` and the next run sends them
  again. So a crash can repeat at most the batches in flight at that moment: one batch
  with ``send_concurrency = 1`` (1000 recipients on SendGrid, ``smtp_batch_size`` on
  SMTP), at most ``send_concurrency`` batches otherwise. Nothing else is ever repeated
  and nothing is lost (tests/test_kill_resume.py measures it with SIGKILL).
- A lease per campaign (campaigns.delivery.send_lease) keeps a second sender away.

Faults: 429/5xx/timeouts (ProviderUnavailable) are retried with exponential backoff and
jitter, never sooner than the provider's Retry-After; after ``retry_max_attempts`` the
campaign goes to FAILED with its rows still queued (send again to resume). A 400
(ProviderRejected) fails that batch only. A 401/403 (ProviderAuthError) fails the
campaign and nothing more is sent. Pause or cancel (another process changing the
campaign's status) stops the loop between batches.
"""

from __future__ import annotations

import importlib
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from sqlmodel import Session

from campaigns.delivery import send_lease
from campaigns.delivery.ledger import delivery_counts, queue_deliveries
from campaigns.delivery.ledger_send import LedgerReader, record_batch_sent, record_failed
from campaigns.delivery.providers.base import BatchResult, BulkContent, Provider, Recipient
from campaigns.delivery.recipient_links import RecipientLinks
from campaigns.delivery.throttle import (
    Job,
    Outcome,
    Pacer,
    ProgressCallback,
    SendProgress,
    SendReport,
    attempt_batch,
    backoff_seconds,
    fewer_gc_passes,
)
from campaigns.models import Campaign, CampaignStatus
from campaigns.workflow import transition
from newsletter.errors import (
    ContentError,
    NotFound,
    ProviderAuthError,
    ProviderRejected,
    ProviderUnavailable,
    StateError,
)
from newsletter.mail import list_id
from newsletter.settings import Settings

S = CampaignStatus
STARTABLE = (S.DRAFT, S.SCHEDULED, S.PAUSED, S.FAILED, S.SENDING)


def bulk_content(settings: Settings, campaign: Campaign, *, test: bool = False) -> BulkContent:
    if campaign.html is None or campaign.text is None:
        raise ContentError(f"campaign {campaign.id} has no rendered content")
    assert campaign.id is not None
    return BulkContent(
        campaign_id=campaign.id,
        subject=campaign.subject,
        html=campaign.html,
        text=campaign.text,
        from_email=settings.from_email,
        from_name=settings.from_name,
        reply_to=settings.reply_to,
        list_id=list_id(settings),
        test=test,
    )


def _optional(module: str, name: str) -> Callable[..., Any] | None:
    """A function of a sibling module that may not exist yet (rendering, preflight)."""
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name == module:
            return None
        raise
    return getattr(loaded, name, None)


def _render_if_needed(session: Session, *, settings: Settings, campaign: Campaign) -> None:
    if campaign.html is None:
        render = _optional("campaigns.content.rendering", "render_campaign")
        if render is None:
            raise ContentError(f"campaign {campaign.id} has no rendered content")
        render(session, settings=settings, campaign=campaign)


def _prepare(session: Session, *, settings: Settings, campaign: Campaign, check: bool) -> None:
    """Run preflight (which renders) before the first send, or at least render once."""
    if check and campaign.queued_at is None:
        preflight = _optional("campaigns.content.preflight", "preflight")
        if preflight is not None:
            report = preflight(session, settings=settings, campaign=campaign)
            if not report.ok:
                findings = "; ".join(str(f) for f in report.findings)
                raise ContentError(f"campaign {campaign.id} failed preflight: {findings}")
    _render_if_needed(session, settings=settings, campaign=campaign)


def _provider_batch_size(provider: Provider, settings: Settings) -> int:
    size = int(getattr(provider, "batch_size", 100))
    if settings.send_rate_per_second > 0:  # keep bursts within about a second
        size = min(size, max(1, int(settings.send_rate_per_second)))
    return max(1, size)


def send_campaign(
    session: Session,
    *,
    settings: Settings,
    campaign_id: int,
    provider: Provider | None = None,
    on_progress: ProgressCallback | None = None,
    actor: str = "system",
    preflight: bool = True,
    should_stop: Callable[[], bool] | None = None,
) -> SendReport:
    """Queue (first time), then send every queued delivery of a campaign; resumable.

    Commits as it goes (one transaction per batch). ``provider`` defaults to the one
    ``settings`` names, created and closed here. Before the first send, preflight runs
    (campaigns.content.preflight, which also renders); ``preflight=False`` is for a caller that
    has just run it (the scheduler) or content made by hand (tests).

    ``should_stop`` is asked after every batch (SIGTERM in the scheduler): no new batch
    starts, the batches in flight finish and are recorded, and the campaign stays
    'sending' for the next run to resume.
    """
    started = time.monotonic()
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"no campaign with id {campaign_id}")
    if S(campaign.status) not in STARTABLE:
        raise StateError(f"campaign {campaign_id} is {campaign.status}; it cannot be sent")
    settings.check_for_sending()
    holder = send_lease.new_holder()
    send_lease.claim(
        session, campaign_id=campaign_id, holder=holder, seconds=settings.lease_seconds
    )
    session.commit()
    own_provider = provider is None
    try:
        _prepare(session, settings=settings, campaign=campaign, check=preflight)
        if campaign.queued_at is None:
            queue_deliveries(session, campaign=campaign)
        if campaign.status != S.SENDING:
            transition(session, campaign=campaign, to=S.SENDING, actor=actor, reason="send")
        session.commit()
        if provider is None:
            from campaigns.delivery.providers.factory import make_provider

            provider = make_provider(settings)
        with fewer_gc_passes():
            report = _run(
                session,
                settings=settings,
                campaign=campaign,
                provider=provider,
                holder=holder,
                on_progress=on_progress,
                actor=actor,
                started=started,
                should_stop=should_stop,
            )
    finally:
        if own_provider and provider is not None:
            provider.close()
        session.rollback()
        send_lease.release(session, campaign_id=campaign_id, holder=holder)
        session.commit()
    return report


def _run(
    session: Session,
    *,
    settings: Settings,
    campaign: Campaign,
    provider: Provider,
    holder: str,
    on_progress: ProgressCallback | None,
    actor: str,
    started: float,
    should_stop: Callable[[], bool] | None = None,
) -> SendReport:
    assert campaign.id is not None
    campaign_id = campaign.id
    content = bulk_content(settings, campaign)
    before = delivery_counts(session, campaign_id=campaign_id)
    report = SendReport(campaign_id=campaign_id, status=campaign.status)
    reader = LedgerReader(
        session,
        campaign_id=campaign_id,
        links=RecipientLinks(settings),
        batch_size=_provider_batch_size(provider, settings),
    )
    concurrency = settings.send_concurrency
    pacer = Pacer(settings.send_rate_per_second)
    retries: deque[Job] = deque()
    in_flight: dict[Future[Outcome], Job] = {}
    stop = threading.Event()
    renew_every = max(1.0, settings.lease_seconds / 3)
    last_renewal = time.monotonic()

    def progress() -> None:
        if on_progress is not None:
            on_progress(
                SendProgress(
                    campaign_id=campaign_id,
                    total=before.total,
                    sent=before.sent + report.sent,
                    skipped=before.skipped + report.skipped,
                    failed=before.failed + report.failed,
                    elapsed=time.monotonic() - started,
                )
            )

    def fail_campaign(reason: str) -> None:
        fresh = session.get(Campaign, campaign_id, populate_existing=True)
        assert fresh is not None
        if fresh.status == S.SENDING:
            transition(session, campaign=fresh, to=S.FAILED, actor=actor, reason=reason[:500])

    def handle(outcome: Outcome) -> None:
        job = outcome.job
        if outcome.abandoned:
            return
        report.batches += 1
        error = outcome.error
        if isinstance(error, ProviderAuthError):
            report.stopped = f"the provider refused to go on (fix it, then send again): {error}"
            fail_campaign(report.stopped)
            stop.set()
            return
        if isinstance(error, ProviderUnavailable):
            retry_ids = {r.delivery_id for r in job.recipients}
            retry_after, reason = error.retry_after, str(error)
        elif error is not None:  # ProviderRejected or another refusal: this batch only
            report.failed += record_failed(
                session, errors={r.delivery_id: str(error) for r in job.recipients}
            )
            return
        else:
            result = outcome.result or BatchResult()
            failed = dict(getattr(result, "failed", {}) or {})
            report.sent += record_batch_sent(
                session, campaign_id=campaign_id, job=job.recipients, result=result, failed=failed
            )
            report.failed += record_failed(session, errors=failed)
            retry_ids = {
                r.delivery_id
                for r in job.recipients
                if r.delivery_id not in result.message_ids and r.delivery_id not in failed
            }
            retry_after = getattr(result, "retry_after", None)
            reason = next(iter(getattr(result, "deferred", {}).values()), "not accepted")
        if not retry_ids:
            return
        if job.attempt + 1 >= settings.retry_max_attempts:
            report.stopped = (
                f"provider unavailable after {settings.retry_max_attempts} attempts: {reason}; "
                "the remaining recipients stay queued: send again to resume"
            )
            fail_campaign(report.stopped)
            stop.set()
            return
        retries.append(
            Job(
                [r for r in job.recipients if r.delivery_id in retry_ids],
                attempt=job.attempt + 1,
                not_before=time.monotonic() + backoff_seconds(settings, job.attempt, retry_after),
            )
        )

    ready: list[Job] = []  # the next batch, read while the provider works on the last
    exhausted = False

    def read_ahead() -> None:
        nonlocal exhausted
        if not ready and not exhausted:
            batch = reader.next_batch()
            report.skipped += reader.take_skipped()
            if batch is None:
                exhausted = True
            else:
                ready.append(Job(batch))

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="send") as pool:
        while True:
            while not stop.is_set() and len(in_flight) < concurrency:
                if not retries:
                    read_ahead()
                job = retries.popleft() if retries else (ready.pop() if ready else None)
                if job is None:
                    break
                pacer.wait(len(job.recipients))
                in_flight[pool.submit(attempt_batch, provider, content, job, stop)] = job
            if not in_flight:
                break
            if not stop.is_set():
                read_ahead()  # overlaps our database and token work with the HTTP request
            done, _ = wait(in_flight, timeout=renew_every, return_when=FIRST_COMPLETED)
            for future in done:
                del in_flight[future]
                handle(future.result())
            if time.monotonic() - last_renewal >= renew_every or done:
                if not send_lease.renew(
                    session,
                    campaign_id=campaign_id,
                    holder=holder,
                    seconds=settings.lease_seconds,
                ):
                    report.stopped = "lost the send lease to another sender"
                    stop.set()
                last_renewal = time.monotonic()
            session.commit()  # each batch's outcome: together with its ledger rows
            progress()
            if not stop.is_set() and should_stop is not None and should_stop():
                report.stopped = "stop requested"
                stop.set()
            if not stop.is_set():
                status = reader.campaign_status()
                if status != S.SENDING:
                    report.stopped = f"campaign is {status}"
                    stop.set()
    report.skipped += reader.take_skipped()
    counts = delivery_counts(session, campaign_id=campaign_id)
    report.queued = counts.queued
    fresh = session.get(Campaign, campaign_id, populate_existing=True)
    assert fresh is not None
    if report.stopped is None and counts.queued == 0 and fresh.status == S.SENDING:
        transition(
            session,
            campaign=fresh,
            to=S.SENT,
            actor=actor,
            reason=f"sent {counts.sent}, skipped {counts.skipped}, failed {counts.failed}",
        )
    session.commit()
    report.status = fresh.status
    report.seconds = time.monotonic() - started
    progress()
    return report


def test_send(
    session: Session,
    *,
    settings: Settings,
    campaign_id: int,
    to_email: str,
    provider: Provider | None = None,
) -> str:
    """Send one copy marked as a test to ``to_email``; records nothing. Returns the message id."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound(f"no campaign with id {campaign_id}")
    _render_if_needed(session, settings=settings, campaign=campaign)
    content = bulk_content(settings, campaign, test=True)
    links = RecipientLinks(settings)
    recipient = Recipient(
        delivery_id=0, subscriber_id=0, email=to_email, name=None, values=links.values(0, None)
    )
    own = provider is None
    if provider is None:
        from campaigns.delivery.providers.factory import make_provider

        provider = make_provider(settings)
    try:
        result = provider.send_batch(content, [recipient])
    finally:
        if own:
            provider.close()
    failed = getattr(result, "failed", {}) or {}
    if 0 in failed:
        raise ProviderRejected(f"the test message to {to_email} was refused: {failed[0]}")
    if 0 not in result.message_ids:
        raise ProviderUnavailable(f"the test message to {to_email} was not accepted; try again")
    return result.message_ids[0]
