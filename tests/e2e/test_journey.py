"""The whole subscriber journey over real HTTP: sign up, confirm, receive the newsletter,
leave with the RFC 8058 one-click POST, and get no further newsletter."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from campaigns.content.assembly import assemble_week
from campaigns.delivery.sending import send_campaign
from campaigns.models import Delivery
from newsletter.settings import Settings
from tests.support.content import make_snippet
from tests.support.servers import free_port, live_server
from tests.support.subscribers import link, messages_to
from tests.support.web import EASY_CHALLENGE, arrived, solved
from web.app import create_app

READER = "reader@example.com"
OTHER = "other@example.com"


@pytest.fixture
def site(settings: Settings, engine: Engine) -> Iterator[tuple[httpx.Client, Settings]]:
    port = free_port()
    cfg = settings.model_copy(update={"base_url": f"http://127.0.0.1:{port}", **EASY_CHALLENGE})
    with live_server(create_app(cfg), port) as base, httpx.Client(base_url=base) as client:
        yield client, cfg


def _subscribe(client: httpx.Client, cfg: Settings, address: str) -> None:
    """As a browser does: solve the form's anti-robot check, post, confirm by email."""
    data = {"email": address, "consent": "yes", "altcha": solved(client)}
    response = client.post("/subscribe", data=data)
    assert response.status_code == 200
    confirm = link(arrived(cfg, address)[0], "confirm")
    assert client.get(confirm).status_code == 200


def _newsletters_to(cfg: Settings, address: str) -> list:
    return [
        m for m in messages_to(cfg, address) if m["Subject"].startswith(cfg.newsletter_name + ":")
    ]


def _send_week(engine: Engine, cfg: Settings, day: date) -> int:
    with Session(engine, expire_on_commit=False) as session:
        for n in range(cfg.snippets_per_issue):
            make_snippet(session, cfg, title=f"Week {day} article {n}", category=f"topic-{n}")
        session.commit()
        campaign = assemble_week(session, settings=cfg, day=day).campaign
        session.commit()
        assert campaign.id is not None
        send_campaign(session, settings=cfg, campaign_id=campaign.id)
        return campaign.id


def test_one_click_unsubscribe_stops_the_next_newsletter(
    site: tuple[httpx.Client, Settings], engine: Engine
) -> None:
    client, cfg = site
    _subscribe(client, cfg, READER)
    _subscribe(client, cfg, OTHER)

    _send_week(engine, cfg, date(2026, 11, 23))
    [newsletter] = _newsletters_to(cfg, READER)
    unsubscribe_url = str(newsletter["List-Unsubscribe"]).strip().strip("<>")
    assert unsubscribe_url.startswith(f"{cfg.base_url}/unsubscribe/")

    # A mailbox provider's RFC 8058 POST: no cookies, no redirect followed.
    response = httpx.post(
        unsubscribe_url,
        content=b"List-Unsubscribe=One-Click",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200

    second = _send_week(engine, cfg, date(2026, 11, 30))
    assert len(_newsletters_to(cfg, READER)) == 1
    assert len(_newsletters_to(cfg, OTHER)) == 2
    with Session(engine) as session:
        statuses = session.exec(select(Delivery.status).where(Delivery.campaign_id == second)).all()
    assert statuses == ["sent"]
