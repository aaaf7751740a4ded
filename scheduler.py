"""The door for time: the scheduler service (APScheduler 3 with its jobs in our database).

Run it with ``python -m scheduler`` (what ``newsletter scheduler run`` starts); ``--once``
runs what is due and exits (cron). Of several instances on one PostgreSQL, the leader
(:class:`newsletter.leases.Leader`, the holder of the ``scheduler`` lease) runs APScheduler
and the others stand by; on SQLite a second refuses. This module is APScheduler glue: the
triggers, the job functions and starting or stopping APScheduler when the leader says so.

This module keeps no state. Jobs are functions of the instance id only (the job store
holds no settings or secrets); a job reads the settings with ``load_settings()``, as a
CLI command does, and treats the lease as its licence, asking ``leases.leads`` between
batches. SIGTERM releases the lease, so the batch in flight finishes and is recorded, the
job stops and the process exits 0; the next start, or a standby, resumes the send. A run
missed while no instance was up runs once on return (coalesced) within
``misfire_grace_seconds``; a later one is logged and recorded as skipped.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_STOPPED, BaseScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from campaigns import jobs, weekly_plan
from newsletter import clock, db, job_runs, jsonlog, leases, metrics
from newsletter.errors import ConfigError, NewsletterError
from newsletter.settings import Settings, load_settings

log = logging.getLogger("newsletter.scheduler")
# Job references in the job store name this module, also when run as ``python -m scheduler``.
JOB_MODULE = "scheduler"
# How far back --once looks for a scheduled time it may have missed.
ONCE_LOOKBACK = timedelta(days=8)


# ---------------------------------------------------------------- structured logs


def configure_logging(level: int = logging.INFO) -> None:
    jsonlog.configure(
        ("newsletter", "campaigns", "subscribers"), level=level, quiet=("apscheduler",)
    )


def _event(msg: str, level: int = logging.INFO, **fields: Any) -> None:
    log.log(level, msg, extra={"fields": {"event": msg, **fields}})


# ---------------------------------------------------------------- triggers


def _cron(expression: str, settings: Settings, setting: str) -> CronTrigger:
    try:
        return CronTrigger.from_crontab(expression, timezone=weekly_plan.zone(settings))
    except ValueError as err:
        raise ConfigError(f"NEWSLETTER_{setting.upper()}: {expression!r}: {err}") from err


def assembly_trigger(settings: Settings) -> CronTrigger:
    return _cron(settings.assemble_cron, settings, "assemble_cron")


def housekeeping_trigger(settings: Settings) -> CronTrigger:
    return _cron(settings.housekeeping_cron, settings, "housekeeping_cron")


def last_fire_time(trigger: BaseTrigger, now: datetime, *, lookback: timedelta) -> datetime | None:
    """The latest time ``trigger`` fired at or before ``now``, looking back ``lookback``."""
    fire = trigger.get_next_fire_time(None, now - lookback)
    latest = None
    while fire is not None and fire <= now:
        latest = fire
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    return None if latest is None else latest.astimezone(UTC)


# ---------------------------------------------------------------- job functions


def run_job(
    job: str,
    settings: Settings,
    now: datetime,
    *,
    instance: str,
    should_stop: Callable[[], bool] | None = None,
) -> None:
    """Run one job; the weekly assembly learns which cron time (maybe missed) it is for."""
    fired = None
    if job == job_runs.WEEKLY_ASSEMBLY:
        grace = timedelta(seconds=settings.misfire_grace_seconds)
        fired = last_fire_time(assembly_trigger(settings), now, lookback=grace)
    jobs.run(job, settings, now, instance=instance, fired_at=fired, should_stop=should_stop)


def _scheduled(job: str, instance: str) -> None:
    """What APScheduler runs: settings from the environment, the lease as the licence."""
    settings = load_settings()
    engine = db.get_engine(settings.database_url)
    if not leases.leads(engine, holder=instance):
        _event("job skipped: not the active instance", logging.WARNING, job=job, instance=instance)
        return
    run_job(
        job,
        settings,
        clock.utcnow(),
        instance=instance,
        should_stop=lambda: not leases.leads(engine, holder=instance),
    )


def weekly_assembly_job(instance: str) -> None:
    _scheduled(job_runs.WEEKLY_ASSEMBLY, instance)


def dispatch_job(instance: str) -> None:
    _scheduled(job_runs.DISPATCH, instance)


def housekeeping_job(instance: str) -> None:
    _scheduled(job_runs.HOUSEKEEPING, instance)


# Issue 16: subject-test winners and resends, checked on the dispatch interval.
def subject_tests_job(instance: str) -> None:
    _scheduled(job_runs.SUBJECT_TESTS, instance)


def resends_job(instance: str) -> None:
    _scheduled(job_runs.RESENDS, instance)


def release_waves_job(instance: str) -> None:
    """Issue 16: local-time waves, released at the dispatch's interval."""
    _scheduled(job_runs.RELEASE_WAVES, instance)


def webhook_delivery_job(instance: str) -> None:
    """Outgoing webhooks (issue 16 point 4): deliver what is due, every few seconds."""
    settings = load_settings()
    engine = db.get_engine(settings.database_url)
    if not leases.leads(engine, holder=instance):
        return
    try:
        jobs.webhook_delivery(settings, clock.utcnow(), instance=instance)
    except NewsletterError as err:
        _event("job failed", logging.ERROR, job=job_runs.WEBHOOK_DELIVERY, error=str(err))
        metrics.job_run(job_runs.WEBHOOK_DELIVERY, job_runs.FAILED)


def bounces_job(instance: str) -> None:
    _scheduled(job_runs.BOUNCES, instance)


def add_jobs(scheduler: BaseScheduler, settings: Settings, *, instance: str) -> None:
    """Put the jobs in the store (fixed ids), run by ``instance`` from now on; the bounces
    job only with SMTP or a bounce mailbox (issue 15)."""
    every = settings.dispatch_interval_seconds
    specs: list[tuple[str, Callable[[str], None], BaseTrigger]] = [
        (job_runs.WEEKLY_ASSEMBLY, weekly_assembly_job, assembly_trigger(settings)),
        (job_runs.DISPATCH, dispatch_job, IntervalTrigger(seconds=every)),
        (job_runs.HOUSEKEEPING, housekeeping_job, housekeeping_trigger(settings)),
        (job_runs.SUBJECT_TESTS, subject_tests_job, IntervalTrigger(seconds=every)),
        (job_runs.RESENDS, resends_job, IntervalTrigger(seconds=every)),
        # Outgoing webhooks (issue 16 point 4).
        (
            job_runs.WEBHOOK_DELIVERY,
            webhook_delivery_job,
            IntervalTrigger(seconds=settings.webhook_deliver_interval_seconds),
        ),
    ]
    # Issue 16: the local-time waves.
    specs.append((job_runs.RELEASE_WAVES, release_waves_job, IntervalTrigger(seconds=every)))
    if jobs.bounces_wanted(settings):
        bounce_every = IntervalTrigger(seconds=settings.bounce_fetch_interval_seconds)
        specs.append((job_runs.BOUNCES, bounces_job, bounce_every))
    for job_id, func, trigger in specs:
        kwargs = {"instance": instance}
        existing = scheduler.get_job(job_id)
        if existing is not None and repr(existing.trigger) == repr(trigger):
            # Keep its next run time, so a run missed while we were down still fires
            # once (coalesced) if within the grace time.
            scheduler.modify_job(job_id, kwargs=kwargs)
        else:
            scheduler.add_job(
                f"{JOB_MODULE}:{func.__name__}",
                trigger,
                id=job_id,
                name=job_id,
                kwargs=kwargs,
                replace_existing=True,
            )


class _Scheduler(BackgroundScheduler):
    """APScheduler 3.11's loop runs one more round once shutdown() wakes it: a job due by
    then fails to submit, yet its next run time moves on, and that run is lost. Skip it."""

    def _process_jobs(self) -> float | None:
        with self._jobstores_lock:
            return None if self.state == STATE_STOPPED else super()._process_jobs()


class _JobStore(SQLAlchemyJobStore):
    def shutdown(self) -> None:
        """Keep the engine: it is db.get_engine's, shared by the whole process."""


def new_scheduler(settings: Settings, engine: Engine) -> BackgroundScheduler:
    """APScheduler on our job store: coalesce missed runs, within the grace time."""
    return _Scheduler(
        jobstores={"default": _JobStore(engine=engine, tablename=job_runs.JOBSTORE_TABLE)},
        timezone=weekly_plan.zone(settings),
        job_defaults={
            "coalesce": True,
            "misfire_grace_time": settings.misfire_grace_seconds,
            "max_instances": 1,
        },
    )


# ---------------------------------------------------------------- the service


class Service:
    """One scheduler instance: APScheduler runs while its :class:`leases.Leader` leads."""

    def __init__(self, settings: Settings, *, instance: str | None = None) -> None:
        self.settings = settings
        self.engine = db.get_engine(settings.database_url)
        self.leader = leases.Leader(
            self.engine, ttl_seconds=settings.lease_seconds, holder=instance
        )
        self.instance = self.leader.holder
        self.stop_event = threading.Event()  # the whole service stops (SIGTERM)
        self.scheduler: BackgroundScheduler | None = None

    # -- APScheduler, only while we lead
    def _activate(self) -> None:
        scheduler = new_scheduler(self.settings, self.engine)
        scheduler.add_listener(self._missed, EVENT_JOB_MISSED)
        scheduler.start(paused=True)
        add_jobs(scheduler, self.settings, instance=self.instance)
        scheduler.resume()
        self.scheduler = scheduler
        metrics.scheduler_leads(True)  # issue 17 point 2
        _event("active: running the jobs", instance=self.instance)

    def _missed(self, event: JobExecutionEvent) -> None:
        with contextlib.suppress(SQLAlchemyError):
            jobs.missed(
                self.settings, event.scheduled_run_time, job=event.job_id, instance=self.instance
            )

    def _deactivate(self, why: str) -> None:
        """The leader has released the lease, which tells the job in flight to stop."""
        if self.scheduler is None:
            return
        _event("stopping the jobs", instance=self.instance, reason=why)
        self.scheduler.shutdown(wait=True)  # the batch in flight finishes and is recorded
        self.scheduler = None
        metrics.scheduler_leads(False)  # issue 17 point 2

    # -- the two ways to run
    def run_forever(self) -> int:
        try:
            self.leader.run(self.stop_event, on_elected=self._activate, on_deposed=self._deactivate)
        finally:
            _event("stopped", instance=self.instance)
        return 0

    def _still_active(self) -> bool:
        """--once: stop on SIGTERM; otherwise renew the lease between batches."""
        return not self.stop_event.is_set() and self.leader.renew()

    def _due(self, job: str, trigger: BaseTrigger, now: datetime) -> bool:
        """--once, like APScheduler: run a fire time not run yet if within the grace time;
        a later one is recorded as missed (unless the job never ran: a new install)."""
        fired = last_fire_time(trigger, now, lookback=ONCE_LOOKBACK)
        last = job_runs.last_started(self.engine, job=job)
        if fired is None or (last is not None and last >= fired):
            return False
        if now - fired <= timedelta(seconds=self.settings.misfire_grace_seconds):
            return True
        if last is not None:
            jobs.missed(self.settings, fired, job=job, instance=self.instance, now=now)
        return False

    def run_once(self, *, now: datetime | None = None) -> int:
        """Run what is due ``now`` (cron-style use), if no other instance is active."""
        if not self.leader.take_or_refuse():
            _event("another instance is active; nothing to do", active=self.leader.active_holder())
            return 0
        try:
            now = now or clock.utcnow()
            settings, who = self.settings, self.instance
            if self._due(job_runs.WEEKLY_ASSEMBLY, assembly_trigger(settings), now):
                run_job(job_runs.WEEKLY_ASSEMBLY, settings, now, instance=who)
            # Issue 16: waves due now are queued, winners chosen and resends made before
            # the dispatch sends them.
            run_job(job_runs.RELEASE_WAVES, settings, now, instance=who)
            run_job(job_runs.SUBJECT_TESTS, settings, now, instance=who)
            run_job(job_runs.RESENDS, settings, now, instance=who)
            run_job(
                job_runs.DISPATCH,
                settings,
                now,
                instance=who,
                should_stop=lambda: not self._still_active(),
            )
            if self._due(job_runs.HOUSEKEEPING, housekeeping_trigger(settings), now):
                run_job(job_runs.HOUSEKEEPING, settings, now, instance=who)
            jobs.webhook_delivery(settings, now, instance=who)  # issue 16 point 4
            if jobs.bounces_wanted(settings):
                run_job(job_runs.BOUNCES, settings, now, instance=who)
        finally:
            self.leader.release()
        return 0


def run(settings: Settings, *, once: bool = False, instance: str | None = None) -> int:
    """Run the service in the foreground until SIGTERM/SIGINT (or once); the exit code.

    ``settings`` must be ``load_settings()``'s: the scheduled jobs read them again there.
    """
    configure_logging()
    engine = db.get_engine(settings.database_url)
    if settings.is_sqlite:
        db.upgrade(engine)
    else:
        db.check_connection(engine)
    weekly_plan.zone(settings)  # fail at start, not at the first job, on a bad time zone
    assembly_trigger(settings)
    housekeeping_trigger(settings)
    service = Service(settings, instance=instance)
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, lambda *_: service.stop_event.set())
    _event(
        "starting",
        instance=service.instance,
        once=once,
        timezone=settings.timezone,
        database="sqlite" if settings.is_sqlite else "postgresql",
    )
    try:
        return service.run_once() if once else service.run_forever()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _prog() -> str:
    """How this process was started, for the usage line: ``python -m scheduler`` (what
    ``newsletter scheduler run`` starts) or ``python scheduler.py``."""
    argv = sys.orig_argv
    as_module = any(a == "-m" and b == JOB_MODULE for a, b in pairwise(argv))
    return f"python -m {JOB_MODULE}" if as_module else f"python {JOB_MODULE}.py"


def main(argv: list[str] | None = None) -> int:
    """``python -m scheduler [--once]``: 0 after a clean stop, 1 on an expected error
    (its message on stderr), 2 on bad arguments."""
    args = sys.argv[1:] if argv is None else argv
    if any(a not in ("--once",) for a in args):
        sys.stderr.write(f"usage: {_prog()} [--once]\n")
        return 2
    try:
        return run(load_settings(), once="--once" in args)
    except NewsletterError as err:
        sys.stderr.write(f"error: {err}\n")
        return 1


if __name__ == "__main__":
    # Run inside the importable module rather than __main__: one copy of its classes and
    # loggers, the same one APScheduler imports for the "scheduler:..." job references.
    import scheduler as _scheduler

    sys.exit(_scheduler.main())
