"""Queue mode's entry points: hand a send over to the workers, and follow it.

:func:`hand_over` does what :func:`campaigns.delivery.sending.send_campaign` does before
its loop (the same steps, under the campaign's send lease so that no inline sender and no
second hand-over runs meanwhile: preflight or render, queue the ledger once, move to
'sending', release due local-time waves, compile the links once) and then queues the
campaign's blocks that hold queued rows and have no job yet. It is idempotent: the
scheduler's dispatch calls it for every campaign in 'sending', which also re-queues a
block left behind (its job gave up, or the campaign was paused while its job ran).

:func:`follow` reads the ledger until the campaign is no longer 'sending' (sent, failed,
paused, cancelled): ``newsletter campaigns send ID --wait``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

import sqlalchemy as sa
from sqlmodel import Session

from campaigns.actions import get_campaign
from campaigns.delivery import send_lease, waves
from campaigns.delivery.ledger import delivery_counts
from campaigns.delivery.providers.factory import check_one_click_links
from campaigns.delivery.send_report import ProgressCallback, SendProgress, SendReport

# The steps before the loop, shared with the inline send rather than written twice.
from campaigns.delivery.sending import STARTABLE, _claim, _compiled, _ready, _release, _retrying
from campaigns.delivery.variant_sends import finish_run, run_contents
from campaigns.delivery.workers import queue
from campaigns.delivery.workers.batch_send import Block, live_workers, pending_blocks
from campaigns.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from campaigns.workflow import transition
from newsletter import db
from newsletter.clock import utcnow
from newsletter.errors import StateError
from newsletter.settings import Settings

S = CampaignStatus
_delivery = Delivery.__table__
BUSY = ("todo", "doing")  # a block with such a job is not queued again


@dataclass(frozen=True)
class HandOver:
    """What a hand-over did: blocks newly queued, blocks already with a job, rows queued."""

    campaign_id: int
    status: str
    deferred: int
    pending: int
    queued: int
    workers: int  # live workers (a recent heartbeat): 0 means nothing will send it yet


def hand_over(
    session: Session,
    *,
    settings: Settings,
    campaign_id: int,
    actor: str = "system",
    preflight: bool = True,
    now: datetime | None = None,
) -> HandOver:
    """Prepare a send and queue its blocks for ``newsletter worker`` processes.

    Raises what ``send_campaign`` raises before sending: NotFound, StateError (not
    startable; another sender holds the lease), ContentError, ConfigError, DatabaseError.
    A campaign with nothing left to send is finished here, as the inline loop would.
    """
    with db.one_line_when_lost(f"handing campaign {campaign_id} to the workers"):
        campaign = get_campaign(session, campaign_id=campaign_id)
        if S(campaign.status) not in STARTABLE:
            raise StateError(f"campaign {campaign_id} is {campaign.status}; it cannot be sent")
        settings.check_for_sending()
        check_one_click_links(settings)
        queue.ensure_schema(settings)  # ConfigError on SQLite before anything changes
        holder = send_lease.new_holder()
        retrying = partial(_retrying, session, settings, campaign_id)
        retrying(partial(_claim, session, settings, campaign_id, holder))
        try:
            ready = partial(_ready, session, settings, campaign_id, actor=actor, check=preflight)
            campaign = retrying(ready)
            if waves.has_waves(session, campaign_id=campaign_id):
                due = now or utcnow()
                retrying(partial(waves.release_due, session, settings=settings,
                                 campaign_id=campaign_id, now=due))  # fmt: skip
            content, _, _ = retrying(partial(_compiled, session, settings, campaign))
            # A subject test's variants compiled once here, not raced for by the workers.
            retrying(partial(_variants, session, campaign, content))
            blocks = queued_blocks(session, settings=settings, campaign_id=campaign_id)
            pending = pending_blocks(session, campaign_id=campaign_id, statuses=BUSY)
            session.commit()
        finally:
            # Before the blocks are queued: a worker refuses a block while ``send:<id>``
            # is held live (an inline sender), so it would otherwise wait for a retry.
            _release(session, campaign_id, holder)
        deferred = queue.defer_blocks(settings, [b for b in blocks if b.name not in pending])
        if not blocks and not pending:
            _finish_if_done(session, campaign_id, actor)
        counts = delivery_counts(session, campaign_id=campaign_id)
        workers = live_workers(session, seconds=settings.worker_stalled_seconds)
        fresh = session.get(Campaign, campaign_id, populate_existing=True)
        assert fresh is not None
        session.commit()
    return HandOver(campaign_id, fresh.status, deferred, len(pending), counts.queued, workers)


def _variants(session: Session, campaign: Campaign, content: object) -> None:
    run_contents(session, campaign=campaign, content=content)  # type: ignore[arg-type]
    session.commit()


def queued_blocks(session: Session, *, settings: Settings, campaign_id: int) -> list[Block]:
    """The campaign's blocks that hold queued rows, in id order."""
    size = settings.worker_batch_size
    number = _delivery.c.id // size  # integer division (/ would be true division)
    numbers = session.execute(
        sa.select(number)
        .distinct()
        .where(
            _delivery.c.campaign_id == campaign_id,
            _delivery.c.status == DeliveryStatus.QUEUED.value,
        )
        .order_by(number)
    ).scalars()
    return [Block.numbered(campaign_id, int(n), size) for n in numbers]


def _finish_if_done(session: Session, campaign_id: int, actor: str) -> None:
    """Nothing queued and no job left: sent (or a sample's pause), as inline ends."""
    campaign = session.get(Campaign, campaign_id, with_for_update=True, populate_existing=True)
    assert campaign is not None
    counts = delivery_counts(session, campaign_id=campaign_id)
    if (
        counts.queued == 0
        and campaign.status == S.SENDING
        and not waves.unreleased(session, campaign_id=campaign_id)
        and not finish_run(session, campaign=campaign, actor=actor)
    ):
        transition(
            session,
            campaign=campaign,
            to=S.SENT,
            actor=actor,
            reason=f"sent {counts.sent}, skipped {counts.skipped}, failed {counts.failed}",
        )
    session.commit()


def follow(
    session: Session,
    *,
    settings: Settings,
    campaign_id: int,
    on_progress: ProgressCallback | None = None,
    poll_seconds: float = 0.5,
    give_up_seconds: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SendReport:
    """Read the ledger until the campaign leaves 'sending'; its counts as a report.

    Raises StateError (one line) when nothing has sent it for ``give_up_seconds``
    (default ``2 * worker_stalled_seconds``, at least 10 s): no live worker, or no job of
    it left waiting or running (they failed), and no row recorded meanwhile. The campaign
    stays 'sending' for the dispatch to queue again; waiting on would never end."""
    started = time.monotonic()
    if give_up_seconds is None:
        give_up_seconds = max(10.0, 2 * settings.worker_stalled_seconds)
    idle = _Idle(give_up_seconds, started)
    while True:
        counts = delivery_counts(session, campaign_id=campaign_id)
        status = session.execute(
            sa.select(Campaign.status).where(Campaign.id == campaign_id)  # type: ignore[arg-type]
        ).scalar_one()
        why = _nobody_sending(session, settings, campaign_id)
        session.commit()  # a fresh snapshot each time
        elapsed = time.monotonic() - started
        if on_progress is not None:
            on_progress(
                SendProgress(
                    campaign_id=campaign_id,
                    total=counts.total,
                    sent=counts.sent,
                    skipped=counts.skipped,
                    failed=counts.failed,
                    elapsed=elapsed,
                )
            )
        if status != S.SENDING:
            return SendReport(
                campaign_id=campaign_id,
                status=status,
                sent=counts.sent,
                skipped=counts.skipped,
                failed=counts.failed,
                queued=counts.queued,
                seconds=elapsed,
                deferred=counts.deferred,
            )
        if idle.stalled(why, counts.queued):
            raise StateError(
                f"campaign {campaign_id} is still 'sending' with {counts.queued:,} queued, but "
                f"nothing has sent it for {idle.seconds:.0f} s ({why}); stopped following it"
            )
        sleep(poll_seconds)


@dataclass
class _Idle:
    """How long a followed send has gone without a sender and without progress."""

    seconds: float
    since: float
    queued: int = -1

    def stalled(self, why: str | None, queued: int) -> bool:
        now = time.monotonic()
        if why is None or queued != self.queued:
            self.since, self.queued = now, queued
        return now - self.since >= self.seconds


def _nobody_sending(session: Session, settings: Settings, campaign_id: int) -> str | None:
    """Why no worker will send the campaign now, or None when one is or will."""
    if not pending_blocks(session, campaign_id=campaign_id, statuses=BUSY):
        return "no block of it is waiting or being sent: its jobs failed (see the workers' logs)"
    if not live_workers(session, seconds=settings.worker_stalled_seconds):
        return "no worker is running: start `newsletter worker`"
    return None
