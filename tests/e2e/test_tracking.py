"""Done-when of issue 7: send through the fake SendGrid, post a signed event batch, read the
report, and see the three stopped addresses skipped by next week's campaign."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from campaigns.delivery.ledger import queue_deliveries
from campaigns.delivery.providers.sendgrid import ARG_CAMPAIGN, ARG_DELIVERY, ARG_SUBSCRIBER
from campaigns.delivery.sending import send_campaign
from campaigns.models import Delivery
from newsletter import api_tokens, db
from newsletter.settings import Settings
from subscribers.models import Subscriber, Suppression
from tests.conftest import make_settings
from tests.support.delivery import API_KEY, make_campaign
from tests.support.fake_sendgrid import FakeSendGrid
from tests.support.servers import live_server
from tests.support.tracking import KeyPair, add_subscriber, apply, body_of, later
from web.app import create_app

PEOPLE = ["ann", "bob", "cat", "dan", "eve"]


@pytest.fixture
def keys() -> KeyPair:
    return KeyPair.generate()


@pytest.fixture
def cfg(database_url: str, tmp_path: Path, fake: FakeSendGrid, keys: KeyPair) -> Iterator[Settings]:
    settings = make_settings(
        database_url,
        tmp_path,
        provider="sendgrid",
        base_url="https://news.example.com",  # real mail: one-click links over HTTPS
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


APPLIED = {
    "received": 15,
    "applied": 15,
    "duplicates": 0,
    "unmatched": 0,
    "unknown": 0,
    "failed": 0,
}


def send_first_week(cfg: Settings, fake: FakeSendGrid, engine: Engine) -> int:
    with Session(engine, expire_on_commit=False) as session:
        for name in PEOPLE:
            add_subscriber(session, f"{name}@example.com")
        first = make_campaign(session, subject="Week 48: sciatica")
        sent = send_campaign(session, settings=cfg, campaign_id=first.id, preflight=False)
    assert (sent.sent, fake.recipients) == (5, 5)
    return first.id


def test_a_signed_batch_stops_three_addresses_and_next_week_skips_them(
    cfg: Settings, fake: FakeSendGrid, keys: KeyPair
) -> None:
    engine = db.get_engine(cfg.database_url)
    first_id = send_first_week(cfg, fake, engine)
    with Session(engine) as session:
        _record, token = api_tokens.create(session, name="e2e")
        session.commit()

    body = body_of(*sendgrid_events_for(fake, engine))
    with live_server(create_app(cfg)) as url:
        response = httpx.post(f"{url}/webhooks/sendgrid", content=body, headers=keys.headers(body))
        report_response = httpx.get(
            f"{url}/api/campaigns/{first_id}/report",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert (response.status_code, response.json()) == (200, APPLIED)
    assert (report_response.status_code, report_response.json()) == (
        200,
        {
            "campaign_id": first_id,
            "subject": "Week 48: sciatica",
            "week": None,
            "status": "sent",
            "figures": {
                "recipients": {"count": 5, "rate": None},
                "sent": {"count": 5, "rate": 1.0},
                "delivered": {"count": 4, "rate": 0.8},
                "dropped": {"count": 0, "rate": 0.0},
                "bounces": {"count": 1, "rate": 0.2},
                "hard_bounces": {"count": 1, "rate": 0.2},
                "soft_bounces": {"count": 0, "rate": 0.0},
                "complaints": {"count": 1, "rate": 0.25},
                "unsubscribes": {"count": 1, "rate": 0.25},
                "unique_opens": {"count": 1, "rate": 0.25},
                "machine_opens": {"count": 1, "rate": 0.25},
                "unique_clicks": {"count": 1, "rate": 0.25},
                "machine_clicks": {"count": 0, "rate": 0.0},
            },
            "warnings": [
                "complaint rate 25.00% is at or above 0.1%: mailbox providers start "
                "filtering or blocking at this level",
                "bounce rate 20.00% is above 2%: clean the list before the next send",
            ],
            "provider_events": True,
        },
    )

    with Session(engine) as session:
        stopped = {
            (s.email, s.status) for s in session.exec(select(Subscriber)) if s.status != "active"
        }
        suppressed = {(s.email, s.reason) for s in session.exec(select(Suppression))}
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


def test_next_weeks_campaign_queued_before_the_batch_skips_the_three_when_sent(
    cfg: Settings, fake: FakeSendGrid, keys: KeyPair
) -> None:
    engine = db.get_engine(cfg.database_url)
    send_first_week(cfg, fake, engine)
    with Session(engine, expire_on_commit=False) as session:
        second = make_campaign(session, subject="Week 49: leg cramps")
        assert queue_deliveries(session, campaign=second) == 5
        session.commit()

    body = body_of(*sendgrid_events_for(fake, engine))
    with live_server(create_app(cfg)) as url:
        response = httpx.post(f"{url}/webhooks/sendgrid", content=body, headers=keys.headers(body))
    assert (response.status_code, response.json()) == (200, APPLIED)

    with Session(engine, expire_on_commit=False) as session:
        report = send_campaign(session, settings=cfg, campaign_id=second.id, preflight=False)
        outcome = {
            (email, status, error)
            for email, status, error in session.exec(
                select(Subscriber.email, Delivery.status, Delivery.error)
                .join(Delivery, Delivery.subscriber_id == Subscriber.id)
                .where(Delivery.campaign_id == second.id)
            )
        }
    assert (report.sent, report.skipped) == (2, 3)
    assert outcome == {
        ("ann@example.com", "sent", None),
        ("bob@example.com", "skipped", "subscriber is bounced"),
        ("cat@example.com", "skipped", "subscriber is complained"),
        ("dan@example.com", "skipped", "subscriber is unsubscribed"),
        ("eve@example.com", "sent", None),
    }
    assert fake.deliveries["cat@example.com"] == 1


def test_events_without_our_custom_args_find_their_deliveries_by_the_request_message_id(
    cfg: Settings, fake: FakeSendGrid
) -> None:
    engine = db.get_engine(cfg.database_url)
    send_first_week(cfg, fake, engine)
    bare = [
        {k: v for k, v in e.items() if k not in (ARG_CAMPAIGN, ARG_SUBSCRIBER, ARG_DELIVERY)}
        for e in sendgrid_events_for(fake, engine)
        if e["event"] == "delivered"
    ]
    with Session(engine) as session:
        result = apply(session, cfg, *bare)
        session.commit()
        delivered = session.exec(
            select(Delivery.id).where(col(Delivery.delivered_at).is_not(None))
        ).all()
    assert (result.applied, result.unmatched, len(delivered)) == (4, 0, 4)
