"""A helper process of a send shared by processes (campaigns.delivery.processes).

Started by ``processes.send_shared`` with multiprocessing's spawn (:func:`run`): it sends
one block of the campaign's ledger with the workers' bounded loop, tells its parent each
batch (:class:`Batch`: the metrics and the progress live in the parent) and leaves the
campaign to the parent at the end.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from campaigns.delivery.gc_passes import fewer_gc_passes
from campaigns.delivery.providers.factory import make_sending_provider
from campaigns.delivery.send_report import SendReport
from campaigns.delivery.workers.batch_send import Block, BlockLoop, block_loop
from campaigns.models import Campaign
from newsletter import db, leases
from newsletter.errors import StateError
from newsletter.settings import Settings


@dataclass(frozen=True)
class Batch:
    """A helper's message after each batch it recorded: the metrics' figures for the
    batch, and the helper's totals so far (its report's counts)."""

    first_id: int
    seconds: float
    sent: int
    failed: int
    status: int | None
    total_sent: int
    total_skipped: int
    total_failed: int


class HelperLoop(BlockLoop):
    """A block of a send shared by processes: a worker's block loop that tells its
    parent each batch, paces itself at its share of the limit and, at the end, gives its
    lease up and leaves the campaign to the parent."""

    messages: Any  # multiprocessing.Queue

    def _pace(self, job: Any) -> None:
        self.pacer.wait(len(job.recipients))

    def _batch_done(self, *, seconds: float, sent: int, failed: int, status: int | None) -> None:
        report = self.report
        self.messages.put(
            Batch(
                self.block.first_id,
                seconds,
                sent,
                failed,
                status,
                report.sent,
                report.skipped,
                report.failed,
            )
        )

    def _close(self) -> tuple[int, str]:
        fresh = self.session.get(Campaign, self.campaign_id, populate_existing=True)
        assert fresh is not None
        leases.release(self.session.connection(), holder=self.holder, name=self.block.name)
        self.session.commit()
        return 0, fresh.status


def run(settings: Settings, block: Block, parent: int, stop: Any, messages: Any) -> None:
    """A helper process's whole life: send ``block``, then put ("done", first id, report)
    or ("error", first id, line) on ``messages``. Ctrl-C is the parent's to handle; a
    SIGTERM (systemd stops the whole service) stops it after its batch in flight."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    terminated = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: terminated.set())

    def should_stop() -> bool:
        return stop.is_set() or terminated.is_set() or os.getppid() != parent

    try:
        report = _send_block(settings, block, should_stop, messages)
        messages.put(("done", block.first_id, report))
    except BaseException as err:  # the parent sends the rest itself and logs this
        messages.put(("error", block.first_id, f"{type(err).__name__}: {err}"))


def _send_block(
    settings: Settings, block: Block, should_stop: Callable[[], bool], messages: Any
) -> SendReport:
    """Send the queued rows of ``block`` under its lease (StateError when another live
    process holds it)."""
    engine = db.get_engine(settings.database_url)
    holder = leases.instance_id()
    with Session(engine, expire_on_commit=False) as session:
        if not leases.take(
            session.connection(), holder=holder, ttl_seconds=settings.lease_seconds, name=block.name
        ):
            raise StateError(f"{block.name} is being sent by another process")
        session.commit()
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
            loop.messages = messages
            loop.bounded(block, loop.pacer)  # type: ignore[arg-type]  # its own share
            with fewer_gc_passes():
                return loop.run()
        finally:
            provider.close()
            db.rollback_quietly(session)
            leases.release(session.connection(), holder=holder, name=block.name)
            session.commit()
