"""SendGrid's Signed Event Webhook: ECDSA P-256 over timestamp + raw body, plus its age."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.routing import iter_route_contexts
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from campaigns.delivery.providers.sendgrid_events import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureVerifier,
)
from newsletter import db
from newsletter.errors import ConfigError, TokenExpired, TokenInvalid
from newsletter.settings import Settings, load_settings
from subscribers.models import Subscriber, SubscriberStatus
from tests.conftest import make_settings
from tests.support.servers import live_server
from tests.support.tracking import (
    KeyPair,
    add_campaign,
    add_delivery,
    add_subscriber,
    body_of,
    database_snapshot,
    sg_event,
)
from web.app import create_app

NOW = 1_764_000_000
BODY = b'[{"event":"delivered","sg_event_id":"e1","timestamp":1764000000}]\r\n'


@pytest.fixture(scope="module")
def keys() -> KeyPair:
    return KeyPair.generate()


@pytest.fixture
def verifier(keys: KeyPair) -> SignatureVerifier:
    return SignatureVerifier(keys.public, tolerance_seconds=600)


def check(verifier: SignatureVerifier, body: bytes, headers: dict[str, str]) -> None:
    verifier.check(
        payload=body,
        signature=headers.get(SIGNATURE_HEADER),
        timestamp=headers.get(TIMESTAMP_HEADER),
        now=NOW,
    )


def test_a_genuine_signature_verifies(verifier: SignatureVerifier, keys: KeyPair) -> None:
    check(verifier, BODY, keys.headers(BODY, timestamp=NOW - 5))


def test_a_tampered_body_is_refused(verifier: SignatureVerifier, keys: KeyPair) -> None:
    headers = keys.headers(BODY, timestamp=NOW)
    with pytest.raises(TokenInvalid, match="does not verify"):
        check(verifier, BODY.replace(b"delivered", b"spamreport"), headers)


def test_a_tampered_timestamp_is_refused(verifier: SignatureVerifier, keys: KeyPair) -> None:
    headers = keys.headers(BODY, timestamp=NOW - 3600)
    headers[TIMESTAMP_HEADER] = str(NOW)
    with pytest.raises(TokenInvalid, match="does not verify"):
        check(verifier, BODY, headers)


def test_a_stale_timestamp_is_refused_though_the_signature_verifies(
    verifier: SignatureVerifier, keys: KeyPair
) -> None:
    with pytest.raises(TokenExpired, match="tolerance is 600 s"):
        check(verifier, BODY, keys.headers(BODY, timestamp=NOW - 601))


def test_a_timestamp_far_in_the_future_is_refused(
    verifier: SignatureVerifier, keys: KeyPair
) -> None:
    with pytest.raises(TokenExpired):
        check(verifier, BODY, keys.headers(BODY, timestamp=NOW + 601))


def test_a_timestamp_exactly_at_the_tolerance_is_accepted(
    verifier: SignatureVerifier, keys: KeyPair
) -> None:
    check(verifier, BODY, keys.headers(BODY, timestamp=NOW - 600))


def test_missing_headers_are_refused(verifier: SignatureVerifier) -> None:
    with pytest.raises(TokenInvalid, match="missing"):
        check(verifier, BODY, {})


def test_a_signature_by_another_key_is_refused(verifier: SignatureVerifier) -> None:
    with pytest.raises(TokenInvalid):
        check(verifier, BODY, KeyPair.generate().headers(BODY, timestamp=NOW))


def test_a_signature_that_is_not_base64_der_is_refused(
    verifier: SignatureVerifier, keys: KeyPair
) -> None:
    headers = keys.headers(BODY, timestamp=NOW)
    headers[SIGNATURE_HEADER] = "bm90IGEgc2lnbmF0dXJl"
    with pytest.raises(TokenInvalid):
        check(verifier, BODY, headers)


def test_a_body_that_is_not_utf8_is_refused(verifier: SignatureVerifier, keys: KeyPair) -> None:
    body = b"\xff\xfe["
    with pytest.raises(TokenInvalid):
        check(verifier, body, keys.headers(body, timestamp=NOW))


def test_the_public_key_may_be_a_full_pem_block(keys: KeyPair) -> None:
    pem = (
        keys.private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    check(SignatureVerifier(pem, tolerance_seconds=60), BODY, keys.headers(BODY, timestamp=NOW))


def test_a_malformed_public_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY"):
        SignatureVerifier("bm90IGEga2V5", tolerance_seconds=60)


# ---------------------------------------------------------------- over HTTP: 403, nothing done


def _tamper_body(keys: KeyPair, body: bytes) -> tuple[bytes, dict[str, str]]:
    return body.replace(b"spamreport", b"delivered"), keys.headers(body)


def _tamper_timestamp(keys: KeyPair, body: bytes) -> tuple[bytes, dict[str, str]]:
    headers = keys.headers(body)
    headers[TIMESTAMP_HEADER] = str(int(headers[TIMESTAMP_HEADER]) - 1)
    return body, headers


def _stale(keys: KeyPair, body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, keys.headers(body, timestamp=int(time.time()) - 601)


def _missing(keys: KeyPair, body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, {"Content-Type": "application/json"}


def _missing_timestamp(keys: KeyPair, body: bytes) -> tuple[bytes, dict[str, str]]:
    headers = keys.headers(body)
    del headers[TIMESTAMP_HEADER]
    return body, headers


def _other_key(keys: KeyPair, body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, KeyPair.generate().headers(body)


@pytest.fixture
def signed_settings(database_url: str, tmp_path: Path, keys: KeyPair) -> Settings:
    return make_settings(
        database_url,
        tmp_path,
        provider="sendgrid",
        sendgrid_webhook_public_key=keys.public,
        sendgrid_webhook_tolerance_seconds=600,
    )


@pytest.fixture
def signed_engine(signed_settings: Settings) -> Iterator[Engine]:
    engine = db.get_engine(signed_settings.database_url)
    db.upgrade(engine)
    yield engine
    db.dispose_engine(signed_settings.database_url)


@pytest.mark.parametrize(
    ("forge", "detail"),
    [
        (
            _missing,
            "webhook signature missing: X-Twilio-Email-Event-Webhook-Signature and "
            "X-Twilio-Email-Event-Webhook-Timestamp are required",
        ),
        (
            _missing_timestamp,
            "webhook signature missing: X-Twilio-Email-Event-Webhook-Signature and "
            "X-Twilio-Email-Event-Webhook-Timestamp are required",
        ),
        (_tamper_body, "webhook signature does not verify"),
        (_tamper_timestamp, "webhook signature does not verify"),
        (_other_key, "webhook signature does not verify"),
    ],
)
def test_a_forged_batch_gets_403_and_changes_nothing(
    signed_settings: Settings, signed_engine: Engine, keys: KeyPair, forge, detail: str
) -> None:
    with Session(signed_engine) as session:
        campaign = add_campaign(session)
        ann = add_subscriber(session, "ann@example.com")
        delivery = add_delivery(session, campaign, ann)
        body = body_of(sg_event("spamreport", delivery, "ann@example.com"))
    sent_body, headers = forge(keys, body)
    before = database_snapshot(signed_engine)
    with live_server(create_app(signed_settings)) as url:
        response = httpx.post(f"{url}/webhooks/sendgrid", content=sent_body, headers=headers)
    assert (response.status_code, response.json()) == (403, {"detail": detail})
    assert database_snapshot(signed_engine) == before


def test_a_stale_batch_gets_403_and_changes_nothing(
    signed_settings: Settings, signed_engine: Engine, keys: KeyPair
) -> None:
    with Session(signed_engine) as session:
        campaign = add_campaign(session)
        delivery = add_delivery(session, campaign, add_subscriber(session, "ann@example.com"))
        body, headers = _stale(keys, body_of(sg_event("spamreport", delivery, "ann@example.com")))
    before = database_snapshot(signed_engine)
    with live_server(create_app(signed_settings)) as url:
        response = httpx.post(f"{url}/webhooks/sendgrid", content=body, headers=headers)
    assert response.status_code == 403
    assert response.json()["detail"].endswith("tolerance is 600 s")
    assert database_snapshot(signed_engine) == before


def test_a_genuine_batch_is_applied(
    signed_settings: Settings, signed_engine: Engine, keys: KeyPair
) -> None:
    with Session(signed_engine) as session:
        campaign = add_campaign(session)
        delivery = add_delivery(session, campaign, add_subscriber(session, "ann@example.com"))
        body = body_of(sg_event("spamreport", delivery, "ann@example.com"))
    with live_server(create_app(signed_settings)) as url:
        response = httpx.post(f"{url}/webhooks/sendgrid", content=body, headers=keys.headers(body))
    assert (response.status_code, response.json()) == (
        200,
        {
            "received": 1,
            "applied": 1,
            "duplicates": 0,
            "unmatched": 0,
            "unknown": 0,
            "failed": 0,
        },
    )
    with Session(signed_engine) as session:
        assert session.exec(select(Subscriber.status)).one() == SubscriberStatus.COMPLAINED


def test_the_snapshot_sees_what_a_genuine_batch_writes(
    signed_settings: Settings, signed_engine: Engine, keys: KeyPair
) -> None:
    """Guards the 403 tests above: the same batch, signed, does change the snapshot."""
    with Session(signed_engine) as session:
        campaign = add_campaign(session)
        delivery = add_delivery(session, campaign, add_subscriber(session, "ann@example.com"))
        body = body_of(sg_event("spamreport", delivery, "ann@example.com"))
    before = database_snapshot(signed_engine)
    with live_server(create_app(signed_settings)) as url:
        httpx.post(f"{url}/webhooks/sendgrid", content=body, headers=keys.headers(body))
    after = database_snapshot(signed_engine)
    changed = {name for name in before if before[name] != after[name]}
    assert {"tracking_event", "suppression", "consent_event", "subscriber", "delivery"} <= changed


# ---------------------------------------------------------------- start-up rules


def test_production_without_a_public_key_refuses_to_start(tmp_path: Path) -> None:
    cfg = make_settings(
        f"sqlite:///{tmp_path / 'p.db'}", tmp_path, environment="production", provider="sendgrid"
    )
    with pytest.raises(ConfigError, match="NEWSLETTER_ALLOW_UNSIGNED_WEBHOOKS"):
        create_app(cfg)


def test_production_may_accept_unsigned_webhooks_when_allowed(tmp_path: Path) -> None:
    cfg = make_settings(
        f"sqlite:///{tmp_path / 'p.db'}",
        tmp_path,
        environment="production",
        provider="sendgrid",
        allow_unsigned_webhooks=True,
    )
    routes = {r.path for r in iter_route_contexts(create_app(cfg).routes)}
    assert "/webhooks/sendgrid" in routes


def test_the_allow_unsigned_switch_is_read_from_the_environment_variable_it_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name, value in {
        "NEWSLETTER_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}",
        "NEWSLETTER_ENVIRONMENT": "production",
        "NEWSLETTER_SECRET_KEY": "test-secret-key-0123456789abcdef",
        "NEWSLETTER_POSTAL_ADDRESS": "Pain Relief Weekly, 12 Test Street, Springfield, USA",
        "NEWSLETTER_PROVIDER": "sendgrid",
        "NEWSLETTER_ALLOW_UNSIGNED_WEBHOOKS": "true",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY", raising=False)
    routes = {r.path for r in iter_route_contexts(create_app(load_settings()).routes)}
    assert "/webhooks/sendgrid" in routes


def test_production_with_a_public_key_starts_and_refuses_unsigned_batches(
    tmp_path: Path, keys: KeyPair
) -> None:
    cfg = make_settings(
        f"sqlite:///{tmp_path / 'p.db'}",
        tmp_path,
        environment="production",
        provider="sendgrid",
        sendgrid_webhook_public_key=keys.public,
    )
    with live_server(create_app(cfg)) as url:
        response = httpx.post(f"{url}/webhooks/sendgrid", content=b"[]")
    assert response.status_code == 403
