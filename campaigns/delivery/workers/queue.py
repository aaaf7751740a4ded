"""The adapter to procrastinate (>= 3): the only module of ours that imports it.

- :func:`defer_blocks` queues blocks of a campaign, one job each, with the block's name as
  procrastinate ``lock`` (two jobs of one block never run at once) and ``queueing_lock``
  (a block waits in the queue at most once; queueing it again is a no-op);
- :func:`run_worker` runs ``newsletter worker``: procrastinate's worker (heartbeats every
  ``worker_heartbeat_seconds``) and, beside it, a sweep that puts the jobs of workers silent
  for ``worker_stalled_seconds`` (SIGKILL, a lost machine) back in the queue, so the others
  finish them. Every worker sweeps; retrying a job twice is harmless (its lease and the
  ledger decide).

procrastinate's tables live in our schema, on the same ``search_path`` as the rest (its
connection is made from ``NEWSLETTER_DATABASE_URL``), put there by :func:`ensure_schema`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from procrastinate import App, PsycopgConnector, RetryStrategy
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.schema import SchemaManager
from sqlalchemy.engine import make_url

from campaigns.delivery.workers.batch_send import TASK, Block, send_block
from newsletter import db
from newsletter.errors import ConfigError, DatabaseError, StateError
from newsletter.settings import Settings

log = logging.getLogger(__name__)
QUEUE = "sends"
_SCHEMA_THERE = (
    "SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = current_schema() "
    "AND tablename = 'procrastinate_jobs')"
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
            return False
        # Driver level: the schema's PL/pgSQL holds % and : that text() would read.
        connection.exec_driver_sql(SchemaManager.get_schema().replace("%", "%%"))
    log.info("procrastinate's schema applied")
    return True


def make_app(settings: Settings) -> App:
    """A procrastinate app whose one task sends a block with these settings."""
    app = App(connector=PsycopgConnector(conninfo=conninfo(settings)))

    @app.task(name=TASK, queue=QUEUE, retry=RETRY)
    def send_block_task(campaign_id: int, first_id: int, last_id: int) -> None:
        report = send_block(settings, Block(campaign_id, first_id, last_id))
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


async def _sweep(app: App, settings: Settings) -> None:
    """Put the jobs of silent workers back in the queue, every heartbeat."""
    while True:
        await asyncio.sleep(settings.worker_heartbeat_seconds)
        try:
            stalled = await app.job_manager.get_stalled_jobs(
                task_name=TASK, seconds_since_heartbeat=settings.worker_stalled_seconds
            )
            for job in stalled:
                log.warning("job %s (%s) of a silent worker goes back to the queue", job.id,
                            job.queueing_lock)  # fmt: skip
                await app.job_manager.retry_job(job)
        except Exception as err:  # a lost connection: the next sweep tries again
            log.warning("stalled-job sweep failed: %s", err)


def run_worker(
    settings: Settings, *, concurrency: int = 1, name: str | None = None, wait: bool = True
) -> None:
    """Run a worker until SIGINT/SIGTERM (the blocks in hand are finished first); with
    ``wait=False``, until the queue is empty (tests, a one-off catch-up)."""

    ensure_schema(settings)

    async def main() -> None:
        app = make_app(settings)
        async with app.open_async():
            sweep = asyncio.create_task(_sweep(app, settings))
            try:
                await app.run_worker_async(
                    queues=[QUEUE],
                    concurrency=concurrency,
                    name=name,
                    update_heartbeat_interval=settings.worker_heartbeat_seconds,
                    # A stalled job put back is an UPDATE (no NOTIFY): poll for it.
                    fetch_job_polling_interval=min(5.0, settings.worker_heartbeat_seconds),
                    stalled_worker_timeout=settings.worker_stalled_seconds,
                    delete_jobs="successful",
                    wait=wait,
                    install_signal_handlers=wait,
                )
            finally:
                sweep.cancel()

    asyncio.run(main())
