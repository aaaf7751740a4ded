"""What a worker does with one block of a campaign's ledger: the inline loop, bounded.

:class:`BlockLoop` is :class:`campaigns.delivery.send_loop.SendLoop` (the same reading,
jobs, retries, recording and stop checks; campaigns.delivery.sending explains
exactly-once) with four differences: its reader stops at the block's last id, its pacer is
the limit shared by every worker (``shared_rate``), the lease it renews is the block's
(``send:<campaign>:b<block>``) rather than the campaign's, and its finish locks the
campaign row so that of two workers ending their blocks at once only one marks the
campaign sent, and only when no queued row is left anywhere in it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlmodel import Session

from campaigns.delivery import send_lease, waves
from campaigns.delivery.gc_passes import fewer_gc_passes
from campaigns.delivery.ledger import DeliveryCounts
from campaigns.delivery.ledger_batches import LedgerReader
from campaigns.delivery.providers.base import Provider
from campaigns.delivery.providers.factory import make_sending_provider
from campaigns.delivery.recipient_links import RecipientLinks
from campaigns.delivery.send_jobs import Job
from campaigns.delivery.send_loop import SendLoop
from campaigns.delivery.send_report import SendReport
from campaigns.delivery.tracked_content import tracked_content
from campaigns.delivery.variant_sends import run_contents
from campaigns.delivery.workers.shared_rate import SharedPacer
from campaigns.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from campaigns.workflow import transition
from newsletter import db, leases
from newsletter.clock import utcnow
from newsletter.errors import StateError
from newsletter.models import Lease
from newsletter.settings import Settings

S = CampaignStatus
TASK = "newsletter.send_block"  # procrastinate's name of the task (workers.queue)
log = logging.getLogger(__name__)
_delivery = Delivery.__table__


@dataclass(frozen=True)
class Block:
    """Delivery ids ``first_id``..``last_id`` of one campaign: one queued job."""

    campaign_id: int
    first_id: int
    last_id: int

    @classmethod
    def numbered(cls, campaign_id: int, number: int, size: int) -> Block:
        """Block ``number`` of ``size`` ids: fixed by the ids alone, so a block queued
        again (a resume, a repair) is the same block, with the same lock and lease."""
        return cls(campaign_id, number * size, number * size + size - 1)

    @property
    def name(self) -> str:
        return f"{block_prefix(self.campaign_id)}{self.first_id}-{self.last_id}"


class BlockReader(LedgerReader):
    """The ledger reader, from the block's first id to its last."""

    def __init__(
        self,
        session: Session,
        *,
        block: Block,
        links: RecipientLinks,
        size: int,
        sign_links: bool = True,
    ) -> None:
        super().__init__(
            session,
            campaign_id=block.campaign_id,
            links=links,
            batch_size=size,
            sign_links=sign_links,
        )
        self.last_id = block.first_id - 1
        self._query = self._query.where(_delivery.c.id <= block.last_id)


class BlockLoop(SendLoop):
    """The send loop over one block, its lease held by ``holder`` (see module docstring)."""

    block: Block

    def _counts_before(self) -> DeliveryCounts:
        """No whole-campaign count per block: progress is followed from the ledger."""
        return DeliveryCounts()

    def bounded(self, block: Block, pacer: SharedPacer) -> BlockLoop:
        self.block = block
        self.reader = BlockReader(
            self.session,
            block=block,
            links=self.reader.links,
            size=self.reader.batch_size,
            sign_links=self.reader.sign_links,
        )
        self.pacer = pacer  # type: ignore[assignment]
        return self

    def _pace(self, job: Job) -> None:
        """The shared limit, in a slot no sooner than a retry's Retry-After."""
        self.pacer.wait(len(job.recipients), not_before=job.not_before)  # type: ignore[call-arg]

    def _keep_lease(self) -> None:
        """Renew the block's lease when a third of it has passed (as SendLoop renews the
        campaign's); stop if it was lost."""
        if time.monotonic() - self.last_renewal < self.renew_every:
            return
        if not leases.renew(
            self.session.connection(),
            holder=self.holder,
            ttl_seconds=self.settings.lease_seconds,
            name=self.block.name,
        ):
            self._stop_run("lost the lease of its block to another worker")
        self.last_renewal = time.monotonic()

    def _lock_campaign(self) -> Campaign:
        fresh = self.session.get(
            Campaign, self.campaign_id, with_for_update=True, populate_existing=True
        )
        assert fresh is not None
        return fresh

    def _halt(self, reason: str) -> None:
        """Fail the campaign as inline does, one worker at a time."""
        self._lock_campaign()
        super()._halt(reason)

    def _close(self) -> tuple[int, str]:
        """(rows still queued in the block, the campaign's status). Under the campaign's
        row lock, one worker at a time: give the block's lease up, and if no other block
        is under way or waiting, look for a queued row anywhere in the campaign; none
        left, it is finished here as the inline loop finishes it. The last worker through
        this lock always looks, so a campaign never stays 'sending' with nothing queued;
        the others skip a scan of the whole ledger (no index holds ``status``: HOT)."""
        fresh = self._lock_campaign()
        leases.release(self.session.connection(), holder=self.holder, name=self.block.name)
        left = self.session.execute(
            sa.select(sa.func.count()).where(
                _delivery.c.campaign_id == self.campaign_id,
                _delivery.c.status == DeliveryStatus.QUEUED.value,
                _delivery.c.id.between(self.block.first_id, self.block.last_id),
            )
        ).scalar_one()
        if (
            left == 0
            and fresh.status == S.SENDING
            and not _others_under_way(self.session, self.block)
            and not _queued_anywhere(self.session, self.campaign_id)
            and not waves.unreleased(self.session, campaign_id=self.campaign_id)
        ):
            # A stop asked after the last batch changed nothing: the campaign is done
            # (the ledger decides), not left 'sending' for want of a next block.
            self.report.stopped = None
            return super()._close()  # the last block: sent (or a sample's pause)
        self.session.commit()
        return left, fresh.status

    def _progress(self) -> None:
        """Progress is read from the ledger by whoever follows the send (``--wait``)."""


def send_block(
    settings: Settings, block: Block, *, should_stop: Callable[[], bool] | None = None
) -> SendReport | None:
    """Send the queued rows of ``block``; None when the campaign is not sending (paused,
    cancelled, failed or done: nothing to do, the job ends).

    Raises StateError when another live worker holds the block's lease, or when the run
    stopped (worker shutting down, lease lost) with rows of the block still queued while
    the campaign is sending: the job is retried. A provider auth error or exhausted
    retries fail the campaign as inline (the report says so; no retry).
    """
    engine = db.get_engine(settings.database_url)
    holder = leases.instance_id()
    started = time.monotonic()
    with db.session_scope(engine) as session:
        campaign = session.get(Campaign, block.campaign_id)
        if campaign is None or campaign.status != S.SENDING:
            return None
        if not leases.take(
            session.connection(),
            holder=holder,
            ttl_seconds=settings.lease_seconds,
            name=block.name,
        ):
            raise StateError(f"{block.name} is being sent by another worker")
        session.commit()
        inline = _inline_sender(session, block.campaign_id)
        if inline is not None:
            _release(session, block, holder)
            raise StateError(f"campaign {block.campaign_id} is being sent inline by {inline}")
        provider = make_sending_provider(settings)
        try:
            loop = block_loop(
                BlockLoop,
                session,
                settings=settings,
                campaign=campaign,
                provider=provider,
                holder=holder,
                actor="worker",
                started=started,
                should_stop=should_stop,
            )
            pacer = SharedPacer(engine, name=settings.provider, rate=settings.send_rate_per_second)
            with fewer_gc_passes():
                report = loop.bounded(block, pacer).run()
        finally:
            provider.close()
            _release(session, block, holder)
    if report.stopped and report.queued and report.status == S.SENDING:
        raise StateError(f"{block.name} stopped ({report.stopped}); {report.queued} left")
    return report


L = TypeVar("L", bound=BlockLoop)


def block_loop(
    cls: type[L],
    session: Session,
    *,
    settings: Settings,
    campaign: Campaign,
    provider: Provider,
    holder: str,
    actor: str,
    started: float,
    should_stop: Callable[[], bool] | None,
) -> L:
    """A block's loop (``cls``) over the campaign's compiled content (tracked, and a
    subject test's variants); commits. Call ``bounded`` on it before ``run``."""
    content, plain, tracking = tracked_content(session, settings=settings, campaign=campaign)
    content, variants = run_contents(session, campaign=campaign, content=content)
    session.commit()
    assert campaign.id is not None
    return cls(
        session,
        settings=settings,
        campaign_id=campaign.id,
        content=content,
        provider=provider,
        holder=holder,
        actor=actor,
        started=started,
        should_stop=should_stop,
        variants=variants,
        tracking=tracking,
        plain_content=plain,
    )


def _release(session: Session, block: Block, holder: str) -> None:
    """Give the block's lease up; with the database gone it expires (or, on this host,
    is taken at once once this process has ended)."""
    try:
        session.rollback()
        leases.release(session.connection(), holder=holder, name=block.name)
        session.commit()
    except (OperationalError, InterfaceError) as err:
        if not db.connection_lost(err):
            raise
        db.rollback_quietly(session)
        log.warning("the lease of %s was not released: %s", block.name, err.orig)


def fail_campaign(settings: Settings, campaign_id: int, *, reason: str) -> None:
    """A worker that cannot send at all (its settings, the content): the campaign fails
    with the reason, once, rather than staying 'sending' while its jobs fail one by one."""
    engine = db.get_engine(settings.database_url)
    with db.session_scope(engine) as session:
        campaign = session.get(Campaign, campaign_id, with_for_update=True)
        if campaign is not None and campaign.status == S.SENDING:
            transition(session, campaign=campaign, to=S.FAILED, actor="worker", reason=reason[:480])
        session.commit()


def block_prefix(campaign_id: int) -> str:
    return f"send:{campaign_id}:b"


def pending_blocks(session: Session, *, campaign_id: int, statuses: tuple[str, ...]) -> set[str]:
    """Names of the campaign's blocks whose job is in one of ``statuses`` (procrastinate's
    job table, read as a table: the block's name is the job's queueing lock)."""
    rows = session.execute(
        sa.text(
            "SELECT queueing_lock FROM procrastinate_jobs WHERE task_name = :task "
            "AND status = ANY(CAST(:statuses AS procrastinate_job_status[])) "
            "AND queueing_lock LIKE :prefix"
        ),
        {"task": TASK, "statuses": list(statuses), "prefix": block_prefix(campaign_id) + "%"},
    )
    return {name for (name,) in rows}


def _inline_sender(session: Session, campaign_id: int) -> str | None:
    """Who holds the campaign's own lease ``send:<c>`` live (an inline sender, or a
    hand-over in progress): the block waits for it rather than mail the same readers.
    Taken after the block's lease, as the inline sender looks for block leases after
    taking its own, so of two starting at once at least one sees the other."""
    held = leases.current(session.connection(), name=send_lease.lease_name(campaign_id))
    session.commit()
    if held is None or not held.live(utcnow()) or leases.dead_on_this_host(held.holder):
        return None
    return held.holder


def _others_under_way(session: Session, block: Block) -> bool:
    """Another block of the campaign holds a live lease (being sent; an expired one is a
    dead worker's, whose job the stalled-job sweep puts back) or waits in the queue. The
    block's own job is not one: it may be back in todo while it runs (stalled)."""
    prefix = block_prefix(block.campaign_id)
    held = session.execute(
        sa.select(Lease.name)
        .where(Lease.name.startswith(prefix), Lease.name != block.name, Lease.expires_at > utcnow())  # type: ignore[attr-defined,arg-type,operator]
        .limit(1)
    ).first()
    waiting = pending_blocks(session, campaign_id=block.campaign_id, statuses=("todo",))
    return held is not None or bool(waiting - {block.name})


def _queued_anywhere(session: Session, campaign_id: int) -> bool:
    return (
        session.execute(
            sa.select(_delivery.c.id)
            .where(
                _delivery.c.campaign_id == campaign_id,
                _delivery.c.status == DeliveryStatus.QUEUED.value,
            )
            .limit(1)
        ).first()
        is not None
    )


def live_workers(session: Session, *, seconds: float) -> int:
    """Workers whose heartbeat (procrastinate's table) is at most ``seconds`` old."""
    return session.execute(
        sa.text(
            "SELECT count(*) FROM procrastinate_workers "
            "WHERE last_heartbeat > now() - make_interval(secs => :seconds)"
        ),
        {"seconds": seconds},
    ).scalar_one()
