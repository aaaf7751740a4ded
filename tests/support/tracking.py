"""Factories for tracking tests: rows made directly in the database, SendGrid-shaped events,
and a P-256 key pair that signs batches the way SendGrid does."""

from __future__ import annotations

import base64
import itertools
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from campaigns.delivery.providers.sendgrid import ARG_CAMPAIGN, ARG_DELIVERY, ARG_SUBSCRIBER
from campaigns.delivery.providers.sendgrid_events import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    normalise_event,
    sign_payload,
)
from campaigns.models import Campaign, CampaignStatus, Delivery, DeliveryBatch, DeliveryStatus
from campaigns.tracking.effects import ApplyResult, apply_events
from newsletter.settings import Settings
from subscribers.models import Subscriber, SubscriberStatus

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # a Tuesday send
_ids = itertools.count(1)


def add_subscriber(
    session: Session, email: str, *, status: SubscriberStatus = SubscriberStatus.ACTIVE
) -> Subscriber:
    subscriber = Subscriber(email=email, status=status.value, confirmed_at=T0)
    session.add(subscriber)
    session.commit()
    return subscriber


def add_campaign(
    session: Session, *, subject: str = "Five stretches for sciatica", week: str | None = None
) -> Campaign:
    campaign = Campaign(
        subject=subject, week=week, status=CampaignStatus.SENT.value, started_at=T0, finished_at=T0
    )
    session.add(campaign)
    session.commit()
    return campaign


def add_delivery(
    session: Session,
    campaign: Campaign,
    subscriber: Subscriber,
    *,
    message_id: str = "Xmsg0001",
    status: DeliveryStatus = DeliveryStatus.SENT,
) -> Delivery:
    delivery = Delivery(
        campaign_id=campaign.id,
        subscriber_id=subscriber.id,
        status=status.value,
        provider_message_id=message_id if status == DeliveryStatus.SENT else None,
        sent_at=T0 if status == DeliveryStatus.SENT else None,
        attempts=1,
    )
    session.add(delivery)
    session.commit()
    if status == DeliveryStatus.SENT:  # as the send loop records an accepted request
        session.add(
            DeliveryBatch(
                campaign_id=delivery.campaign_id,
                first_delivery_id=delivery.id,
                last_delivery_id=delivery.id,
                message_id=message_id,
                sent_at=T0,
            )
        )
        session.commit()
    return delivery


def sg_event(
    event: str,
    delivery: Delivery,
    email: str,
    *,
    at: datetime = T0,
    event_id: str | None = None,
    custom_args: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """An event as SendGrid posts it: custom args echoed as strings beside its fields."""
    data: dict[str, Any] = {
        "email": email,
        "timestamp": int(at.timestamp()),
        "event": event,
        "sg_event_id": event_id or f"evt-{next(_ids):06d}",
        "sg_message_id": f"{delivery.provider_message_id}.filterdrecv-5bd68b1c-1-64-0",
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "category": ["newsletter"],
    }
    if custom_args:
        data[ARG_CAMPAIGN] = str(delivery.campaign_id)
        data[ARG_SUBSCRIBER] = str(delivery.subscriber_id)
        data[ARG_DELIVERY] = str(delivery.id)
    data.update(extra)
    return data


def apply(session: Session, settings: Settings, *events: dict[str, Any]) -> ApplyResult:
    result = apply_events(session, settings=settings, events=[normalise_event(e) for e in events])
    session.commit()
    return result


def later(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


@dataclass(frozen=True)
class KeyPair:
    """A P-256 key pair; ``public`` is base64 DER, as SendGrid's settings page shows it."""

    private: ec.EllipticCurvePrivateKey
    public: str

    @classmethod
    def generate(cls) -> KeyPair:
        private = ec.generate_private_key(ec.SECP256R1())
        der = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(private, base64.b64encode(der).decode("ascii"))

    def headers(self, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        return {
            SIGNATURE_HEADER: sign_payload(self.private, body, stamp),
            TIMESTAMP_HEADER: stamp,
            "Content-Type": "application/json",
        }


def body_of(*events: dict[str, Any]) -> bytes:
    return json.dumps(list(events)).encode("utf-8")


def database_snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted: equal snapshots mean nothing was written."""
    with engine.connect() as connection:
        return {
            table.name: sorted(
                (tuple(row) for row in connection.execute(sa.select(table))), key=repr
            )
            for table in SQLModel.metadata.sorted_tables
        }


def engagement(
    session: Session,
    settings: Settings,
    delivery: Delivery,
    kind: str,
    *,
    machine: bool = False,
    at: datetime = T0,
    url: str | None = None,
) -> None:
    """One opened or clicked event for ``delivery``, machine or human, applied as the
    webhook applies it (issue 16: subject tests and resends count only people); a click's
    ``url`` is kept in the payload as both SendGrid and our redirects keep it."""
    from campaigns.tracking.events import EventKind, NormalisedEvent

    event = NormalisedEvent(
        provider="sendgrid",
        kind=EventKind(kind),
        raw_event="open" if kind == "opened" else "click",
        event_id=f"evt-{next(_ids):06d}",
        occurred_at=at,
        campaign_id=delivery.campaign_id,
        subscriber_id=delivery.subscriber_id,
        delivery_id=delivery.id,
        machine=machine,
        url=url,
        payload={"url": url} if url else {},
    )
    apply_events(session, settings=settings, events=[event])
    session.commit()
