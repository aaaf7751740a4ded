"""``/api/snippets`` over real HTTP (web/api/snippets.py): list, create, edit, retire."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from newsletter import api_tokens
from newsletter.audit import AuditEntry
from newsletter.settings import Settings
from tests.support.servers import live_server
from tests.support.subscribers import AppSlot
from web.app import create_app


@pytest.fixture
def client(sqlite_settings: Settings, sqlite_engine: Engine) -> Iterator[httpx.Client]:
    slot = AppSlot()
    slot.app = create_app(sqlite_settings)
    with Session(sqlite_engine) as session:
        _, token = api_tokens.create(session, name="ops")
        session.commit()
    with (
        live_server(slot) as base,
        httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10
        ) as client,
    ):
        yield client


NEW = {
    "title": "Ten-minute walk",
    "summary": "Walk **daily**.",
    "url": "https://blog.example.com/walk?utm_source=x",
    "category": "Back Pain",
}


def test_create_edit_retire_and_list(client: httpx.Client, sqlite_engine: Engine) -> None:
    created = client.post("/api/snippets", json=NEW)
    assert created.status_code == 201
    body = created.json()
    assert (body["summary"], body["url"], body["category"], body["retired"]) == (
        "Walk daily.",
        "https://blog.example.com/walk",
        "back-pain",
        False,
    )
    sid = body["id"]
    edited = client.patch(f"/api/snippets/{sid}", json={"pinned": True})
    assert (edited.status_code, edited.json()["pinned"]) == (200, True)
    assert client.post(f"/api/snippets/{sid}/retire").json()["retired"] is True
    again = client.post(f"/api/snippets/{sid}/retire")
    assert (again.status_code, again.json()) == (
        409,
        {"detail": f"snippet {sid} is retired already"},
    )
    assert client.get("/api/snippets").json() == []
    [listed] = client.get("/api/snippets", params={"retired": "true"}).json()
    assert listed["id"] == sid
    with Session(sqlite_engine) as session:
        actions = [e.action for e in session.exec(select(AuditEntry).order_by(AuditEntry.id))]
        actors = {e.actor for e in session.exec(select(AuditEntry))}
    assert actions == ["snippet.create", "snippet.edit", "snippet.retire"]
    assert actors == {"api-token:ops"}


def test_bad_input_is_422_naming_the_field_and_unknown_ids_404(client: httpx.Client) -> None:
    bad = client.post("/api/snippets", json={**NEW, "url": "not a url"})
    assert (bad.status_code, bad.json()) == (
        422,
        {"detail": "field 'url': 'not a url' is not an absolute http(s) URL"},
    )
    missing = client.patch("/api/snippets/999", json={"title": "x"})
    assert (missing.status_code, missing.json()) == (404, {"detail": "no snippet with id 999"})
