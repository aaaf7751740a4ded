"""``/api/subscribers`` over real HTTP, on SQLite and PostgreSQL: search with filters and
pages, and one person's record (the same room functions as the console)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsletter import api_tokens
from newsletter.settings import Settings
from tests.support.servers import live_server
from tests.support.subscribers import AppSlot, make_subscriber
from web.app import create_app


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[AppSlot, str]]:
    slot = AppSlot()
    with live_server(slot) as base:
        yield slot, base


@pytest.fixture
def api(settings: Settings, engine: Engine, server: tuple[AppSlot, str]) -> Iterator[httpx.Client]:
    with Session(engine, expire_on_commit=False) as session:
        _, token = api_tokens.create(session, name="crm")
        for address, status, topics in (
            ("jane@example.com", "active", ["sciatica", "back-pain"]),
            ("jan_e@example.org", "active", ["back-pain"]),
            ("bob@example.com", "unsubscribed", []),
        ):
            person = make_subscriber(session, address, status=status)
            person.topics = topics
            session.add(person)
        session.commit()
    slot, base = server
    slot.app = create_app(settings)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=10) as client:
        yield client
    slot.app = None


def emails(body: dict) -> list[str]:
    return [item["email"] for item in body["items"]]


def test_list_filters_by_address_status_and_topic(api: httpx.Client) -> None:
    assert api.get("/api/subscribers").json()["total"] == 3
    assert emails(api.get("/api/subscribers", params={"q": "JAN_"}).json()) == [
        "jan_e@example.org"
    ]  # "_" is a character here, not a LIKE wildcard
    assert emails(api.get("/api/subscribers", params={"status": "unsubscribed"}).json()) == [
        "bob@example.com"
    ]
    assert emails(api.get("/api/subscribers", params={"topic": "sciatica"}).json()) == [
        "jane@example.com"
    ]
    page = api.get("/api/subscribers", params={"limit": 1, "offset": 1}).json()
    assert (page["total"], page["limit"], page["offset"], emails(page)) == (
        3,
        1,
        1,
        ["jan_e@example.org"],
    )
    assert api.get("/api/subscribers", params={"topic": "knees"}).status_code == 422


def test_show_gives_the_record_with_its_history_or_404(api: httpx.Client) -> None:
    body = api.get("/api/subscribers/Jane@Example.com").json()
    assert body["email"] == "jane@example.com" and body["status"] == "active"
    assert [e["reason"] for e in body["history"]] == ["test fixture"]
    missing = api.get("/api/subscribers/nobody@example.com")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "no subscriber with the address 'nobody@example.com'"}
