"""CSV imports started from the console, run in a thread so the page can show progress.

The upload is answered at once with a redirect to the job's page, which reloads itself
each second (``<meta http-equiv="refresh">``: no script needed) while rows are counted,
then shows the report with every bad row. Jobs live in this process's memory for an
hour after they finish: with several workers, a reload can land on a worker that does
not know the job, which then says so (a job shared through the database is issue 14's
follow-up). Only the user who started a job sees it.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from campaigns import readers
from campaigns.delivery.providers.factory import make_provider
from newsletter import db
from newsletter.errors import NewsletterError, NotFound
from newsletter.settings import Settings
from subscribers.csv_io import ImportReport

KEEP_SECONDS = 3600
log = logging.getLogger(__name__)


@dataclass
class ImportJob:
    id: str
    owner_id: int
    filename: str
    done: int = 0
    total: int = 0
    report: ImportReport | None = None
    error: str | None = None
    finished_at: float | None = None
    started_at: float = field(default_factory=time.monotonic)

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    @property
    def percent(self) -> int:
        return 100 if self.finished else int(100 * self.done / self.total) if self.total else 0


class ImportJobs:
    """The console's running and recent imports (one registry per app)."""

    def __init__(self) -> None:
        self._jobs: dict[str, ImportJob] = {}
        self._lock = threading.Lock()

    def start(
        self,
        *,
        engine: Engine,
        settings: Settings,
        data: bytes,
        filename: str,
        actor: str,
        owner_id: int,
        send_confirmations: bool,
    ) -> ImportJob:
        """Start importing ``data`` in a thread; the job to follow."""
        job = ImportJob(id=secrets.token_urlsafe(16), owner_id=owner_id, filename=filename)
        with self._lock:
            self._forget_old()
            self._jobs[job.id] = job
        args = (job, engine, settings, data, actor, send_confirmations)
        threading.Thread(target=self._run, args=args, daemon=True, name="console-import").start()
        return job

    @staticmethod
    def _run(
        job: ImportJob,
        engine: Engine,
        settings: Settings,
        data: bytes,
        actor: str,
        send_confirmations: bool,
    ) -> None:
        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total

        try:
            with ExitStack() as stack:
                session = stack.enter_context(db.session_scope(engine))
                mailer = (
                    stack.enter_context(make_provider(settings)) if send_confirmations else None
                )
                job.report = readers.import_rows(
                    session,
                    settings=settings,
                    mailer=mailer,
                    data=data,
                    where=job.filename,
                    actor=actor,
                    on_row=progress,
                )
        except NewsletterError as err:
            job.error = str(err)
        except Exception:  # a bug: logged with its traceback, told in one line
            log.exception("console import %s failed", job.filename)
            job.error = "the import failed unexpectedly; the server log has the details"
        finally:
            job.finished_at = time.monotonic()

    def get(self, job_id: str, *, owner_id: int) -> ImportJob:
        """The job, when this user started it; NotFound otherwise."""
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None or job.owner_id != owner_id:
            raise NotFound("no such import here (it may have finished more than an hour ago)")
        return job

    def _forget_old(self) -> None:
        now = time.monotonic()
        for key, job in list(self._jobs.items()):
            if job.finished_at is not None and now - job.finished_at > KEEP_SECONDS:
                del self._jobs[key]
