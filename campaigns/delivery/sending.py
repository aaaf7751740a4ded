"""Sending a campaign: stream the ledger in batches to the provider, exactly once per reader.

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
  and nothing is lost (tests/e2e/test_kill_resume.py measures it with SIGKILL).
- A lease per campaign (campaigns.delivery.send_lease) keeps a second sender away; a
  sender killed on this host is taken over at once, one on another host at expiry.

Faults: 429/5xx/timeouts (ProviderUnavailable) and recipients the provider did not take
(a lost connection, an SMTP 421) are retried with exponential backoff and jitter
(``throttle``), never sooner than the provider's Retry-After; after
``retry_max_attempts`` the campaign goes to FAILED with its rows still queued (send
again to resume). A 400 (ProviderRejected) fails that batch only, a rejected recipient
only itself; a receiving server's refusal of one recipient is a bounce (5yz) or a
deferral of that recipient alone on its own schedule (4yz; ``outcomes``, ``deferrals``).
A 401/403 (ProviderAuthError) fails the campaign and nothing more is sent. Pause or
cancel (another process changing the campaign's status) stops the loop between batches.
A lost database connection is retried on a new one, the batch outcomes in hand, for
``database_reconnect_seconds``; then the run stops with one DatabaseError line, the
campaign still 'sending'. A real send (SendGrid, SMTP) with an ``http://`` base URL is
refused before anything starts (RFC 8058, ``factory``).

This module prepares a run (preflight, rendering, queueing, the lease, the provider) and
sends single test copies; the loop itself, step by step, is
:class:`campaigns.delivery.send_loop.SendLoop`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import TypeVar

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlmodel import Session

from campaigns.actions import get_campaign
from campaigns.content.preflight import preflight as run_preflight
from campaigns.content.rendering import render_campaign
from campaigns.delivery import processes, send_lease, waves
from campaigns.delivery.gc_passes import fewer_gc_passes
from campaigns.delivery.providers.base import (
    BulkContent,
    Provider,
    Recipient,
    SendStatus,
    bulk_content,
)
from campaigns.delivery.providers.factory import check_one_click_links, make_sending_provider
from campaigns.delivery.recipient_links import RecipientLinks
from campaigns.delivery.send_loop import ProgressCallback, SendLoop, SendProgress, SendReport
from campaigns.delivery.tracked_content import tracked_content
from campaigns.delivery.variant_sends import queue_for_send, run_contents
from campaigns.models import Campaign, CampaignStatus
from campaigns.tracking.links import TrackingValues
from campaigns.workflow import transition
from newsletter import db
from newsletter.clock import utcnow
from newsletter.errors import (
    ContentError,
    ProviderRejected,
    ProviderUnavailable,
    StateError,
    Suppressed,
)
from newsletter.settings import Settings
from subscribers.suppression import Mail, refusal

__all__ = [
    "SendProgress",
    "SendReport",
    "bulk_content",
    "fewer_gc_passes",
    "send_campaign",
    "test_send",
]

log = logging.getLogger(__name__)
S = CampaignStatus
T = TypeVar("T")
STARTABLE = (S.DRAFT, S.SCHEDULED, S.PAUSED, S.FAILED, S.SENDING)


def _prepare(session: Session, *, settings: Settings, campaign: Campaign, check: bool) -> None:
    """Run preflight (which renders) before the first send, or at least render once."""
    if check and campaign.queued_at is None:
        report = run_preflight(session, settings=settings, campaign=campaign)
        if not report.ok:
            findings = "; ".join(str(f) for f in report.findings)
            raise ContentError(f"campaign {campaign.id} failed preflight: {findings}")
    if campaign.html is None:
        render_campaign(session, settings=settings, campaign=campaign)


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
    now: datetime | None = None,
) -> SendReport:
    """Queue (first time), then send every queued delivery of a campaign; resumable.

    A campaign sent at a local time (issue 16) has its waves due by ``now`` (default: the
    clock) queued instead (campaigns.delivery.waves), and stays 'sending' until the
    scheduler has released and this has sent the last one.

    Commits as it goes (one transaction per batch). ``provider`` defaults to the one
    ``settings`` names, created and closed here. Before the first send, preflight runs
    (campaigns.content.preflight, which also renders); ``preflight=False`` is for a caller that
    has just run it (the scheduler) or content made by hand (tests).

    ``should_stop`` is asked after every batch (SIGTERM in the scheduler): no new batch
    starts, the batches in flight finish and are recorded, and the campaign stays
    'sending' for the next run to resume. Raises NotFound, StateError (not startable, or
    another sender holds the lease), ContentError (not renderable or failed preflight),
    ConfigError (settings unfit for sending, such as an http:// base URL for real mail),
    DatabaseError (one line: the database went away for longer than
    ``database_reconnect_seconds``; the campaign stays 'sending' for the next run).
    """
    started = time.monotonic()
    with db.one_line_when_lost(f"sending campaign {campaign_id}"):
        campaign = get_campaign(session, campaign_id=campaign_id)
        if S(campaign.status) not in STARTABLE:
            raise StateError(f"campaign {campaign_id} is {campaign.status}; it cannot be sent")
        settings.check_for_sending()
        check_one_click_links(settings)
        holder = send_lease.new_holder()
        _retrying(
            session, settings, campaign_id, partial(_claim, session, settings, campaign_id, holder)
        )
        own_provider = provider is None
        try:
            refuse = partial(send_lease.refuse_if_queued, session, campaign_id=campaign_id)
            _retrying(session, settings, campaign_id, refuse)
            ready = partial(_ready, session, settings, campaign_id, actor=actor, check=preflight)
            campaign = _retrying(session, settings, campaign_id, ready)
            if waves.has_waves(session, campaign_id=campaign_id):
                release = partial(
                    waves.release_due,
                    session,
                    settings=settings,
                    campaign_id=campaign_id,
                    now=now or utcnow(),
                )
                _retrying(session, settings, campaign_id, release)
            content, plain, tracking = _retrying(
                session, settings, campaign_id, partial(_compiled, session, settings, campaign)
            )
            # A subject test's variants (issue 16); (content, None) for every other campaign.
            contents = partial(run_contents, session, campaign=campaign, content=content)
            content, variants = _retrying(session, settings, campaign_id, contents)
            shared = None
            if provider is None:  # a large send shared by processes of this machine
                shared = _shared(
                    session, settings, campaign_id, holder, started, on_progress, should_stop
                )
                if shared is not None and shared.report.stopped is not None:
                    return shared.report
                provider = make_sending_provider(settings)
            loop = SendLoop(
                session,
                settings=settings,
                campaign_id=campaign_id,
                content=content,
                provider=provider,
                holder=holder,
                actor=actor,
                started=started,
                on_progress=on_progress,
                should_stop=should_stop,
                variants=variants,
                tracking=tracking,
                plain_content=plain,
            )
            if shared is None:
                with fewer_gc_passes():
                    return loop.run()
            if shared.done_through is not None:  # the helpers went through their blocks
                loop.reader.last_id = shared.done_through
            return processes.merged(shared.report, loop.run())
        finally:
            if own_provider and provider is not None:
                provider.close()
            _release(session, campaign_id, holder)


def _shared(
    session: Session,
    settings: Settings,
    campaign_id: int,
    holder: str,
    started: float,
    on_progress: ProgressCallback | None,
    should_stop: Callable[[], bool] | None,
) -> processes.Shared | None:
    """The helper processes' part of a large send (campaigns.delivery.processes), again
    for as long as enough is queued after their blocks (a local-time wave released while
    they sent: a review found it sent by this process alone); None when this process
    sends it alone."""
    shared: processes.Shared | None = None
    plan = partial(processes.plan, session, settings, campaign_id=campaign_id)
    while blocks := _retrying(session, settings, campaign_id, plan):
        more = processes.send_shared(
            session,
            settings=settings,
            campaign_id=campaign_id,
            blocks=blocks,
            holder=holder,
            started=started,
            on_progress=on_progress,
            should_stop=should_stop,
        )
        if shared is not None:  # the rounds' counts together; the last one's outcome
            more = processes.Shared(processes.merged(shared.report, more.report), more.done_through)
        shared = more
        if more.report.stopped is not None or more.done_through is None:
            break
    return shared


def _retrying(session: Session, settings: Settings, campaign_id: int, work: Callable[[], T]) -> T:
    """``work`` (one transaction) again on a new connection when the database went away."""
    return db.retry_when_lost(
        session,
        work,
        seconds=settings.database_reconnect_seconds,
        what=f"starting to send campaign {campaign_id}",
    )


def _claim(session: Session, settings: Settings, campaign_id: int, holder: str) -> None:
    send_lease.claim(
        session, campaign_id=campaign_id, holder=holder, seconds=settings.lease_seconds
    )
    session.commit()


def _ready(
    session: Session, settings: Settings, campaign_id: int, *, actor: str, check: bool
) -> Campaign:
    """Preflight or render, queue the first time, move to 'sending'; committed."""
    campaign = session.get(Campaign, campaign_id)
    assert campaign is not None
    _prepare(session, settings=settings, campaign=campaign, check=check)
    if waves.has_waves(session, campaign_id=campaign_id):
        # Issue 16: sent at a local time; the scheduler queues each wave in its turn.
        if campaign.queued_at is None:
            campaign.queued_at = utcnow()
            session.add(campaign)
    else:
        queue_for_send(session, settings=settings, campaign=campaign)  # once; a test's phase
    if campaign.status != S.SENDING:
        transition(session, campaign=campaign, to=S.SENDING, actor=actor, reason="send")
    session.commit()
    return campaign


def _compiled(
    session: Session, settings: Settings, campaign: Campaign
) -> tuple[BulkContent, BulkContent | None, TrackingValues | None]:
    """The content as sent, its link table committed (issue 15: our own tracking)."""
    compiled = tracked_content(session, settings=settings, campaign=campaign)
    session.commit()
    return compiled


def _release(session: Session, campaign_id: int, holder: str) -> None:
    """Give the send lease up. With the database gone it cannot be: it expires, and the
    next run on this host takes it at once (our process will be gone)."""
    try:
        session.rollback()
        send_lease.release(session, campaign_id=campaign_id, holder=holder)
        session.commit()
    except (OperationalError, InterfaceError) as err:
        if not db.connection_lost(err):
            raise
        db.rollback_quietly(session)
        log.warning("the send lease of campaign %s was not released: %s", campaign_id, err.orig)


def test_send(
    session: Session,
    *,
    settings: Settings,
    campaign_id: int,
    to_email: str,
    provider: Provider | None = None,
) -> str:
    """Send one copy marked as a test to ``to_email``; records nothing. Returns the message id.

    Raises NotFound, Suppressed (the address is on the suppression list), ConfigError
    (an http:// base URL for real mail), ContentError,
    ProviderRejected (the copy was refused) or ProviderUnavailable (not accepted this
    time; try again), and whatever the provider raises for the whole batch.
    """
    campaign = get_campaign(session, campaign_id=campaign_id)
    refused = refusal(session, email=to_email, mail=Mail.TEST)
    if refused is not None:
        raise Suppressed(f"{to_email} is suppressed ({refused.reason}): no test copy goes to it")
    check_one_click_links(settings)
    _prepare(session, settings=settings, campaign=campaign, check=False)
    content, _, _ = tracked_content(session, settings=settings, campaign=campaign, test=True)
    links = RecipientLinks(settings)
    recipient = Recipient(
        delivery_id=0, subscriber_id=0, email=to_email, name=None, values=links.values(0, None)
    )
    own = provider is None
    if provider is None:
        provider = make_sending_provider(settings)
    try:
        result = provider.send_batch(content, [recipient])
    finally:
        if own:
            provider.close()
    status = result.statuses.get(0)
    if status is not None and status.status is SendStatus.REJECTED:
        raise ProviderRejected(f"the test message to {to_email} was refused: {status.reason}")
    if status is None or status.status is not SendStatus.ACCEPTED:
        raise ProviderUnavailable(f"the test message to {to_email} was not accepted; try again")
    return status.message_id or ""
