"""The door for time: the scheduler service (APScheduler 3 with its jobs in our database).

Run it with ``newsletter scheduler run`` or ``python scheduler.py``. Several instances may
share one PostgreSQL database: the holder of the ``scheduler`` lease (newsletter.leases)
runs APScheduler, the others stand by and take over when the lease expires. On SQLite a
second live instance refuses to start. ``--once`` runs what is due and exits (cron jobs).

Jobs are module-level functions that take the instance id only, so the job store holds
no settings or secrets; they find their running :class:`Service` in ``_services``, the
only module-level state of this door. SIGTERM lets the batch in flight finish, records
it, releases the lease and exits 0; the next start resumes the send.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import SQLAlchemyError

from campaigns import jobs, timeplan
from newsletter import db, job_runs, leases
from newsletter.errors import ConfigError, NewsletterError, SchedulerError
from newsletter.settings import Settings, load_settings

log = logging.getLogger("newsletter.scheduler")

# instance id -> running service; APScheduler calls the job functions below by name.
_services: dict[str, Service] = {}


# ---------------------------------------------------------------- structured logs


class JsonLines(logging.Formatter):
    """One JSON object per line: easy to grep, and journald/Loki parse it as is."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines())
    for name in ("newsletter", "campaigns", "apscheduler"):
        logger = logging.getLogger(name)
        if not any(isinstance(h.formatter, JsonLines) for h in logger.handlers):
            logger.addHandler(handler)
        logger.setLevel(level if name != "apscheduler" else logging.WARNING)
        logger.propagate = False


def _event(msg: str, level: int = logging.INFO, **fields: Any) -> None:
    log.log(level, msg, extra={"fields": {"event": msg, **fields}})


# ---------------------------------------------------------------- triggers


def _cron(expression: str, settings: Settings, setting: str) -> CronTrigger:
    try:
        return CronTrigger.from_crontab(expression, timezone=timeplan.zone(settings))
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


def _service(instance: str) -> Service | None:
    service = _services.get(instance)
    if service is None:
        _event("job for an instance that is not running here", logging.WARNING, instance=instance)
    return service


def weekly_assembly_job(instance: str) -> None:
    if (service := _service(instance)) is not None:
        service.run_weekly_assembly(db.utcnow())


def dispatch_job(instance: str) -> None:
    if (service := _service(instance)) is not None:
        service.run_dispatch(db.utcnow())


def housekeeping_job(instance: str) -> None:
    if (service := _service(instance)) is not None:
        service.run_housekeeping(db.utcnow())


# ---------------------------------------------------------------- the service


class Service:
    """One scheduler instance: keeps (or waits for) the lease and runs APScheduler."""

    def __init__(self, settings: Settings, *, instance: str | None = None) -> None:
        self.settings = settings
        self.instance = instance or leases.instance_id()
        self.engine = db.get_engine(settings.database_url)
        self.stop_event = threading.Event()  # the whole service stops (SIGTERM)
        self.halt_jobs = threading.Event()  # jobs in flight stop between batches
        self.scheduler: BackgroundScheduler | None = None
        self.grace = timedelta(seconds=settings.misfire_grace_seconds)

    # -- jobs, also called directly by --once
    def should_stop(self) -> bool:
        return self.stop_event.is_set() or self.halt_jobs.is_set()

    def _logged(self, job: str, body: Callable[[], job_runs.RunNote]) -> None:
        started = time.monotonic()
        _event("job started", job=job, instance=self.instance)
        try:
            note = body()
        except Exception as err:
            _event("job failed", logging.ERROR, job=job, instance=self.instance, error=str(err))
            if not isinstance(err, NewsletterError):
                raise
            return
        _event(
            "job finished",
            job=job,
            instance=self.instance,
            outcome=note.outcome,
            detail=note.detail,
            seconds=round(time.monotonic() - started, 3),
        )

    def run_weekly_assembly(self, now: datetime) -> None:
        fired = last_fire_time(assembly_trigger(self.settings), now, lookback=self.grace)
        self._logged(
            job_runs.WEEKLY_ASSEMBLY,
            lambda: jobs.weekly_assembly(
                self.settings, now, fired_at=fired or now, instance=self.instance
            ),
        )

    def run_dispatch(self, now: datetime) -> None:
        self._logged(
            job_runs.DISPATCH,
            lambda: jobs.dispatch(
                self.settings, now, instance=self.instance, should_stop=self.should_stop
            ),
        )

    def run_housekeeping(self, now: datetime) -> None:
        self._logged(
            job_runs.HOUSEKEEPING,
            lambda: jobs.housekeeping(self.settings, now, instance=self.instance),
        )

    # -- the lease
    def _take_lease(self) -> bool:
        ttl = self.settings.lease_seconds
        if leases.acquire(self.engine, holder=self.instance, ttl_seconds=ttl):
            return True
        held = leases.current(self.engine)
        if held is not None and _dead_on_this_host(held.holder):
            _event("taking over from a dead instance", holder=held.holder)
            return leases.take_over(
                self.engine, holder=self.instance, from_holder=held.holder, ttl_seconds=ttl
            )
        return False

    def _refuse_second_sqlite(self) -> None:
        held = leases.current(self.engine)
        who = held.holder if held else "another instance"
        until = held.expires_at.isoformat() if held else "soon"
        raise SchedulerError(
            f"another scheduler instance ({who}) is active on this SQLite database "
            f"(lease until {until}); SQLite allows one instance: stop it first, or use "
            "PostgreSQL to run standby instances"
        )

    # -- APScheduler, only while we hold the lease
    def _activate(self) -> None:
        store = SQLAlchemyJobStore(engine=self.engine, tablename=job_runs.JOBSTORE_TABLE)
        scheduler = BackgroundScheduler(
            jobstores={"default": store},
            timezone=timeplan.zone(self.settings),
            job_defaults={
                "coalesce": True,
                "misfire_grace_time": self.settings.misfire_grace_seconds,
                "max_instances": 1,
            },
        )
        scheduler.start(paused=True)
        specs: list[tuple[str, Callable[[str], None], BaseTrigger]] = [
            (job_runs.WEEKLY_ASSEMBLY, weekly_assembly_job, assembly_trigger(self.settings)),
            (
                job_runs.DISPATCH,
                dispatch_job,
                IntervalTrigger(seconds=self.settings.dispatch_interval_seconds),
            ),
            (job_runs.HOUSEKEEPING, housekeeping_job, housekeeping_trigger(self.settings)),
        ]
        for job_id, func, trigger in specs:
            kwargs = {"instance": self.instance}
            existing = scheduler.get_job(job_id)
            if existing is not None and repr(existing.trigger) == repr(trigger):
                # Keep its next run time, so a run missed while we were down still fires
                # once (coalesced) if within the grace time.
                scheduler.modify_job(job_id, kwargs=kwargs)
            else:
                scheduler.add_job(
                    f"{__name__}:{func.__name__}",
                    trigger,
                    id=job_id,
                    name=job_id,
                    kwargs=kwargs,
                    replace_existing=True,
                )
        self.halt_jobs.clear()
        scheduler.resume()
        self.scheduler = scheduler
        _event("active: running the jobs", instance=self.instance)

    def _deactivate(self, why: str) -> None:
        if self.scheduler is None:
            return
        _event("stopping the jobs", instance=self.instance, reason=why)
        self.halt_jobs.set()
        self.scheduler.shutdown(wait=True)  # the batch in flight finishes and is recorded
        self.scheduler = None

    # -- the two ways to run
    def run_forever(self) -> int:
        renew_every = max(1.0, self.settings.lease_seconds / 3)
        last_held = 0.0
        first = True
        waiting_logged = False
        try:
            while not self.stop_event.is_set():
                try:
                    held = self._take_lease()
                except SQLAlchemyError as err:
                    _event("database unreachable", logging.ERROR, error=str(err).splitlines()[0])
                    held = None
                if held:
                    last_held = time.monotonic()
                    waiting_logged = False
                    if self.scheduler is None:
                        self._activate()
                elif held is False:
                    if self.settings.is_sqlite and first:
                        self._refuse_second_sqlite()
                    self._deactivate("lost the lease to another instance")
                    if not waiting_logged:
                        lease = leases.current(self.engine)
                        _event(
                            "standby: another instance is active",
                            instance=self.instance,
                            active=lease.holder if lease else None,
                        )
                        waiting_logged = True
                elif time.monotonic() - last_held > self.settings.lease_seconds * 0.8:
                    self._deactivate("could not renew the lease in time")
                first = False
                self.stop_event.wait(renew_every)
        finally:
            self._deactivate("shutting down")
            with contextlib.suppress(SQLAlchemyError):
                leases.release(self.engine, holder=self.instance)
            _event("stopped", instance=self.instance)
        return 0

    def run_once(self) -> int:
        """Run what is due now (cron-style use), if no other instance is active."""
        if not self._take_lease():
            if self.settings.is_sqlite:
                self._refuse_second_sqlite()
            lease = leases.current(self.engine)
            _event(
                "another instance is active; nothing to do", active=lease.holder if lease else None
            )
            return 0
        try:
            now = db.utcnow()
            fired = last_fire_time(assembly_trigger(self.settings), now, lookback=self.grace)
            if fired is not None:
                self.run_weekly_assembly(now)
            self.run_dispatch(now)
            kept = last_fire_time(housekeeping_trigger(self.settings), now, lookback=self.grace)
            if kept is not None and not _ran_since(self.engine, job_runs.HOUSEKEEPING, kept):
                self.run_housekeeping(now)
        finally:
            leases.release(self.engine, holder=self.instance)
        return 0


def _ran_since(engine: Any, job: str, since: datetime) -> bool:
    report = job_runs.status(engine)
    last = next((j for j in report.jobs if j.job == job), None)
    return bool(last and last.last_started_at and last.last_started_at >= since)


def _dead_on_this_host(holder: str) -> bool:
    """True when ``holder`` (host:pid:x) names a process of this host that has gone."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def run(settings: Settings, *, once: bool = False, instance: str | None = None) -> int:
    """Run the service in the foreground until SIGTERM/SIGINT (or once); the exit code."""
    configure_logging()
    engine = db.get_engine(settings.database_url)
    if settings.is_sqlite:
        db.upgrade(engine)
    else:
        db.check_connection(engine)
    timeplan.zone(settings)  # fail at start, not at the first job, on a bad time zone
    assembly_trigger(settings)
    housekeeping_trigger(settings)
    service = Service(settings, instance=instance)
    _services[service.instance] = service
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
        _services.pop(service.instance, None)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if any(a not in ("--once",) for a in args):
        sys.stderr.write("usage: python scheduler.py [--once]\n")
        return 2
    try:
        return run(load_settings(), once="--once" in args)
    except NewsletterError as err:
        sys.stderr.write(f"error: {err}\n")
        return 1


if __name__ == "__main__":
    # Run inside the importable module, so APScheduler's "scheduler:..." job references
    # find the same _services as this process.
    import scheduler as _scheduler

    sys.exit(_scheduler.main())
