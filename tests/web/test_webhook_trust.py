"""The provider webhook trusts nobody by default (issue 12.5).

Over real HTTP (uvicorn on 127.0.0.1): without a public key an unsigned, made-up event is
refused and writes nothing, whatever the environment, unless the development switch is
on, and then the app warns loudly at start (``newsletter serve`` shows it); an SMTP or
outbox deployment has no SendGrid route at all; a request's size and count are capped.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from sqlmodel import select as sql_select

from newsletter import db
from newsletter.settings import Settings
from subscribers.models import Subscriber, SubscriberStatus
from tests.conftest import make_settings
from tests.support.servers import free_port, live_server
from tests.support.tracking import (
    KeyPair,
    add_campaign,
    add_delivery,
    add_subscriber,
    body_of,
    database_snapshot,
    sg_event,
)
from web import webhooks
from web.app import create_app

JSON = {"Content-Type": "application/json"}
NEWSLETTER = str(Path(sys.executable).parent / "newsletter")


@pytest.fixture
def prepared(engine: Engine) -> bytes:
    """A real subscriber with a delivery, and a made-up spam complaint about her."""
    with Session(engine, expire_on_commit=False) as session:
        ann = add_subscriber(session, "ann@example.com")
        delivery = add_delivery(session, add_campaign(session), ann)
    return body_of(sg_event("spamreport", delivery, "ann@example.com"))


def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{url}/webhooks/sendgrid", content=body, headers=headers or JSON)


def status_of_ann(engine: Engine) -> str:
    with Session(engine) as session:
        return session.exec(sql_select(Subscriber.status)).one()


def test_without_a_key_an_unsigned_made_up_complaint_is_refused_and_writes_nothing(
    settings: Settings, engine: Engine, prepared: bytes
) -> None:
    cfg = settings.model_copy(update={"provider": "sendgrid"})  # development, no key, no switch
    before = database_snapshot(engine)
    with live_server(create_app(cfg)) as url:
        response = post(url, prepared)
    assert (response.status_code, response.json()) == (403, {"detail": webhooks.NO_KEY})
    assert database_snapshot(engine) == before
    assert status_of_ann(engine) == SubscriberStatus.ACTIVE


def test_with_a_key_an_unsigned_batch_is_refused_even_with_the_switch_on(
    settings: Settings, engine: Engine, prepared: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    keys = KeyPair.generate()
    cfg = settings.model_copy(
        update={
            "provider": "sendgrid",
            "sendgrid_webhook_public_key": keys.public,
            "allow_unsigned_webhooks": True,
        }
    )
    before = database_snapshot(engine)
    with caplog.at_level(logging.WARNING, logger="web.webhooks"):
        app = create_app(cfg)
    assert webhooks.IGNORED_WARNING in caplog.messages
    with live_server(app) as url:
        response = post(url, prepared)
    assert response.status_code == 403
    assert database_snapshot(engine) == before


def test_the_development_switch_warns_loudly_at_start(
    settings: Settings, engine: Engine, prepared: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = settings.model_copy(update={"provider": "sendgrid", "allow_unsigned_webhooks": True})
    with caplog.at_level(logging.WARNING, logger="web.webhooks"):
        app = create_app(cfg)
    assert [r.levelno for r in caplog.records if r.name == "web.webhooks"] == [logging.WARNING]
    assert webhooks.UNSIGNED_WARNING in caplog.messages
    with live_server(app) as url:
        response = post(url, prepared)
    assert (response.status_code, response.json()["applied"]) == (200, 1)
    assert status_of_ann(engine) == SubscriberStatus.COMPLAINED


def test_no_warning_without_the_switch(
    settings: Settings, engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = settings.model_copy(update={"provider": "sendgrid"})
    with caplog.at_level(logging.WARNING, logger="web.webhooks"):
        create_app(cfg)
    assert [r for r in caplog.records if r.name == "web.webhooks"] == []


def _serve_env(tmp_path: Path, **values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update(
        NEWSLETTER_DATABASE_URL=f"sqlite:///{tmp_path / 'serve.db'}",
        NEWSLETTER_SECRET_KEY="test-secret-key-0123456789abcdef",
        NEWSLETTER_POSTAL_ADDRESS="Pain Relief Weekly, 12 Test Street, Springfield, USA",
        **values,
    )
    return env


def _stderr_until_started(process: subprocess.Popen[bytes], seconds: float = 30) -> str:
    """What `serve` wrote to stderr until uvicorn said it started (or gave up)."""
    assert process.stderr is not None
    text = b""
    deadline = time.monotonic() + seconds
    while b"Application startup complete" not in text and time.monotonic() < deadline:
        ready, _, _ = select.select([process.stderr], [], [], 0.2)
        if ready:
            chunk = os.read(process.stderr.fileno(), 65536)
            if not chunk:
                break
            text += chunk
    return text.decode()


@pytest.mark.parametrize("switch", ["true", "false"])
def test_serve_shows_the_warning_while_the_switch_is_on(tmp_path: Path, switch: str) -> None:
    env = _serve_env(
        tmp_path, NEWSLETTER_PROVIDER="sendgrid", NEWSLETTER_ALLOW_UNSIGNED_WEBHOOKS=switch
    )
    process = subprocess.Popen(
        [NEWSLETTER, "serve", "--host", "127.0.0.1", "--port", str(free_port())],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        output = _stderr_until_started(process)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(20)
        assert process.stderr is not None
        process.stderr.close()
    assert "Application startup complete" in output, output
    assert (webhooks.UNSIGNED_WARNING in output) is (switch == "true"), output


@pytest.mark.parametrize("provider", ["smtp", "outbox"])
def test_an_app_that_does_not_send_through_sendgrid_has_no_sendgrid_route(
    database_url: str, tmp_path: Path, provider: str
) -> None:
    # Production, and no SendGrid key of any kind: an SMTP deployment needs none.
    cfg = make_settings(
        database_url,
        tmp_path,
        environment="production",
        provider=provider,
        smtp_url="smtp://127.0.0.1:2525",
        allow_unsigned_webhooks=True,
    )
    engine = db.get_engine(cfg.database_url)
    db.upgrade(engine)
    with Session(engine, expire_on_commit=False) as session:
        ann = add_subscriber(session, "ann@example.com")
        body = body_of(
            sg_event("spamreport", add_delivery(session, add_campaign(session), ann), ann.email)
        )
    before = database_snapshot(engine)
    try:
        with live_server(create_app(cfg)) as url:
            response = post(url, body)
            assert httpx.get(f"{url}/webhooks/sendgrid").status_code == 404
        assert response.status_code == 404
        assert database_snapshot(engine) == before
    finally:
        db.dispose_engine(cfg.database_url)


# ---------------------------------------------------------------- size and count


@pytest.fixture
def signed_app(settings: Settings, engine: Engine) -> Iterator[tuple[str, KeyPair]]:
    keys = KeyPair.generate()
    cfg = settings.model_copy(
        update={
            "provider": "sendgrid",
            "sendgrid_webhook_public_key": keys.public,
            "webhook_max_events": 3,
            "webhook_max_bytes": 4096,
        }
    )
    with live_server(create_app(cfg)) as url:
        yield url, keys


def test_a_batch_over_the_event_cap_is_413_and_writes_nothing(
    signed_app: tuple[str, KeyPair], engine: Engine
) -> None:
    url, keys = signed_app
    with Session(engine, expire_on_commit=False) as session:
        delivery = add_delivery(
            session, add_campaign(session), add_subscriber(session, "ann@example.com")
        )
    body = body_of(*[sg_event("open", delivery, "ann@example.com") for _ in range(4)])
    before = database_snapshot(engine)
    response = post(url, body, keys.headers(body))
    assert (response.status_code, response.json()) == (
        413,
        {"detail": "event batch of 4 events; at most 3 are taken"},
    )
    assert database_snapshot(engine) == before
    three = body_of(*[sg_event("open", delivery, "ann@example.com") for _ in range(3)])
    assert post(url, three, keys.headers(three)).json()["applied"] == 3


def test_a_batch_over_the_byte_cap_is_413(signed_app: tuple[str, KeyPair]) -> None:
    url, keys = signed_app
    body = b"[" + b" " * 5000 + b"]"
    response = post(url, body, keys.headers(body))
    assert (response.status_code, response.json()) == (
        413,
        {"detail": "event batch larger than 4096 bytes"},
    )


# ---------------------------------------------------------------- moved from test_web_faults


@pytest.fixture
def down(tmp_path: Path) -> Iterator[tuple[str, KeyPair]]:
    """A SendGrid app on a PostgreSQL address where nothing listens (a refused connection)."""
    keys = KeyPair.generate()
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/newsletter?connect_timeout=5"
    cfg = make_settings(url, tmp_path, provider="sendgrid", sendgrid_webhook_public_key=keys.public)
    try:
        with live_server(create_app(cfg)) as base:
            yield base, keys
    finally:
        db.dispose_engine(cfg.database_url)


def test_the_webhook_answers_503_so_the_provider_retries(down: tuple[str, KeyPair]) -> None:
    base, keys = down
    event = b'[{"event": "delivered", "email": "a@example.com", "timestamp": 1700000000}]'
    response = post(base, event, keys.headers(event))
    assert (response.status_code, response.json()) == (
        503,
        {"detail": "the database is unavailable; please try again later"},
    )
