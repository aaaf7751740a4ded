"""A large inline send shared by helper processes (campaigns.delivery.processes), against
the fake SendGrid server through the real client, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns.delivery import helper_process, processes, send_lease
from campaigns.delivery.ledger import delivery_counts, queue_deliveries
from campaigns.delivery.sending import SendProgress, SendReport, send_campaign
from campaigns.delivery.workers.batch_send import Block
from campaigns.models import Campaign, CampaignStatus, Delivery
from newsletter import leases, metrics
from newsletter.models import Lease
from newsletter.settings import Settings
from tests.conftest import make_settings
from tests.support.delivery import API_KEY, add_subscribers, make_campaign
from tests.support.fake_sendgrid import FakeSendGrid

SHARED = {"send_processes": 2, "send_process_min_recipients": 1000}


def sg_settings(settings: Settings, fake: FakeSendGrid, **overrides: object) -> Settings:
    values = {
        "provider": "sendgrid",
        "base_url": "https://news.example.com",
        "sendgrid_api_key": API_KEY,
        "sendgrid_api_host": fake.url,
        "sendgrid_timeout_seconds": 5.0,
        "retry_base_seconds": 0.01,
        "retry_max_seconds": 0.05,
        **overrides,
    }
    return make_settings(settings.database_url, Path(settings.outbox_dir).parent, **values)


def shared_settings(settings: Settings, fake: FakeSendGrid, **overrides: object) -> Settings:
    """Two helpers for any send of 2,000 or more (the default minimum is 100,000)."""
    return sg_settings(settings, fake, **{**SHARED, **overrides})


def send_shared(
    session: Session, settings: Settings, fake: FakeSendGrid, campaign_id: int | None, **kwargs: Any
) -> SendReport:
    """send_campaign with two helpers for 2,000 readers or more (shared_settings)."""
    cfg = shared_settings(settings, fake)
    return send_campaign(session, settings=cfg, campaign_id=campaign_id, preflight=False, **kwargs)


def queued_campaign(session: Session, engine: Engine, count: int) -> int:
    add_subscribers(engine, count)
    campaign = make_campaign(session, status=CampaignStatus.SENDING)
    queue_deliveries(session, campaign=campaign)
    session.commit()
    assert campaign.id is not None
    return campaign.id


def spy_on_helpers(monkeypatch: pytest.MonkeyPatch) -> list[processes.Shared]:
    """The helpers' part of each send, as send_campaign got it."""
    seen: list[processes.Shared] = []
    real = processes.send_shared

    def spy(*args: object, **kwargs: object) -> processes.Shared:
        shared = real(*args, **kwargs)  # type: ignore[arg-type]
        seen.append(shared)
        return shared

    monkeypatch.setattr(processes, "send_shared", spy)
    return seen


# ---------------------------------------------------------------- the plan


def plan_of(
    settings: Settings, engine: Engine, readers: int, processes_: int = 1, least: int = 100_000
) -> tuple[list[Block], int, int]:
    """The plan for ``readers`` queued with those settings: (blocks, first id, last id)."""
    cfg = settings.model_copy(
        update={"send_processes": processes_, "send_process_min_recipients": least}
    )
    with Session(engine) as session:
        campaign_id = queued_campaign(session, engine, readers)
        first, last = session.execute(
            sa.select(sa.func.min(Delivery.id), sa.func.max(Delivery.id))
        ).one()
        return processes.plan(session, cfg, campaign_id=campaign_id), first, last


def test_one_process_is_the_default(sqlite_settings: Settings, sqlite_engine: Engine):
    assert plan_of(sqlite_settings, sqlite_engine, 50)[0] == []


def test_blocks_are_contiguous_and_cover_every_queued_id(
    sqlite_settings: Settings, sqlite_engine: Engine
):
    blocks, first, last = plan_of(sqlite_settings, sqlite_engine, 100, 3, least=10)
    assert len(blocks) == 3 and blocks[0].first_id == first and blocks[-1].last_id == last
    assert all(a.last_id + 1 == b.first_id for a, b in itertools.pairwise(blocks))


def test_fewer_blocks_than_processes_when_each_would_be_below_the_minimum(
    sqlite_settings: Settings, sqlite_engine: Engine
):
    assert len(plan_of(sqlite_settings, sqlite_engine, 100, 8, least=40)[0]) == 2


def test_a_send_below_twice_the_minimum_stays_in_this_process(
    sqlite_settings: Settings, sqlite_engine: Engine
):
    assert plan_of(sqlite_settings, sqlite_engine, 100, 2, least=60)[0] == []


def test_the_plan_starts_at_the_first_row_still_queued(
    sqlite_settings: Settings, sqlite_engine: Engine
):
    cfg = sqlite_settings.model_copy(
        update={"send_processes": 2, "send_process_min_recipients": 10}
    )
    with Session(sqlite_engine) as session:
        campaign_id = queued_campaign(session, sqlite_engine, 100)
        first = session.execute(sa.select(sa.func.min(Delivery.id))).scalar_one()
        session.execute(sa.update(Delivery).where(Delivery.id < first + 60).values(status="sent"))
        session.commit()
        blocks = processes.plan(session, cfg, campaign_id=campaign_id)
    assert [b.first_id for b in blocks] == [first + 60, first + 80]


def test_an_in_memory_database_is_never_shared(tmp_path: Path):
    cfg = make_settings("sqlite://", tmp_path, send_processes=4, send_process_min_recipients=1)
    assert processes.plan(None, cfg, campaign_id=1) == []  # type: ignore[arg-type]


# ---------------------------------------------------------------- the send


def test_two_processes_send_every_reader_exactly_once(
    settings: Settings,
    engine: Engine,
    session: Session,
    fake: FakeSendGrid,
    monkeypatch: pytest.MonkeyPatch,
):
    helpers = spy_on_helpers(monkeypatch)
    add_subscribers(engine, 3000)
    campaign = make_campaign(session)
    report = send_shared(session, settings, fake, campaign.id)
    assert (report.status, report.sent, report.queued, report.batches) == ("sent", 3000, 0, 4)
    assert fake.recipients == 3000 and not fake.duplicates()
    assert len(helpers) == 1 and helpers[0].report.sent == 3000  # all of it by the helpers
    assert delivery_counts(session, campaign_id=campaign.id).sent == 3000


def test_rows_queued_while_the_helpers_send_are_shared_by_helpers_again(
    settings: Settings,
    engine: Engine,
    session: Session,
    fake: FakeSendGrid,
    monkeypatch: pytest.MonkeyPatch,
):
    """A local-time wave released during a shared send: large, it gets helpers too."""
    add_subscribers(engine, 3000)
    campaign = make_campaign(session)
    rounds: list[int] = []  # what each round's helpers sent
    real = processes.send_shared

    def then_a_wave(*args: object, **kwargs: object) -> processes.Shared:
        shared = real(*args, **kwargs)  # type: ignore[arg-type]
        if not rounds:  # readers queued while the first helpers sent
            add_subscribers(engine, 3000, start=3001)
            with Session(engine) as other:
                fresh = other.get(Campaign, campaign.id)
                assert fresh is not None
                queue_deliveries(other, campaign=fresh)
                other.commit()
        rounds.append(shared.report.sent)
        return shared

    monkeypatch.setattr(processes, "send_shared", then_a_wave)
    report = send_shared(session, settings, fake, campaign.id)
    assert rounds == [3000, 3000]
    assert (report.status, report.sent, report.queued) == ("sent", 6000, 0)
    assert fake.recipients == 6000 and not fake.duplicates()


def test_progress_counts_the_helpers_batches(
    sqlite_settings: Settings, sqlite_engine: Engine, fake: FakeSendGrid
):
    add_subscribers(sqlite_engine, 3000)
    seen: list[SendProgress] = []
    with Session(sqlite_engine) as session:
        campaign = make_campaign(session)
        send_shared(session, sqlite_settings, fake, campaign.id, on_progress=seen.append)
    sent = [p.sent for p in seen]
    assert sent == sorted(sent) and sent[-1] == 3000 and {p.total for p in seen} == {3000}
    assert len(set(sent)) >= 4  # a step per helper batch, not one jump at the end


def test_the_metrics_count_what_the_helpers_sent(
    sqlite_settings: Settings, sqlite_engine: Engine, fake: FakeSendGrid
):
    sent = metrics.MESSAGES_SENT.labels("sendgrid")
    before = sent._value.get()
    add_subscribers(sqlite_engine, 3000)
    with Session(sqlite_engine) as session:
        campaign = make_campaign(session)
        send_shared(session, sqlite_settings, fake, campaign.id)
    assert sent._value.get() - before == 3000


def test_the_plan_counts_queued_rows_not_ids(sqlite_settings: Settings, sqlite_engine: Engine):
    cfg = sqlite_settings.model_copy(
        update={"send_processes": 2, "send_process_min_recipients": 10}
    )
    with Session(sqlite_engine) as session:
        campaign_id = queued_campaign(session, sqlite_engine, 100)
        first = session.execute(sa.select(sa.func.min(Delivery.id))).scalar_one()
        session.execute(  # a resume: only the first and the last rows still queued
            sa.update(Delivery)
            .where(Delivery.id.between(first + 5, first + 94))
            .values(status="sent")  # type: ignore[union-attr]
        )
        session.commit()
        assert processes.plan(session, cfg, campaign_id=campaign_id) == []


def test_a_stop_stops_every_helper_and_a_resume_sends_the_rest_once(
    sqlite_settings: Settings, sqlite_engine: Engine, fake: FakeSendGrid
):
    add_subscribers(sqlite_engine, 6000)
    cfg = shared_settings(sqlite_settings, fake)
    seen: list[SendProgress] = []
    with Session(sqlite_engine) as session:
        campaign = make_campaign(session)
        stopped = send_campaign(  # asked to stop once the first batch is recorded
            session,
            settings=cfg,
            campaign_id=campaign.id,
            preflight=False,
            on_progress=seen.append,
            should_stop=lambda: bool(seen),
        )
        assert stopped.status == "sending" and stopped.stopped == "stop requested"
        assert 0 < stopped.queued < 6000 and stopped.sent + stopped.queued == 6000
        rest = send_campaign(session, settings=cfg, campaign_id=campaign.id, preflight=False)
    assert (rest.status, rest.sent) == ("sent", stopped.queued)
    assert fake.recipients == 6000 and not fake.duplicates()


def test_a_pause_by_someone_else_stops_the_helpers_and_the_rest_stays_queued(
    sqlite_settings: Settings, sqlite_engine: Engine, fake: FakeSendGrid
):
    add_subscribers(sqlite_engine, 6000)
    fake.hold_after(1, 1.0)  # time to pause while the first batch is out
    with Session(sqlite_engine) as session:
        campaign = make_campaign(session)
        campaign_id = campaign.id

        def pause_once(progress: SendProgress) -> None:
            with sqlite_engine.begin() as connection:
                connection.execute(
                    sa.text("UPDATE campaign SET status = 'paused' WHERE id = :id"),
                    {"id": campaign_id},
                )

        report = send_shared(session, sqlite_settings, fake, campaign_id, on_progress=pause_once)
        assert report.status == "paused" and report.stopped == "campaign is paused"
        assert report.queued == 6000 - fake.recipients and report.queued > 0
    assert not fake.duplicates()


def test_a_helper_killed_mid_send_costs_at_most_its_batch_in_flight(
    postgres_url: str, pg_engine: Engine, tmp_path: Path, fake: FakeSendGrid
):
    add_subscribers(pg_engine, 4000)
    cfg = make_settings(postgres_url, tmp_path)
    killed: list[int] = []

    def kill_one(progress: SendProgress) -> None:
        if not killed:
            helper = multiprocessing.active_children()[0]
            assert helper.pid is not None
            os.kill(helper.pid, signal.SIGKILL)
            killed.append(helper.pid)

    fake.hold_after(2, 0.5)  # a batch in flight when the kill comes
    with Session(pg_engine) as session:
        campaign = make_campaign(session)
        report = send_shared(session, cfg, fake, campaign.id, on_progress=kill_one)
        assert (report.status, report.queued) == ("sent", 0) and killed
        # What was committed, never twice; the killed helper's last commit may be left out
        # of the report (killed before telling it), never out of the ledger.
        assert 3000 <= report.sent <= 4000
    assert set(fake.deliveries) == {f"user{i}@example.com" for i in range(1, 4001)}
    assert sum(n - 1 for n in fake.duplicates().values()) <= 1000  # one SendGrid batch


def test_a_block_lease_of_a_dead_process_does_not_hold_the_next_send_back(
    sqlite_settings: Settings, sqlite_engine: Engine, fake: FakeSendGrid
):
    add_subscribers(sqlite_engine, 10)
    with Session(sqlite_engine) as session:
        campaign = make_campaign(session)
        assert campaign.id is not None
        dead = leases.instance_id().replace(f":{os.getpid()}:", ":999999999:")
        block = Block(campaign.id, 1, 10)
        assert leases.take(session.connection(), holder=dead, ttl_seconds=600, name=block.name)
        session.commit()
        report = send_campaign(
            session, settings=sg_settings(sqlite_settings, fake), campaign_id=campaign.id,
            preflight=False,
        )  # fmt: skip
    assert (report.status, report.sent) == ("sent", 10)


def test_a_provider_refusal_in_a_helper_fails_the_campaign_with_its_reason(
    sqlite_settings: Settings, sqlite_engine: Engine, fake: FakeSendGrid
):
    add_subscribers(sqlite_engine, 3000)
    fake.fail_next(
        401, count=2, errors=[{"message": "The provided authorization grant is invalid"}]
    )
    with Session(sqlite_engine) as session:
        campaign = make_campaign(session)
        report = send_shared(session, sqlite_settings, fake, campaign.id)
        assert report.status == "failed" and "provider refused to go on" in (report.stopped or "")
        assert report.queued == 3000 - fake.recipients


def test_a_helper_killed_while_the_sender_lags_does_not_hold_the_others_up(
    sqlite_settings: Settings, sqlite_engine: Engine, fake: FakeSendGrid
):
    # One request per reader and a slow progress callback: the helpers' pipes fill up, and
    # one is killed then, possibly mid-message (with one queue for all, its lock held by
    # the dead writer hung the other helper and the send for good).
    add_subscribers(sqlite_engine, 1200)
    cfg = shared_settings(
        sqlite_settings, fake, sendgrid_batch_size=1, send_process_min_recipients=500
    )
    calls: list[int] = []

    def lagging(progress: SendProgress) -> None:
        calls.append(progress.sent)
        time.sleep(0.005)
        if len(calls) == 400:
            os.kill(multiprocessing.active_children()[0].pid or 0, signal.SIGKILL)

    with Session(sqlite_engine) as session:
        campaign = make_campaign(session)
        report = send_campaign(
            session, settings=cfg, campaign_id=campaign.id, preflight=False, on_progress=lagging
        )
        # The report counts what the helpers told after their commits: never more than
        # was sent (the killed helper's untold batches are missing from it, not the ledger).
        assert (report.status, report.queued) == ("sent", 0) and report.sent <= 1200
        assert delivery_counts(session, campaign_id=campaign.id).sent == 1200
    assert set(fake.deliveries) == {f"user{i}@example.com" for i in range(1, 1201)}
    assert sum(n - 1 for n in fake.duplicates().values()) <= 1


def started_helper_says(
    settings: Settings, engine: Engine, fake: FakeSendGrid, *, parent_holds: bool, status: str
) -> str | None:
    """What a helper starting now says for a campaign of 10 readers: its report's
    ``stopped``; the fake SendGrid server must have had nothing from it."""
    parent = leases.instance_id()
    with Session(engine) as session:
        campaign_id = queued_campaign(session, engine, 10)
        if parent_holds:
            send_lease.claim(session, campaign_id=campaign_id, holder=parent, seconds=60)
        else:  # its sender died and another took the campaign over
            send_lease.claim(session, campaign_id=campaign_id, holder="other:1:1:x", seconds=60)
        session.execute(sa.update(Campaign).values(status=status))
        session.commit()
        first, last = session.execute(
            sa.select(sa.func.min(Delivery.id), sa.func.max(Delivery.id))
        ).one()
    _, writer = multiprocessing.Pipe(duplex=False)
    report = helper_process._send_block(
        sg_settings(settings, fake), Block(campaign_id, first, last), parent, lambda: False, writer
    )
    with Session(engine) as session:
        assert (
            leases.current(session.connection(), name=Block(campaign_id, first, last).name) is None
        )
    assert fake.attempts == 0
    return report.stopped


def test_a_helper_starting_after_its_sender_lost_the_campaign_sends_nothing(
    sqlite_settings: Settings, sqlite_engine: Engine, fake: FakeSendGrid
):
    said = started_helper_says(
        sqlite_settings, sqlite_engine, fake, parent_holds=False, status="sending"
    )
    assert said == "its sender no longer holds the campaign"


def test_a_helper_starting_after_a_cancel_sends_nothing(
    sqlite_settings: Settings, sqlite_engine: Engine, fake: FakeSendGrid
):
    said = started_helper_says(
        sqlite_settings, sqlite_engine, fake, parent_holds=True, status="cancelled"
    )
    assert said == "campaign is cancelled"


def test_a_helper_that_cannot_start_ends_the_send_in_one_error_and_stops_the_others(
    sqlite_settings: Settings,
    sqlite_engine: Engine,
    fake: FakeSendGrid,
    monkeypatch: pytest.MonkeyPatch,
):
    spawn = multiprocessing.get_context("spawn").Process
    real_start = spawn.start
    starts: list[int] = []

    def start(self: multiprocessing.process.BaseProcess) -> None:
        starts.append(1)
        if len(starts) == 2:
            raise OSError("Resource temporarily unavailable")
        real_start(self)

    monkeypatch.setattr(spawn, "start", start)
    add_subscribers(sqlite_engine, 3000)
    with Session(sqlite_engine) as session:
        campaign = make_campaign(session)
        with pytest.raises(OSError, match="Resource temporarily unavailable"):
            send_shared(session, sqlite_settings, fake, campaign.id)
        session.rollback()
        assert delivery_counts(session, campaign_id=campaign.id).queued + fake.recipients == 3000
        assert fake.recipients <= 1000  # the helper that started stops after its first batch
        assert session.execute(sa.select(sa.func.count()).select_from(Lease)).scalar_one() == 0


def test_a_helper_telling_a_parent_that_stopped_reading_never_blocks_its_loop():
    """A full pipe held the helper's loop, so its block lease lapsed (a review's find)."""
    reading, writing = multiprocessing.Pipe(duplex=False)
    teller = helper_process.Teller(writing)
    told = helper_process.Told((helper_process.Batch(0.1, 100, 0, 202),), (100,) * 6)
    started = time.monotonic()
    for _ in range(2000):  # about 350 KB: far more than a pipe holds unread
        teller.send(told)
    assert time.monotonic() - started < 1.0
    received = [reading.recv() for _ in range(2000)]
    teller.send(("done", "report"))
    teller.close()  # waits until the last word is written
    assert received == [told] * 2000 and reading.recv() == ("done", "report")


def test_a_helper_whose_parent_stopped_reading_ends_after_a_bounded_wait():
    """A parent stopped (SIGSTOP) with the pipe full held its helper's exit forever."""
    reading, writing = multiprocessing.Pipe(duplex=False)
    teller = helper_process.Teller(writing, close_within=0.5)
    told = helper_process.Told((helper_process.Batch(0.1, 100, 0, 202),), (100,) * 6)
    for _ in range(2000):  # nobody reads: the writer blocks on the full pipe
        teller.send(told)
    started = time.monotonic()
    teller.close()
    assert 0.4 < time.monotonic() - started < 3.0
    reading.close()


def test_a_helper_whose_parent_is_gone_closes_its_teller_at_once():
    reading, writing = multiprocessing.Pipe(duplex=False)
    teller = helper_process.Teller(writing)
    reading.close()
    teller.send(("error", "whatever"))
    teller.close()  # a broken pipe ends the writer: nothing waits for a reader
