"""A sender, or a helper of a shared send, stopped longer than its lease (SIGSTOP, a
paused VM, a blocked write) while another took the campaign over: on waking it sends
nothing more, not even the batch it had read before the stall (``leases.renew`` does not
take back a lease another held; ``SendLoop`` renews before any batch after a stall, and a
helper also checks that its sender still holds the campaign)."""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from datetime import timedelta
from email import message_from_bytes
from email.utils import parseaddr
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.delivery import helper_process, processes, send_lease, send_loop
from campaigns.delivery.ledger import delivery_counts, queue_deliveries
from campaigns.delivery.providers import outbox
from campaigns.delivery.sending import send_campaign
from campaigns.delivery.workers import batch_send
from campaigns.models import CampaignStatus
from newsletter import leases
from newsletter.clock import utcnow
from newsletter.settings import Settings
from tests.support.delivery import add_subscribers, make_campaign


class StalledClock:
    """``send_loop``'s view of ``time``: it jumps ``seconds`` ahead when :meth:`stall` is
    called, as a process stopped that long finds on waking."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def stall(self, seconds: float) -> None:
        self.offset += seconds


class TakenOverAfter:
    """``outbox.write_file`` that, at the last file of the first batch, lets the sender
    stall past its lease while another sender takes the campaign, and then gives it up
    (``keeps``: holds it on)."""

    keeps = False

    def __init__(self, engine: Engine, cfg: Settings, campaign_id: int, clock: StalledClock):
        self.engine, self.cfg, self.campaign_id, self.clock = engine, cfg, campaign_id, clock
        self.real = outbox.write_file
        self.written = 0

    def __call__(self, path: Path, data: bytes) -> None:
        self.real(path, data)
        self.written += 1
        if self.written == 100:
            name = send_lease.lease_name(self.campaign_id)
            later = utcnow() + timedelta(seconds=self.cfg.lease_seconds + 1)
            assert leases.acquire(
                self.engine, holder="other", ttl_seconds=600, name=name, now=later
            )
            if not self.keeps:
                assert leases.release(self.engine, holder="other", name=name)
            self.clock.stall(self.cfg.lease_seconds + 1)


def test_a_sender_woken_after_another_held_its_lease_sends_nothing_more(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_subscribers(engine, 250, name=False)
    with Session(engine) as session:
        campaign_id = make_campaign(session).id
    assert campaign_id is not None
    clock = StalledClock()
    monkeypatch.setattr(send_loop, "time", clock)
    monkeypatch.setattr(outbox, "write_file", TakenOverAfter(engine, settings, campaign_id, clock))
    with Session(engine) as session:
        report = send_campaign(session, settings=settings, campaign_id=campaign_id, preflight=False)
    assert (report.sent, report.stopped) == (100, "lost the send lease to another sender")
    files = sorted(Path(settings.outbox_dir).glob("*.eml"))
    assert len(files) == 100  # not the batch read ahead before the stall
    addresses = Counter(parseaddr(message_from_bytes(f.read_bytes())["To"])[1] for f in files)
    assert set(addresses.values()) == {1}
    with Session(engine) as session:
        counts = delivery_counts(session, campaign_id=campaign_id)
    assert (counts.sent, counts.queued) == (100, 150)


class SenderTakenOverAfter(TakenOverAfter):
    """At the last file of the helper's first batch: its host paused past the leases, and
    another sender took the campaign from the helper's sender (and still holds it)."""

    keeps = True


def test_a_helper_woken_after_another_took_its_senders_campaign_sends_nothing_more(
    settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its block's lease is still in its name (nobody takes block leases over), so the
    helper also checks that its sender holds the campaign."""
    add_subscribers(engine, 250, name=False)
    with Session(engine) as session:
        campaign = make_campaign(session, status=CampaignStatus.SENDING)
        queue_deliveries(session, campaign=campaign)
        session.commit()
        campaign_id = campaign.id
        assert campaign_id is not None
        cfg = settings.model_copy(update={"send_processes": 2, "send_process_min_recipients": 100})
        (block, _) = processes.plan(session, cfg, campaign_id=campaign_id)
        session.commit()
    name = send_lease.lease_name(campaign_id)
    assert leases.acquire(engine, holder="sender", ttl_seconds=cfg.lease_seconds, name=name)
    clock = StalledClock()
    for module in (send_loop, batch_send, helper_process):  # the loop's clock, wherever read
        monkeypatch.setattr(module, "time", clock)
    monkeypatch.setattr(outbox, "write_file", SenderTakenOverAfter(engine, cfg, campaign_id, clock))
    reading, writing = multiprocessing.Pipe(duplex=False)
    told = helper_process.Teller(writing)
    report = helper_process._send_block(cfg, block, "sender", lambda: False, told)
    told.close()
    assert (report.sent, report.stopped) == (100, "its sender no longer holds the campaign")
    assert len(list(Path(cfg.outbox_dir).glob("*.eml"))) == 100  # not the batch read before
    reading.close()
