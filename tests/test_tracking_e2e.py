"""Done-when of issue 7: send through the fake SendGrid, post a signed event batch, read the
report, and see the three stopped addresses skipped by next week's campaign."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from campaigns.models import Delivery
from campaigns.providers.base import ARG_CAMPAIGN, ARG_DELIVERY, ARG_SUBSCRIBER
from campaigns.reports import campaign_report
from campaigns.sending import send_campaign
from newsletter import db
from newsletter.settings import Settings
from subscribers.models import Subscriber, Suppression
from tests.conftest import make_settings
from tests.delivery_helpers import API_KEY, make_campaign
from tests.fake_sendgrid import FakeSendGrid
from tests.tracking_helpers import KeyPair, add_subscriber, body_of, later, live_server
from web import create_app

PEOPLE = ["ann", "bob", "cat", "dan", "eve"]


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with FakeSendGrid(API_KEY) as server:
        yield server


@pytest.fixture
def keys() -> KeyPair:
    return KeyPair.generate()


@pytest.fixture
def cfg(database_url: str, tmp_path: Path, fake: FakeSendGrid, keys: KeyPair) -> Iterator[Settings]:
    settings = make_settings(
        database_url,
        tmp_path,
        provider="sendgrid",
        sendgrid_api_key=API_KEY,
        sendgrid_api_host=fake.url,
        sendgrid_webhook_public_key=keys.public,
        retry_base_seconds=0.0,
        retry_max_seconds=0.0,
    )
    db.upgrade(db.get_engine(settings.database_url))
    yield settings
    db.dispose_engine(settings.database_url)


def sendgrid_events_for(fake: FakeSendGrid, engine: Engine) -> list[dict[str, Any]]:
    """What SendGrid would post back: our custom_args echoed, its message id on each."""
    with Session(engine) as session:
        message_ids = {d.id: d.provider_message_id for d in session.exec(select(Delivery))}
    events = []
    for body in fake.requests:
        for p in body["personalizations"]:
            email = p["to"][0]["email"]
            args = {**body.get("custom_args", {}), **p.get("custom_args", {})}
            base = {
                "email": email,
                ARG_CAMPAIGN: args[ARG_CAMPAIGN],
                ARG_SUBSCRIBER: args[ARG_SUBSCRIBER],
                ARG_DELIVERY: args[ARG_DELIVERY],
                "sg_message_id": f"{message_ids[int(args[ARG_DELIVERY])]}.filterdrecv-1-0",
            }
            name = email.split("@")[0]

            def event(
                kind: str, minutes: int, base: dict = base, name: str = name, **extra: Any
            ) -> dict[str, Any]:
                return {
                    **base,
                    "event": kind,
                    "sg_event_id": f"{name}-{kind}",
                    "timestamp": int(later(minutes).timestamp()),
                    **extra,
                }

            events.append(event("processed", 0))
            if name == "bob":
                events.append(
                    event(
                        "bounce",
                        1,
                        type="bounce",
                        reason="550 5.1.1 The email account does not exist",
                    )
                )
                continue
            events.append(event("delivered", 1))
            if name == "cat":
                events.append(event("spamreport", 90))
            elif name == "dan":
                events.append(event("unsubscribe", 120))
            elif name == "ann":
                events.append(event("open", 30))
                events.append(event("click", 31, url="https://example.com/stretches"))
            else:
                events.append(event("open", 5, sg_machine_open=True))
    return events


def test_a_signed_batch_stops_three_addresses_and_next_week_skips_them(
    cfg: Settings, fake: FakeSendGrid, keys: KeyPair
) -> None:
    engine = db.get_engine(cfg.database_url)
    with Session(engine, expire_on_commit=False) as session:
        for name in PEOPLE:
            add_subscriber(session, f"{name}@example.com")
        first = make_campaign(session, subject="Week 48: sciatica")
        sent = send_campaign(session, settings=cfg, campaign_id=first.id, preflight=False)
    assert (sent.sent, fake.recipients) == (5, 5)

    body = body_of(*sendgrid_events_for(fake, engine))
    with live_server(create_app(cfg)) as url:
        response = httpx.post(f"{url}/webhooks/sendgrid", content=body, headers=keys.headers(body))
    assert (response.status_code, response.json()) == (
        200,
        {
            "received": 15,
            "applied": 15,
            "duplicates": 0,
            "unmatched": 0,
            "unknown": 0,
            "failed": 0,
        },
    )

    with Session(engine) as session:
        report = campaign_report(session, campaign_id=first.id).to_dict()
        stopped = {
            (s.email, s.status) for s in session.exec(select(Subscriber)) if s.status != "active"
        }
        suppressed = {(s.email, s.reason) for s in session.exec(select(Suppression))}
    counts = {name: f["count"] for name, f in report["figures"].items()}
    assert counts == {
        "recipients": 5,
        "sent": 5,
        "delivered": 4,
        "dropped": 0,
        "bounces": 1,
        "hard_bounces": 1,
        "soft_bounces": 0,
        "complaints": 1,
        "unsubscribes": 1,
        "unique_opens": 1,
        "machine_opens": 1,
        "unique_clicks": 1,
    }
    assert len(report["warnings"]) == 2  # 25 % complaints, 20 % bounces: both far too high
    assert stopped == {
        ("bob@example.com", "bounced"),
        ("cat@example.com", "complained"),
        ("dan@example.com", "unsubscribed"),
    }
    assert suppressed == {
        ("bob@example.com", "hard_bounce"),
        ("cat@example.com", "complaint"),
        ("dan@example.com", "unsubscribe"),
    }

    with Session(engine, expire_on_commit=False) as session:
        second = make_campaign(session, subject="Week 49: leg cramps")
        send_campaign(session, settings=cfg, campaign_id=second.id, preflight=False)
        got_second = set(
            session.exec(
                select(Subscriber.email)
                .join(Delivery, Delivery.subscriber_id == Subscriber.id)
                .where(Delivery.campaign_id == second.id, Delivery.status == "sent")
            )
        )
    assert got_second == {"ann@example.com", "eve@example.com"}
    assert dict(fake.deliveries) == {
        "ann@example.com": 2,
        "bob@example.com": 1,
        "cat@example.com": 1,
        "dan@example.com": 1,
        "eve@example.com": 2,
    }
