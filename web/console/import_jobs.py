"""Imports started from the console, run in a thread so the page can show progress.

One mechanism for every console import (subscribers' CSV, snippets' feed and Markdown
files): the upload is answered at once with a redirect to the job's page, which reloads
itself each second (``<meta http-equiv="refresh">``: no script needed) while the room
reports how far it got, then shows the report with every bad row or entry. What to run
is the caller's ``work``: it gets the job to report progress on and returns the report.

Jobs live in this process's memory for an hour after they finish: with several workers,
a reload can land on a worker that does not know the job, which then says so (a job
shared through the database is issue 14's follow-up). Only the user who started a job
sees it.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from newsletter.errors import NewsletterError, NotFound
from web.errors import without_settings

KEEP_SECONDS = 3600
log = logging.getLogger(__name__)


@dataclass
class ImportJob:
    """How far one import got: ``done`` rows or entries read of ``total`` (0: not known
    yet, as for a feed), of which ``kept`` were imported and ``rejected`` were bad."""

    id: str
    owner_id: int
    filename: str
    done: int = 0
    total: int = 0
    kept: int = 0
    rejected: int = 0
    report: Any = None
    error: str | None = None
    finished_at: float | None = None
    started_at: float = field(default_factory=time.monotonic)

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    @property
    def percent(self) -> int:
        return 100 if self.finished else int(100 * self.done / self.total) if self.total else 0

    def progress(self, done: int, total: int) -> None:
        """The rows read so far and in all (a CSV import's ``on_row``)."""
        self.done, self.total = done, total

    def counted(self, *, read: int, kept: int, rejected: int) -> None:
        """Entries read so far, and how many of them were imported and rejected."""
        self.done, self.kept, self.rejected = read, kept, rejected


Work = Callable[[ImportJob], Any]


class ImportJobs:
    """The console's running and recent imports (one registry per app)."""

    def __init__(self) -> None:
        self._jobs: dict[str, ImportJob] = {}
        self._lock = threading.Lock()

    def start(self, *, owner_id: int, filename: str, work: Work, total: int = 0) -> ImportJob:
        """Run ``work(job)`` in a thread; the job to follow (its ``report`` is what ``work``
        returns; a NewsletterError it raises becomes ``error``, one line)."""
        job = ImportJob(
            id=secrets.token_urlsafe(16), owner_id=owner_id, filename=filename, total=total
        )
        with self._lock:
            self._forget_old()
            self._jobs[job.id] = job
        threading.Thread(
            target=self._run, args=(job, work), daemon=True, name="console-import"
        ).start()
        return job

    @staticmethod
    def _run(job: ImportJob, work: Work) -> None:
        try:
            job.report = work(job)
        except NewsletterError as err:
            job.error = without_settings(str(err))
        except Exception:  # a bug: logged with its traceback, told in one line
            log.exception("console import %s failed", job.filename)
            job.error = "the import failed unexpectedly; the server log has the details"
        finally:
            job.finished_at = time.monotonic()

    def get(self, job_id: str, *, owner_id: int) -> ImportJob:
        """The job, when this user started it; NotFound otherwise."""
        with self._lock:
            job = self._jobs.get(job_id[:64])
        if job is None or job.owner_id != owner_id:
            raise NotFound("no such import here (it may have finished more than an hour ago)")
        return job

    def _forget_old(self) -> None:
        now = time.monotonic()
        for key, job in list(self._jobs.items()):
            if job.finished_at is not None and now - job.finished_at > KEEP_SECONDS:
                del self._jobs[key]


def import_jobs(request: Request) -> ImportJobs:
    """The app's registry, made on first use."""
    jobs = getattr(request.app.state, "console_imports", None)
    if jobs is None:
        jobs = request.app.state.console_imports = ImportJobs()
    return jobs
