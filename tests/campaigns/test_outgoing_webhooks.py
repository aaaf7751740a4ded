"""Outgoing webhooks end to end: status changes queue events in their own transaction, a
local receiver gets them signed (verified with standardwebhooks' own Webhook.verify), a
failing receiver is retried on the specification's schedule under a controlled clock,
and an endpoint that fails for days is disabled with a notice."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from campaigns import outgoing_webhooks
from campaigns.delivery.sending import send_campaign
from campaigns.models import CampaignStatus
from campaigns.webhook_delivery import RETRY_DELAYS, deliver_due
from newsletter.clock import utcnow
from newsletter.errors import InvalidInput, StateError
from newsletter.settings import Settings
from newsletter.webhook_outbox import WebhookEndpoint, WebhookMessage
from subscribers import lifecycle
from subscribers.models import SubscriberStatus
from tests.support.delivery import add_subscribers, make_campaign
from tests.support.subscribers import signed_up
from tests.support.webhook_receiver import Received, webhook_receiver


@pytest.fixture
def local(settings: Settings) -> Settings:
    """Both databases: for what depends on transactions (the outbox)."""
    return settings.model_copy(update={"webhook_allow_local": True})


@pytest.fixture
def lite(sqlite_settings: Settings) -> Settings:
    """SQLite only: for what does not depend on the database (the suite's time budget)."""
    return sqlite_settings.model_copy(update={"webhook_allow_local": True})


@pytest.fixture
def lite_session(sqlite_engine: Engine) -> Iterator[Session]:
    with Session(sqlite_engine, expire_on_commit=False) as session:
        yield session


def add(session: Session, settings: Settings, url: str, *events: str) -> tuple[int, str]:
    endpoint, secret = outgoing_webhooks.add_endpoint(
        session, settings=settings, url=url, events=list(events), actor="test"
    )
    session.commit()
    return endpoint.id, secret


def stored(session: Session, url: str) -> int:
    """An endpoint as a row, past check_url: one stored before addresses were checked
    when added, or a host name that resolves there when delivered (net.py's policy)."""
    endpoint = WebhookEndpoint(url=url, events=[], secret=outgoing_webhooks.new_secret())
    session.add(endpoint)
    session.commit()
    assert endpoint.id is not None
    return endpoint.id


def verified(secret: str, request: Received) -> Any:
    return Webhook(secret).verify(request.body, request.headers)


def test_status_changes_reach_the_receiver_signed_and_verified(
    engine: Engine, session: Session, local: Settings
) -> None:
    with webhook_receiver(200) as receiver:
        _, secret = add(session, local, receiver.url)
        reader = signed_up(session, local, "ann@example.com", name="Ann Reader").subscriber
        assert reader is not None and reader.id is not None
        lifecycle.transition(session, reader, SubscriberStatus.ACTIVE, reason="t", source="form")
        lifecycle.record_hard_bounce(session, subscriber_id=reader.id)
        session.commit()
        report = deliver_due(engine, settings=local)

    assert report.delivered == 3
    payloads = [verified(secret, r) for r in receiver.received]
    assert [p["type"] for p in payloads] == [
        "subscriber.created",
        "subscriber.confirmed",
        "subscriber.bounced",
    ]
    # Only what a receiver needs: no name, no IP, no consent details.
    assert payloads[0]["data"] == {"subscriber_id": reader.id, "email": "ann@example.com"}
    assert all(r.headers["webhook-id"].startswith("msg_") for r in receiver.received)


def test_a_tampered_body_does_not_verify(
    sqlite_engine: Engine, lite_session: Session, lite: Settings
) -> None:
    with webhook_receiver(200) as receiver:
        _, secret = add(lite_session, lite, receiver.url)
        signed_up(lite_session, lite, "ann@example.com")
        deliver_due(sqlite_engine, settings=lite)
    request = receiver.received[0]
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(request.body.replace(b"ann@", b"eve@"), request.headers)


def test_an_event_rolled_back_with_its_change_is_never_sent(
    engine: Engine, session: Session, local: Settings
) -> None:
    add(session, local, "http://127.0.0.1:9/never")
    reader = signed_up(session, local, "ann@example.com").subscriber
    assert reader is not None and reader.id is not None
    lifecycle.unsubscribe(session, subscriber_id=reader.id, source="form")
    session.rollback()
    kinds = session.exec(select(WebhookMessage.event_type)).all()
    assert kinds == ["subscriber.created"]


def test_an_endpoint_gets_only_the_events_it_asked_for(
    sqlite_engine: Engine, lite_session: Session, lite: Settings
) -> None:
    endpoint_id, _ = add(lite_session, lite, "http://127.0.0.1:9/x", "campaign.sent")
    add_subscribers(sqlite_engine, 3)
    signed_up(lite_session, lite, "ann@example.com")
    campaign = make_campaign(lite_session, status=CampaignStatus.DRAFT)
    assert campaign.id is not None
    send_campaign(
        lite_session, settings=lite, campaign_id=campaign.id, actor="test", preflight=False
    )
    lite_session.commit()
    rows = lite_session.exec(
        select(WebhookMessage).where(WebhookMessage.endpoint_id == endpoint_id)
    )
    assert [m.event_type for m in rows] == ["campaign.sent"]


def test_a_finished_send_announces_campaign_sent_then_finished(
    sqlite_engine: Engine, lite_session: Session, lite: Settings
) -> None:
    add(lite_session, lite, "http://127.0.0.1:9/x")
    add_subscribers(sqlite_engine, 3)
    campaign = make_campaign(lite_session, status=CampaignStatus.DRAFT, subject="Sciatica")
    assert campaign.id is not None
    send_campaign(
        lite_session, settings=lite, campaign_id=campaign.id, actor="test", preflight=False
    )
    lite_session.commit()
    rows = lite_session.exec(select(WebhookMessage).order_by(WebhookMessage.id)).all()
    assert [m.event_type for m in rows] == ["campaign.sent", "campaign.finished"]
    finished = json.loads(rows[1].payload)["data"]
    assert (finished["campaign_id"], finished["status"]) == (campaign.id, "sent")


def _schedule_run(engine: Engine, settings: Settings, start: datetime) -> list[str]:
    """Deliver at each retry time (and just before it); the outcome of each try."""
    outcomes = [deliver_due(engine, settings=settings, now=start)]
    at = start
    for delay in RETRY_DELAYS:
        at += delay
        early = deliver_due(engine, settings=settings, now=at - timedelta(seconds=1))
        assert early.tried == 0, f"tried before {delay} had passed"
        outcomes.append(deliver_due(engine, settings=settings, now=at))
    return [
        "delivered" if r.delivered else "failed" if r.failed else "retrying" if r.retrying else "-"
        for r in outcomes
    ]


def test_a_failing_receiver_is_retried_on_the_specifications_schedule(
    sqlite_engine: Engine, sqlite_settings: Settings
) -> None:
    settings = sqlite_settings.model_copy(update={"webhook_allow_local": True})
    with Session(sqlite_engine) as session, webhook_receiver(503, 500, 200) as receiver:
        _, secret = add(session, settings, receiver.url)
        signed_up(session, settings, "ann@example.com")
        start = utcnow()
        outcomes = _schedule_run(sqlite_engine, settings, start)

    assert outcomes == ["retrying", "retrying", "delivered", "-", "-", "-", "-"]
    assert len(receiver.received) == 3
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 1  # one message
    assert all(verified(secret, r)["type"] == "subscriber.created" for r in receiver.received)


def test_a_message_is_given_up_after_the_last_retry(
    sqlite_engine: Engine, sqlite_settings: Settings
) -> None:
    settings = sqlite_settings.model_copy(update={"webhook_allow_local": True})
    with Session(sqlite_engine) as session, webhook_receiver(500) as receiver:
        endpoint_id, _ = add(session, settings, receiver.url)
        signed_up(session, settings, "ann@example.com")
        start = utcnow()
        outcomes = _schedule_run(sqlite_engine, settings, start)
        later = deliver_due(sqlite_engine, settings=settings, now=start + timedelta(days=3))
        log = outgoing_webhooks.delivery_log(session, endpoint_id=endpoint_id)

    assert outcomes == ["retrying"] * 6 + ["failed"]
    assert later.tried == 0 and len(receiver.received) == 7
    assert [(a.status_code, a.outcome) for a in log][:2] == [(500, "failed"), (500, "retrying")]


def test_an_endpoint_failing_for_days_is_disabled_with_a_notice(
    sqlite_engine: Engine, sqlite_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    settings = sqlite_settings.model_copy(update={"webhook_allow_local": True})
    with Session(sqlite_engine) as session, webhook_receiver(500) as receiver:
        endpoint_id, _ = add(session, settings, receiver.url)
        signed_up(session, settings, "ann@example.com")
        start = utcnow()
        deliver_due(sqlite_engine, settings=settings, now=start)
        signed_up(session, settings, "bob@example.com")
        almost = deliver_due(sqlite_engine, settings=settings, now=start + timedelta(days=4))
        signed_up(session, settings, "cat@example.com")
        with caplog.at_level(logging.WARNING):
            report = deliver_due(sqlite_engine, settings=settings, now=start + timedelta(days=5))
        (endpoint,) = outgoing_webhooks.list_endpoints(session)
        signed_up(session, settings, "dan@example.com")
        after = deliver_due(sqlite_engine, settings=settings, now=start + timedelta(days=6))

    assert almost.disabled == [] and report.disabled == [endpoint_id]
    assert endpoint.disabled_at is not None and "every delivery failed since" in (
        endpoint.disabled_reason or ""
    )
    assert f"endpoint {endpoint_id} disabled" in caplog.text
    assert after.tried == 0  # a disabled endpoint gets nothing, not even new events


def test_an_address_the_fetch_policy_refuses_is_a_failed_try_without_a_connection(
    sqlite_engine: Engine, lite_session: Session, sqlite_settings: Settings
) -> None:
    endpoint_id = stored(lite_session, "https://10.1.2.3/hooks")
    signed_up(lite_session, sqlite_settings, "ann@example.com")
    report = deliver_due(sqlite_engine, settings=sqlite_settings)
    (attempt,) = outgoing_webhooks.delivery_log(lite_session, endpoint_id=endpoint_id)
    assert report.retrying == 1
    assert (attempt.status_code, attempt.outcome) == (None, "retrying")
    assert "private address" in attempt.error


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("https://10.1.2.3/hooks", "private address"),
        ("https://169.254.169.254/latest/meta-data/", "link-local address"),
        ("https://[fe80::1]/hooks", "link-local address"),
    ],
)
def test_fetch_allow_private_for_feeds_does_not_open_private_addresses_to_webhooks(
    sqlite_engine: Engine, lite_session: Session, sqlite_settings: Settings, url: str, words: str
) -> None:
    settings = sqlite_settings.model_copy(
        update={"fetch_allow_private": True, "webhook_allow_local": True}
    )
    endpoint_id = stored(lite_session, url)
    signed_up(lite_session, settings, "ann@example.com")
    deliver_due(sqlite_engine, settings=settings)
    (attempt,) = outgoing_webhooks.delivery_log(lite_session, endpoint_id=endpoint_id)
    assert attempt.status_code is None
    assert words in attempt.error


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://example.com/hooks", "must be https://"),
        ("http://127.0.0.1:8000/hooks", "must be https://"),  # not allowed by default
        ("https://user:pw@example.com/", "no user name or password"),
        ("ftp://example.com/", "https:// URL with a host"),
    ],
)
def test_an_endpoint_url_that_is_not_https_is_refused(
    sqlite_settings: Settings, url: str, words: str
) -> None:
    with pytest.raises(InvalidInput, match=words):
        outgoing_webhooks.check_url(sqlite_settings, url)


@pytest.mark.parametrize(
    "url",
    [
        "https://h.example.com/x\r\nX-Evil: 1",
        "https://h.example.com/a b",
        "https://h.example.com/\x7f",
    ],
)
def test_an_endpoint_url_with_a_break_inside_is_refused(
    sqlite_settings: Settings, url: str
) -> None:
    with pytest.raises(InvalidInput, match="spaces, tabs or line breaks inside the URL") as err:
        outgoing_webhooks.check_url(sqlite_settings, url)
    assert err.value.field == "url"


def test_an_endpoint_url_keeps_only_outer_spaces_off(sqlite_settings: Settings) -> None:
    assert outgoing_webhooks.check_url(sqlite_settings, "  https://h.example.com/x \n") == (
        "https://h.example.com/x"
    )


def test_a_url_already_an_endpoint_is_refused_naming_it(session: Session, local: Settings) -> None:
    first, _ = add(session, local, "http://127.0.0.1:9/hooks")
    with pytest.raises(InvalidInput, match=f"is already endpoint {first}") as err:
        add(session, local, "http://127.0.0.1:9/hooks", "campaign.sent")
    assert err.value.field == "url"
    session.rollback()
    assert len(outgoing_webhooks.list_endpoints(session)) == 1


def test_an_endpoint_url_is_kept_in_one_spelling(sqlite_settings: Settings) -> None:
    url = "HTTPS://Hooks.Example.COM:443/In?A=1#top"
    assert outgoing_webhooks.check_url(sqlite_settings, url) == "https://hooks.example.com/In?A=1"
    assert outgoing_webhooks.check_url(sqlite_settings, "https://h.example.com") == (
        "https://h.example.com/"
    )


def test_an_endpoint_url_keeps_a_port_that_is_not_the_schemes_own(
    sqlite_settings: Settings,
) -> None:
    url = "https://[2606:4700:4700::ABCD]:8443/hooks"
    assert outgoing_webhooks.check_url(sqlite_settings, url) == (
        "https://[2606:4700:4700::abcd]:8443/hooks"
    )


def test_the_same_endpoint_spelt_another_way_is_refused_naming_it(
    session: Session, local: Settings
) -> None:
    first, _ = add(session, local, "http://127.0.0.1:9/hooks")
    with pytest.raises(InvalidInput, match=f"is already endpoint {first}"):
        add(session, local, "HTTP://127.0.0.1:9/hooks#x")


def test_an_endpoint_stored_before_urls_were_kept_in_one_spelling_is_still_found(
    session: Session, local: Settings
) -> None:
    first, _ = add(session, local, "http://127.0.0.1:9/hooks")
    session.execute(
        sa.update(outgoing_webhooks.WebhookEndpoint).values(url="HTTP://127.0.0.1:9/hooks")
    )
    with pytest.raises(InvalidInput, match=f"is already endpoint {first}"):
        add(session, local, "http://127.0.0.1:9/hooks")


def test_a_host_name_with_its_final_dot_is_the_same_endpoint(sqlite_settings: Settings) -> None:
    url = "https://hooks.example.com./in"
    assert outgoing_webhooks.check_url(sqlite_settings, url) == "https://hooks.example.com/in"


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("https://127.0.0.1:9/in", "127.0.0.1 is a loopback address"),
        ("https://localhost/in", "localhost is this machine"),
        ("https://10.1.2.3/in", "10.1.2.3 is a private address"),
        ("https://169.254.169.254/latest", "169.254.169.254 is a link-local address"),
        ("https://[::1]/in", "::1 is a loopback address"),
    ],
)
def test_an_address_delivery_would_refuse_is_refused_when_added(
    sqlite_settings: Settings, url: str, said: str
) -> None:
    """A marketer's review: https://127.0.0.1:9/in was accepted and only failed later."""
    with pytest.raises(InvalidInput, match=f"^field 'url': {re.escape(said)}: webhooks go to"):
        outgoing_webhooks.check_url(sqlite_settings, url)


def test_a_local_receiver_is_allowed_with_the_setting_for_it(local: Settings) -> None:
    assert outgoing_webhooks.check_url(local, "https://127.0.0.1:9/in") == "https://127.0.0.1:9/in"


def test_two_adds_of_one_url_at_once_make_one_endpoint(engine: Engine, local: Settings) -> None:
    """A double click: two requests, two sessions, at the same moment."""
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def submit() -> None:
        with Session(engine) as own:
            start.wait()
            try:
                add(own, local, "http://127.0.0.1:9/twice")
                outcomes.append("added")
            except InvalidInput:
                outcomes.append("refused")

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["added", "refused"]
    with Session(engine) as check:
        urls = [e.url for e in outgoing_webhooks.list_endpoints(check)]
    assert urls.count("http://127.0.0.1:9/twice") == 1


def test_removing_an_endpoint_drops_its_messages_and_log(
    sqlite_engine: Engine, lite_session: Session, lite: Settings
) -> None:
    endpoint_id, _ = add(lite_session, lite, "http://127.0.0.1:9/x")
    signed_up(lite_session, lite, "ann@example.com")
    outgoing_webhooks.remove_endpoint(lite_session, endpoint_id=endpoint_id, actor="test")
    lite_session.commit()
    assert (
        lite_session.execute(sa.select(sa.func.count()).select_from(WebhookMessage)).scalar() == 0
    )


def test_two_deliverers_at_once_send_each_message_once(
    engine: Engine, session: Session, local: Settings
) -> None:
    with webhook_receiver(200) as receiver:
        add(session, local, receiver.url)
        for name in ("ann", "bob", "cat", "dan", "eve", "fay"):
            signed_up(session, local, f"{name}@example.com")
        with ThreadPoolExecutor(2) as pool:
            reports = list(pool.map(lambda _: deliver_due(engine, settings=local), range(2)))
    assert sum(r.delivered for r in reports) == 6
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert len(ids) == len(set(ids)) == 6


def test_an_endpoint_enabled_again_gets_the_messages_left_pending(
    sqlite_engine: Engine, lite_session: Session, lite: Settings
) -> None:
    with webhook_receiver(500, 500, 200) as receiver:
        endpoint_id, _ = add(lite_session, lite, receiver.url)
        signed_up(lite_session, lite, "ann@example.com")
        start = utcnow()
        deliver_due(sqlite_engine, settings=lite, now=start)  # 500: failing from now
        signed_up(lite_session, lite, "bob@example.com")
        later = start + timedelta(days=5)
        disabled = deliver_due(sqlite_engine, settings=lite, now=later)  # 500: disabled
        outgoing_webhooks.enable_endpoint(lite_session, endpoint_id=endpoint_id, actor="test")
        lite_session.commit()
        report = deliver_due(sqlite_engine, settings=lite, now=later + timedelta(minutes=3))
        with pytest.raises(StateError, match="not disabled"):
            outgoing_webhooks.enable_endpoint(lite_session, endpoint_id=endpoint_id, actor="test")
    assert disabled.disabled == [endpoint_id]
    assert report.delivered == 1 and len(receiver.received) == 3
