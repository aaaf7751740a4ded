"""A large inline send shared by several processes of this machine (issue 17.4).

One process sends on one core: signing three links, writing the request and reading the
ledger are Python, and a thread cannot run them beside another (the GIL). With
``send_processes`` N above 1 and at least ``send_process_min_recipients`` queued for each,
``sending.send_campaign``, holding the campaign's lease ``send:<id>``, splits the queued
ids into contiguous blocks and starts one process per block (multiprocessing's spawn:
nothing of a threaded web app or scheduler is forked). Each runs the workers' loop over
its block (``workers.batch_send.BlockLoop``: the same reading, jobs, retries, recording
and stop checks as ``send_loop``) under the block's own lease, at 1/N of
``send_rate_per_second`` (one limit for all), and never finishes the campaign. This
process renews the campaign's lease, relays progress and metrics and passes a stop on;
when every helper has ended it sends what is left itself and finishes the campaign as an
in-process send does. bench/README.md, "Issue 17.4, fourth pass", has the figures.

Exactly once holds as across workers: the ledger decides who is sent; a block is one
process's (its lease); a helper killed costs at most its batch in flight; a helper whose
parent died, or that got SIGTERM, stops after its batch in flight (asked before each
batch), and one that starts after its parent lost the campaign sends nothing
(``helper_process``); an inline sender refuses a campaign while a block lease is live
(``send_lease.refuse_if_queued``). Ctrl-C reaches the helpers through this process only.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from campaigns.delivery import helper_process, send_lease
from campaigns.delivery.helper_process import COUNTS, counts_of
from campaigns.delivery.ledger import DeliveryCounts, delivery_counts
from campaigns.delivery.send_report import ProgressCallback, SendProgress, SendReport
from campaigns.delivery.workers.batch_send import Block
from campaigns.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from newsletter import db, leases, metrics
from newsletter.settings import Settings

log = logging.getLogger(__name__)
S = CampaignStatus
_delivery = Delivery.__table__


def plan(session: Session, settings: Settings, *, campaign_id: int) -> list[Block]:
    """The blocks of a send shared by processes; [] to send in this process alone.

    As many blocks as ``send_processes`` allows with at least
    ``send_process_min_recipients`` queued rows each: the ids from the first queued row
    to the last, split evenly. An in-memory SQLite database is this process's alone."""
    wanted = settings.send_processes
    if wanted < 2 or db.in_memory(settings.database_url):
        return []
    first, last, queued = session.execute(
        sa.select(sa.func.min(_delivery.c.id), sa.func.max(_delivery.c.id), sa.func.count()).where(
            _delivery.c.campaign_id == campaign_id,
            _delivery.c.status == DeliveryStatus.QUEUED.value,
        )
    ).one()
    session.commit()
    count = min(wanted, queued // settings.send_process_min_recipients)
    if count < 2:
        return []
    size = -(-(last - first + 1) // count)
    return [
        Block(campaign_id, start, min(last, start + size - 1))
        for start in range(first, last + 1, size)
    ]


@dataclass(frozen=True)
class Shared:
    """The helpers' part of a send: their report, and the last id of their blocks when
    every helper went through its block (the caller's loop reads after it), else None."""

    report: SendReport
    done_through: int | None


def send_shared(
    session: Session,
    *,
    settings: Settings,
    campaign_id: int,
    blocks: list[Block],
    holder: str,
    started: float,
    on_progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Shared:
    """Send ``blocks`` of a sending campaign in one helper process each (see Shared).

    The caller holds the campaign's lease (``holder``): renewed here while they work.
    The report's ``stopped`` is set when the caller must not go on to send the rest and
    finish: a stop asked (``should_stop``, passed on to the helpers), the lease lost,
    the campaign paused, cancelled or failed meanwhile; ``queued`` and ``status`` are
    then the ledger's. A helper that failed or died is logged and its rest left queued,
    for the caller's own loop. Counts are what the helpers committed and told: one
    killed between a commit and its message leaves that batch out (never in twice); the
    ledger, which reports read, has it. Each helper has a pipe of its own: one killed while
    writing cannot block the others (a shared queue's lock would).
    """
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    share = settings.model_copy(
        update={"send_rate_per_second": settings.send_rate_per_second / len(blocks)}
    )
    pipes = {block.first_id: context.Pipe(duplex=False) for block in blocks}
    helpers = {
        block.first_id: context.Process(
            target=helper_process.run,
            args=(share, block, os.getpid(), holder, stop, pipes[block.first_id][1]),
            name=f"newsletter {block.name}",
        )
        for block in blocks
    }
    follow = _Following(session, settings, campaign_id, holder, started, on_progress)
    readers = {reader: first_id for first_id, (reader, _) in pipes.items()}
    try:
        with _sigint_ignored():  # in the helpers from their start: Ctrl-C is ours to handle
            for helper in helpers.values():
                helper.start()
        for _, writer in pipes.values():
            writer.close()  # ours: a helper's end of its pipe closes when it ends
        follow.until_ended(readers, stop, should_stop)
    finally:  # also when a start failed: the others stop, and nobody waits for a pipe
        stop.set()
        for _, writer in pipes.values():
            writer.close()
        _drain(readers)  # a helper blocked on a full pipe ends too
        for helper in helpers.values():
            if helper.pid is not None:
                helper.join()
    for block in blocks:
        if block.first_id not in follow.reports and block.first_id not in follow.errors:
            code = helpers[block.first_id].exitcode
            follow.failed(block.first_id, f"{block.name} ended with exit code {code}")
            _release_if_dead(session, block)
    finished = not follow.errors and all(r.stopped is None for r in follow.reports.values())
    return Shared(follow.report(), blocks[-1].last_id if finished else None)


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored while helpers start: they inherit it (Python leaves an ignored
    SIGINT alone), so Ctrl-C in a terminal, sent to the whole process group, reaches
    only this process, which stops them after their batch in flight."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers are the main thread's; a web worker's send has no terminal
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _drain(readers: dict[Connection, int]) -> None:
    """Read the helpers' pipes until each has ended, dropping what they say."""
    while readers:
        for conn in wait(list(readers)):
            try:
                conn.recv()  # type: ignore[union-attr]
            except (EOFError, OSError):
                conn.close()  # type: ignore[union-attr]
                del readers[conn]  # type: ignore[arg-type]


def _release_if_dead(session: Session, block: Block) -> None:
    """A killed helper's block lease, given up at once (a sender on another host would
    otherwise wait for it to expire)."""
    held = leases.current(session.connection(), name=block.name)
    if held is not None and leases.dead_on_this_host(held.holder):
        leases.release(session.connection(), holder=held.holder, name=block.name)
    session.commit()


class _Following:
    """The parent's side: what the helpers said, the lease, progress and the report."""

    def __init__(
        self,
        session: Session,
        settings: Settings,
        campaign_id: int,
        holder: str,
        started: float,
        on_progress: ProgressCallback | None,
    ) -> None:
        self.session, self.settings, self.campaign_id = session, settings, campaign_id
        self.holder, self.started, self.on_progress = holder, started, on_progress
        self.before = DeliveryCounts()  # read when there is progress to tell (a full count)
        if on_progress is not None:
            self.before = delivery_counts(session, campaign_id=campaign_id)
            session.commit()
        self.counts: dict[int, tuple[int, ...]] = {}  # block -> its helper's COUNTS so far
        self.reports: dict[int, SendReport] = {}
        self.errors: dict[int, str] = {}
        self.stopped: str | None = None
        self.renew_every = max(1.0, settings.lease_seconds / 3)
        self.renewed = time.monotonic()

    def until_ended(
        self, readers: dict[Connection, int], stop: Any, should_stop: Callable[[], bool] | None
    ) -> None:
        """Take the helpers' messages until every pipe has closed (its helper ended or was
        killed, mid-message or not), keeping the lease and passing a stop on."""
        while readers:
            for conn in wait(list(readers), timeout=0.5):
                try:
                    self.said(readers[conn], conn.recv())  # type: ignore[index,union-attr]
                except (EOFError, OSError):
                    conn.close()  # type: ignore[union-attr]
                    del readers[conn]  # type: ignore[arg-type]
            if self.stopped is None and should_stop is not None and should_stop():
                self.stopped = "stop requested"
            self._keep_lease()
            if self.stopped is not None:
                stop.set()

    def said(self, first_id: int, message: Any) -> None:
        if isinstance(message, helper_process.Told):
            for batch in message.batches:
                metrics.batch_done(
                    self.settings.provider,
                    seconds=batch.seconds,
                    sent=batch.sent,
                    failed=batch.failed,
                    status=batch.status,
                )
            self.counts[first_id] = message.counts
            self._progress()
        elif message[0] == "done":
            self.reports[first_id] = message[1]
            self.counts[first_id] = counts_of(message[1])
        else:
            self.failed(first_id, message[1])

    def failed(self, first_id: int, line: str) -> None:
        self.errors[first_id] = line
        log.warning("campaign %s: a sending process stopped: %s", self.campaign_id, line)

    def _keep_lease(self) -> None:
        if time.monotonic() - self.renewed < self.renew_every:
            return
        kept = send_lease.renew(
            self.session,
            campaign_id=self.campaign_id,
            holder=self.holder,
            seconds=self.settings.lease_seconds,
        )
        self.session.commit()
        self.renewed = time.monotonic()
        if not kept and self.stopped is None:
            self.stopped = "lost the send lease to another sender"

    def _total(self, name: str) -> int:
        index = COUNTS.index(name)
        return sum(counts[index] for counts in self.counts.values())

    def _progress(self) -> None:
        if self.on_progress is None:
            return
        before = self.before
        self.on_progress(
            SendProgress(
                campaign_id=self.campaign_id,
                total=before.total,
                sent=before.sent + self._total("sent"),
                skipped=before.skipped + self._total("skipped"),
                failed=before.failed + self._total("failed"),
                elapsed=time.monotonic() - self.started,
            )
        )

    def report(self) -> SendReport:
        """The helpers' report (what they committed); with ``stopped`` (and the ledger's
        ``queued`` and ``status``) when the caller must not go on."""
        report = SendReport(campaign_id=self.campaign_id, status=S.SENDING, stopped=self.stopped)
        for name in COUNTS:
            setattr(report, name, self._total(name))
        campaign = self.session.get(Campaign, self.campaign_id, populate_existing=True)
        assert campaign is not None
        if report.stopped is None and campaign.status != S.SENDING:
            # The helper's reason that ended it (a 401 from the provider), not the others'.
            reasons = [r.stopped for r in self.reports.values() if r.stopped]
            own = [reason for reason in reasons if not reason.startswith("campaign is")]
            report.stopped = own[0] if own else f"campaign is {campaign.status}"
        if report.stopped is not None:
            report.status = campaign.status
            report.queued = delivery_counts(self.session, campaign_id=self.campaign_id).queued
            report.seconds = time.monotonic() - self.started
        self.session.commit()
        return report


def merged(helpers: SendReport, rest: SendReport) -> SendReport:
    """The run's report: the helpers' counts and the caller's own loop over the rest
    (which finished the campaign: its ``queued``, ``status`` and ``stopped``)."""
    for name in COUNTS:
        setattr(rest, name, getattr(rest, name) + getattr(helpers, name))
    return rest
