"""A row per scheduler job run: the ops log, and what health checks report.

Each run is written in its own short transaction at start and at finish, so a run that
dies half-way still shows as ``running`` with the instance that ran it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.engine import Engine

from newsletter.clock import as_utc, utcnow
from newsletter.errors import NewsletterError
from newsletter.leases import SCHEDULER_LEASE, current
from newsletter.models import JobRun

# Job names, as recorded in job_run.job and used as APScheduler job ids.
WEEKLY_ASSEMBLY = "weekly_assembly"
DISPATCH = "dispatch"
HOUSEKEEPING = "housekeeping"
# Issue 16: choosing subject-test winners and triggering resends, on the dispatch interval.
SUBJECT_TESTS = "subject_tests"
RESENDS = "resends"
# Issue 16: releases the local-time waves whose instant has come (campaigns.delivery.waves).
RELEASE_WAVES = "release_waves"

JOBS = (WEEKLY_ASSEMBLY, DISPATCH, HOUSEKEEPING, RELEASE_WAVES, SUBJECT_TESTS, RESENDS)
# Outgoing webhooks (issue 16 point 4): every few seconds, recorded only when it had work.
WEBHOOK_DELIVERY = "webhook_delivery"
# Issue 15: the bounce mailbox and due deferrals; scheduled only with SMTP or a mailbox,
# so the status lists it once it has run or is planned.
BOUNCES = "bounces"
# APScheduler's SQLAlchemyJobStore table (read here for next run times, never written).
JOBSTORE_TABLE = "apscheduler_jobs"

OK, IDLE, SKIPPED, FAILED, RUNNING = "ok", "idle", "skipped", "failed", "running"
# A dispatch that found nothing to do is only worth keeping for a day.
IDLE_RETENTION = timedelta(days=1)

_table = JobRun.__table__  # type: ignore[attr-defined]


@dataclass
class RunNote:
    """What a job body reports about its run."""

    outcome: str = OK
    detail: str = ""


@contextmanager
def recording(
    engine: Engine, *, job: str, instance: str, now: datetime | None = None
) -> Iterator[RunNote]:
    """Record a run: ``running`` now, then the note's outcome, or ``failed`` on error."""
    started = as_utc(now or utcnow())
    with engine.begin() as connection:
        run_id = connection.execute(
            _table.insert().values(
                job=job, instance=instance[:200], started_at=started, outcome=RUNNING, detail=""
            )
        ).inserted_primary_key[0]
    note = RunNote()
    try:
        yield note
    except BaseException as err:
        expected = isinstance(err, NewsletterError)
        note = RunNote(FAILED, str(err) if expected else f"{type(err).__name__}: {err}")
        raise
    finally:
        with engine.begin() as connection:
            connection.execute(
                _table.update()
                .where(_table.c.id == run_id)
                .values(finished_at=utcnow(), outcome=note.outcome, detail=note.detail[:5000])
            )


def last_started(engine: Engine, *, job: str) -> datetime | None:
    """When ``job`` last started (whatever its outcome); None if it never ran."""
    with engine.connect() as connection:
        started = connection.execute(
            sa.select(sa.func.max(_table.c.started_at)).where(_table.c.job == job)
        ).scalar()
    return started


def prune(engine: Engine, *, now: datetime, retention_days: int) -> int:
    """Delete old runs (and idle dispatches after a day); returns how many went."""
    with engine.begin() as connection:
        old = connection.execute(
            _table.delete().where(_table.c.started_at < now - timedelta(days=retention_days))
        ).rowcount
        idle = connection.execute(
            _table.delete().where(
                _table.c.outcome == IDLE, _table.c.started_at < now - IDLE_RETENTION
            )
        ).rowcount
    return int(old) + int(idle)


class JobStatus(BaseModel):
    job: str
    last_started_at: datetime | None
    last_finished_at: datetime | None
    last_outcome: str | None
    last_detail: str | None
    last_instance: str | None
    next_run_at: datetime | None


class SchedulerStatus(BaseModel):
    database_ok: bool
    active_instance: str | None
    lease_expires_at: datetime | None
    jobs: list[JobStatus]

    def failed_jobs(self) -> list[JobStatus]:
        """The jobs whose last run failed: the scheduler is degraded while there are any."""
        return [job for job in self.jobs if job.last_outcome == FAILED]


def next_runs(engine: Engine) -> dict[str, datetime | None]:
    """Next run time per job from APScheduler's job store; empty before its first start."""
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table(JOBSTORE_TABLE):
            return {}
        rows = connection.execute(sa.text(f"SELECT id, next_run_time FROM {JOBSTORE_TABLE}")).all()
    return {
        row.id: None
        if row.next_run_time is None
        else datetime.fromtimestamp(float(row.next_run_time), UTC)
        for row in rows
    }


def status(engine: Engine, *, now: datetime | None = None) -> SchedulerStatus:
    """Last and next run per job and the active instance, for /healthz and the CLI.

    Next runs are only known while an instance holds the scheduler's lease: APScheduler's
    job store keeps the times the last instance planned after it stopped, and nothing
    will run them, so without a live lease every ``next_run_at`` is None.
    """
    now = as_utc(now or utcnow())
    lease = current(engine, name=SCHEDULER_LEASE)
    live = lease is not None and lease.live(now)
    upcoming = next_runs(engine) if live else {}
    jobs = []
    with engine.connect() as connection:
        for job in (*JOBS, BOUNCES):
            last = connection.execute(
                sa.select(_table)
                .where(_table.c.job == job)
                .order_by(_table.c.started_at.desc(), _table.c.id.desc())
                .limit(1)
            ).first()
            if job == BOUNCES and last is None and job not in upcoming:
                continue  # not scheduled here (no SMTP, no bounce mailbox)
            jobs.append(
                JobStatus(
                    job=job,
                    last_started_at=last.started_at if last else None,
                    last_finished_at=last.finished_at if last else None,
                    last_outcome=last.outcome if last else None,
                    last_detail=last.detail if last else None,
                    last_instance=last.instance if last else None,
                    next_run_at=upcoming.get(job),
                )
            )
    return SchedulerStatus(
        database_ok=True,
        active_instance=lease.holder if live and lease else None,
        lease_expires_at=lease.expires_at if live and lease else None,
        jobs=jobs,
    )
