"""Live progress (web/console/progress.py): the refreshable page and the Server-Sent
Events stream, which ends with a ``done`` event once the send finishes."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from campaigns import workflow
from campaigns.models import Campaign, CampaignStatus, Delivery, DeliveryStatus
from newsletter.accounts import Role
from newsletter.settings import Settings
from tests.support.console import VIEWER, add_user, console_client, sign_in
from tests.support.subscribers import AppSlot

S = CampaignStatus


@pytest.fixture
def client(
    sqlite_settings: Settings, sqlite_engine: Engine, console_server: tuple[AppSlot, str]
) -> Iterator[httpx.Client]:
    add_user(sqlite_engine, VIEWER, Role.viewer)  # reading progress needs no more
    cfg = sqlite_settings.model_copy(update={"console_progress_interval_seconds": 0.05})
    with console_client(console_server, cfg) as client:
        sign_in(client, VIEWER)
        yield client


def _sending(engine: Engine) -> int:
    with Session(engine) as session:
        campaign = Campaign(subject="Weekly", status=S.SCHEDULED)
        session.add(campaign)
        session.flush()
        workflow.transition(session, campaign=campaign, to=S.SENDING, actor="cli")
        for n, status in enumerate([DeliveryStatus.SENT, DeliveryStatus.QUEUED]):
            session.add(Delivery(campaign_id=campaign.id or 0, subscriber_id=n + 1, status=status))
        session.commit()
        return campaign.id or 0


def _events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, object]]]:
    name = ""
    for line in lines:
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            yield name, json.loads(line[len("data: ") :])


def test_the_page_shows_the_numbers_without_javascript(
    client: httpx.Client, sqlite_engine: Engine
) -> None:
    cid = _sending(sqlite_engine)
    html = client.get(f"/admin/campaigns/{cid}/progress").text
    assert '<dd data-field="sent">1</dd>' in html and '<dd data-field="queued">1</dd>' in html
    assert 'started by <span data-field="started_by">cli</span>' in html
    assert '<script src="/static/console.js" defer></script>' in html


def test_the_stream_follows_the_send_and_ends_when_it_is_sent(
    client: httpx.Client, sqlite_engine: Engine
) -> None:
    cid = _sending(sqlite_engine)
    with client.stream("GET", f"/admin/campaigns/{cid}/progress/stream") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _events(response.iter_lines())
        name, first = next(events)
        assert (name, first["sent"], first["queued"], first["percent"]) == ("progress", 1, 1, 50.0)
        with Session(sqlite_engine) as session:
            campaign = session.get(Campaign, cid)
            assert campaign is not None
            for delivery in session.exec(select(Delivery).where(Delivery.campaign_id == cid)):
                delivery.status = DeliveryStatus.SENT
                session.add(delivery)
            workflow.transition(session, campaign=campaign, to=S.SENT, actor="cli")
            session.commit()
        last = [e for e in events]
    assert last[-1][0] == "done"
    assert (last[-1][1]["percent"], last[-1][1]["finished"]) == (100.0, True)
