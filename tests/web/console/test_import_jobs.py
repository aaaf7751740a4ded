"""The console's import jobs (web/console/import_jobs.py): progress while running, then
the report; only the user who started a job sees it."""

from __future__ import annotations

import threading
import time

import pytest

from newsletter.errors import InvalidInput, NotFound
from web.console.import_jobs import ImportJob, ImportJobs


def _wait(job: ImportJob) -> None:
    deadline = time.monotonic() + 5
    while not job.finished and time.monotonic() < deadline:
        time.sleep(0.005)


def test_a_running_job_shows_its_counts_then_its_report() -> None:
    halfway, go_on = threading.Event(), threading.Event()

    def work(job: ImportJob) -> str:
        job.counted(read=2, kept=1, rejected=1)
        halfway.set()
        go_on.wait(5)
        job.counted(read=3, kept=2, rejected=1)
        return "the report"

    job = ImportJobs().start(owner_id=1, filename="3 Markdown file(s)", work=work, total=3)
    assert halfway.wait(5)
    assert (job.finished, job.done, job.kept, job.rejected, job.percent) == (False, 2, 1, 1, 66)
    go_on.set()
    _wait(job)
    assert (job.finished, job.report, job.done, job.percent) == (True, "the report", 3, 100)


def test_an_error_in_the_work_is_one_line_and_no_report() -> None:
    def work(job: ImportJob) -> None:
        raise InvalidInput("not an RSS or Atom feed", where="https://example.com/feed")

    job = ImportJobs().start(owner_id=1, filename="feed", work=work)
    _wait(job)
    assert (job.report, job.error) == (None, "https://example.com/feed: not an RSS or Atom feed")


def test_another_user_cannot_see_the_job() -> None:
    jobs = ImportJobs()
    job = jobs.start(owner_id=1, filename="x", work=lambda job: None)
    assert jobs.get(job.id, owner_id=1) is job
    with pytest.raises(NotFound):
        jobs.get(job.id, owner_id=2)
