"""Every Prometheus metric of the service, defined once (issue 17 point 2).

Rooms call the small functions below where things happen; the web door's ``/metrics``
(web/metrics.py) renders them with :func:`exposition`. Names follow Prometheus' naming
practice (``newsletter_`` prefix, base units, ``_total`` for counters, added by the
client). deploy/grafana/newsletter.json charts them.

Several processes (uvicorn workers, the scheduler, a CLI send) each count their own;
with ``PROMETHEUS_MULTIPROC_DIR`` set in every process's environment before it starts,
prometheus-client writes the values to files there and :func:`exposition` adds them up
(prometheus-client's "multiprocess mode"; the directory must be emptied before a fresh
start). Counters count what happened in a transaction that may still roll back: a rate,
not a ledger (the ledger is the database).
"""

from __future__ import annotations

import os
from collections import Counter as Tally
from collections.abc import Iterable, Iterator, Mapping

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# No ``*_created`` series beside every counter: nothing here charts them, and the
# multi-process mode has none, so the two modes expose the same names.
disable_created_metrics()

MESSAGES_SENT = Counter(
    "newsletter_messages_sent", "Recipients the provider accepted.", ["provider"]
)
MESSAGES_FAILED = Counter(
    "newsletter_messages_failed", "Recipients the provider refused for good.", ["provider"]
)
BATCH_SECONDS = Histogram(
    "newsletter_batch_seconds",
    "Time the provider took to answer one batch, in seconds.",
    ["provider"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PROVIDER_ERRORS = Counter(
    "newsletter_provider_errors",
    "Batches the provider answered with 429 (too many requests) or a 5xx.",
    ["provider", "status"],
)
PROVIDER_EVENTS = Counter(
    "newsletter_provider_events_received",
    "Events received from the provider's event webhook, by our event vocabulary.",
    ["event"],
)
SIGNUPS = Counter("newsletter_signups", "New subscribers (pending until confirmed).")
CONFIRMATIONS = Counter("newsletter_confirmations", "Sign-ups confirmed (double opt-in).")
UNSUBSCRIBES = Counter("newsletter_unsubscribes", "Subscribers who unsubscribed.")
STOPPED = Counter(
    "newsletter_subscribers_stopped", "Subscribers stopped by the provider's word.", ["reason"]
)
SCHEDULER_LEADER = Gauge(
    "newsletter_scheduler_leader",
    "1 while a scheduler instance of this service holds the lease and runs the jobs.",
    multiprocess_mode="livemax",
)
JOB_RUNS = Counter(
    "newsletter_job_runs", "Scheduler job runs by job and outcome.", ["job", "outcome"]
)
WEBHOOK_ATTEMPTS = Counter(
    "newsletter_outgoing_webhook_attempts",
    "Outgoing webhook delivery attempts by outcome (delivered, retrying, failed, disabled).",
    ["outcome"],
)
QUEUED_NAME = "newsletter_recipients_queued"

_SUBSCRIBER_COUNTERS = {
    "created": SIGNUPS,
    "confirmed": CONFIRMATIONS,
    "unsubscribed": UNSUBSCRIBES,
}


def batch_done(
    provider: str, *, seconds: float, sent: int, failed: int, status: int | None
) -> None:
    """One batch's answer: its latency, recipients accepted and refused, and ``status``
    when the provider answered "try later" with HTTP 429 or a 5xx (others are ignored)."""
    BATCH_SECONDS.labels(provider).observe(seconds)
    if sent:
        MESSAGES_SENT.labels(provider).inc(sent)
    if failed:
        MESSAGES_FAILED.labels(provider).inc(failed)
    if status == 429 or (status is not None and 500 <= status <= 599):
        PROVIDER_ERRORS.labels(provider, str(status)).inc()


def provider_events_received(kinds: Iterable[str]) -> None:
    for kind, count in Tally(kinds).items():
        PROVIDER_EVENTS.labels(kind).inc(count)


def subscriber_event(change: str) -> None:
    """``created``, ``confirmed``, ``unsubscribed``, ``bounced`` or ``complained``."""
    counter = _SUBSCRIBER_COUNTERS.get(change)
    if counter is not None:
        counter.inc()
    else:
        STOPPED.labels(change).inc()


def job_run(job: str, outcome: str) -> None:
    JOB_RUNS.labels(job, outcome).inc()


def scheduler_leads(leading: bool) -> None:
    SCHEDULER_LEADER.set(1 if leading else 0)


def webhook_attempt(outcome: str) -> None:
    WEBHOOK_ATTEMPTS.labels(outcome).inc()


class _Fixed:
    """A collector of metric families computed at scrape time by the caller."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def exposition(queued: Mapping[int, int]) -> tuple[bytes, str]:
    """The text format (Prometheus exposition format 0.0.4, which every Prometheus
    server reads; prometheus-client's "latest" 1.0.0 needs Prometheus 3) and its type.

    ``queued``: recipients still queued per campaign id, read from the ledger at scrape
    time (a gauge no process could keep: the ledger is the truth).
    """
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(REGISTRY)
    family = GaugeMetricFamily(
        QUEUED_NAME, "Recipients still queued, per campaign.", labels=["campaign_id"]
    )
    for campaign_id, count in sorted(queued.items()):
        family.add_metric([str(campaign_id)], count)
    registry.register(_Fixed([family]))
    return generate_latest(registry), CONTENT_TYPE_PLAIN_0_0_4
