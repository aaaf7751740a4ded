"""A helper process of a send shared by processes (campaigns.delivery.processes).

Started by ``processes.send_shared`` with multiprocessing's spawn (:func:`run`): it sends
one block of the campaign's ledger with the workers' bounded loop and tells its parent,
through a pipe of its own, what each commit recorded (:class:`Told`: the metrics and the
progress live in the parent); the campaign is left to the parent at the end.

Taking over is safe both ways: a helper takes its block's lease first, then checks that
the campaign's lease ``send:<id>`` is still its parent's (live) and the campaign still
'sending'; a sender taking the campaign over takes ``send:<id>`` first, then refuses while
a block lease is live (``send_lease.refuse_if_queued``). Of the two, at least one sees
the other, so an orphaned helper that starts late sends nothing.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from campaigns.delivery import send_lease
from campaigns.delivery.gc_passes import fewer_gc_passes
from campaigns.delivery.providers.factory import make_sending_provider
from campaigns.delivery.send_report import SendReport
from campaigns.delivery.workers.batch_send import Block, BlockLoop, block_loop
from campaigns.models import Campaign, CampaignStatus
from newsletter import db, leases
from newsletter.clock import utcnow
from newsletter.errors import StateError
from newsletter.settings import Settings

COUNTS = ("sent", "skipped", "failed", "batches", "bounced", "deferred")


def counts_of(report: SendReport) -> tuple[int, ...]:
    """A report's counts, in the order of COUNTS."""
    return tuple(getattr(report, name) for name in COUNTS)


@dataclass(frozen=True)
class Batch:
    """One batch a helper recorded: the figures of ``metrics.batch_done``."""

    seconds: float
    sent: int
    failed: int
    status: int | None


@dataclass(frozen=True)
class Told:
    """A helper's message after a commit: the batches it recorded in it, and its run's
    counts so far (COUNTS), all committed (a helper killed before the commit said none
    of it, so its rows are counted once: by whoever sends them again)."""

    batches: tuple[Batch, ...]
    counts: tuple[int, ...]


class HelperLoop(BlockLoop):
    """A worker's block loop that tells its parent each commit, paces itself at its
    share of the limit and, at the end, gives its lease up and leaves the campaign."""

    told: Teller  # to the parent, never blocking the loop
    pending: list[Batch]
    parent_holder: str
    campaign_lease: str

    def _keep_lease(self) -> None:
        """The block's lease, and the sender's hold on the campaign: a helper woken after
        a pause of its host longer than the leases finds its block lease still in its
        name (nobody takes block leases over), while another sender may have taken the
        campaign and sent the block; it stops before the batch it read (a review's find)."""
        due = time.monotonic() - self.last_renewal >= self.renew_every
        super()._keep_lease()
        if due and not self.stop.is_set():
            held = leases.current(self.session.connection(), name=self.campaign_lease)
            if held is None or held.holder != self.parent_holder or not held.live(utcnow()):
                self._stop_run("its sender no longer holds the campaign")

    def _pace(self, job: Any) -> None:
        self.pacer.wait(len(job.recipients))

    def _record_all(self, outcomes: Any) -> None:
        self.pending = []  # a transaction run again on a new connection tells them once
        super()._record_all(outcomes)

    def _batch_done(self, *, seconds: float, sent: int, failed: int, status: int | None) -> None:
        self.pending.append(Batch(seconds, sent, failed, status))

    def _progress(self) -> None:
        """After the commit (SendLoop.run): what it recorded, to the parent."""
        if self.pending:
            self.told.send(Told(tuple(self.pending), counts_of(self.report)))
            self.pending = []

    def _close(self) -> tuple[int, str]:
        fresh = self.session.get(Campaign, self.campaign_id, populate_existing=True)
        assert fresh is not None
        leases.release(self.session.connection(), holder=self.holder, name=self.block.name)
        self.session.commit()
        return 0, fresh.status


class Teller:
    """Tells the parent through the pipe from a thread of its own, in order.

    A parent that stops reading (stalled, or stopped with SIGSTOP) fills the pipe: a
    helper blocked writing to it stopped renewing its block's lease, which let another
    send take the rows the helper was about to send (a review found two copies of one
    batch per helper). Here the send loop only queues; :meth:`close` queues the last word
    and waits until it is written, or until the parent is gone (a broken pipe), or at
    most ``close_within`` seconds: a parent stopped longer than that (its lease, in
    :func:`run`) has lost the campaign, and its helper ends rather than waiting for ever
    (the words not written are what a killed helper leaves untold; the ledger has them)."""

    _CLOSE = object()

    def __init__(self, connection: Any, *, close_within: float = 60.0) -> None:
        self._connection = connection
        self._close_within = close_within
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._write, name="tell-parent", daemon=True)
        self._thread.start()

    def send(self, message: Any) -> None:
        self._queue.put(message)

    def _write(self) -> None:
        while (message := self._queue.get()) is not self._CLOSE:
            try:
                self._connection.send(message)
            except OSError:  # the parent is gone: nobody left to tell
                return

    def close(self) -> None:
        self._queue.put(self._CLOSE)
        self._thread.join(self._close_within)
        if not self._thread.is_alive():  # else it is blocked in send: the exit ends it
            self._connection.close()


def run(
    settings: Settings, block: Block, parent: int, parent_holder: str, stop: Any, pipe: Any
) -> None:
    """A helper process's whole life: send ``block``, then send ("done", report) or
    ("error", line) to the parent through ``told``. SIGINT is ignored from the start
    (the parent starts helpers so): Ctrl-C is the parent's to handle; a SIGTERM (systemd
    stops the whole service) or the parent's death stops it after its batch in flight."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    terminated = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: terminated.set())

    def should_stop() -> bool:
        return stop.is_set() or terminated.is_set() or os.getppid() != parent

    told = Teller(pipe, close_within=settings.lease_seconds)
    try:
        report = _send_block(settings, block, parent_holder, should_stop, told)
        told.send(("done", report))
    except BaseException as err:  # the parent sends the rest itself and logs this
        told.send(("error", f"{type(err).__name__}: {err}"))
    finally:
        told.close()


def _send_block(
    settings: Settings,
    block: Block,
    parent_holder: str,
    should_stop: Callable[[], bool],
    told: Any,
) -> SendReport:
    """Send the queued rows of ``block`` under its lease; nothing when the send it was
    started for has ended (module docstring). StateError when another live process
    holds the block."""
    engine = db.get_engine(settings.database_url)
    holder = leases.instance_id()
    with Session(engine, expire_on_commit=False) as session:
        if not leases.take(
            session.connection(), holder=holder, ttl_seconds=settings.lease_seconds, name=block.name
        ):
            raise StateError(f"{block.name} is being sent by another process")
        session.commit()
        try:
            reason = _ended(session, block, parent_holder)
            if reason is None and should_stop():
                reason = "stop requested"
            if reason is not None:
                return SendReport(block.campaign_id, CampaignStatus.SENDING, stopped=reason)
            return _send(session, settings, block, (holder, parent_holder), should_stop, told)
        finally:
            db.rollback_quietly(session)
            leases.release(session.connection(), holder=holder, name=block.name)
            session.commit()


def _ended(session: Session, block: Block, parent_holder: str) -> str | None:
    """Why the send this helper was started for is over (None: it is not)."""
    held = leases.current(session.connection(), name=send_lease.lease_name(block.campaign_id))
    campaign = session.get(Campaign, block.campaign_id)
    session.commit()
    if held is None or held.holder != parent_holder or not held.live(utcnow()):
        return "its sender no longer holds the campaign"
    if campaign is None or campaign.status != CampaignStatus.SENDING:
        return f"campaign is {campaign.status if campaign else 'gone'}"
    return None


def _send(
    session: Session,
    settings: Settings,
    block: Block,
    holders: tuple[str, str],
    should_stop: Callable[[], bool],
    told: Any,
) -> SendReport:
    """``holders``: this helper's (of the block's lease) and its sender's (the campaign's)."""
    holder, parent_holder = holders
    provider = make_sending_provider(settings)
    try:
        campaign = session.get(Campaign, block.campaign_id)
        assert campaign is not None
        loop = block_loop(
            HelperLoop,
            session,
            settings=settings,
            campaign=campaign,
            provider=provider,
            holder=holder,
            actor="sender",
            started=time.monotonic(),
            should_stop=should_stop,
        )
        loop.told, loop.pending, loop.parent_holder = told, [], parent_holder
        loop.campaign_lease = send_lease.lease_name(block.campaign_id)
        loop.bounded(block, loop.pacer)  # type: ignore[arg-type]  # its own share
        with fewer_gc_passes():
            return loop.run()
    finally:
        provider.close()
