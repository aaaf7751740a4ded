"""GET /metrics, parsed with prometheus-client's own parser, after a real send through the
fake SendGrid server: the counters moved by what happened, the ledger's queued gauge."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine
from sqlmodel import Session

from campaigns import jobs
from campaigns.delivery.sending import send_campaign
from newsletter import job_runs
from newsletter.clock import utcnow
from newsletter.settings import Settings
from tests.conftest import make_settings
from tests.support.delivery import API_KEY, add_subscribers, make_campaign
from tests.support.fake_sendgrid import FakeSendGrid
from tests.support.servers import live_server
from tests.support.subscribers import signed_up
from web.app import create_app

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def sendgrid(sqlite_settings: Settings, sqlite_engine: Engine, fake: FakeSendGrid) -> Settings:
    return make_settings(
        sqlite_settings.database_url,
        Path(sqlite_settings.outbox_dir).parent,
        provider="sendgrid",
        base_url="https://news.example.com",
        sendgrid_api_key=API_KEY,
        sendgrid_api_host=fake.url,
        sendgrid_batch_size=2,
        retry_base_seconds=0.01,
        retry_max_seconds=0.05,
        retry_max_attempts=3,
        allow_unsigned_webhooks=True,
    )


def scrape(url: str, **headers: str) -> Samples:
    answer = httpx.get(f"{url}/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_counters_move_with_a_real_send_and_the_queued_gauge_reads_the_ledger(
    sendgrid: Settings, sqlite_engine: Engine, fake: FakeSendGrid
) -> None:
    add_subscribers(sqlite_engine, 5)
    session = Session(sqlite_engine, expire_on_commit=False)
    with live_server(create_app(sendgrid)) as url, session:
        before = scrape(url)
        fake.fail_next(429)  # answered, then retried
        sent = make_campaign(session, subject="Sent")
        send_campaign(session, settings=sendgrid, campaign_id=sent.id, preflight=False)
        fake.fail_next(401)  # the provider stops the campaign: 5 stay queued
        stopped = make_campaign(session, subject="Stopped")
        send_campaign(session, settings=sendgrid, campaign_id=stopped.id, preflight=False)
        signed_up(session, sendgrid, "ann@example.com")
        events = [
            {"email": "user1@example.com", "event": e, "timestamp": 1764000000, "sg_event_id": e}
            for e in ("delivered", "open", "open")
        ]
        assert httpx.post(f"{url}/webhooks/sendgrid", json=events).status_code == 200
        jobs.run(job_runs.HOUSEKEEPING, sendgrid, utcnow())
        after = scrape(url)

    assert moved(before, after, "newsletter_messages_sent_total", provider="sendgrid") == 5
    assert moved(before, after, "newsletter_batch_seconds_count", provider="sendgrid") >= 4
    errors = "newsletter_provider_errors_total"
    assert moved(before, after, errors, provider="sendgrid", status="429") == 1
    assert moved(before, after, "newsletter_signups_total") == 1
    assert moved(before, after, "newsletter_provider_events_received_total", event="opened") == 2
    assert moved(before, after, "newsletter_job_runs_total", job="housekeeping", outcome="ok") == 1
    queued = "newsletter_recipients_queued"
    assert after[(queued, (("campaign_id", str(stopped.id)),))] == 5
    assert (queued, (("campaign_id", str(sent.id)),)) not in after  # sent: nothing left


def test_with_a_metrics_token_a_scrape_without_it_is_401(
    sqlite_settings: Settings, sqlite_engine: Engine
) -> None:
    settings = sqlite_settings.model_copy(update={"metrics_token": "scrape-token-123"})
    with live_server(create_app(settings)) as url:
        refused = httpx.get(f"{url}/metrics", headers={"Authorization": "Bearer wrong"})
        samples = scrape(url, Authorization="Bearer scrape-token-123")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"
    assert ("newsletter_scheduler_leader", ()) in samples
