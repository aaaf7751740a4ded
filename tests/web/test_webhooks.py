"""POST /webhooks/sendgrid over real HTTP (uvicorn on 127.0.0.1): answers, exact JSON."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from campaigns.models import Delivery, TrackingEvent
from newsletter import db
from newsletter.settings import Settings
from subscribers.models import Subscriber, SubscriberStatus
from tests.conftest import make_settings
from tests.support.servers import live_server
from tests.support.tracking import (
    KeyPair,
    add_campaign,
    add_delivery,
    add_subscriber,
    body_of,
    later,
    sg_event,
)
from web.app import create_app

JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def keys() -> KeyPair:
    return KeyPair.generate()


@pytest.fixture
def signed(database_url: str, tmp_path: Path, keys: KeyPair) -> Iterator[Settings]:
    cfg = make_settings(
        database_url, tmp_path, provider="sendgrid", sendgrid_webhook_public_key=keys.public
    )
    db.upgrade(db.get_engine(cfg.database_url))
    yield cfg
    db.dispose_engine(cfg.database_url)


@pytest.fixture
def server(signed: Settings) -> Iterator[str]:
    with live_server(create_app(signed)) as url:
        yield url


@pytest.fixture
def db_engine(signed: Settings) -> Engine:
    return db.get_engine(signed.database_url)


@pytest.fixture
def delivery(db_engine: Engine) -> Delivery:
    with Session(db_engine, expire_on_commit=False) as session:
        return add_delivery(
            session, add_campaign(session), add_subscriber(session, "ann@example.com")
        )


def post(url: str, keys: KeyPair, body: bytes) -> httpx.Response:
    return httpx.post(f"{url}/webhooks/sendgrid", content=body, headers=keys.headers(body))


def test_a_signed_batch_is_applied_and_counted(
    server: str, keys: KeyPair, delivery: Delivery, db_engine: Engine
) -> None:
    body = body_of(
        sg_event("processed", delivery, "ann@example.com", at=later(0)),
        sg_event("delivered", delivery, "ann@example.com", at=later(1)),
        sg_event("open", delivery, "ann@example.com", at=later(5), sg_machine_open=True),
        sg_event("open", delivery, "ann@example.com", at=later(9)),
    )
    response = post(server, keys, body)
    assert (response.status_code, response.json()) == (
        200,
        {
            "received": 4,
            "applied": 4,
            "duplicates": 0,
            "unmatched": 0,
            "unknown": 0,
            "failed": 0,
        },
    )
    with Session(db_engine) as session:
        row = session.get(Delivery, delivery.id)
        assert (row.open_count, row.machine_open_count) == (1, 1)


def test_a_retried_batch_is_answered_200_and_changes_nothing(
    server: str, keys: KeyPair, delivery: Delivery, db_engine: Engine
) -> None:
    body = body_of(sg_event("click", delivery, "ann@example.com", url="https://e.com/a"))
    post(server, keys, body)
    response = post(server, keys, body)
    assert (response.status_code, response.json()) == (
        200,
        {
            "received": 1,
            "applied": 0,
            "duplicates": 1,
            "unmatched": 0,
            "unknown": 0,
            "failed": 0,
        },
    )
    with Session(db_engine) as session:
        assert session.get(Delivery, delivery.id).click_count == 1


def test_odd_events_are_accepted_and_harm_nothing(
    server: str, keys: KeyPair, delivery: Delivery, db_engine: Engine
) -> None:
    body = body_of(
        sg_event("account_review", delivery, "ann@example.com"),
        sg_event(
            "spamreport",
            delivery,
            "nobody@example.com",
            nl_campaign_id="999",
            nl_subscriber_id="999",
            nl_delivery_id="999",
        ),
        "not an event",  # type: ignore[arg-type]
        {},
    )
    response = post(server, keys, body)
    assert (response.status_code, response.json()) == (
        200,
        {
            "received": 4,
            "applied": 4,
            "duplicates": 0,
            "unmatched": 3,
            "unknown": 3,
            "failed": 0,
        },
    )
    with Session(db_engine) as session:
        assert session.exec(select(Subscriber.status)).one() == SubscriberStatus.ACTIVE
        assert session.exec(select(func.count()).select_from(TrackingEvent)).one() == 4


def test_an_empty_batch_is_fine(server: str, keys: KeyPair) -> None:
    response = post(server, keys, b"[]")
    assert (response.status_code, response.json()) == (
        200,
        {
            "received": 0,
            "applied": 0,
            "duplicates": 0,
            "unmatched": 0,
            "unknown": 0,
            "failed": 0,
        },
    )


def test_a_body_that_is_not_an_array_is_400(server: str, keys: KeyPair) -> None:
    response = post(server, keys, b'{"event": "delivered"}')
    assert (response.status_code, response.json()) == (
        400,
        {"detail": "request body is not a JSON array of events"},
    )


def test_a_body_that_is_not_json_is_400(server: str, keys: KeyPair) -> None:
    response = post(server, keys, b"[{not json")
    assert (response.status_code, response.json()) == (
        400,
        {
            "detail": "request body is not JSON: Expecting property name enclosed in double "
            "quotes: line 1 column 3 (char 2)"
        },
    )


def test_nan_is_not_json(server: str, keys: KeyPair) -> None:
    response = post(server, keys, b'[{"event": "open", "timestamp": NaN}]')
    assert (response.status_code, response.json()) == (
        400,
        {"detail": "request body is not JSON: NaN is not allowed"},
    )


def test_with_the_development_switch_unsigned_batches_are_taken(
    sqlite_settings: Settings, sqlite_engine: Engine
) -> None:
    cfg = sqlite_settings.model_copy(
        update={"provider": "sendgrid", "allow_unsigned_webhooks": True}
    )
    with Session(sqlite_engine, expire_on_commit=False) as session:
        delivery = add_delivery(
            session, add_campaign(session), add_subscriber(session, "ann@example.com")
        )
    body = body_of(sg_event("delivered", delivery, "ann@example.com"))
    with live_server(create_app(cfg)) as url:
        response = httpx.post(f"{url}/webhooks/sendgrid", content=body, headers=JSON)
    assert (response.status_code, response.json()["applied"]) == (200, 1)


def test_get_is_not_allowed(server: str) -> None:
    assert httpx.get(f"{server}/webhooks/sendgrid").status_code == 405


def test_an_oversized_batch_is_413_before_it_is_read(server: str, keys: KeyPair) -> None:
    body = b"[" + b" " * (6 * 1024 * 1024) + b"]"
    response = post(server, keys, body)
    assert (response.status_code, response.json()) == (
        413,
        {"detail": "event batch larger than 5242880 bytes"},
    )
