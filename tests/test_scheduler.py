"""The real Service and APScheduler in this process: misfires, status, the lease as licence.

The job store is seeded as a service that went down would have left it (the weekly run's
next time in the past), so no test waits for a real weekly slot. ``--once`` takes ``now``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.utils import parseaddr
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

import scheduler
from campaigns import outgoing_webhooks, weekly_plan
from campaigns.models import Campaign, CampaignStatus, Delivery, Snippet
from newsletter import job_runs, jsonlog, leases, metrics
from newsletter.models import JobRun
from newsletter.settings import Settings, load_settings
from tests.support.content import make_campaign, make_snippet
from tests.support.delivery import add_subscribers
from tests.support.servers import live_server
from tests.support.subscribers import make_subscriber, sqlite_only
from tests.support.webhook_receiver import webhook_receiver
from web.app import create_app

NY = ZoneInfo("America/New_York")
READERS = ("ann@example.com", "bob@example.com", "cy@example.com")
GONE = "gone-host:1:dead00"  # the instance that was running before the outage


def export(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``load_settings()`` (what scheduled jobs call) return exactly ``settings``."""
    for name, value in settings.model_dump(mode="json").items():
        key = f"NEWSLETTER_{name.upper()}"
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(
                key, json.dumps(value) if isinstance(value, list | dict) else str(value)
            )
    assert load_settings() == settings


@pytest.fixture
def base(
    settings: Settings, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    monkeypatch.chdir(tmp_path)  # no stray .env
    # Whatever configured the loggers before, let the records reach caplog.
    monkeypatch.setattr(logging.getLogger("newsletter"), "propagate", True)
    cfg = settings.model_copy(
        update={
            "timezone": "America/New_York",
            "snippets_per_issue": 3,
            "max_per_category": 1,
            "lease_seconds": 3,
            "dispatch_interval_seconds": 1,
        }
    )
    with Session(engine) as session:
        for address in READERS:
            make_subscriber(session, address)
        for category in ("back-pain", "sciatica", "leg-cramps"):
            make_snippet(session, cfg, category=category)
        session.commit()
    return cfg


def missed_slots(minutes_ago: tuple[int, ...]) -> list[datetime]:
    """Local wall times that many minutes ago, on the minute."""
    now = datetime.now(NY).replace(second=0, microsecond=0)
    return [now - timedelta(minutes=m) for m in minutes_ago]


def with_weekly_slot(cfg: Settings, missed: list[datetime], **updates: object) -> Settings:
    """An assembly cron that fired at each of ``missed`` (and not again within the hour),
    and a send slot at the last of them, so the issue is due as soon as it is assembled."""
    minutes = ",".join(sorted({str(t.minute) for t in missed}, key=int))
    hours = ",".join(sorted({str(t.hour) for t in missed}, key=int))
    slot = missed[-1]
    return cfg.model_copy(
        update={
            "assemble_cron": f"{minutes} {hours} * * *",
            "send_weekday": slot.weekday(),
            "send_time": slot.strftime("%H:%M"),
            **updates,
        }
    )


def seed_job_store(cfg: Settings, engine: Engine, *, weekly_next: datetime) -> None:
    """The job store a service down since ``weekly_next`` left behind."""
    store = scheduler.new_scheduler(cfg, engine)
    store.start(paused=True)
    scheduler.add_jobs(store, cfg, instance=GONE)
    store.modify_job(job_runs.WEEKLY_ASSEMBLY, next_run_time=weekly_next)
    store.shutdown(wait=False)


@contextmanager
def running(cfg: Settings) -> Iterator[scheduler.Service]:
    service = scheduler.Service(cfg)
    thread = threading.Thread(target=service.run_forever, name="service", daemon=True)
    thread.start()
    try:
        yield service
    finally:
        service.stop_event.set()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the service did not stop"


def wait_for(what: str, check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def campaigns(engine: Engine) -> list[Campaign]:
    with Session(engine) as session:
        return list(session.exec(select(Campaign).order_by(col(Campaign.id))).all())


def runs(engine: Engine, job: str) -> list[JobRun]:
    with Session(engine) as session:
        return list(
            session.exec(select(JobRun).where(JobRun.job == job).order_by(col(JobRun.id))).all()
        )


def mail_counts(cfg: Settings) -> Counter[str]:
    return Counter(
        parseaddr(message_from_bytes(p.read_bytes())["To"])[1] for p in cfg.outbox_dir.glob("*.eml")
    )


# ---------------------------------------------------------------- misfires


def test_down_over_the_slot_the_service_assembles_and_sends_once_on_return(
    base: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    missed = missed_slots((3, 2, 1))  # three fire times passed while nobody ran
    cfg = with_weekly_slot(base, missed, misfire_grace_seconds=600)
    export(cfg, monkeypatch)
    seed_job_store(cfg, engine, weekly_next=missed[0])

    def sent() -> bool:
        return [c.status for c in campaigns(engine)] == [CampaignStatus.SENT]

    with running(cfg):
        wait_for("the missed issue to go out", sent)
    (issue,) = campaigns(engine)
    assert issue.week == weekly_plan.iso_week(missed[-1].date())
    assert issue.scheduled_at == missed[-1].astimezone(UTC)
    assert mail_counts(cfg) == Counter(READERS)
    assert [r.outcome for r in runs(engine, job_runs.WEEKLY_ASSEMBLY)] == ["ok"]  # coalesced

    with running(cfg) as again:
        wait_for(
            "the restarted service to dispatch",
            lambda: any(r.instance == again.instance for r in runs(engine, job_runs.DISPATCH)),
        )
    assert [c.id for c in campaigns(engine)] == [issue.id]
    assert len(runs(engine, job_runs.WEEKLY_ASSEMBLY)) == 1
    assert mail_counts(cfg) == Counter(READERS)


def test_down_past_the_grace_time_the_slot_is_skipped_with_a_log_line(
    base: Settings,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    missed = missed_slots((5, 4, 3))
    cfg = with_weekly_slot(base, missed, misfire_grace_seconds=60)
    export(cfg, monkeypatch)
    seed_job_store(cfg, engine, weekly_next=missed[0])
    with caplog.at_level(logging.INFO, logger="newsletter"), running(cfg) as service:
        wait_for("the missed run to be recorded", lambda: runs(engine, job_runs.WEEKLY_ASSEMBLY))
        wait_for(
            "a dispatch",
            lambda: any(r.instance == service.instance for r in runs(engine, job_runs.DISPATCH)),
        )
    assert campaigns(engine) == [] and mail_counts(cfg) == Counter()
    (run,) = runs(engine, job_runs.WEEKLY_ASSEMBLY)
    due = missed[-1].strftime("%Y-%m-%d %H:%M %Z")
    assert (run.outcome, run.instance, run.detail) == (
        "skipped",
        service.instance,
        f"missed the run due {due}: more than 60 s late "
        "(NEWSLETTER_MISFIRE_GRACE_SECONDS), so it was not run",
    )
    (record,) = [r for r in caplog.records if r.getMessage().startswith("missed:")]
    line = json.loads(jsonlog.JsonLines().format(record))
    assert {k: line[k] for k in ("level", "event", "job", "instance", "scheduled_at")} == {
        "level": "warning",
        "event": "missed: later than the grace time, not run",
        "job": "weekly_assembly",
        "instance": service.instance,
        "scheduled_at": missed[-1].astimezone(UTC).isoformat(),
    }
    upcoming = job_runs.next_runs(engine)[job_runs.WEEKLY_ASSEMBLY]
    assert upcoming is not None and upcoming > datetime.now(UTC)  # on to the next slot


def test_once_within_the_grace_time_assembles_once_however_often_cron_calls_it(
    base: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = base.model_copy(update={"send_weekday": 1, "send_time": "09:00"})
    export(cfg, monkeypatch)
    monday = datetime(2026, 11, 9, 6, tzinfo=NY).astimezone(UTC)  # the default cron's slot
    for minutes in (50, 55, 60):  # cron calls --once every five minutes
        assert scheduler.Service(cfg).run_once(now=monday + timedelta(minutes=minutes)) == 0
    (issue,) = campaigns(engine)
    assert (issue.week, issue.status) == ("2026-W46", CampaignStatus.SCHEDULED)
    assert [r.outcome for r in runs(engine, job_runs.WEEKLY_ASSEMBLY)] == ["ok"]


def test_once_past_the_grace_time_records_the_missed_slot_once(
    base: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    export(base, monkeypatch)
    monday = datetime(2026, 11, 9, 6, tzinfo=NY).astimezone(UTC)
    with Session(engine) as session:  # the previous week's run: this is no new install
        session.add(JobRun(job="weekly_assembly", instance=GONE, started_at=monday - timedelta(7)))
        session.commit()
    for hours in (7, 8):  # back an hour after the six-hour grace time, then again
        scheduler.Service(base).run_once(now=monday + timedelta(hours=hours))
    assert campaigns(engine) == []
    outcomes = [(r.outcome, r.detail) for r in runs(engine, job_runs.WEEKLY_ASSEMBLY)]
    assert outcomes[1:] == [
        (
            "skipped",
            "missed the run due 2026-11-09 06:00 EST: more than 21600 s late "
            "(NEWSLETTER_MISFIRE_GRACE_SECONDS), so it was not run",
        )
    ]


def test_shutting_a_scheduler_down_never_uses_up_a_due_run(base: Settings, engine: Engine) -> None:
    due = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    seed_job_store(base, engine, weekly_next=due)  # start paused, set, shut down
    assert job_runs.next_runs(engine)[job_runs.WEEKLY_ASSEMBLY] == due
    assert engine.pool.status()  # the shared engine was not disposed by the job store
    assert runs(engine, job_runs.WEEKLY_ASSEMBLY) == []


# ---------------------------------------------------------------- status and the lease


@pytest.mark.serial  # asserts wall time: runs alone, in make test's second pytest
def test_while_a_service_runs_healthz_names_it_and_every_next_run(
    base: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    export(base, monkeypatch)
    with live_server(create_app(base)) as url, running(base) as service:
        # job_runs.JOBS and the outgoing webhooks' delivery.
        every = {*job_runs.JOBS, job_runs.WEBHOOK_DELIVERY}
        wait_for("the jobs in the store", lambda: set(job_runs.next_runs(engine)) == every)
        body = httpx.get(f"{url}/healthz", timeout=10).json()
        stopped = service.stop_event
    assert (body["database_ok"], body["active_instance"]) == (True, service.instance)
    nexts = {j["job"]: datetime.fromisoformat(j["next_run_at"]) for j in body["jobs"]}
    monday = scheduler.assembly_trigger(base).get_next_fire_time(None, datetime.now(UTC))
    assert nexts["weekly_assembly"] == monday.astimezone(UTC)  # type: ignore[union-attr]
    assert nexts["dispatch"] - datetime.now(UTC) < timedelta(seconds=5)
    assert stopped.is_set() and job_runs.status(engine).active_instance is None  # released


def test_a_job_of_an_instance_without_the_lease_does_nothing(
    base: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    export(base, monkeypatch)
    assert leases.acquire(engine, holder="active:1:aaaaaa", ttl_seconds=30)
    scheduler.dispatch_job(instance=GONE)
    assert runs(engine, job_runs.DISPATCH) == []


def test_a_dispatch_stops_after_the_batch_in_flight_once_the_lease_is_gone(
    base: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    export(base, monkeypatch)
    add_subscribers(engine, 247)  # 250 readers: three batches of the outbox provider
    me = "me:1:aaaaaa"
    with Session(engine) as session:
        snippets = session.exec(select(Snippet)).all()
        campaign = make_campaign(session, list(snippets), status=CampaignStatus.SCHEDULED)
        campaign.scheduled_at = datetime.now(UTC) - timedelta(minutes=1)
        session.add(campaign)
        session.commit()
    assert leases.acquire(engine, holder=me, ttl_seconds=30)
    real_holds = leases.holds

    def holds(engine: Engine, *, holder: str) -> bool:
        if mail_counts(base).total() >= 100:  # SIGTERM once the first batch is out
            leases.release(engine, holder=holder)
        return real_holds(engine, holder=holder)

    monkeypatch.setattr(leases, "holds", holds)
    scheduler.dispatch_job(instance=me)
    (run,) = runs(engine, job_runs.DISPATCH)
    assert run.outcome == "interrupted"
    assert mail_counts(base).total() == 100  # the batch in flight, recorded, and no more
    with Session(engine) as session:
        assert session.exec(select(func.count()).where(Delivery.status == "sent")).one() == 100


# ---------------------------------------------------------------- time zones


def test_the_assembly_cron_stays_at_six_local_across_both_dst_changes(base: Settings) -> None:
    trigger = scheduler.assembly_trigger(base)  # "0 6 * * mon" in America/New_York
    fire = datetime(2026, 10, 26, tzinfo=UTC)
    seen = []
    for _ in range(3):
        fire = trigger.get_next_fire_time(None, fire + timedelta(minutes=1))  # type: ignore[assignment]
        seen.append(fire.strftime("%m-%d %H:%M %Z"))
    fire = datetime(2027, 3, 8, tzinfo=UTC)
    for _ in range(2):
        fire = trigger.get_next_fire_time(None, fire + timedelta(minutes=1))  # type: ignore[assignment]
        seen.append(fire.strftime("%m-%d %H:%M %Z"))
    assert seen == [
        "10-26 06:00 EDT",
        "11-02 06:00 EST",
        "11-09 06:00 EST",
        "03-08 06:00 EST",
        "03-15 06:00 EDT",
    ]


# ---------------------------------------------------------------- issues 16 and 17


@sqlite_only  # the delivery is tested on both databases in tests/campaigns; budget
def test_the_leader_delivers_outgoing_webhooks_within_seconds_and_says_it_leads(
    base: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = base.model_copy(
        update={"webhook_allow_local": True, "webhook_deliver_interval_seconds": 1}
    )
    export(cfg, monkeypatch)
    with webhook_receiver(200) as receiver, running(cfg):
        with Session(engine) as session:
            outgoing_webhooks.add_endpoint(
                session, settings=cfg, url=receiver.url, events=[], actor="test"
            )
            make_subscriber(session, "hooked@example.com")
        wait_for("the webhook", lambda: len(receiver.received) == 1, timeout=10)
        assert metrics.SCHEDULER_LEADER._value.get() == 1
    assert metrics.SCHEDULER_LEADER._value.get() == 0
    assert b'"subscriber.created"' in receiver.received[0].body


def test_the_bounces_job_is_planned_only_with_smtp_or_a_bounce_mailbox(
    settings: Settings, engine: Engine
) -> None:
    smtp = settings.model_copy(update={"provider": "smtp", "smtp_url": "smtp://127.0.0.1:9"})
    planned = {}
    for name, cfg in (("outbox", settings), ("smtp", smtp)):
        store = scheduler.new_scheduler(cfg, engine)
        store.start(paused=True)
        scheduler.add_jobs(store, cfg, instance=GONE)
        planned[name] = {job.id: job.trigger for job in store.get_jobs()}
        store.shutdown(wait=False)
    assert job_runs.BOUNCES not in planned["outbox"]
    assert str(planned["smtp"][job_runs.BOUNCES]) == "interval[0:05:00]"
