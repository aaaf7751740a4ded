"""newsletter/metrics.py: the exposition, and the Grafana dashboard naming only real metrics."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from newsletter import metrics
from newsletter.settings import PROJECT_ROOT

DASHBOARD = PROJECT_ROOT / "deploy" / "grafana" / "newsletter.json"


def exposed_names() -> set[str]:
    body, _ = metrics.exposition({7: 3})
    return {s.name for f in text_string_to_metric_families(body.decode()) for s in f.samples}


def test_every_metric_the_dashboard_queries_is_exposed() -> None:
    metrics.batch_done("outbox", seconds=0.01, sent=1, failed=1, status=503)  # a sample of each
    for change in ("created", "confirmed", "unsubscribed", "bounced"):
        metrics.subscriber_event(change)
    metrics.provider_events_received(["opened"])
    metrics.job_run("dispatch", "ok")
    metrics.webhook_attempt("delivered")
    queries = [
        target["expr"]
        for panel in json.loads(DASHBOARD.read_text())["panels"]
        for target in panel["targets"]
    ]
    named = {n for q in queries for n in re.findall(r"\bnewsletter_[a-z_]+", q)}
    assert len(named) >= 12
    assert named - exposed_names() == set()


def test_the_queued_gauge_has_a_sample_per_campaign() -> None:
    body, content_type = metrics.exposition({7: 3, 9: 0})
    assert content_type.startswith("text/plain; version=0.0.4")
    (family,) = [
        f
        for f in text_string_to_metric_families(body.decode())
        if f.name == "newsletter_recipients_queued"
    ]
    assert [(s.labels, s.value) for s in family.samples] == [
        ({"campaign_id": "7"}, 3.0),
        ({"campaign_id": "9"}, 0.0),
    ]


def test_with_a_multiprocess_dir_the_counts_of_several_processes_add_up(tmp_path: Path) -> None:
    env = {**os.environ, metrics.MULTIPROC_ENV: str(tmp_path)}
    count = (
        "from newsletter import metrics; "
        "metrics.batch_done('smtp', seconds=0.1, sent=10, failed=0, status=None)"
    )
    show = f"{count}; print(metrics.exposition({{}})[0].decode())"
    subprocess.run([sys.executable, "-c", count], env=env, check=True, cwd=PROJECT_ROOT)
    shown = subprocess.run(
        [sys.executable, "-c", show], env=env, check=True, cwd=PROJECT_ROOT, capture_output=True
    ).stdout.decode()
    assert 'newsletter_messages_sent_total{provider="smtp"} 20.0' in shown
