"""The scheduler's jobs driven by an injected clock: weeks pass in milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.utils import parseaddr
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

import scheduler
from campaigns import jobs, outgoing_webhooks, weekly_plan
from campaigns.models import Campaign, CampaignStatus, Delivery
from newsletter import job_runs
from newsletter.models import JobRun
from newsletter.settings import Settings
from subscribers.models import Subscriber
from tests.support.content import make_snippet
from tests.support.delivery import add_subscribers
from tests.support.subscribers import make_subscriber
from tests.support.webhook_receiver import webhook_receiver

NY = ZoneInfo("America/New_York")
CATEGORIES = ("back-pain", "sciatica", "leg-cramps")
READERS = ("ann@example.com", "bob@example.com", "cy@example.com")


def local(*args: int) -> datetime:
    """A New York wall time as aware UTC."""
    return datetime(*args, tzinfo=NY).astimezone(UTC)  # type: ignore[misc]


@pytest.fixture
def cfg(settings: Settings, engine: Engine) -> Settings:
    cfg = settings.model_copy(
        update={
            "timezone": "America/New_York",
            "send_weekday": 1,
            "send_time": "09:00",
            "snippets_per_issue": 3,
            "max_per_category": 1,
        }
    )
    with Session(engine) as session:
        for address in READERS:
            make_subscriber(session, address)
    return cfg


def add_snippets(engine: Engine, cfg: Settings, count: int = 3, *, first: int = 0) -> None:
    """``count`` snippets, one category after the other from CATEGORIES[first]."""
    with Session(engine) as session:
        for n in range(first, first + count):
            make_snippet(session, cfg, category=CATEGORIES[n % 3])
        session.commit()


def campaigns(engine: Engine) -> list[Campaign]:
    with Session(engine) as session:
        return list(session.exec(select(Campaign).order_by(col(Campaign.id))).all())


def sent_messages(cfg: Settings, campaign_id: int) -> list[str]:
    return sorted(
        parseaddr(message_from_bytes(p.read_bytes())["To"])[1]
        for p in cfg.outbox_dir.glob(f"campaign{campaign_id}-*.eml")
    )


def deliveries(engine: Engine, campaign_id: int) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(Delivery.status, sa.func.count())  # type: ignore[call-overload]
            .where(Delivery.campaign_id == campaign_id)
            .group_by(Delivery.status)
        ).all()
    return dict(rows)  # type: ignore[arg-type]


def test_a_simulated_month_sends_one_issue_a_week_at_nine_local_across_dst(
    cfg: Settings, engine: Engine
) -> None:
    mondays = [local(2026, 10, 19, 6), local(2026, 10, 26, 6)] + [
        local(2026, 11, day, 6) for day in (2, 9, 16)
    ]  # DST ends on Sunday 1 November
    for monday in mondays:
        add_snippets(engine, cfg)
        assert jobs.weekly_assembly(cfg, monday, fired_at=monday).outcome == job_runs.OK
        tuesday = monday + timedelta(days=1)
        assert jobs.dispatch(cfg, tuesday + timedelta(hours=2, minutes=59)).outcome == "idle"
        assert jobs.dispatch(cfg, tuesday + timedelta(hours=3)).outcome == job_runs.OK
        assert jobs.dispatch(cfg, tuesday + timedelta(hours=3, minutes=1)).outcome == "idle"
    issued = campaigns(engine)
    assert [c.week for c in issued] == ["2026-W43", "2026-W44", "2026-W45", "2026-W46", "2026-W47"]
    assert [weekly_plan.format_local(c.scheduled_at, cfg) for c in issued] == [
        "2026-10-20 09:00 EDT",
        "2026-10-27 09:00 EDT",
        "2026-11-03 09:00 EST",
        "2026-11-10 09:00 EST",
        "2026-11-17 09:00 EST",
    ]
    assert {c.status for c in issued} == {CampaignStatus.SENT}
    for campaign in issued:
        assert campaign.id is not None
        assert sent_messages(cfg, campaign.id) == sorted(READERS)
        assert deliveries(engine, campaign.id) == {"sent": 3}


def test_a_week_with_too_few_snippets_is_skipped_and_the_next_week_goes_out(
    cfg: Settings, engine: Engine
) -> None:
    add_snippets(engine, cfg, count=1)
    first = local(2026, 11, 9, 6)
    note = jobs.weekly_assembly(cfg, first, fired_at=first)
    assert note.outcome == job_runs.SKIPPED
    assert note.detail.startswith("2026-W46: no issue this week: not enough fresh snippets")
    assert jobs.dispatch(cfg, first + timedelta(days=1, hours=3)).outcome == "idle"
    assert campaigns(engine) == []

    add_snippets(engine, cfg, count=2, first=1)
    second = first + timedelta(days=7)
    assert jobs.weekly_assembly(cfg, second, fired_at=second).outcome == job_runs.OK
    jobs.dispatch(cfg, second + timedelta(days=1, hours=3))
    (issue,) = campaigns(engine)
    assert (issue.week, issue.status) == ("2026-W47", CampaignStatus.SENT)


def test_down_over_the_slot_assembles_and_sends_once_on_return_never_twice(
    cfg: Settings, engine: Engine
) -> None:
    cfg = cfg.model_copy(update={"misfire_grace_seconds": 2 * 24 * 3600})
    add_snippets(engine, cfg)
    back = local(2026, 11, 10, 11)  # down from Monday 05:00 until Tuesday 11:00
    fired = scheduler.last_fire_time(
        scheduler.assembly_trigger(cfg), back, lookback=timedelta(days=2)
    )
    assert fired == local(2026, 11, 9, 6)
    for restart in range(3):  # the return, then two more restarts that run it all again
        jobs.weekly_assembly(cfg, back + timedelta(minutes=restart), fired_at=fired)
        jobs.dispatch(cfg, back + timedelta(minutes=restart))
    (issue,) = campaigns(engine)
    assert issue.id is not None
    assert (issue.week, issue.status) == ("2026-W46", CampaignStatus.SENT)
    assert issue.scheduled_at == local(2026, 11, 10, 9)
    assert sent_messages(cfg, issue.id) == sorted(READERS)


def test_with_approval_required_the_issue_waits_as_a_draft(cfg: Settings, engine: Engine) -> None:
    cfg = cfg.model_copy(update={"require_approval": True})
    add_snippets(engine, cfg)
    monday = local(2026, 11, 9, 6)
    note = jobs.weekly_assembly(cfg, monday, fired_at=monday)
    jobs.dispatch(cfg, monday + timedelta(days=1, hours=4))
    (issue,) = campaigns(engine)
    assert note.detail == (
        f"2026-W46: campaign {issue.id} is a draft awaiting approval for 2026-11-10 09:00 EST"
    )
    assert (issue.status, issue.scheduled_at) == (CampaignStatus.DRAFT, None)
    assert list(cfg.outbox_dir.glob("*.eml")) == []


def test_an_issue_that_fails_preflight_stays_a_draft_with_the_reasons(
    cfg: Settings, engine: Engine
) -> None:
    cfg = cfg.model_copy(update={"postal_address": None})
    add_snippets(engine, cfg)
    monday = local(2026, 11, 9, 6)
    note = jobs.weekly_assembly(cfg, monday, fired_at=monday)
    (issue,) = campaigns(engine)
    reason = (
        f"preflight failed for campaign {issue.id}: campaign: "
        "NEWSLETTER_POSTAL_ADDRESS is not set; the postal address is required"
    )
    assert (note.outcome, note.detail) == (
        job_runs.FAILED,
        f"2026-W46: campaign {issue.id} left as a draft: {reason}",
    )
    assert (issue.status, issue.scheduled_at, issue.error) == (CampaignStatus.DRAFT, None, reason)
    assert jobs.dispatch(cfg, monday + timedelta(days=1, hours=4)).outcome == "idle"
    assert list(cfg.outbox_dir.glob("*.eml")) == []


def test_dispatch_resumes_a_send_that_stopped_between_batches(
    cfg: Settings, engine: Engine
) -> None:
    add_subscribers(engine, 247)  # 250 readers: three batches of the outbox provider
    add_snippets(engine, cfg)
    monday = local(2026, 11, 9, 6)
    jobs.weekly_assembly(cfg, monday, fired_at=monday)
    asked: list[int] = []

    def stop_after_first_batch() -> bool:
        asked.append(1)
        return len(asked) > 1  # asked once before the campaign, then after each batch

    due = monday + timedelta(days=1, hours=3)
    note = jobs.dispatch(cfg, due, should_stop=stop_after_first_batch)
    (issue,) = campaigns(engine)
    assert issue.id is not None
    assert note.outcome == jobs.INTERRUPTED
    assert issue.status == CampaignStatus.SENDING
    assert deliveries(engine, issue.id) == {"sent": 100, "queued": 150}

    assert jobs.dispatch(cfg, due + timedelta(minutes=1)).outcome == job_runs.OK
    assert deliveries(engine, issue.id) == {"sent": 250}
    assert len(list(cfg.outbox_dir.glob(f"campaign{issue.id}-*"))) == 250
    assert campaigns(engine)[0].status == CampaignStatus.SENT


def test_a_due_campaign_that_fails_preflight_goes_back_to_draft_with_the_reason(
    cfg: Settings, engine: Engine
) -> None:
    with Session(engine) as session:
        campaign = Campaign(
            subject="Empty", status=CampaignStatus.SCHEDULED, scheduled_at=local(2026, 11, 10, 9)
        )
        session.add(campaign)
        session.commit()
    note = jobs.dispatch(cfg, local(2026, 11, 10, 9, 1))
    (stored,) = campaigns(engine)
    assert note.outcome == job_runs.FAILED
    assert stored.status == CampaignStatus.DRAFT
    assert "the campaign has no snippets" in (stored.error or "")


def test_housekeeping_expires_stale_sign_ups_and_prunes_old_runs(
    cfg: Settings, engine: Engine
) -> None:
    now = local(2026, 11, 20, 3, 30)
    with Session(engine) as session:
        stale = make_subscriber(session, "late@example.com", status="pending")
        stale.status_changed_at = now - timedelta(days=8)
        session.add(stale)
        session.add(JobRun(job="dispatch", instance="x", started_at=now - timedelta(days=91)))
        session.add(
            JobRun(job="dispatch", instance="x", started_at=now - timedelta(days=2), outcome="idle")
        )
        session.add(JobRun(job="dispatch", instance="x", started_at=now - timedelta(days=2)))
        session.commit()
    note = jobs.housekeeping(cfg, now)
    assert note.detail == "expired 1 pending sign-ups, pruned 2 job runs"
    with Session(engine) as session:
        assert (
            session.exec(select(Subscriber).where(Subscriber.email == "late@example.com")).all()
            == []
        )
        runs = session.exec(select(JobRun.job, JobRun.outcome)).all()
    assert sorted(runs) == [("dispatch", "running"), ("housekeeping", "ok")]


def test_every_run_is_recorded_with_its_instance_and_outcome(cfg: Settings, engine: Engine) -> None:
    jobs.dispatch(cfg, local(2026, 11, 10, 9), instance="host:1:abc")
    report = job_runs.status(engine, now=local(2026, 11, 10, 9, 1))
    dispatch = next(j for j in report.jobs if j.job == "dispatch")
    assert (dispatch.last_outcome, dispatch.last_instance, dispatch.last_started_at) == (
        "idle",
        "host:1:abc",
        local(2026, 11, 10, 9),
    )
    assert dispatch.last_finished_at is not None


def plan_next_runs(engine: Engine, when: datetime) -> None:
    """What APScheduler's SQLAlchemyJobStore keeps: each job's next run (epoch seconds)."""
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                f"CREATE TABLE {job_runs.JOBSTORE_TABLE} "
                "(id VARCHAR(191) PRIMARY KEY, next_run_time FLOAT, job_state BYTEA)"
                if engine.dialect.name == "postgresql"
                else f"CREATE TABLE {job_runs.JOBSTORE_TABLE} "
                "(id VARCHAR(191) PRIMARY KEY, next_run_time FLOAT, job_state BLOB)"
            )
        )
        for job in job_runs.JOBS:
            connection.execute(
                sa.text(f"INSERT INTO {job_runs.JOBSTORE_TABLE} VALUES (:id, :t, :s)"),
                {"id": job, "t": when.timestamp(), "s": b""},
            )


def test_next_runs_are_shown_only_while_an_instance_holds_the_lease(engine: Engine) -> None:
    from newsletter import leases

    now = local(2026, 11, 10, 9)
    plan_next_runs(engine, now + timedelta(hours=1))
    stopped = job_runs.status(engine, now=now)
    assert stopped.active_instance is None
    assert [j.next_run_at for j in stopped.jobs] == [None] * len(job_runs.JOBS)

    assert leases.acquire(engine, holder="host:1:abc", ttl_seconds=30, now=now)
    running = job_runs.status(engine, now=now + timedelta(seconds=1))
    assert running.active_instance == "host:1:abc"
    assert [j.next_run_at for j in running.jobs] == [now + timedelta(hours=1)] * len(job_runs.JOBS)
    expired = job_runs.status(engine, now=now + timedelta(seconds=31))
    assert (expired.active_instance, expired.jobs[0].next_run_at) == (None, None)


def test_failed_jobs_are_those_whose_last_run_failed(engine: Engine) -> None:
    start = local(2026, 11, 10, 9)
    with (
        pytest.raises(RuntimeError),
        job_runs.recording(engine, job=job_runs.DISPATCH, instance="i", now=start),
    ):
        raise RuntimeError("boom")
    with job_runs.recording(engine, job=job_runs.HOUSEKEEPING, instance="i", now=start):
        pass
    assert [j.job for j in job_runs.status(engine, now=start).failed_jobs()] == ["dispatch"]
    with job_runs.recording(
        engine, job=job_runs.DISPATCH, instance="i", now=start + timedelta(minutes=1)
    ):
        pass
    assert job_runs.status(engine, now=start).failed_jobs() == []


# ---------------------------------------------------------------- outgoing webhooks (issue 16)


def test_webhook_delivery_records_a_run_only_when_something_was_due(
    sqlite_settings: Settings, sqlite_engine: Engine
) -> None:
    settings = sqlite_settings.model_copy(update={"webhook_allow_local": True})
    now = datetime.now(UTC)
    assert jobs.webhook_delivery(settings, now) is None  # nothing due: no run, no log line
    with webhook_receiver(200) as receiver, Session(sqlite_engine) as session:
        outgoing_webhooks.add_endpoint(
            session, settings=settings, url=receiver.url, events=[], actor="test"
        )
        make_subscriber(session, "ann@example.com")
        note = jobs.webhook_delivery(settings, datetime.now(UTC))
    assert note is not None and (note.outcome, note.detail) == (
        "ok",
        "delivered 1, to retry 0, failed 0",
    )
    assert len(receiver.received) == 1
    with Session(sqlite_engine) as session:
        kinds = session.exec(select(JobRun.job)).all()
    assert kinds == [job_runs.WEBHOOK_DELIVERY]


def test_the_bounces_job_is_idle_without_smtp_or_a_bounce_mailbox(cfg: Settings) -> None:
    note = jobs.bounces(cfg, local(2026, 12, 1, 9, 5))
    assert (note.outcome, jobs.bounces_wanted(cfg)) == ("idle", False)


def test_the_bounces_job_retries_deferrals_with_smtp(cfg: Settings, engine: Engine) -> None:
    smtp = cfg.model_copy(update={"provider": "smtp", "smtp_url": "smtp://127.0.0.1:9"})
    assert [j.job for j in job_runs.status(engine).jobs].count("bounces") == 0
    note = jobs.bounces(smtp, local(2026, 12, 1, 9, 5))
    assert jobs.bounces_wanted(smtp) and note.outcome == "ok"
    assert note.detail == "deferred: tried 0, sent 0, put off again 0"
    assert [j.job for j in job_runs.status(engine).jobs][-1] == "bounces"  # listed once run
