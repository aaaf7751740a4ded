"""The send loop's units of work: a job (recipients handed to the provider together), its
outcome, one attempt at it in a worker thread, and the splitting of a ledger batch into jobs.

Kept apart from campaigns.delivery.send_loop so that module stays short and holds only
the loop's steps; nothing here touches the database except reading a sample's variant
labels (``variant_sends.labels_of``) on the caller's thread.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from sqlmodel import Session

from campaigns.delivery.providers.base import BatchResult, BulkContent, Provider, Recipient
from campaigns.delivery.variant_sends import labels_of
from newsletter.errors import ProviderError


@dataclass
class Job:
    """Recipients handed to the provider together, in delivery id order."""

    recipients: list[Recipient]
    attempt: int = 0
    not_before: float = 0.0  # time.monotonic() before which it must not be tried
    # None: the run's content; else a subject test's variant (issue 16) or the plain
    # variant for readers not to be tracked (issue 15).
    content: BulkContent | None = None
    # Its rows are all of the campaign's queued rows between its first and last id (a whole
    # batch, a variant's run): one range update may mark them sent. Not so for a batch
    # split into tracked and plain readers, whose ids interleave.
    ranged: bool = True
    # What the provider made of it ahead (Provider.prepare), on the loop's thread.
    prepared: object | None = None


@dataclass
class Outcome:
    """A job's answer: the provider's result, or the error that refused the whole job."""

    job: Job
    result: BatchResult | None = None
    error: ProviderError | None = None
    abandoned: bool = False  # the loop stopped before this job was tried
    seconds: float = 0.0  # the provider's time on it (metrics: batch latency)


def attempt(provider: Provider, content: BulkContent, job: Job, stop: threading.Event) -> Outcome:
    """In a worker thread: wait until the job may go, then hand it to the provider."""
    while (delay := job.not_before - time.monotonic()) > 0:
        if stop.wait(min(delay, 0.5)):
            return Outcome(job, abandoned=True)
    if stop.is_set():
        return Outcome(job, abandoned=True)
    began = time.monotonic()
    try:
        result = provider.send_prepared(job.content or content, job.recipients, job.prepared)
    except ProviderError as err:
        return Outcome(job, error=err, seconds=time.monotonic() - began)
    return Outcome(job, result=result, seconds=time.monotonic() - began)


def split_batch(
    session: Session,
    batch: list[Recipient],
    *,
    variants: Mapping[str, BulkContent] | None,
    plain_content: BulkContent | None,
) -> list[Job]:
    """A batch as jobs: per variant of a subject test, then readers not to be tracked
    apart with the plain content."""
    jobs = variant_jobs(session, batch, variants=variants)
    if plain_content is None or not any(r.plain for r in batch):
        return jobs
    return [part for job in jobs for part in plain_apart(job, plain_content)]


def variant_jobs(
    session: Session, batch: list[Recipient], *, variants: Mapping[str, BulkContent] | None
) -> list[Job]:
    """One job per run of the same variant (the sample is queued grouped by variant, so
    a batch has few runs and a run's id range holds only its own queued rows, as
    ``record_sent_range`` needs); the whole batch when there is no test."""
    if not variants:
        return [Job(batch)]
    label = labels_of(session, [r.delivery_id for r in batch])
    jobs: list[Job] = []
    for recipient in batch:
        content = variants.get(label.get(recipient.delivery_id, ""))
        if jobs and jobs[-1].content is content:
            jobs[-1].recipients.append(recipient)
        else:
            jobs.append(Job([recipient], content=content))
    return jobs


def plain_apart(job: Job, plain_content: BulkContent) -> list[Job]:
    """Readers who asked not to be tracked get the plain content (with a variant's
    subject, when the job is a variant's); their ids interleave, so no range update."""
    plain = [r for r in job.recipients if r.plain]
    if not plain:
        return [job]
    tracked = [r for r in job.recipients if not r.plain]
    if job.content is not None:
        plain_content = dataclasses.replace(plain_content, subject=job.content.subject)
    parts = (
        Job(tracked, content=job.content, ranged=False),
        Job(plain, content=plain_content, ranged=False),
    )
    return [part for part in parts if part.recipients]
