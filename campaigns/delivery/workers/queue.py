"""The adapter to procrastinate (>= 3.10): the only module of ours that imports it.

- :func:`defer_blocks` queues blocks of a campaign, one job each, with the block's name as
  procrastinate ``lock`` (two jobs of one block never run at once) and ``queueing_lock``
  (a block waits in the queue at most once; queueing it again is a no-op);
- :func:`run_worker` runs ``newsletter worker``: procrastinate's worker (heartbeats every
  ``worker_heartbeat_seconds``) and, beside it, a sweep that puts the jobs of workers silent
  for ``worker_stalled_seconds`` (SIGKILL, a lost machine) back in the queue, so the others
  finish them. Every worker sweeps; retrying a job twice is harmless (its lease and the
  ledger decide). SIGTERM/SIGINT stop the worker gracefully: its blocks end after their
  batch in flight (``should_stop``) and go back to the queue, and its heartbeat is kept
  until they have, so no sweep takes a block that is still running for a stalled one.

procrastinate's tables live in our schema, on the same ``search_path`` as the rest (its
connection is made from ``NEWSLETTER_DATABASE_URL``), put there by :func:`ensure_schema`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from procrastinate import App, JobContext, PsycopgConnector, RetryStrategy
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.schema import SchemaManager
from sqlalchemy.engine import Connection, make_url

from campaigns.delivery.workers.batch_send import TASK, Block, fail_campaign, send_block
from newsletter import db
from newsletter.errors import (
    ConfigError,
    ContentError,
    DatabaseError,
    NewsletterError,
    StateError,
)
from newsletter.settings import Settings

log = logging.getLogger(__name__)
QUEUE = "sends"
_SCHEMA_THERE = (
    "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = current_schema() "
    "AND tablename = 'procrastinate_jobs')"
)
# The database functions procrastinate 3.10 calls (its migrations up to 3.4 made them): a
# schema applied by an older version lacks some, and every job would then fail.
FUNCTIONS = (
    "procrastinate_defer_jobs_v1", "procrastinate_fetch_job_v2", "procrastinate_retry_job_v2",
    "procrastinate_finish_job_v1", "procrastinate_register_worker_v1",
    "procrastinate_update_heartbeat_v1", "procrastinate_unregister_worker_v1",
    "procrastinate_prune_stalled_workers_v1",
)  # fmt: skip
_MISSING = (
    "SELECT f FROM unnest(CAST(%(names)s AS text[])) AS f WHERE NOT EXISTS (SELECT 1 "
    "FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
    "WHERE p.proname = f AND n.nspname = current_schema())"
)
# A busy block (its lease held by a worker on another host) waits for that lease to
# expire: retried every 2 s for up to two minutes, far beyond ``lease_seconds``' default.
RETRY = RetryStrategy(max_attempts=60, wait=2, retry_exceptions={StateError, DatabaseError})


def conninfo(settings: Settings) -> str:
    """libpq's URI for our database: the same server, user and options (search_path)."""
    if settings.is_sqlite:
        raise ConfigError("NEWSLETTER_SENDER=queue and `newsletter worker` need PostgreSQL")
    url = make_url(settings.database_url).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def ensure_schema(settings: Settings) -> bool:
    """Apply procrastinate's schema (of the installed version) in the connection's own
    schema, once; True when it was applied now. Idempotent and safe to race: workers
    starting together take an advisory lock and look again under it."""
    conninfo(settings)  # ConfigError on SQLite
    engine = db.get_engine(settings.database_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("SELECT pg_advisory_xact_lock(hashtext('procrastinate'))")
        if connection.exec_driver_sql(_SCHEMA_THERE).scalar():
            _check_functions(connection)
            return False
        # Driver level: the schema's PL/pgSQL holds % and : that text() would read.
        connection.exec_driver_sql(SchemaManager.get_schema().replace("%", "%%"))
    log.info("procrastinate's schema applied")
    return True


def _check_functions(connection: Connection) -> None:
    """ConfigError (one line) when procrastinate's schema here is older than the code."""
    missing = [f for (f,) in connection.exec_driver_sql(_MISSING, {"names": list(FUNCTIONS)})]
    if missing:
        raise ConfigError(
            f"procrastinate's schema in this database is older than procrastinate "
            f"{_version()} (missing {', '.join(missing)}): apply its migrations "
            "(`procrastinate schema --migrations` lists them) before running workers"
        )


def _version() -> str:
    from importlib.metadata import version

    return version("procrastinate")


class OneLineErrors(logging.Filter):
    """Our expected errors (another worker holds the block, the database went away, an
    unfit setting) in procrastinate's job log as one line, not a traceback every retry."""

    def filter(self, record: logging.LogRecord) -> bool:
        err = record.exc_info[1] if record.exc_info else None
        if isinstance(err, NewsletterError):
            record.msg, record.args = f"{record.getMessage()}: {err}", ()
            record.exc_info, record.exc_text = None, None
        return True


class Stopping:
    """What one worker process knows of its own shutdown: the stop was asked (its running
    blocks end after their batch in flight) and the procrastinate worker ids of the jobs
    it runs (kept beating until they end; skipped by its own sweep)."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.worker_ids: set[int] = set()


def make_app(settings: Settings, stopping: Stopping | None = None) -> App:
    """A procrastinate app whose one task sends a block with these settings."""
    app = App(connector=PsycopgConnector(conninfo=conninfo(settings)))
    stopping = stopping or Stopping()

    @app.task(name=TASK, queue=QUEUE, retry=RETRY, pass_context=True)
    def send_block_task(context: JobContext, campaign_id: int, first_id: int, last_id: int) -> None:
        if context.job.worker_id is not None:
            stopping.worker_ids.add(context.job.worker_id)

        def should_stop() -> bool:
            return stopping.event.is_set() or context.should_abort()

        block = Block(campaign_id, first_id, last_id)
        try:
            report = send_block(settings, block, should_stop=should_stop)
        except (ConfigError, ContentError) as err:  # cannot send at all: say why, once
            fail_campaign(settings, campaign_id, reason=f"worker cannot send: {err}")
            raise
        if report is not None:
            log.info(
                "block %s-%s of campaign %s: sent %s, failed %s, skipped %s; campaign %s%s",
                first_id, last_id, campaign_id, report.sent, report.failed, report.skipped,
                report.status, f" ({report.stopped})" if report.stopped else "",
            )  # fmt: skip

    return app


def defer_blocks(settings: Settings, blocks: Iterable[Block]) -> int:
    """Queue one job per block (those already waiting are left as they are); how many."""
    blocks = list(blocks)
    if not blocks:
        return 0
    app = make_app(settings)
    queued = 0
    with app.open():
        for block in blocks:
            deferrer = app.tasks[TASK].configure(lock=block.name, queueing_lock=block.name)
            try:
                deferrer.defer(
                    campaign_id=block.campaign_id, first_id=block.first_id, last_id=block.last_id
                )
            except AlreadyEnqueued:
                continue
            queued += 1
    return queued


async def _sweep(app: App, settings: Settings, stopping: Stopping) -> None:
    """Put the jobs of silent workers back in the queue, every heartbeat, until this
    worker is asked to stop (then it only keeps its own heartbeat)."""
    while True:
        await asyncio.sleep(settings.worker_heartbeat_seconds)
        await _beat(app, stopping)
        if stopping.event.is_set():
            continue
        try:
            stalled = await app.job_manager.get_stalled_jobs(
                task_name=TASK, seconds_since_heartbeat=settings.worker_stalled_seconds
            )
        except Exception as err:  # a lost connection: the next sweep tries again
            log.warning("stalled-job sweep failed: %s", err)
            continue
        for job in stalled:
            if job.worker_id in stopping.worker_ids:
                continue  # ours, still running: never put back by ourselves
            log.warning("job %s (%s) of a silent worker goes back to the queue", job.id,
                        job.queueing_lock)  # fmt: skip
            try:
                await app.job_manager.retry_job(job)
            except Exception as err:  # one job's error does not end the sweep
                log.warning("job %s not put back: %s", job.id, err)


async def _beat(app: App, stopping: Stopping) -> None:
    """procrastinate stops its heartbeat first when shutting down; ours goes on while our
    blocks finish their batch in flight, so no other worker takes them for stalled."""
    for worker_id in list(stopping.worker_ids):
        try:
            await app.job_manager.update_heartbeat(worker_id)
        except Exception as err:
            log.warning("heartbeat of worker %s failed: %s", worker_id, err)


def run_worker(
    settings: Settings, *, concurrency: int = 1, name: str | None = None, wait: bool = True
) -> None:
    """Run a worker until SIGINT/SIGTERM (the blocks in hand are finished first); with
    ``wait=False``, until the queue is empty (tests, a one-off catch-up)."""

    # Each running block holds a session's connection and, while pacing, its pacer's.
    db.get_engine(settings.database_url, pool_size=2 * concurrency + 2)
    ensure_schema(settings)
    stopping = Stopping()
    procrastinate_log = logging.getLogger("procrastinate.worker")
    if not any(isinstance(f, OneLineErrors) for f in procrastinate_log.filters):
        procrastinate_log.addFilter(OneLineErrors())

    async def main() -> None:
        loop = asyncio.get_running_loop()
        # Sync tasks run on the default executor: sized so that N blocks run at once.
        loop.set_default_executor(ThreadPoolExecutor(concurrency, thread_name_prefix="block"))
        app = make_app(settings, stopping)
        async with app.open_async():
            sweep = asyncio.create_task(_sweep(app, settings, stopping))
            worker = asyncio.create_task(app.run_worker_async(
                    queues=[QUEUE],
                    concurrency=concurrency,
                    name=name,
                    update_heartbeat_interval=settings.worker_heartbeat_seconds,
                    # A stalled job put back is an UPDATE (no NOTIFY): poll for it.
                    fetch_job_polling_interval=min(5.0, settings.worker_heartbeat_seconds),
                    stalled_worker_timeout=settings.worker_stalled_seconds,
                    delete_jobs="successful",
                    wait=wait,
                    install_signal_handlers=False,
            ))  # fmt: skip
            if wait:
                for signum in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(signum, _stop, stopping, worker)
            try:
                await worker
            except asyncio.CancelledError:
                if not stopping.event.is_set():
                    raise
            finally:
                sweep.cancel()

    asyncio.run(main())


def _stop(stopping: Stopping, worker: asyncio.Task[None]) -> None:
    """SIGTERM/SIGINT: the blocks in hand stop after their batch in flight; procrastinate
    turns the cancellation into its graceful stop (no new job; waits for running ones)."""
    log.info("stopping: blocks in hand end after their batch in flight")
    stopping.event.set()
    worker.cancel()
