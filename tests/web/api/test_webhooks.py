"""/api/webhooks over real HTTP: add (with the secret, once), list, log, enable, remove."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from newsletter import api_tokens
from newsletter.settings import Settings
from tests.support.servers import live_server
from web.app import create_app


@pytest.fixture
def api(sqlite_settings: Settings, sqlite_engine: Engine) -> Iterator[httpx.Client]:
    with Session(sqlite_engine) as session:
        _record, token = api_tokens.create(session, name="hooks")
        session.commit()
    with live_server(create_app(sqlite_settings)) as url:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=f"{url}/api", headers=headers) as client:
            yield client


def test_an_endpoint_is_added_listed_logged_and_removed(api: httpx.Client) -> None:
    added = api.post(
        "/webhooks", json={"url": "https://example.com/h", "events": ["campaign.sent"]}
    )
    assert added.status_code == 201
    body = added.json()
    assert body["secret"].startswith("whsec_") and body["events"] == ["campaign.sent"]
    listed = api.get("/webhooks").json()
    assert [(e["id"], e["url"]) for e in listed] == [(body["id"], "https://example.com/h")]
    assert "secret" not in listed[0]
    assert api.get(f"/webhooks/{body['id']}/log").json() == []
    assert api.post(f"/webhooks/{body['id']}/enable").status_code == 409  # not disabled
    assert api.delete(f"/webhooks/{body['id']}").status_code == 200
    assert api.get(f"/webhooks/{body['id']}/log").status_code == 404


def test_a_plain_http_url_or_an_unknown_event_is_refused_with_422(api: httpx.Client) -> None:
    for body in (
        {"url": "http://example.com/h"},
        {"url": "https://example.com/h", "events": ["subscriber.opened"]},
    ):
        answer = api.post("/webhooks", json=body)
        assert answer.status_code == 422, body
        assert isinstance(answer.json()["detail"], str)
