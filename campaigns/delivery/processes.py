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
batch); and an inline sender refuses a campaign while a block lease is live
(``send_lease.refuse_if_queued``). Ctrl-C reaches the helpers through this process only.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from campaigns.delivery import helper_process, send_lease
from campaigns.delivery.ledger import DeliveryCounts, delivery_counts
from campaigns.delivery.send_report import ProgressCallback, SendProgress, SendReport
from campaigns.delivery.workers.batch_send import Block
from campaigns.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from newsletter import metrics
from newsletter.settings import Settings

log = logging.getLogger(__name__)
S = CampaignStatus
_delivery = Delivery.__table__


def plan(session: Session, settings: Settings, *, campaign_id: int) -> list[Block]:
    """The blocks of a send shared by processes; [] to send in this process alone.

    Contiguous delivery ids from the first queued row to the campaign's last, split
    evenly; as many blocks as ``send_processes`` allows with at least
    ``send_process_min_recipients`` ids each. An in-memory SQLite database is this
    process's alone: always []."""
    wanted = settings.send_processes
    url = settings.database_url
    if wanted < 2 or _in_memory(url):
        return []
    first = session.execute(
        sa.select(_delivery.c.id)
        .where(
            _delivery.c.campaign_id == campaign_id,
            _delivery.c.status == DeliveryStatus.QUEUED.value,
        )
        .order_by(_delivery.c.id)
        .limit(1)
    ).scalar()
    last = session.execute(
        sa.select(sa.func.max(_delivery.c.id)).where(_delivery.c.campaign_id == campaign_id)
    ).scalar()
    session.commit()
    if first is None or last is None:
        return []
    span = last - first + 1
    count = min(wanted, span // settings.send_process_min_recipients)
    if count < 2:
        return []
    size = -(-span // count)
    return [
        Block(campaign_id, start, min(last, start + size - 1))
        for start in range(first, last + 1, size)
    ]


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
    The report's ``stopped`` is set when the caller must not go on to send the rest and finish: a
    stop asked (``should_stop``, passed on to the helpers), the lease lost, the campaign
    paused, cancelled or failed meanwhile; ``queued`` and ``status`` are then the
    ledger's. A helper that failed or died is logged and its rest left queued, for the
    caller's own loop.
    """
    context = multiprocessing.get_context("spawn")
    stop, messages = context.Event(), context.Queue()
    share = settings.model_copy(
        update={"send_rate_per_second": settings.send_rate_per_second / len(blocks)}
    )
    helpers = {
        block.first_id: context.Process(
            target=helper_process.run,
            args=(share, block, os.getpid(), stop, messages),
            name=f"newsletter {block.name}",
        )
        for block in blocks
    }
    follow = _Following(session, settings, campaign_id, holder, started, on_progress)
    for helper in helpers.values():
        helper.start()
    try:
        follow.until_ended(helpers, messages, stop, should_stop)
    finally:
        stop.set()
        for helper in helpers.values():
            helper.join()
    for block in blocks:
        code = helpers[block.first_id].exitcode
        if block.first_id not in follow.reports and block.first_id not in follow.errors:
            follow.failed(block.first_id, f"{block.name} ended with exit code {code}")
    finished = not follow.errors and all(r.stopped is None for r in follow.reports.values())
    return Shared(follow.report(), blocks[-1].last_id if finished else None)


def _in_memory(url: str) -> bool:
    """A SQLite database in this process's memory (``sqlite://``, ``:memory:``)."""
    parsed = sa.engine.make_url(url)
    return parsed.get_backend_name() == "sqlite" and (
        parsed.database in (None, "", ":memory:") or "memory" in str(parsed.query)
    )


@dataclass(frozen=True)
class Shared:
    """The helpers' part of a send: their report, and the last id of their blocks when
    every helper went through its block (the caller's loop reads after it), else None."""

    report: SendReport
    done_through: int | None


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
        self.totals: dict[int, helper_process.Batch] = {}
        self.reports: dict[int, SendReport] = {}
        self.errors: dict[int, str] = {}
        self.stopped: str | None = None
        self.renew_every = max(1.0, settings.lease_seconds / 3)
        self.renewed = time.monotonic()

    def until_ended(
        self,
        helpers: dict[int, BaseProcess],
        messages: Any,
        stop: Any,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        """Take the helpers' messages until all have ended, keeping the lease and
        passing a stop on."""
        while any(helper.is_alive() for helper in helpers.values()):
            with contextlib.suppress(queue.Empty):
                self.said(messages.get(timeout=0.5))
            if self.stopped is None and should_stop is not None and should_stop():
                self.stopped = "stop requested"
            self._keep_lease()
            if self.stopped is not None:
                stop.set()
        while True:  # what they said just before ending
            try:
                self.said(messages.get_nowait())
            except queue.Empty:
                return

    def said(self, message: Any) -> None:
        if isinstance(message, helper_process.Batch):
            self.totals[message.first_id] = message
            metrics.batch_done(
                self.settings.provider,
                seconds=message.seconds,
                sent=message.sent,
                failed=message.failed,
                status=message.status,
            )
            self._progress()
        elif message[0] == "done":
            self.reports[message[1]] = message[2]
        else:
            self.failed(message[1], message[2])

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

    def _counts(self) -> tuple[int, int, int]:
        sent = skipped = failed = 0
        for first_id, batch in self.totals.items():
            report = self.reports.get(first_id)
            sent += report.sent if report else batch.total_sent
            skipped += report.skipped if report else batch.total_skipped
            failed += report.failed if report else batch.total_failed
        for first_id, report in self.reports.items():
            if first_id not in self.totals:  # skipped readers only, no batch
                skipped += report.skipped
        return sent, skipped, failed

    def _progress(self) -> None:
        if self.on_progress is None:
            return
        sent, skipped, failed = self._counts()
        before = self.before
        self.on_progress(
            SendProgress(
                campaign_id=self.campaign_id,
                total=before.total,
                sent=before.sent + sent,
                skipped=before.skipped + skipped,
                failed=before.failed + failed,
                elapsed=time.monotonic() - self.started,
            )
        )

    def report(self) -> SendReport:
        """The helpers' report; with ``stopped`` (and the ledger's ``queued`` and
        ``status``) when the caller must not go on."""
        sent, skipped, failed = self._counts()
        done = self.reports.values()
        report = SendReport(
            campaign_id=self.campaign_id,
            status=S.SENDING,
            sent=sent,
            skipped=skipped,
            failed=failed,
            batches=sum(r.batches for r in done),
            bounced=sum(r.bounced for r in done),
            deferred=sum(r.deferred for r in done),
            stopped=self.stopped,
        )
        campaign = self.session.get(Campaign, self.campaign_id, populate_existing=True)
        assert campaign is not None
        if report.stopped is None and campaign.status != S.SENDING:
            # The helper's reason that ended it (a 401 from the provider), not the others'.
            own = [r.stopped for r in done if r.stopped and not r.stopped.startswith("campaign is")]
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
    for name in ("sent", "skipped", "failed", "batches", "bounced", "deferred"):
        setattr(rest, name, getattr(rest, name) + getattr(helpers, name))
    return rest
